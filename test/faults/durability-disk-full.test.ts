/**
 * Issue 11 point 1: with the data dir on a small tmpfs filled to ENOSPC, every write the agent answers
 * with a 500 changes nothing — not in reads, not on disk after a restart — and every 200 survives kill -9.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { call } from '../fixtures/http.ts';
import { dataDirAgents } from '../helpers/agent.ts';
import { fillDisk, mountTmpfs, type Tmpfs } from '../helpers/faults.ts';

// agents are killed before the tmpfs under them is unmounted (hooks run in the order they are registered)
const start = dataDirAgents('df');
const mounts: Tmpfs[] = [];
after(() => {
  for (const m of mounts) m.unmount();
});

const index = async (url: string) =>
  Number((await call(url, 'GET', '/v1/catalog/services')).headers['x-consul-index']);
// biome-ignore lint/suspicious/noExplicitAny: JSON answers
const getJson = async (url: string, path: string): Promise<any> => (await call(url, 'GET', path)).json();

/** A registration big enough (~32 KiB of meta) that a few of them outgrow what is left of the disk. */
const big = (id: string) => ({
  Name: 'full',
  ID: id,
  Meta: Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, 'x'.repeat(500)])),
  Check: { TTL: '1h', CheckID: `ttl-${id}` },
});

test('disk full: a 500 changes nothing in memory or on disk; a 200 survives kill -9', async (t) => {
  const fs = mountTmpfs(t, 4 * 1024 * 1024);
  if (!fs) return;
  mounts.push(fs);
  const dataDir = join(fs.path, 'data');
  mkdirSync(dataDir);
  const a = await start(dataDir);
  for (let i = 0; i < 10; i++) {
    const r = await call(a.url, 'PUT', '/v1/agent/service/register', {
      Name: 'keep',
      ID: `keep-${i}`,
      Check: { TTL: '1h', CheckID: `ttl-keep-${i}` },
    });
    assert.equal(r.status, 200, r.text);
  }
  const free = fillDisk(fs.path);

  // Registrations until three were refused: each refused one is invisible and its TTL pass a 404.
  const acked: string[] = [];
  const refused: string[] = [];
  let served = await index(a.url);
  for (let i = 0; i < 200 && refused.length < 3; i++) {
    const id = `full-${i}`;
    const before = await index(a.url);
    const r = await call(a.url, 'PUT', '/v1/agent/service/register', big(id));
    if (r.status === 200) {
      acked.push(id);
      served = Math.max(served, await index(a.url));
      continue;
    }
    assert.equal(r.status, 500, r.text);
    assert.match(r.text, /commit failed.*full/i);
    refused.push(id);
    assert.equal(
      (await call(a.url, 'GET', `/v1/agent/service/${id}`)).status,
      404,
      'a refused registration is visible',
    );
    assert.equal(await index(a.url), before, 'a refused write moved the index');
    const pass = await call(a.url, 'PUT', `/v1/agent/check/pass/ttl-${id}`);
    assert.equal(pass.status, 404, `TTL pass on a refused registration: ${pass.status} ${pass.text}`);
    assert.equal(`ttl-${id}` in (await getJson(a.url, '/v1/agent/checks')), false);
    assert.deepEqual(
      await getJson(a.url, `/v1/health/service/full?filter=${encodeURIComponent(`Service.ID == "${id}"`)}`),
      [],
    );
  }
  assert.equal(refused.length, 3, 'the full disk never refused a registration');

  // A refused deregistration leaves the service (and its check) in place.
  const dereg = await call(a.url, 'PUT', '/v1/agent/service/deregister/keep-0');
  assert.equal(dereg.status, 500, dereg.text);
  assert.equal((await call(a.url, 'GET', '/v1/agent/service/keep-0')).status, 200);
  assert.ok('ttl-keep-0' in (await getJson(a.url, '/v1/agent/checks')));

  // Space again: the retry of the deregistration works (it is not a 404), a refused ID registers.
  free();
  const retry = await call(a.url, 'PUT', '/v1/agent/service/deregister/keep-0');
  assert.equal(retry.status, 200, retry.text);
  const again = await call(a.url, 'PUT', '/v1/agent/service/register', big(refused[0] as string));
  assert.equal(again.status, 200, again.text);
  served = Math.max(served, await index(a.url));

  a.child.kill('SIGKILL');
  await a.exited;
  const b = await start(dataDir);
  const services = await getJson(b.url, '/v1/agent/services');
  for (const id of [...acked, refused[0] as string, ...Array.from({ length: 9 }, (_, i) => `keep-${i + 1}`)])
    assert.ok(id in services, `acknowledged ${id} lost`);
  for (const id of refused.slice(1))
    assert.equal(id in services, false, `refused ${id} came back after restart`);
  assert.equal('keep-0' in services, false, 'a deregistration acknowledged after the disk freed came back');
  const checks = await getJson(b.url, '/v1/agent/checks');
  for (const c of Object.values(checks) as { ServiceID: string; CheckID: string }[])
    assert.ok(c.ServiceID === '' || c.ServiceID in services, `check ${c.CheckID} without its service`);
  assert.ok((await index(b.url)) >= served, 'index after restart is lower than one already served');
  b.child.kill('SIGTERM');
  assert.equal((await b.exited).code, 0);
});
