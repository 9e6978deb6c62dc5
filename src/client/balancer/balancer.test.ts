/** One conformance suite for every balancing strategy, plus outlier ejection with a fake clock. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { testEndpoint } from '../../../test/helpers/endpoints.ts';
import {
  type BalancerFactory,
  type Endpoint,
  first,
  leastRequest,
  OutlierDetector,
  peakEwma,
  peakEwmaWith,
  random,
  roundRobin,
  ServiceEndpoints,
  weighted,
} from './index.ts';

const ep = (port: number, weight = 1, status: 'passing' | 'warning' | 'critical' = 'passing'): Endpoint =>
  testEndpoint(port, { weight, status });

const STRATEGIES: Record<string, BalancerFactory> = {
  roundRobin,
  random,
  first,
  weighted,
  leastRequest,
  peakEwma,
};

for (const [name, factory] of Object.entries(STRATEGIES)) {
  describe(`balancer conformance: ${name}`, () => {
    test('always picks one of the candidates', () => {
      const b = factory();
      for (const n of [1, 2, 3, 7]) {
        const c = Array.from({ length: n }, (_, i) => ep(8000 + i));
        for (let i = 0; i < 200; i++) assert.ok(c.includes(b.pick(c) as Endpoint));
      }
    });
    test('a single candidate is always picked', () => {
      const c = [ep(8000)];
      assert.equal(factory().pick(c), c[0]);
    });
    test('a warm hint never makes it pick outside the candidates', () => {
      const b = factory();
      const c = Array.from({ length: 5 }, (_, i) => ep(8100 + i));
      const outside = ep(8199); // another service's endpoint, or one this call already tried
      for (let i = 0; i < 200; i++) {
        assert.ok(c.includes(b.pick(c, outside) as Endpoint));
        assert.ok(c.includes(b.pick(c, c[i % c.length]) as Endpoint));
      }
    });
  });
}

test('roundRobin visits every candidate evenly; first sticks to the first', () => {
  const c = [ep(1), ep(2), ep(3)];
  const b = roundRobin();
  const counts = new Map<Endpoint, number>();
  for (let i = 0; i < 300; i++) {
    const e = b.pick(c) as Endpoint;
    counts.set(e, (counts.get(e) ?? 0) + 1);
  }
  assert.deepEqual([...counts.values()], [100, 100, 100]);
  assert.equal(first().pick(c), c[0]);
});

test('weighted follows Consul Weights; leastRequest avoids the busy instance', () => {
  const c = [ep(1, 1), ep(2, 9)];
  const b = weighted();
  let heavy = 0;
  for (let i = 0; i < 2000; i++) if (b.pick(c) === c[1]) heavy++;
  assert.ok(heavy > 1600 && heavy < 1990, `heavy ${heavy}`);
  const l = [ep(1), ep(2), ep(3)];
  (l[1] as Endpoint).active = 10;
  const lr = leastRequest();
  for (let i = 0; i < 500; i++) assert.notEqual(lr.pick(l), l[1]);
});

test('leastRequest takes the warm endpoint only when it has strictly fewer in flight; ties keep spreading', () => {
  const lr = leastRequest();
  // A lone sequential caller: everything idle, the last used endpoint warm each time — every instance
  // still gets its share (a tie never goes to the warm one).
  const c = Array.from({ length: 10 }, (_, i) => ep(9000 + i));
  const counts = new Map<Endpoint, number>();
  let warm: Endpoint | undefined;
  for (let i = 0; i < 5000; i++) {
    const e = lr.pick(c, warm) as Endpoint;
    counts.set(e, (counts.get(e) ?? 0) + 1);
    warm = e;
  }
  assert.equal(counts.size, 10);
  for (const n of counts.values()) assert.ok(n > 350 && n < 650, `share ${n} of 5000`);
  // Under load: the warm endpoint with fewer in flight than both random choices wins; a busier one never does.
  for (const e of c) e.active = 3;
  const w = c[4] as Endpoint;
  w.active = 2;
  for (let i = 0; i < 200; i++) assert.equal(lr.pick(c, w), w);
  w.active = 4;
  for (let i = 0; i < 200; i++) assert.notEqual(lr.pick(c, w), w);
  // A warm endpoint that is not a candidate (ejected, tried, another service's) is ignored.
  const gone = ep(9999);
  for (let i = 0; i < 200; i++) assert.notEqual(lr.pick(c, gone), gone);
});

test('outlier ejection: threshold, growing ejection time, 50 % cap, panic threshold', () => {
  let now = 1_000_000;
  const o = new OutlierDetector({
    consecutiveFailures: 3,
    consecutiveConnectFailures: 2,
    baseEjectionMs: 1_000,
    now: () => now,
  });
  const set = [ep(1), ep(2), ep(3), ep(4)];
  const [a, b, c] = set as [Endpoint, Endpoint, Endpoint];
  assert.equal(o.failure(a, 'status', set), false);
  o.success(a);
  assert.equal(o.failure(a, 'status', set), false);
  assert.equal(o.failure(a, 'status', set), false);
  assert.equal(o.failure(a, 'status', set), true);
  assert.equal(a.ejectedUntil, now + 1_000);
  assert.equal(o.failure(b, 'connect', set), false);
  assert.equal(o.failure(b, 'connect', set), true);
  // Two of four ejected = the 50 % cap: a third is not ejected.
  for (let i = 0; i < 10; i++) assert.equal(o.failure(c, 'timeout', set), false);
  now += 1_001;
  for (let i = 0; i < 2; i++) o.failure(b, 'connect', set);
  assert.equal(b.ejectedUntil, now + 2_000, 'second ejection lasts twice as long');

  const table = new ServiceEndpoints();
  const insts = [ep(1), ep(2, 1, 'critical'), ep(3, 1, 'critical')].map((e) => e.instance);
  const setOf = (all: typeof insts, version: number) => ({
    service: 's',
    tag: undefined,
    all,
    passing: all.filter((i) => i.status === 'passing'),
    version,
    stale: false,
    lastError: undefined,
  });
  table.sync(setOf(insts, 1), 'passing', () => {});
  const cand = table.candidates(new OutlierDetector({ now: () => now }), undefined, undefined);
  assert.equal(cand.panic, false, 'registry health is a hard filter: 1 of 3 passing is not panic');
  assert.deepEqual(
    cand.list.map((e) => e.instance.port),
    [1],
  );
});

test('health filter: warning only without passingOnly; all critical fails or tries all as asked', () => {
  const now = 1_000_000;
  const o = new OutlierDetector({ now: () => now });
  const insts = [ep(1, 1, 'warning'), ep(2, 1, 'critical')].map((e) => e.instance);
  const set = {
    service: 's',
    tag: undefined,
    all: insts,
    passing: [],
    version: 1,
    stale: false,
    lastError: undefined,
  };
  const strict = new ServiceEndpoints();
  strict.sync(set, 'passing', () => {});
  assert.equal(strict.candidates(o, undefined, undefined).list.length, 0);
  const lax = new ServiceEndpoints();
  lax.sync(set, 'passing+warning', () => {});
  assert.deepEqual(
    lax.candidates(o, undefined, undefined).list.map((e) => e.instance.port),
    [1],
  );
  const critical = { ...set, all: [insts[1] as (typeof insts)[number]] };
  const fail = new ServiceEndpoints();
  fail.sync(critical, 'passing+warning', () => {}, 'fail');
  assert.equal(fail.candidates(o, undefined, undefined).list.length, 0);
  const tryAll = new ServiceEndpoints();
  tryAll.sync(critical, 'passing+warning', () => {}, 'try-all');
  const c = tryAll.candidates(o, undefined, undefined);
  assert.equal(c.panic, true);
  assert.deepEqual(
    c.list.map((e) => e.instance.port),
    [2],
  );
});

test('panic threshold among healthy instances: ejection is ignored when it would leave too few', () => {
  const now = 1_000_000;
  const insts = [ep(1), ep(2), ep(3), ep(4, 1, 'critical')].map((e) => e.instance);
  const table = new ServiceEndpoints();
  table.sync(
    {
      service: 's',
      tag: undefined,
      all: insts,
      passing: insts.slice(0, 3),
      version: 1,
      stale: false,
      lastError: undefined,
    },
    'passing',
    () => {},
  );
  const [a, b] = table.healthy as [Endpoint, Endpoint];
  a.ejectedUntil = now + 1_000;
  const one = table.candidates(new OutlierDetector({ now: () => now }), undefined, undefined);
  assert.deepEqual(
    one.list.map((e) => e.instance.port),
    [2, 3],
    '2 of 3 healthy in service is above 50 %: the ejected one is skipped',
  );
  b.ejectedUntil = now + 1_000;
  const two = table.candidates(new OutlierDetector({ now: () => now }), undefined, undefined);
  assert.equal(two.panic, true);
  assert.deepEqual(
    two.list.map((e) => e.instance.port),
    [1, 2, 3],
    '1 of 3 is under 50 %: spread over every healthy instance, never the critical one',
  );
});

test('peakEwma: a slower instance loses traffic at once (peak), decays back when fast again, is probed when idle', () => {
  let now = 1_000_000;
  const b = peakEwmaWith({ decayMs: 1_000 })({ now: () => now });
  const c = [ep(1), ep(2), ep(3)];
  const [fast1, fast2, slow] = c as [Endpoint, Endpoint, Endpoint];
  const observe = b.observe as NonNullable<typeof b.observe>;
  for (let i = 0; i < 20; i++) {
    observe(fast1, 2, true);
    observe(fast2, 2, true);
    observe(slow, 2, true);
    now += 10;
  }
  observe(slow, 40, true); // one slow answer counts in full
  assert.equal(slow.latencyMs, 40);
  const picks = new Map<Endpoint, number>();
  for (let i = 0; i < 3_000; i++) {
    const e = b.pick(c) as Endpoint;
    picks.set(e, (picks.get(e) ?? 0) + 1);
  }
  // P2C: the slow one is never the cheaper of two candidates, so it is never picked.
  assert.equal(picks.get(slow) ?? 0, 0);
  // Fast answers pull it back down over the decay time; a failure counts as slow.
  now += 3_000;
  observe(slow, 2, true);
  assert.ok(slow.latencyMs < 5, `decayed to ${slow.latencyMs}`);
  observe(fast1, 1, false);
  assert.ok(fast1.latencyMs >= 1_000, 'a failure is a latency penalty');
  // In-flight requests multiply the cost: a busy fast instance loses to an idle one.
  fast2.latencyMs = 2;
  fast2.latencyAt = now;
  slow.latencyMs = 3;
  slow.latencyAt = now;
  fast2.active = 5;
  assert.equal(b.pick([fast2, slow]), slow);
  // Idle for long, a slow estimate decays towards 0 and the instance is tried again.
  slow.active = 0;
  slow.latencyMs = 500;
  now += 20_000;
  fast2.active = 0;
  fast2.latencyAt = now;
  assert.equal(b.pick([fast2, slow]), slow);
});
