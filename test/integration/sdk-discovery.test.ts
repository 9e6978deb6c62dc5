/**
 * One conformance suite for every resolver (consul = real agent, dns = real DNS server on loopback, static,
 * fallback), then the watched cache: last known good through an agent outage under load, empty-push
 * protection, change events.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createConsulClient } from '../../src/client/api/index.ts';
import {
  consulResolver,
  createDiscovery,
  type DiscoveryChange,
  dnsResolver,
  fallback,
  type Resolver,
  type ResolverUpdate,
  staticResolver,
} from '../../src/client/discovery/index.ts';
import { createServiceClient } from '../../src/client/http/index.ts';
import { startAgentInProcess, tempDir, waitFor } from '../helpers/agent.ts';
import { startBackend, startDnsServer } from '../helpers/backends.ts';

const logger = pino({ level: 'silent' });

interface ResolverFixture {
  resolver: Resolver;
  /** Makes `ports` (on 127.0.0.1) the instances of `service`. */
  set(service: string, ports: number[]): Promise<void>;
  close(): Promise<void>;
}

const FIXTURES: Record<string, () => Promise<ResolverFixture>> = {
  async consul() {
    const agent = await startAgentInProcess();
    const api = createConsulClient({ address: agent.url });
    return {
      resolver: consulResolver({ address: agent.url }),
      async set(service, ports) {
        const { value } = await api.health.service(service);
        for (const e of value)
          if (!ports.includes(e.Service.Port ?? 0)) await api.agent.deregister(e.Service.ID);
        for (const p of ports)
          await api.agent.register({ Name: service, ID: `${service}-${p}`, Address: '127.0.0.1', Port: p });
      },
      async close() {
        await api.close();
        await agent.close();
      },
    };
  },
  async dns() {
    const dns = await startDnsServer({ a: { 'n1.node.consul': ['127.0.0.1'] }, srv: {} }, 0);
    return {
      resolver: dnsResolver({ servers: [dns.address], families: [4], minTtlMs: 100 }),
      async set(service, ports) {
        dns.records.srv![`${service}.service.consul`] = ports.map((port) => ({
          target: 'n1.node.consul',
          port,
        }));
      },
      close: () => dns.close(),
    };
  },
  async static() {
    const resolver = staticResolver({ env: {} });
    return {
      resolver,
      async set(service, ports) {
        resolver.set(
          service,
          ports.map((p) => `http://127.0.0.1:${p}`),
        );
      },
      async close() {},
    };
  },
  async 'fallback(unreachable consul, static)'() {
    const st = staticResolver({ env: {} });
    return {
      // Port 9 (discard) on loopback refuses connections: the first source fails, the second answers.
      resolver: fallback([consulResolver({ address: '127.0.0.1:9', backoffMaxMs: 200 }), st]),
      async set(service, ports) {
        st.set(
          service,
          ports.map((p) => `http://127.0.0.1:${p}`),
        );
      },
      async close() {},
    };
  },
};

for (const [kind, make] of Object.entries(FIXTURES)) {
  describe(`resolver conformance: ${kind}`, () => {
    let fx: ResolverFixture;
    before(async () => {
      fx = await make();
    });
    after(async () => {
      await fx.resolver.close?.();
      await fx.close();
    });

    test('resolve() returns every instance with address, port and url', async () => {
      await fx.set('alpha', [7001, 7002]);
      const u = await fx.resolver.resolve({ service: 'alpha' });
      assert.deepEqual(u.instances.map((i) => i.port).sort(), [7001, 7002]);
      for (const i of u.instances) {
        assert.equal(i.address, '127.0.0.1');
        assert.equal(i.url, `http://127.0.0.1:${i.port}`);
        assert.equal(i.service, 'alpha');
        assert.equal(i.status, 'passing');
      }
    });

    test('an unknown service resolves to no instance (not an error)', async () => {
      const u = await fx.resolver.resolve({ service: 'nobody-here' });
      assert.equal(u.instances.length, 0);
    });

    test('watch() delivers the current set, then changes', async () => {
      await fx.set('beta', [7101]);
      const seen: ResolverUpdate[] = [];
      const w = fx.resolver.watch({ service: 'beta' }, { update: (u) => seen.push(u), error: () => {} });
      try {
        await waitFor(() => seen.at(-1)?.instances.length === 1, 10_000, 'first answer');
        await fx.set('beta', [7101, 7102, 7103]);
        await waitFor(() => seen.at(-1)?.instances.length === 3, 10_000, 'the change');
        await fx.set('beta', [7102]);
        await waitFor(
          () => seen.at(-1)?.instances.length === 1 && seen.at(-1)?.instances[0]?.port === 7102,
          10_000,
          'removal',
        );
      } finally {
        w.stop();
      }
    });
  });
}

test('agent stopped for 5 s under load: calls succeed from last known good; updates resume after restart', async () => {
  // 5 s rather than the 60 s keeps the suite fast; nothing in the code path depends on the length.
  const dir = tempDir();
  let agent = await startAgentInProcess({ dataDir: dir.path });
  const port = new URL(agent.url).port;
  const api = createConsulClient({ address: agent.url });
  const backends = await Promise.all([startBackend('a'), startBackend('b')]);
  for (const b of backends)
    await api.agent.register({ Name: 'stock', ID: `stock-${b.port}`, Address: '127.0.0.1', Port: b.port });
  const metrics = new Registry();
  const discovery = createDiscovery({ consul: { address: agent.url, backoffMaxMs: 300 }, metrics, logger });
  const stale: unknown[] = [];
  const fresh: unknown[] = [];
  discovery.on('stale', (s) => stale.push(s));
  discovery.on('fresh', (s) => fresh.push(s));
  const http = createServiceClient({ discovery, logger });
  let running = true;
  let ok = 0;
  const failures: unknown[] = [];
  const loops = Array.from({ length: 4 }, async () => {
    while (running) {
      try {
        const res = await http.get('stock', '/');
        await res.body.dump();
        ok++;
      } catch (err) {
        failures.push(err);
      }
    }
  });
  const third = await startBackend('c');
  try {
    await waitFor(() => ok > 100, 10_000, 'load');
    await agent.close();
    await waitFor(() => stale.length === 1, 10_000, 'stale event');
    assert.match(await metrics.metrics(), /phare_discovery_stale\{service="stock"\} 1/);
    const okAtStop = ok;
    // calls keep succeeding while the agent is down (another hundred, not a fixed sleep)
    await waitFor(() => ok > okAtStop + 100, 10_000, 'calls while the agent is down');
    assert.deepEqual(failures, [], 'no call failed while the agent was down');
    agent = await startAgentInProcess({ dataDir: dir.path, flags: { 'http-addr': `127.0.0.1:${port}` } });
    await waitFor(() => fresh.length === 1, 15_000, 'fresh event');
    await api.agent.register({
      Name: 'stock',
      ID: `stock-${third.port}`,
      Address: '127.0.0.1',
      Port: third.port,
    });
    await waitFor(
      async () => (await discovery.instances('stock')).length === 3,
      10_000,
      'update after restart',
    );
    await waitFor(() => third.hits > 0, 10_000, 'traffic to the new instance');
    running = false;
    await Promise.all(loops);
    assert.deepEqual(failures, []);
    assert.match(await metrics.metrics(), /phare_discovery_stale\{service="stock"\} 0/);
  } finally {
    running = false;
    await Promise.all(loops);
    await http.close();
    await discovery.close();
    await api.close();
    await agent.close();
    await Promise.all([...backends, third].map((b) => b.close()));
    dir.remove();
  }
});

test('empty-push protection holds a sudden empty DNS answer; a Consul deregistration applies at once', async () => {
  const dns = await startDnsServer(
    {
      a: { 'n1.node.consul': ['127.0.0.1'] },
      srv: { 'gamma.service.consul': [{ target: 'n1.node.consul', port: 7301 }] },
    },
    1,
  );
  const d1 = createDiscovery({
    resolver: dnsResolver({ servers: [dns.address], families: [4], minTtlMs: 100 }),
    emptyHoldMs: 1_500,
    logger,
  });
  const agent = await startAgentInProcess();
  const api = createConsulClient({ address: agent.url });
  const d2 = createDiscovery({ consul: { address: agent.url }, emptyHoldMs: 60_000, logger });
  try {
    assert.equal((await d1.instances('gamma')).length, 1);
    const queriesBefore = dns.queries;
    delete dns.records.srv!['gamma.service.consul'];
    await waitFor(() => dns.queries > queriesBefore + 2, 5_000, 'a few NXDOMAIN rounds');
    assert.equal((await d1.instances('gamma')).length, 1, 'held');
    await waitFor(async () => d1.peek('gamma')?.all.length === 0, 10_000, 'applied after the hold');

    await api.agent.register({ Name: 'delta', ID: 'delta-1', Port: 7401 });
    assert.equal((await d2.instances('delta')).length, 1);
    const changes: DiscoveryChange[] = [];
    d2.on('change', (c) => changes.push(c));
    await api.agent.deregister('delta-1');
    await waitFor(() => changes.length === 1, 10_000, 'change event');
    assert.equal(changes[0]?.removed[0]?.id, 'delta-1');
    await assert.rejects(
      d2.instances('delta'),
      (err: { code: string }) => err.code === 'PHARE_ERR_SERVICE_NOT_FOUND',
    );
  } finally {
    await d1.close();
    await d2.close();
    await api.close();
    await agent.close();
    await dns.close();
  }
});

test('passingOnly, url() round robin, no healthy instance', async () => {
  const agent = await startAgentInProcess();
  const api = createConsulClient({ address: agent.url });
  const d = createDiscovery({ consul: { address: agent.url }, logger });
  try {
    await api.agent.register({ Name: 'eps', ID: 'eps-1', Address: '127.0.0.1', Port: 7501 });
    await api.agent.register({
      Name: 'eps',
      ID: 'eps-2',
      Address: '127.0.0.1',
      Port: 7502,
      Check: { TTL: '30s' },
    });
    assert.equal((await d.instances('eps')).length, 1);
    assert.equal((await d.instances('eps', { passingOnly: false })).length, 2);
    assert.equal(await d.url('eps'), 'http://127.0.0.1:7501');
    await api.agent.ttl('service:eps-2', 'passing');
    await waitFor(async () => (await d.instances('eps')).length === 2, 10_000, 'eps-2 passing');
    const urls = new Set([await d.url('eps'), await d.url('eps')]);
    assert.equal(urls.size, 2);
    await api.agent.register({ Name: 'sick', ID: 'sick-1', Port: 7601, Check: { TTL: '30s' } });
    await assert.rejects(d.url('sick'), (err: { code: string; message: string }) => {
      return err.code === 'PHARE_ERR_NO_HEALTHY_INSTANCE' && err.message.includes('sick');
    });
  } finally {
    await d.close();
    await api.close();
    await agent.close();
  }
});
