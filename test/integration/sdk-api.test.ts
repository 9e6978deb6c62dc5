/** The typed registry client and watch() against a real in-process agent. */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createConsulClient, resolveAgentAddress, watch } from '../../src/client/api/index.ts';
import { startAgentInProcess, waitFor } from '../helpers/agent.ts';

test('address resolution order: options, PHARE_HTTP_ADDR, CONSUL_HTTP_ADDR, CONSUL_HOST/PORT, default', () => {
  const env = {
    PHARE_HTTP_ADDR: '10.0.0.1:1',
    CONSUL_HTTP_ADDR: '10.0.0.2:2',
    CONSUL_HOST: '10.0.0.3',
    CONSUL_PORT: '3',
  };
  assert.equal(resolveAgentAddress({ address: 'https://h:9' }, env), 'https://h:9');
  assert.equal(resolveAgentAddress({}, env), 'http://10.0.0.1:1');
  assert.equal(resolveAgentAddress({}, { ...env, PHARE_HTTP_ADDR: undefined }), 'http://10.0.0.2:2');
  assert.equal(
    resolveAgentAddress({}, { CONSUL_HTTP_ADDR: '10.0.0.2:2', CONSUL_HTTP_SSL: 'true' }),
    'https://10.0.0.2:2',
  );
  assert.equal(resolveAgentAddress({}, { CONSUL_HOST: '10.0.0.3', CONSUL_PORT: '3' }), 'http://10.0.0.3:3');
  assert.equal(resolveAgentAddress({}, { CONSUL_PORT: '3' }), 'http://127.0.0.1:3');
  assert.equal(resolveAgentAddress({}, {}), 'http://127.0.0.1:8500');
  assert.throws(() => resolveAgentAddress({}, { PHARE_HTTP_ADDR: 'ftp://x:1' }), /PHARE_HTTP_ADDR/);
});

test('token pass-through as X-Consul-Token', async () => {
  const seen: (string | undefined)[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers['x-consul-token'] as string | undefined);
    res.setHeader('content-type', 'application/json');
    res.end('"127.0.0.1:8300"');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const c1 = createConsulClient({ address: `127.0.0.1:${port}`, token: 'secret' });
  const c2 = createConsulClient({ address: `127.0.0.1:${port}`, env: { CONSUL_HTTP_TOKEN: 'from-env' } });
  assert.equal(await c1.status.leader(), '127.0.0.1:8300');
  await c2.status.leader();
  assert.deepEqual(seen, ['secret', 'from-env']);
  await Promise.all([c1.close(), c2.close()]);
  server.close();
});

test('agent, catalog, health and status areas speak the agent shapes', async () => {
  const agent = await startAgentInProcess();
  const c = createConsulClient({ address: agent.url });
  try {
    await c.agent.register({
      Name: 'web',
      ID: 'web-1',
      Port: 8080,
      Address: '127.0.0.1',
      Tags: ['v1'],
      Check: { TTL: '10s' },
    });
    const services = await c.agent.services();
    assert.equal(services['web-1']?.Port, 8080);
    const one = await c.agent.service('web-1');
    assert.equal(one?.Service, 'web');
    assert.equal(typeof one?.ContentHash, 'string');
    assert.equal(await c.agent.service('nope'), undefined);
    // TTL checks start critical; ?passing hides the instance until a heartbeat.
    assert.equal((await c.health.service('web', { passing: true })).value.length, 0);
    await c.agent.ttl('service:web-1', 'passing', 'ok');
    const h = await c.health.service('web', { passing: true, tag: 'v1' });
    assert.equal(h.value.length, 1);
    assert.ok(h.index > 0);
    assert.equal(h.value[0]?.Service.Port, 8080);
    assert.equal((await c.agent.serviceHealth('web-1'))?.AggregatedStatus, 'passing');
    const cat = await c.catalog.service('web');
    assert.equal(cat.value[0]?.ServicePort, 8080);
    assert.deepEqual((await c.catalog.services()).value.web, ['v1']);
    assert.match(await c.status.leader(), /:8300$/);
    await c.agent.deregister('web-1');
    assert.equal((await c.health.service('web')).value.length, 0);
    await assert.rejects(c.agent.ttl('service:web-1', 'passing'), (err: { code: string; status: number }) => {
      return err.code === 'PHARE_ERR_AGENT_RESPONSE' && err.status === 404;
    });
  } finally {
    await c.close();
    await agent.close();
  }
});

test('watch wakes on change, resets when the index goes backwards, backs off while the agent is away', async () => {
  let agent = await startAgentInProcess();
  const port = new URL(agent.url).port;
  const c = createConsulClient({ address: agent.url });
  const seen: { n: number; index: number }[] = [];
  let errors = 0;
  const w = watch((q) => c.health.service('api', q), {
    waitMs: 5_000,
    backoffBaseMs: 50,
    backoffMaxMs: 200,
    onChange: (v, index) => seen.push({ n: v.length, index }),
    onError: () => errors++,
  });
  try {
    await w.ready;
    assert.equal(seen[0]?.n, 0);
    for (let i = 0; i < 5; i++) {
      await c.agent.register({ Name: 'api', ID: `api-${i}`, Port: 9000 + i });
    }
    await waitFor(() => seen.at(-1)?.n === 5, 10_000, 'watch to see 5 instances');
    const high = w.index;
    // A restarted --dev agent starts from a fresh, lower index: the watch must notice, not wait forever.
    await agent.close();
    await waitFor(() => errors > 0, 10_000, 'watch errors while the agent is down');
    agent = await startAgentInProcess({ flags: { 'http-addr': `127.0.0.1:${port}` } });
    await c.agent.register({ Name: 'api', ID: 'api-x', Port: 9100 });
    await waitFor(() => seen.at(-1)?.n === 1, 10_000, 'watch to see the restarted agent');
    assert.ok(w.index < high, `index reset (${w.index} < ${high})`);
  } finally {
    w.stop();
    await c.close();
    await agent.close();
  }
});

test('the phare entry point exports exactly the public SDK API', async () => {
  const mod = await import('../../src/index.ts');
  assert.deepEqual(Object.keys(mod).sort(), [
    'DEADLINE_HEADER',
    'PhareError',
    'consulResolver',
    'createConsulClient',
    'createDiscovery',
    'createServiceClient',
    'dnsResolver',
    'fallback',
    'first',
    'leastRequest',
    'leastRequestWith',
    'peakEwma',
    'peakEwmaWith',
    'random',
    'registerService',
    'resolveAgentAddress',
    'roundRobin',
    'staticResolver',
    'watch',
    'weighted',
  ]);
});
