/**
 * The SDK over several agents (issue 12's SDK side): `PHARE_HTTP_ADDR=a,b,c` (and the `address` option)
 * name three real agents, each its own process on port 0. Under steady load through the service client,
 * the agent the SDK sticks to gets kill -9: no idempotent call fails (discovery serves its last known
 * good set in between), the discovery watch and the registration keeper move to another agent by
 * themselves, and a change made through a surviving agent reaches the callers.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { createConsulClient, resolveAgentAddress } from '../../src/client/api/index.ts';
import { createDiscovery } from '../../src/client/discovery/index.ts';
import { createServiceClient } from '../../src/client/http/index.ts';
import { registerService } from '../../src/client/registration/index.ts';
import { type AgentProcess, spawnAgent, waitFor } from '../helpers/agent.ts';
import { type Backend, startBackend, startCallLoad } from '../helpers/backends.ts';

const logger = pino({ level: 'silent' });
const agents: AgentProcess[] = [];
const backends: Backend[] = [];
after(async () => {
  for (const a of agents)
    if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGKILL');
  await Promise.all(agents.map((a) => a.exited));
  await Promise.all(backends.map((b) => b.close()));
});

const agent = async () => {
  const a = await spawnAgent([
    '--dev',
    '--http-addr',
    '127.0.0.1:0',
    '--dns-addr',
    '',
    '--node',
    `n${agents.length}`,
  ]);
  agents.push(a);
  return a;
};

/** Registers `b` as an instance of `service` on each agent of `on` (separate registries standing in for a cluster's shared catalog). */
async function registerOn(on: AgentProcess[], service: string, b: Backend) {
  for (const a of on) {
    const api = createConsulClient({ address: a.url });
    await api.agent.register({
      Name: service,
      ID: `${service}-${b.port}`,
      Address: '127.0.0.1',
      Port: b.port,
    });
    await api.close();
  }
}

test('several agent addresses: comma lists in PHARE_HTTP_ADDR / CONSUL_HTTP_ADDR and the option, in order, deduplicated', async () => {
  const client = createConsulClient({
    env: { PHARE_HTTP_ADDR: '10.0.0.1:8500, 10.0.0.2:8500,10.0.0.1:8500' },
  });
  assert.deepEqual(client.addresses, ['http://10.0.0.1:8500', 'http://10.0.0.2:8500']);
  assert.equal(client.address, 'http://10.0.0.1:8500');
  const ssl = createConsulClient({ env: { CONSUL_HTTP_ADDR: 'a:8501,b:8501', CONSUL_HTTP_SSL: 'true' } });
  assert.deepEqual(ssl.addresses, ['https://a:8501', 'https://b:8501']);
  const option = createConsulClient({ address: ['x:1', 'http://y:2'], env: { PHARE_HTTP_ADDR: 'z:3' } });
  assert.deepEqual(option.addresses, ['http://x:1', 'http://y:2']);
  assert.equal(resolveAgentAddress({}, { PHARE_HTTP_ADDR: 'p:1,q:2' }), 'http://p:1');
  assert.throws(
    () => createConsulClient({ env: { PHARE_HTTP_ADDR: ' , ' } }),
    /PHARE_HTTP_ADDR: expected at least one host:port/,
  );
  assert.throws(
    () => createConsulClient({ address: 'ok:1,ftp://bad:2' }),
    /address: scheme must be http or https/,
  );
  await Promise.all([client.close(), ssl.close(), option.close()]);
});

test('a dead first agent: the call goes to the next one and the client sticks to it; none answering is one clear error', async () => {
  const live = await agent();
  const dead = await agent();
  dead.child.kill('SIGKILL');
  await dead.exited;
  const client = createConsulClient({ address: [dead.url, live.url] });
  try {
    assert.equal(client.address, dead.url);
    assert.equal(typeof (await client.status.leader()), 'string');
    assert.equal(client.address, live.url, 'moved to the agent that answered');
    await client.status.leader();
    assert.equal(client.address, live.url, 'and stays there');
    live.child.kill('SIGKILL');
    await live.exited;
    await assert.rejects(client.status.leader(), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'PHARE_ERR_AGENT_UNREACHABLE');
      assert.match(
        err.message,
        /registry agent at http:\/\/127\.0\.0\.1:\d+ did not answer GET \/v1\/status\/leader/,
      );
      return true;
    });
  } finally {
    await client.close();
  }
});

test('kill -9 of the agent in use under load: zero failed idempotent calls; watch and registration move on', async () => {
  const trio = [await agent(), await agent(), await agent()];
  const [a, b, c] = trio as [AgentProcess, AgentProcess, AgentProcess];
  const list = trio.map((x) => x.url.replace('http://', '')).join(',');
  for (const name of ['f1', 'f2', 'f3']) {
    const be = await startBackend(name);
    backends.push(be);
    await registerOn(trio, 'orders', be);
  }
  const discovery = createDiscovery({ consul: { env: { PHARE_HTTP_ADDR: list }, waitMs: 5_000 }, logger });
  const staleness: string[] = [];
  discovery.on('stale', () => staleness.push('stale'));
  discovery.on('fresh', () => staleness.push('fresh'));
  const http = createServiceClient({ discovery, logger });
  const reg = await registerService({
    name: 'payments',
    port: 7600,
    address: '127.0.0.1',
    consul: { address: trio.map((x) => x.url) },
    watchWaitMs: 2_000,
    logger,
  });
  assert.equal(reg.registered, true);
  const load = startCallLoad(http, 'orders');
  try {
    await waitFor(() => load.ok > 300, 20_000, 'load to warm up');
    a.child.kill('SIGKILL');
    await a.exited;
    const atKill = load.ok;
    // A change made through the survivors reaches the caller: discovery now watches b or c.
    const late = await startBackend('late');
    backends.push(late);
    await registerOn([b, c], 'orders', late);
    await waitFor(
      () => load.seenPorts.has(late.port),
      20_000,
      'the instance registered after the kill to take calls',
    );
    await waitFor(() => load.ok > atKill + 500, 20_000, 'load to continue after the kill');
    // The registration keeper found its service missing on the agent it moved to and registered it there.
    await waitFor(
      async () => {
        for (const x of [b, c]) {
          const api = createConsulClient({ address: x.url });
          const svc = await api.agent.service(reg.id).finally(() => api.close());
          if (svc) return true;
        }
        return false;
      },
      20_000,
      'payments registered on a surviving agent',
    );
    assert.ok(reg.reregistrations >= 1);
    await load.stop();
    assert.equal(load.errors.length, 0, `failed calls: ${load.errors.slice(0, 3).map(String).join('; ')}`);
    assert.ok(load.ok > atKill + 500);
    assert.deepEqual(
      staleness.slice(0, 2),
      ['stale', 'fresh'],
      'last known good in between, then fresh again',
    );
  } finally {
    await load.stop();
    await reg.deregister().catch(() => {});
    await http.close();
    await discovery.close();
  }
});
