/**
 * The service client against real misbehaving backends, through each resolver (consul = a real in-process
 * Phare agent, dns = a real DNS server on loopback, static). No HTTP mocking.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createConsulClient } from '../../src/client/api/index.ts';
import {
  createDiscovery,
  type Discovery,
  dnsResolver,
  staticResolver,
} from '../../src/client/discovery/index.ts';
import { createServiceClient, type ServiceClientOptions } from '../../src/client/http/index.ts';
import { startAgentInProcess, waitFor } from '../helpers/agent.ts';
import { spawnBackend, startBackend, startDnsServer } from '../helpers/backends.ts';

interface Target {
  port: number;
}

interface Fixture {
  discovery: Discovery;
  /** Makes `targets` the instances of `service` and waits until discovery sees them. */
  setInstances(service: string, targets: Target[]): Promise<void>;
  close(): Promise<void>;
}

async function consulFixture(): Promise<Fixture> {
  const agent = await startAgentInProcess();
  const api = createConsulClient({ address: agent.url });
  const discovery = createDiscovery({ consul: { address: agent.url } });
  return {
    discovery,
    async setInstances(service, targets) {
      for (const t of targets) {
        await api.agent.register({
          Name: service,
          ID: `${service}-${t.port}`,
          Address: '127.0.0.1',
          Port: t.port,
        });
      }
      await waitFor(
        async () => (await discovery.instances(service)).length === targets.length,
        10_000,
        `${service} in discovery`,
      );
    },
    async close() {
      await discovery.close();
      await api.close();
      await agent.close();
    },
  };
}

async function staticFixture(): Promise<Fixture> {
  const resolver = staticResolver();
  const discovery = createDiscovery({ resolver });
  return {
    discovery,
    async setInstances(service, targets) {
      resolver.set(
        service,
        targets.map((t) => `http://127.0.0.1:${t.port}`),
      );
      await waitFor(
        async () => (await discovery.instances(service)).length === targets.length,
        10_000,
        `${service} in discovery`,
      );
    },
    close: () => discovery.close(),
  };
}

async function dnsFixture(): Promise<Fixture> {
  const dns = await startDnsServer({ a: { 'local.node.consul': ['127.0.0.1'] }, srv: {} }, 0);
  const discovery = createDiscovery({
    resolver: dnsResolver({ servers: [dns.address], families: [4], minTtlMs: 100 }),
  });
  return {
    discovery,
    async setInstances(service, targets) {
      (dns.records.srv as Record<string, unknown>)[`${service}.service.consul`] = targets.map((t) => ({
        target: 'local.node.consul',
        port: t.port,
      }));
      await waitFor(
        async () => (await discovery.instances(service)).length === targets.length,
        10_000,
        `${service} in discovery`,
      );
    },
    async close() {
      await discovery.close();
      await dns.close();
    },
  };
}

const FIXTURES: [string, () => Promise<Fixture>][] = [
  ['consul', consulFixture],
  ['dns', dnsFixture],
  ['static', staticFixture],
];

/** Runs `concurrency` loops of `fn` until `stop()`; counts results. */
function load(fn: () => Promise<unknown>, concurrency: number) {
  let running = true;
  const stats = { ok: 0, failed: 0, errors: [] as unknown[] };
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      try {
        await fn();
        stats.ok++;
      } catch (err) {
        stats.failed++;
        stats.errors.push(err);
      }
    }
  });
  return {
    stats,
    async stop() {
      running = false;
      await Promise.all(loops);
      return stats;
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const code = (err: unknown) => (err as { code?: string }).code;

for (const [kind, make] of FIXTURES) {
  describe(`service client through the ${kind} resolver`, () => {
    let fx: Fixture;
    let n = 0;
    const name = (what: string) => `${what}-${kind}-${++n}`;
    const client = (o: Partial<ServiceClientOptions> = {}) =>
      createServiceClient({ discovery: fx.discovery, ...o });

    before(async () => {
      fx = await make();
    });
    after(async () => {
      await fx.close();
    });

    test('spreads calls, sends the deadline header, names the service when unknown', async () => {
      const svc = name('basic');
      const backends = await Promise.all([startBackend('a'), startBackend('b'), startBackend('c')]);
      await fx.setInstances(svc, backends);
      const http = client();
      try {
        for (let i = 0; i < 30; i++) {
          const res = await http.get(svc, '/hello', { deadlineMs: 5_000 });
          assert.equal(res.statusCode, 200);
          assert.equal(((await res.json()) as { port: number }).port, res.instance.port);
        }
        assert.ok(backends.filter((b) => b.hits > 0).length >= 2, 'more than one backend served');
        const seen = backends.flatMap((b) => b.deadlines);
        assert.ok(
          seen.length > 0 && seen.every((d) => d > 0 && d <= 5_000),
          `deadline header ${seen.slice(0, 3)}`,
        );
        await assert.rejects(http.get(`missing-${kind}`, '/'), (err: Error) => {
          return code(err) === 'PHARE_ERR_SERVICE_NOT_FOUND' && err.message.includes(`missing-${kind}`);
        });
      } finally {
        await http.close();
        await Promise.all(backends.map((b) => b.close()));
      }
    });

    test('kill -9 of one of three backends under steady load: no failed idempotent call', async () => {
      const svc = name('kill');
      const backends = await Promise.all([spawnBackend('k1'), spawnBackend('k2'), spawnBackend('k3')]);
      await fx.setInstances(svc, backends);
      const http = client();
      const served = new Map<number, number>();
      const l = load(async () => {
        const res = await http.get(svc, '/work', { deadlineMs: 5_000 });
        await res.body.dump();
        served.set(res.instance.port, (served.get(res.instance.port) ?? 0) + 1);
      }, 8);
      try {
        await waitFor(() => l.stats.ok > 200, 20_000, 'load to warm up');
        const victim = backends[1]!;
        assert.ok((served.get(victim.port) ?? 0) > 0, 'victim served before the kill');
        await victim.kill();
        const okAtKill = l.stats.ok;
        await waitFor(() => l.stats.ok > okAtKill + 500, 20_000, 'load to continue after the kill');
        const victimAfter = served.get(victim.port) ?? 0;
        await waitFor(() => l.stats.ok > okAtKill + 1000, 20_000, 'more load');
        const stats = await l.stop();
        assert.equal(stats.failed, 0, `failed calls: ${stats.errors.slice(0, 3).map(String).join('; ')}`);
        assert.equal(served.get(victim.port) ?? 0, victimAfter, 'no answer from the dead backend');
      } finally {
        await l.stop();
        await http.close();
        await Promise.all(backends.map((b) => b.kill()));
      }
    });

    test('one backend 10x slower gets well under a third of the traffic with leastRequest', async () => {
      const svc = name('slow');
      const backends = await Promise.all([
        startBackend('fast1', { kind: 'ok', delayMs: 20 }),
        startBackend('fast2', { kind: 'ok', delayMs: 20 }),
        startBackend('slow', { kind: 'ok', delayMs: 200 }),
      ]);
      await fx.setInstances(svc, backends);
      const http = client();
      let done = 0;
      const l = load(async () => {
        const res = await http.get(svc, '/');
        await res.body.dump();
        done++;
      }, 8);
      try {
        await waitFor(() => done >= 300, 30_000, '300 calls');
        const stats = await l.stop();
        assert.equal(stats.failed, 0);
        const total = backends.reduce((s, b) => s + b.hits, 0);
        const share = backends[2]!.hits / total;
        // Round robin or random would give it a third; P2C lands near 10 % here, and timer lateness on a
        // loaded machine (the suite runs beside other work) moves that by a point or two.
        assert.ok(share < 0.15, `slow backend share ${(share * 100).toFixed(1)} % of ${total}`);
      } finally {
        await l.stop();
        await http.close();
        await Promise.all(backends.map((b) => b.close()));
      }
    });

    test('503 with Retry-After: another instance takes the retry; alone, the client waits as asked', async () => {
      const svc = name('busy');
      const busy = await startBackend('busy', { kind: 'status', status: 503, retryAfter: '1' });
      const ok = await startBackend('ok');
      await fx.setInstances(svc, [busy, ok]);
      const http = client({ outlier: false });
      try {
        for (let i = 0; i < 20; i++) {
          const res = await http.get(svc, '/');
          assert.equal(res.statusCode, 200);
          assert.equal(res.instance.port, ok.port);
          await res.body.dump();
        }
        assert.ok(busy.hits <= 2, `the busy backend was left alone after Retry-After (hits ${busy.hits})`);
      } finally {
        await http.close();
        await Promise.all([busy.close(), ok.close()]);
      }

      const svc2 = name('busy-alone');
      const alone = await startBackend('alone', { kind: 'status', status: 503, retryAfter: '1' });
      await fx.setInstances(svc2, [alone]);
      const http2 = client({ outlier: false });
      try {
        const pending = http2.get(svc2, '/', { deadlineMs: 10_000 });
        await waitFor(() => alone.hits === 1, 5_000, 'first try');
        alone.behavior = { kind: 'ok' };
        const res = await pending;
        assert.equal(res.statusCode, 200);
        assert.equal(res.attempts, 2);
        assert.equal(alone.hits, 2);
        await res.body.dump();
        // A Retry-After longer than the deadline fails at once instead of sleeping through it.
        alone.behavior = { kind: 'status', status: 503, retryAfter: '30' };
        await assert.rejects(http2.get(svc2, '/', { deadlineMs: 3_000 }), (err) => {
          return code(err) === 'PHARE_ERR_UPSTREAM' && (err as { status: number }).status === 503;
        });
      } finally {
        await http2.close();
        await alone.close();
      }
    });

    test('a backend resetting connections: GETs succeed elsewhere, a POST is not repeated', async () => {
      const svc = name('reset');
      const bad = await startBackend('reset', { kind: 'reset' });
      const good = await startBackend('good');
      await fx.setInstances(svc, [bad, good]);
      const http = client();
      try {
        for (let i = 0; i < 30; i++) {
          const res = await http.get(svc, '/');
          assert.equal(res.instance.port, good.port);
          await res.body.dump();
        }
        assert.ok(bad.hits >= 1, 'the resetting backend was tried');
      } finally {
        await http.close();
      }
      const svc2 = name('reset-post');
      await fx.setInstances(svc2, [bad]);
      const http2 = client();
      try {
        const before = bad.hits;
        await assert.rejects(
          http2.post(svc2, '/orders', { json: { id: 1 } }),
          (err) => code(err) === 'PHARE_ERR_UPSTREAM',
        );
        assert.equal(bad.hits - before, 1, 'the POST reached the backend once');
      } finally {
        await http2.close();
        await Promise.all([bad.close(), good.close()]);
      }
    });

    test('a deadline shorter than the latency fails fast with the deadline code and no retry storm', async () => {
      const svc = name('deadline');
      const backends = await Promise.all([
        startBackend('late1', { kind: 'ok', delayMs: 5_000 }),
        startBackend('late2', { kind: 'ok', delayMs: 5_000 }),
      ]);
      await fx.setInstances(svc, backends);
      const http = client();
      try {
        const t0 = performance.now();
        await assert.rejects(
          http.get(svc, '/', { deadlineMs: 200 }),
          (err) => code(err) === 'PHARE_ERR_DEADLINE_EXCEEDED',
        );
        assert.ok(performance.now() - t0 < 3_000, 'failed long before the backend would answer');
        await sleep(50);
        assert.equal(
          backends.reduce((s, b) => s + b.hits, 0),
          1,
          'one try only',
        );
      } finally {
        await http.close();
        await Promise.all(backends.map((b) => b.close()));
      }
    });

    test('the retry budget stops retries when every call fails', async () => {
      const svc = name('budget');
      const down = await startBackend('down', { kind: 'status', status: 502 });
      await fx.setInstances(svc, [down]);
      const http = client({ retryBudget: { percent: 0, minPerSecond: 0 }, outlier: false });
      try {
        await assert.rejects(http.get(svc, '/'), (err) => code(err) === 'PHARE_ERR_RETRY_BUDGET_EXHAUSTED');
        assert.equal(down.hits, 1);
      } finally {
        await http.close();
        await down.close();
      }
    });
  });
}
