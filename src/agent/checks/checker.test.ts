import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { FakeClock } from '../../../test/helpers/fake-clock.ts';
import { Catalog, type CheckDefinition, type CheckInput, type ServiceInput } from '../catalog/index.ts';
import { createMemoryStore, type Store, type StoreOp } from '../store/index.ts';
import { type CheckerOptions, createHealthChecker, type HealthChecker } from './checker.ts';
import type { Prober } from './probe.ts';

const logger = pino({ level: 'silent' });
const NODE = 'n1';

async function openCatalog(clock: FakeClock): Promise<Catalog> {
  return Catalog.open({
    store: createMemoryStore(),
    node: { name: NODE, id: 'x', address: '127.0.0.1' },
    datacenter: 'dc1',
    clock,
  });
}

function svc(id: string): ServiceInput {
  return {
    id,
    name: id,
    kind: '',
    tags: [],
    address: '',
    port: 0,
    meta: {},
    weights: { Passing: 1, Warning: 1 },
    enableTagOverride: false,
  };
}

function def(d: Partial<CheckDefinition> & Pick<CheckDefinition, 'type'>): CheckDefinition {
  return {
    successBeforePassing: 0,
    failuresBeforeWarning: 0,
    failuresBeforeCritical: 0,
    outputMaxSize: 4096,
    ...d,
  };
}

function check(serviceId: string, d: CheckDefinition, checkId = `service:${serviceId}`): CheckInput {
  return { checkId, name: `Service '${serviceId}' check`, notes: '', serviceId, def: d };
}

/** Polls until `cond` holds (real time; generous for loaded machines). */
async function waitFor(cond: () => boolean, what = 'condition', timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A prober that records its calls and answers what the test says. */
function recordingProber(clock: FakeClock) {
  const calls: { http?: string; tcp?: string; at: number }[] = [];
  let answer = { status: 'passing' as const, output: 'ok' } as {
    status: 'passing' | 'warning' | 'critical';
    output: string;
  };
  const prober: Prober = {
    async run(d) {
      calls.push({ http: d.http, tcp: d.tcp, at: clock.now() });
      return answer;
    },
  };
  return {
    prober,
    calls,
    set(status: 'passing' | 'warning' | 'critical', output: string = status) {
      answer = { status, output };
    },
  };
}

interface Env {
  clock: FakeClock;
  catalog: Catalog;
  health: HealthChecker;
  t0: number;
}

async function setup(
  extra: Partial<Omit<CheckerOptions, 'clock'>> & { clock?: FakeClock } = {},
): Promise<Env> {
  const clock = extra.clock ?? new FakeClock();
  const catalog = await openCatalog(clock);
  const health = createHealthChecker({
    catalog,
    logger,
    reapIntervalMs: 1000,
    minDeregisterAfterMs: 1000,
    minIntervalMs: 100,
    random: () => 0,
    ...extra,
  });
  return { clock, catalog, health, t0: clock.now() };
}

const statusOf = (catalog: Catalog, id: string) => catalog.check(NODE, id)?.status;
const outputOf = (catalog: Catalog, id: string) => catalog.check(NODE, id)?.output;

describe('health checker with real backends', () => {
  let code = 200;
  const server = http.createServer((req, res) => {
    if (req.url === '/slow') return; // never answers
    res.writeHead(code).end(`code ${code}`);
  });
  let port = 0;
  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as net.AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  test('runs HTTP checks on schedule and applies thresholds', async () => {
    const { clock, catalog, health } = await setup();
    code = 200;
    await catalog.registerService(svc('web'), [
      check(
        'web',
        def({
          type: 'http',
          http: `http://127.0.0.1:${port}/health`,
          intervalMs: 1000,
          failuresBeforeWarning: 1,
          failuresBeforeCritical: 2,
        }),
      ),
    ]);
    health.start();
    assert.equal(health.stats().checks, 1);
    assert.equal(statusOf(catalog, 'service:web'), 'critical'); // initial status
    const tickAndSettle = async () => {
      await clock.tick(1000, 1000);
      await waitFor(() => health.stats().running === 0, 'probe to finish');
    };
    await clock.tick(0, 1); // stagger 0: first run now
    await waitFor(() => statusOf(catalog, 'service:web') === 'passing', 'passing');
    assert.equal(
      outputOf(catalog, 'service:web'),
      `HTTP GET http://127.0.0.1:${port}/health: 200 OK Output: code 200`,
    );
    code = 503;
    await tickAndSettle();
    await waitFor(() => statusOf(catalog, 'service:web') === 'warning', 'warning after 1 failure');
    await tickAndSettle();
    await waitFor(() => statusOf(catalog, 'service:web') === 'critical', 'critical after 2 failures');
    assert.match(outputOf(catalog, 'service:web') ?? '', /: 503 Service Unavailable Output: code 503$/);
    code = 429;
    await tickAndSettle();
    await waitFor(() => statusOf(catalog, 'service:web') === 'warning', '429 is warning');
    await health.stop();
    await catalog.close();
  });

  test('TCP checks against a real listener', async () => {
    const { clock, catalog, health } = await setup();
    await catalog.registerService(svc('db'), [
      check('db', def({ type: 'tcp', tcp: `127.0.0.1:${port}`, intervalMs: 1000 })),
    ]);
    health.start();
    await clock.tick(0, 1);
    await waitFor(() => statusOf(catalog, 'service:db') === 'passing', 'tcp passing');
    assert.equal(outputOf(catalog, 'service:db'), `TCP connect 127.0.0.1:${port}: Success`);
    await health.stop();
    await catalog.close();
  });

  test('stop() aborts probes in flight and cancels every timer', async () => {
    const { clock, catalog, health } = await setup();
    await catalog.registerService(svc('slow'), [
      check(
        'slow',
        def({ type: 'http', http: `http://127.0.0.1:${port}/slow`, intervalMs: 1000, timeoutMs: 60_000 }),
      ),
    ]);
    await catalog.registerService(svc('t'), [check('t', def({ type: 'ttl', ttlMs: 5000 }))]);
    health.start();
    await clock.tick(0, 1);
    await waitFor(() => health.stats().running === 1, 'probe in flight');
    const started = Date.now();
    await health.stop();
    assert.ok(Date.now() - started < 30_000, 'stop did not wait for the 60 s probe timeout');
    assert.equal(health.stats().running, 0);
    assert.equal(clock.pending, 0);
    assert.equal(statusOf(catalog, 'service:slow'), 'critical'); // untouched initial status
    assert.equal(outputOf(catalog, 'service:slow'), '');
    await catalog.close();
  });
});

describe('health checker scheduling', () => {
  test('only agent checks of runnable types on the local node are scheduled', async () => {
    const clock = new FakeClock();
    const rec = recordingProber(clock);
    const { catalog, health } = await setup({ clock, probers: { http: rec.prober, tcp: rec.prober } });
    await catalog.registerService(svc('web'), [
      check('web', def({ type: 'http', http: 'http://a', intervalMs: 1000 })),
    ]);
    // a catalog-API registration on another node: never run by this agent
    await catalog.catalogRegister({
      node: { id: 'y', node: 'other', address: '10.0.0.2', taggedAddresses: {}, meta: {} },
      service: svc('remote'),
      checks: [check('remote', def({ type: 'http', http: 'http://b', intervalMs: 1000 }))],
    });
    await catalog.setServiceMaintenance('web', true, ''); // a synthetic check of type ''
    health.start();
    assert.equal(health.stats().checks, 1);
    await clock.tick(3000, 100);
    assert.ok(rec.calls.length > 0);
    assert.ok(rec.calls.every((c) => c.http === 'http://a'));
    await health.stop();
    await catalog.close();
  });

  test('the stagger spreads first runs of checks registered at once', async () => {
    let s = 1;
    const random = () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 2 ** 32;
    };
    const clock = new FakeClock();
    const catalog = await openCatalog(clock);
    const rec = recordingProber(clock);
    const health = createHealthChecker({
      catalog,
      logger,
      clock,
      reapIntervalMs: 30_000,
      minDeregisterAfterMs: 60_000,
      minIntervalMs: 1000,
      random,
      probers: { tcp: rec.prober },
    });
    health.start();
    const t0 = clock.now();
    for (let i = 0; i < 200; i++) {
      await catalog.registerService(svc(`s${i}`), [
        check(`s${i}`, def({ type: 'tcp', tcp: `127.0.0.1:${i + 1}`, intervalMs: 10_000 })),
      ]);
    }
    await clock.tick(10_000, 100);
    assert.equal(rec.calls.length, 200);
    const perSecond = new Array<number>(10).fill(0);
    for (const c of rec.calls) perSecond[Math.floor((c.at - t0) / 1000)]! += 1;
    for (const n of perSecond) assert.ok(n >= 5 && n <= 45, `first runs per second: ${perSecond.join(',')}`);
    await health.stop();
    await catalog.close();
  });

  test('interval below the floor is raised to minIntervalMs', async () => {
    const clock = new FakeClock();
    const rec = recordingProber(clock);
    const { catalog, health, t0 } = await setup({ clock, probers: { tcp: rec.prober }, minIntervalMs: 500 });
    await catalog.registerService(svc('a'), [check('a', def({ type: 'tcp', tcp: 'h:1', intervalMs: 10 }))]);
    health.start();
    await clock.tick(2000, 10);
    assert.deepEqual(
      rec.calls.map((c) => c.at - t0),
      [0, 500, 1000, 1500, 2000],
    );
    await health.stop();
    await catalog.close();
  });

  test('re-registration with a new definition replaces the schedule; an identical one keeps it', async () => {
    const clock = new FakeClock();
    const rec = recordingProber(clock);
    const { catalog, health, t0 } = await setup({ clock, probers: { http: rec.prober }, random: () => 0.5 });
    const d1 = def({ type: 'http', http: 'http://one', intervalMs: 10_000 });
    await catalog.registerService(svc('web'), [check('web', d1)]);
    health.start();
    await clock.tick(1000, 100);
    await catalog.registerService(svc('web'), [check('web', { ...d1 })]); // identical: keeps due at +5 s
    await clock.tick(4500, 100);
    assert.deepEqual(rec.calls, [{ http: 'http://one', tcp: undefined, at: t0 + 5000 }]);
    await catalog.registerService(svc('web'), [
      check('web', def({ type: 'http', http: 'http://two', intervalMs: 4000 })),
    ]);
    assert.equal(health.stats().checks, 1);
    await clock.tick(12_000, 100);
    // new stagger (0.5 × 4 s) from the re-registration at +5.5 s, then every 4 s; http://one never again
    assert.deepEqual(
      rec.calls.slice(1).map((c) => [c.http, c.at - t0]),
      [
        ['http://two', 7500],
        ['http://two', 11500],
        ['http://two', 15500],
      ],
    );
    await health.stop();
    await catalog.close();
  });

  test('deregistering a check unschedules it; registering one later schedules it', async () => {
    const clock = new FakeClock();
    const rec = recordingProber(clock);
    const { catalog, health } = await setup({ clock, probers: { http: rec.prober } });
    health.start();
    assert.equal(health.stats().checks, 0);
    await catalog.registerService(svc('web'), [
      check('web', def({ type: 'http', http: 'http://x', intervalMs: 1000 })),
    ]);
    assert.equal(health.stats().checks, 1);
    await clock.tick(2500, 100);
    assert.equal(rec.calls.length, 3);
    await catalog.deregisterCheck('service:web');
    await clock.tick(0, 1);
    assert.equal(health.stats().checks, 0);
    await clock.tick(5000, 100);
    assert.equal(rec.calls.length, 3);
    await catalog.registerService(svc('api'), [
      check('api', def({ type: 'http', http: 'http://y', intervalMs: 1000 })),
    ]);
    await catalog.deregisterService('api');
    await clock.tick(5000, 100);
    assert.equal(rec.calls.length, 3);
    await health.stop();
    await catalog.close();
  });
});

describe('TTL checks', () => {
  test('expire to critical unless reported within the TTL; every report resets the timer', async () => {
    const { clock, catalog, health } = await setup();
    await catalog.registerService(svc('job'), [check('job', def({ type: 'ttl', ttlMs: 1000 }))]);
    health.start();
    const id = 'service:job';
    // a status change arrives as a check-status event and resets the timer
    clock.advance(600);
    await catalog.updateCheck(NODE, id, 'passing', 'working', { announce: true });
    clock.advance(900);
    assert.equal(statusOf(catalog, id), 'passing');
    // an output-only report is not an event: the HTTP layer calls touchTtl
    await catalog.updateCheck(NODE, id, 'passing', 'still working', { announce: true });
    assert.equal(health.touchTtl(id), true);
    clock.advance(900);
    assert.equal(statusOf(catalog, id), 'passing');
    clock.advance(100);
    await waitFor(() => statusOf(catalog, id) === 'critical', 'TTL expiry');
    assert.equal(outputOf(catalog, id), 'TTL expired (last output before timeout follows): still working');
    // after expiry the timer stays off until the next report
    clock.advance(5000);
    await catalog.updateCheck(NODE, id, 'warning', 'slow', { announce: true });
    clock.advance(999);
    assert.equal(statusOf(catalog, id), 'warning');
    clock.advance(1);
    await waitFor(() => statusOf(catalog, id) === 'critical', 'second expiry');
    assert.equal(outputOf(catalog, id), 'TTL expired (last output before timeout follows): slow');
    assert.equal(health.touchTtl('nope'), false);
    await health.stop();
    await catalog.close();
  });

  test('a never-reported check expires with "TTL expired"; sub-second TTLs work', async () => {
    const { clock, catalog, health } = await setup();
    await catalog.registerService(svc('job'), [
      { ...check('job', def({ type: 'ttl', ttlMs: 100 })), status: 'passing' },
    ]);
    health.start();
    clock.advance(99);
    assert.equal(statusOf(catalog, 'service:job'), 'passing');
    clock.advance(1);
    await waitFor(() => statusOf(catalog, 'service:job') === 'critical', 'expiry');
    assert.equal(outputOf(catalog, 'service:job'), 'TTL expired');
    await health.stop();
    await catalog.close();
  });

  test('a removed TTL check no longer expires; re-registration restarts its timer', async () => {
    const { clock, catalog, health } = await setup();
    const input = { ...check('job', def({ type: 'ttl', ttlMs: 1000 })), status: 'passing' as const };
    await catalog.registerService(svc('job'), [input]);
    health.start();
    clock.advance(800);
    await catalog.registerService(svc('job'), [input]); // status carries over; timer restarts
    clock.advance(800);
    assert.equal(statusOf(catalog, 'service:job'), 'passing');
    await catalog.deregisterCheck('service:job');
    await clock.tick(0, 1);
    clock.advance(5000);
    assert.equal(health.stats().checks, 0);
    await health.stop();
    await catalog.close();
  });
});

describe('reaper', () => {
  test('deregisters a service critical longer than DeregisterCriticalServiceAfter', async () => {
    const { clock, catalog, health } = await setup({ reapIntervalMs: 1000, minDeregisterAfterMs: 1000 });
    const reapable = def({ type: 'ttl', ttlMs: 3_600_000, deregisterCriticalServiceAfterMs: 5000 });
    await catalog.registerService(svc('dead'), [check('dead', reapable)]); // critical from the start
    await catalog.registerService(svc('alive'), [{ ...check('alive', reapable), status: 'passing' }]);
    await catalog.registerService(svc('plain'), [check('plain', def({ type: 'ttl', ttlMs: 3_600_000 }))]);
    health.start();
    await clock.tick(5000, 1000); // critical for exactly 5 s: not yet (Consul: strictly longer)
    assert.ok(catalog.agentService('dead'));
    await clock.tick(1000, 1000);
    await waitFor(() => catalog.agentService('dead') === undefined, 'reaped');
    assert.equal(catalog.check(NODE, 'service:dead'), undefined);
    assert.ok(catalog.agentService('alive'));
    assert.ok(catalog.agentService('plain'));
    await health.stop();
    await catalog.close();
  });

  test('applies the minDeregisterAfterMs floor', async () => {
    const { clock, catalog, health } = await setup({ reapIntervalMs: 1000, minDeregisterAfterMs: 10_000 });
    await catalog.registerService(svc('dead'), [
      check('dead', def({ type: 'ttl', ttlMs: 3_600_000, deregisterCriticalServiceAfterMs: 100 })),
    ]);
    health.start();
    await clock.tick(10_000, 1000);
    assert.ok(catalog.agentService('dead'));
    await clock.tick(1000, 1000);
    await waitFor(() => catalog.agentService('dead') === undefined, 'reaped after the floor');
    await health.stop();
    await catalog.close();
  });
});

test('options are validated with their names', async () => {
  const clock = new FakeClock();
  const catalog = await openCatalog(clock);
  const base = { catalog, logger, reapIntervalMs: 1000, minDeregisterAfterMs: 1000, minIntervalMs: 100 };
  assert.throws(() => createHealthChecker({ ...base, reapIntervalMs: 0 }), /health\.reapIntervalMs/);
  assert.throws(() => createHealthChecker({ ...base, minIntervalMs: -1 }), /health\.minIntervalMs/);
  assert.throws(() => createHealthChecker({ ...base, maxConcurrent: 0 }), /health\.maxConcurrent/);
  await catalog.close();
});

describe('check-update-interval (output-only changes)', () => {
  /** A memory store that records which check keys each commit wrote. */
  async function counted(clock: FakeClock) {
    const base = createMemoryStore();
    const writes: string[] = [];
    const store: Store = Object.assign(Object.create(base) as Store, {
      write: (ops: readonly StoreOp[], index: number) => {
        for (const o of ops) if (o.table === 'checks' && o.type === 'put') writes.push(o.key);
        return base.write(ops, index);
      },
    });
    const catalog = await Catalog.open({
      store,
      node: { name: NODE, id: 'x', address: '127.0.0.1' },
      datacenter: 'dc1',
      clock,
    });
    return { catalog, base, writes };
  }
  const stored = async (base: Store, id: string) =>
    ((await base.load()).checks as { checkId: string; output: string; status: string }[]).find(
      (c) => c.checkId === id,
    );

  test('a steady check never writes; a changing output is written once per interval at most; a status change at once', async () => {
    const clock = new FakeClock();
    const rec = recordingProber(clock);
    const { catalog, base, writes } = await counted(clock);
    const health = createHealthChecker({
      catalog,
      logger,
      clock,
      reapIntervalMs: 60_000,
      minDeregisterAfterMs: 60_000,
      minIntervalMs: 100,
      random: () => 0, // first run at once; a deferred write after exactly half an interval
      checkUpdateIntervalMs: 10_000,
      probers: { http: rec.prober },
    });
    await catalog.registerService(svc('web'), [
      check('web', def({ type: 'http', http: 'http://a', intervalMs: 1000 })),
    ]);
    health.start();
    const id = 'service:web';
    await clock.tick(1, 1);
    await waitFor(() => statusOf(catalog, id) === 'passing', 'first result');
    const afterFirst = writes.length; // registration + critical → passing
    // 20 probes with the same answer: no write
    await clock.tick(20_000, 250);
    assert.ok(rec.calls.length >= 20, `${rec.calls.length} probes`);
    assert.equal(writes.length, afterFirst, 'a steady check writes nothing');
    // the output changes on every probe for 20 s: the view follows at once, the store every 5 s
    let n = 0;
    for (let s = 0; s < 20; s++) {
      rec.set('passing', `ok ${++n}`);
      await clock.tick(1000, 250);
      assert.equal(outputOf(catalog, id), `ok ${n}`, 'the view has the latest output at once');
    }
    const outputWrites = writes.length - afterFirst;
    assert.ok(outputWrites >= 3 && outputWrites <= 4, `${outputWrites} writes for 20 output changes in 20 s`);
    const inStore = await stored(base, id);
    assert.match(inStore?.output ?? '', /^ok \d+$/);
    assert.notEqual(inStore?.output, 'ok 1', 'a later output than the first was written');
    // a status change is written at once, with its output, and takes the deferred write's place
    rec.set('critical', 'down');
    await clock.tick(1000, 250);
    await waitFor(() => statusOf(catalog, id) === 'critical', 'critical');
    assert.deepEqual(
      [(await stored(base, id))?.status, (await stored(base, id))?.output],
      ['critical', 'down'],
    );
    const afterStatus = writes.length;
    await clock.tick(20_000, 500); // steady critical with the same output: nothing more
    assert.equal(writes.length, afterStatus);
    await health.stop();
    await catalog.close();
  });

  test('0 writes every output change at once', async () => {
    const clock = new FakeClock();
    const rec = recordingProber(clock);
    const { catalog, base, writes } = await counted(clock);
    const health = createHealthChecker({
      catalog,
      logger,
      clock,
      reapIntervalMs: 60_000,
      minDeregisterAfterMs: 60_000,
      minIntervalMs: 100,
      random: () => 0,
      checkUpdateIntervalMs: 0,
      probers: { http: rec.prober },
    });
    await catalog.registerService(svc('web'), [
      check('web', def({ type: 'http', http: 'http://a', intervalMs: 1000 })),
    ]);
    health.start();
    await clock.tick(1, 1);
    await waitFor(() => statusOf(catalog, 'service:web') === 'passing', 'first result');
    const before = writes.length;
    for (let s = 1; s <= 3; s++) {
      rec.set('passing', `ok ${s}`);
      await clock.tick(1000, 250);
      await waitFor(() => writes.length === before + s, `write ${s}`);
    }
    assert.equal((await stored(base, 'service:web'))?.output, 'ok 3');
    await health.stop();
    await catalog.close();
  });
});
