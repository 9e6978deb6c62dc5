/**
 * Durability of the default (sqlite) store, through the real process: a registration acknowledged with a
 * 200 survives `kill -9`, a clean SIGTERM exits 0 after finishing in-flight writes, and services, checks
 * and their last status come back after a restart with an index that did not go backwards.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { call } from '../fixtures/http.ts';
import { dataDirAgents, tempDir } from '../helpers/agent.ts';

const dirs: { remove(): void }[] = [];
after(() => {
  for (const d of dirs) d.remove();
});

const start = dataDirAgents('dur-node');

// biome-ignore lint/suspicious/noExplicitAny: JSON answers
async function getJson(url: string, path: string): Promise<any> {
  const r = await call(url, 'GET', path);
  assert.equal(r.status, 200, `${path}: ${r.text}`);
  return r.json();
}
async function catalogIndex(url: string): Promise<number> {
  return Number((await call(url, 'GET', '/v1/catalog/services')).headers['x-consul-index']);
}

/**
 * Runs `workers` concurrent clients registering services until `stop()` turns true or the agent stops
 * answering; resolves with the IDs the agent acknowledged with a 200.
 */
async function burst(
  url: string,
  workers: number,
  stop: () => boolean,
): Promise<{ acked: string[]; failed: number }> {
  const acked: string[] = [];
  let failed = 0;
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let n = 0; n < 10_000 && !stop(); n++) {
        const id = `burst-${w}-${n}`;
        try {
          const r = await call(
            url,
            'PUT',
            '/v1/agent/service/register',
            {
              Name: 'burst',
              ID: id,
              Tags: [`w${w}`],
              Check: { TTL: '1h', CheckID: `ttl-${id}` },
            },
            { timeoutMs: 10_000 },
          );
          if (r.status === 200) acked.push(id);
          else {
            failed++;
            return; // 503 while closing: this client is done
          }
        } catch {
          failed++;
          return; // connection refused/reset: the process is gone
        }
      }
    }),
  );
  return { acked, failed };
}

test('kill -9 mid-burst: every acknowledged registration is there after restart', async () => {
  const dir = tempDir('phare-dur-kill-');
  dirs.push(dir);
  const a = await start(dir.path);
  let killed = false;
  const indexBefore = await catalogIndex(a.url);
  const run = burst(a.url, 64, () => false);
  // kill once a good number of writes were acknowledged (or after 5 s at the latest)
  const t0 = Date.now();
  while (Date.now() - t0 < 5000) {
    const r = await call(a.url, 'GET', '/v1/agent/services').catch(() => undefined);
    if (r && Object.keys(r.json<object>()).length >= 200) break;
    await new Promise((res) => setTimeout(res, 20));
  }
  a.child.kill('SIGKILL');
  killed = true;
  const exit = await a.exited;
  assert.equal(exit.signal, 'SIGKILL');
  const { acked, failed } = await run;
  assert.ok(killed);
  assert.ok(acked.length > 0, 'no registration was acknowledged before the kill');
  assert.ok(failed > 0, 'the kill happened after the burst ended: it did not test anything');

  const b = await start(dir.path);
  const services = await getJson(b.url, '/v1/agent/services');
  const checks = await getJson(b.url, '/v1/agent/checks');
  const missing = acked.filter((id) => !(id in services));
  assert.deepEqual(missing, [], `${missing.length} of ${acked.length} acknowledged registrations lost`);
  const missingChecks = acked.filter((id) => !(`ttl-${id}` in checks));
  assert.deepEqual(missingChecks, [], 'acknowledged checks lost');
  for (const id of acked.slice(0, 20)) {
    assert.equal(services[id].Service, 'burst');
    assert.equal(checks[`ttl-${id}`].ServiceID, id);
  }
  assert.ok(
    (await catalogIndex(b.url)) >= indexBefore + acked.length,
    'index after restart is behind the acknowledged writes',
  );
  console.log(
    `# kill -9: ${acked.length} acknowledged, ${Object.keys(services).length} present after restart`,
  );
  b.child.kill('SIGTERM');
  assert.equal((await b.exited).code, 0);
});

test('services, checks and their last status survive a clean restart and a kill -9; index does not go back', async () => {
  const dir = tempDir('phare-dur-status-');
  dirs.push(dir);
  const a = await start(dir.path);
  const put = async (url: string, path: string, body?: unknown) => {
    const r = await call(url, 'PUT', path, body);
    assert.equal(r.status, 200, `${path}: ${r.text}`);
  };
  await put(a.url, '/v1/agent/service/register', {
    Name: 'web',
    ID: 'web-1',
    Port: 8080,
    Tags: ['v1'],
    Meta: { version: '2' },
    Checks: [
      { CheckID: 'web-ttl', TTL: '1h' },
      { CheckID: 'web-ttl-2', TTL: '1h' },
    ],
  });
  await put(a.url, '/v1/agent/check/pass/web-ttl?note=healthy');
  await put(a.url, '/v1/agent/check/warn/web-ttl-2?note=meh');
  await put(a.url, '/v1/agent/check/register', { Name: 'node-ttl', TTL: '1h' });
  await put(a.url, '/v1/agent/check/pass/node-ttl');
  await put(a.url, '/v1/agent/service/maintenance/web-1?enable=true&reason=upgrading');
  const snapshot = async (url: string) => {
    const s = await getJson(url, '/v1/agent/services');
    const c = await getJson(url, '/v1/agent/checks');
    const strip = (o: Record<string, Record<string, unknown>>): Record<string, Record<string, unknown>> =>
      Object.fromEntries(
        Object.entries(o).map(([k, v]) => [
          k,
          { ...v, CreateIndex: undefined, ModifyIndex: undefined, Node: undefined },
        ]),
      );
    return { services: s, checks: strip(c) };
  };
  const before = await snapshot(a.url);
  assert.equal(before.checks['web-ttl']?.['Status'], 'passing');
  assert.equal(before.checks['web-ttl-2']?.['Status'], 'warning');
  const index1 = await catalogIndex(a.url);
  const healthIndex1 = Number((await call(a.url, 'GET', '/v1/health/service/web')).headers['x-consul-index']);

  a.child.kill('SIGTERM');
  const exit = await a.exited;
  assert.equal(exit.code, 0, `SIGTERM exit: ${JSON.stringify(exit)}\n${a.output()}`);

  const b = await start(dir.path);
  assert.deepEqual(await snapshot(b.url), before, 'state after a clean restart');
  const index2 = await catalogIndex(b.url);
  assert.ok(index2 >= index1, `catalog index went back: ${index1} -> ${index2}`);
  const healthIndex2 = Number((await call(b.url, 'GET', '/v1/health/service/web')).headers['x-consul-index']);
  assert.ok(healthIndex2 >= healthIndex1, `health index went back: ${healthIndex1} -> ${healthIndex2}`);

  // change something, then kill -9 right after the 200
  await put(b.url, '/v1/agent/check/fail/web-ttl?note=broken');
  await put(b.url, '/v1/agent/service/maintenance/web-1?enable=false');
  const before2 = await snapshot(b.url);
  const index3 = await catalogIndex(b.url);
  b.child.kill('SIGKILL');
  await b.exited;

  const c = await start(dir.path);
  const after2 = await snapshot(c.url);
  assert.deepEqual(after2, before2, 'state after kill -9');
  assert.equal(after2.checks['web-ttl']?.['Status'], 'critical');
  assert.equal(after2.checks['web-ttl']?.['Output'], 'broken');
  assert.equal(after2.checks['_service_maintenance:web-1'], undefined);
  assert.ok((await catalogIndex(c.url)) >= index3);
  // the node ID is stable across restarts
  const self = await getJson(c.url, '/v1/agent/self');
  assert.match(self.Config.NodeID, /^[0-9a-f-]{36}$/);
  c.child.kill('SIGTERM');
  assert.equal((await c.exited).code, 0);
});

test('SIGTERM during in-flight writes: exit 0 and every acknowledged write is present', async () => {
  const dir = tempDir('phare-dur-term-');
  dirs.push(dir);
  const a = await start(dir.path);
  const run = burst(a.url, 32, () => false);
  const t0 = Date.now();
  while (Date.now() - t0 < 5000) {
    const r = await call(a.url, 'GET', '/v1/agent/services').catch(() => undefined);
    if (r && Object.keys(r.json<object>()).length >= 100) break;
    await new Promise((res) => setTimeout(res, 20));
  }
  a.child.kill('SIGTERM');
  const exit = await a.exited;
  const { acked } = await run;
  assert.equal(exit.code, 0, `exit after SIGTERM: ${JSON.stringify(exit)}\n${a.output()}`);
  assert.ok(acked.length > 0);
  const b = await start(dir.path);
  const services = await getJson(b.url, '/v1/agent/services');
  const missing = acked.filter((id) => !(id in services));
  assert.deepEqual(missing, [], `${missing.length} of ${acked.length} acknowledged registrations lost`);
  b.child.kill('SIGINT');
  assert.equal((await b.exited).code, 0);
});

test('kill -9 mid-burst of KV puts: every acknowledged put (group-committed) is there after restart', async () => {
  const dir = tempDir('phare-dur-kv-');
  dirs.push(dir);
  const a = await start(dir.path);
  // 64 clients: each writes its own key with values 0, 1, 2, … (so puts land in the same group commits)
  // and one unique key per acknowledged put. Killed while they run.
  const lastAcked = new Map<number, number>();
  const acked: string[] = [];
  let failed = 0;
  let stop = false;
  const run = Promise.all(
    Array.from({ length: 64 }, async (_, w) => {
      for (let n = 0; !stop; n++) {
        try {
          const r = await call(a.url, 'PUT', `/v1/kv/burst/${w}?flags=${n}`, `v${n}`, { timeoutMs: 10_000 });
          const u = await call(a.url, 'PUT', `/v1/kv/once/${w}/${n}`, `w${w}n${n}`, { timeoutMs: 10_000 });
          if (r.status !== 200 || r.text !== 'true' || u.status !== 200 || u.text !== 'true') {
            failed++;
            return;
          }
          lastAcked.set(w, n);
          acked.push(`once/${w}/${n}`);
        } catch {
          failed++;
          return; // the process is gone
        }
      }
    }),
  );
  const t0 = Date.now();
  while (acked.length < 500 && Date.now() - t0 < 5000) await new Promise((res) => setTimeout(res, 10));
  a.child.kill('SIGKILL');
  assert.equal((await a.exited).signal, 'SIGKILL');
  await run;
  stop = true;
  assert.ok(acked.length > 0, 'no put was acknowledged before the kill');
  assert.ok(failed > 0, 'the kill happened after the burst ended: it did not test anything');

  const b = await start(dir.path);
  const once = new Map(
    ((await getJson(b.url, '/v1/kv/once/?recurse')) as { Key: string; Value: string }[]).map((e) => [
      e.Key,
      Buffer.from(e.Value, 'base64').toString(),
    ]),
  );
  const missing = acked.filter((k) => !once.has(k));
  assert.deepEqual(missing, [], `${missing.length} of ${acked.length} acknowledged puts lost`);
  for (const k of acked.slice(0, 50)) {
    const [, w, n] = k.split('/');
    assert.equal(once.get(k), `w${w}n${n}`);
  }
  // each client's own key holds its last acknowledged value or a later one (sent, not yet answered)
  const burst = (await getJson(b.url, '/v1/kv/burst/?recurse')) as { Key: string; Flags: number }[];
  const flags = new Map(burst.map((e) => [Number(e.Key.split('/')[1]), e.Flags]));
  for (const [w, n] of lastAcked) {
    const got = flags.get(w);
    assert.ok(got !== undefined && got >= n, `burst/${w}: acknowledged ${n}, found ${got} after restart`);
  }
  console.log(`# kv kill -9: ${acked.length} acknowledged puts, ${once.size} present after restart`);
  b.child.kill('SIGTERM');
  assert.equal((await b.exited).code, 0);
});
