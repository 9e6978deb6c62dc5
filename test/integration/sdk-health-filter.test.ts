/**
 * Registry health is a hard filter for the service client (issue 15): against a real agent, instances whose
 * TTL check is critical take no traffic, a service whose every instance is critical fails with
 * PHARE_ERR_NO_HEALTHY_INSTANCE (as `?passing` and DNS answer nothing), and `onAllUnhealthy: 'try-all'`
 * is the explicit way to call them anyway.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { type ConsulClient, createConsulClient } from '../../src/client/api/index.ts';
import { createDiscovery, type Discovery } from '../../src/client/discovery/index.ts';
import { createServiceClient } from '../../src/client/http/index.ts';
import { startAgentInProcess, waitFor } from '../helpers/agent.ts';
import { type Backend, startBackend } from '../helpers/backends.ts';

const logger = pino({ level: 'silent' });
let agent: Awaited<ReturnType<typeof startAgentInProcess>>;
let api: ConsulClient;
let discovery: Discovery;
const backends: Backend[] = [];

before(async () => {
  agent = await startAgentInProcess();
  api = createConsulClient({ address: agent.url });
  discovery = createDiscovery({ consul: { address: agent.url }, logger });
});
after(async () => {
  await discovery.close();
  await api.close();
  await agent.close();
  await Promise.all(backends.map((b) => b.close()));
});

/** Registers a backend with a TTL check (critical until a heartbeat says otherwise, as in Consul). */
async function instance(service: string, status: 'passing' | 'warning' | 'critical'): Promise<Backend> {
  const b = await startBackend(`${service}-${status}`);
  backends.push(b);
  const id = `${service}-${b.port}`;
  await api.agent.register({
    Name: service,
    ID: id,
    Address: '127.0.0.1',
    Port: b.port,
    Check: { CheckID: `service:${id}`, Name: 'ttl', TTL: '60s' },
  });
  if (status !== 'critical') await api.agent.ttl(`service:${id}`, status);
  return b;
}

test('1 of 3 passing: every try goes to the passing instance (no panic routing to critical ones)', async () => {
  const good = await instance('mixed', 'passing');
  const bad = [await instance('mixed', 'critical'), await instance('mixed', 'critical')];
  await waitFor(async () => (await discovery.set('mixed')).all.length === 3, 10_000, 'three instances');
  const http = createServiceClient({ discovery, logger });
  try {
    for (let i = 0; i < 50; i++) {
      const res = await http.get('mixed', '/');
      assert.equal(res.statusCode, 200);
      assert.equal(res.attempts, 1);
      await res.body.dump();
    }
    assert.equal(good.hits, 50);
    assert.deepEqual(
      bad.map((b) => b.hits),
      [0, 0],
    );
  } finally {
    await http.close();
  }
});

test('the only instance critical: PHARE_ERR_NO_HEALTHY_INSTANCE; try-all calls it; warning needs passingOnly false', async () => {
  const critical = await instance('lonely', 'critical');
  const warning = await instance('warned', 'warning');
  await waitFor(async () => (await discovery.set('lonely')).all.length === 1, 10_000, 'lonely');
  await waitFor(async () => (await discovery.set('warned')).all.length === 1, 10_000, 'warned');
  const strict = createServiceClient({ discovery, logger });
  const tryAll = createServiceClient({ discovery, logger, onAllUnhealthy: 'try-all' });
  const lax = createServiceClient({ discovery, logger, passingOnly: false });
  try {
    await assert.rejects(strict.get('lonely', '/'), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'PHARE_ERR_NO_HEALTHY_INSTANCE');
      assert.match(err.message, /service "lonely": 1 instance\(s\) registered, none passing/);
      return true;
    });
    assert.equal(critical.hits, 0);
    const res = await tryAll.get('lonely', '/');
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    assert.equal(critical.hits, 1);

    await assert.rejects(strict.get('warned', '/'), { code: 'PHARE_ERR_NO_HEALTHY_INSTANCE' });
    const w = await lax.get('warned', '/');
    assert.equal(w.statusCode, 200);
    await w.body.dump();
    assert.equal(warning.hits, 1);
    // A critical instance stays out for passingOnly: false too.
    await assert.rejects(lax.get('lonely', '/'), { code: 'PHARE_ERR_NO_HEALTHY_INSTANCE' });
    assert.throws(
      () => createServiceClient({ discovery, onAllUnhealthy: 'maybe' as 'fail' }),
      /onAllUnhealthy: expected 'fail' or 'try-all', got "maybe"/,
    );
  } finally {
    await Promise.all([strict.close(), tryAll.close(), lax.close()]);
  }
});
