import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { pino } from 'pino';
import {
  createHealth,
  DEADLINE_HEADER,
  eventLoopDelayCheck,
  httpCheck,
  memoryCheck,
  remainingDeadline,
  tcpCheck,
} from './index.ts';

const logger = pino({ level: 'silent' });

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('a passing, a failing and a non-critical failing check give passing, critical and warning', async () => {
  const health = createHealth({
    logger,
    checks: {
      ok: async () => {},
      msg: () => 'all good',
      broken: async () => {
        throw new Error('connection refused');
      },
    },
  });
  health.markReady();
  let r = await health.report('ready');
  assert.equal(r.status, 'critical');
  assert.deepEqual(r.checks['ok']?.status, 'passing');
  assert.equal(r.checks['msg']?.output, 'all good');
  assert.deepEqual(
    { status: r.checks['broken']?.status, output: r.checks['broken']?.output },
    { status: 'critical', output: 'connection refused' },
  );
  assert.equal(typeof r.checks['broken']?.durationMs, 'number');

  const soft = createHealth({
    logger,
    checks: {
      optional: {
        critical: false,
        run: async () => {
          throw new Error('cache down');
        },
      },
      explicit: () => ({ status: 'warning', output: 'degraded' }),
    },
  });
  soft.markReady();
  r = await soft.report('ready');
  assert.equal(r.status, 'warning');
  assert.equal(r.checks['optional']?.status, 'warning');
  assert.equal(r.checks['explicit']?.output, 'degraded');
});

test('a check slower than its timeout fails and its signal is aborted', async () => {
  let aborted = false;
  const health = createHealth({
    logger,
    checks: {
      slow: {
        timeoutMs: 50,
        run: (signal) =>
          new Promise<void>((resolve) => {
            signal.addEventListener('abort', () => {
              aborted = true;
              resolve();
            });
          }),
      },
    },
  });
  health.markReady();
  const r = await health.report('ready');
  assert.equal(r.status, 'critical');
  assert.equal(r.checks['slow']?.output, 'timed out after 50 ms');
  assert.equal(aborted, true);
});

test('results are cached for minIntervalMs and concurrent probes share one run', async () => {
  let now = 1_000_000;
  let runs = 0;
  const gate: { release?: (() => void) | undefined } = {};
  const releaseRun = async () => {
    while (!gate.release) await new Promise((r) => setImmediate(r));
    const release = gate.release;
    gate.release = undefined;
    release();
  };
  const health = createHealth({
    logger,
    now: () => now,
    checks: {
      db: {
        minIntervalMs: 5000,
        run: async () => {
          runs++;
          await new Promise<void>((r) => {
            gate.release = r;
          });
        },
      },
    },
  });
  health.markReady();
  const a = health.report('ready');
  const b = health.report('ready');
  await releaseRun();
  await Promise.all([a, b]);
  assert.equal(runs, 1, 'concurrent probes share one run');
  await health.report('ready');
  await health.report('summary');
  assert.equal(runs, 1, 'probes within the interval get the cached result');
  now += 5000;
  const c = health.report('ready');
  await releaseRun();
  await c;
  assert.equal(runs, 2, 'a probe after the interval runs the check again');
});

test('readiness follows the lifecycle: starting, running, stopping; liveness does not', async () => {
  const health = createHealth({ logger, checks: { db: async () => {} } });
  assert.equal(health.phase, 'starting');
  let r = await health.report('ready');
  assert.equal(r.status, 'critical');
  assert.match(r.checks['lifecycle']?.output ?? '', /markReady/);
  assert.equal((await health.report('startup')).status, 'critical');
  assert.equal((await health.report('live')).status, 'passing');

  const ready = health.whenReady();
  health.markReady();
  await ready;
  r = await health.report('ready');
  assert.equal(r.status, 'passing');
  assert.equal(r.checks['lifecycle'], undefined);
  assert.equal((await health.report('startup')).status, 'passing');

  health.markShuttingDown();
  health.markReady(); // ignored once stopping (lightship #25)
  r = await health.report('ready');
  assert.equal(r.status, 'critical');
  assert.equal(r.checks['lifecycle']?.output, 'shutting down');
  assert.equal((await health.report('live')).status, 'passing');
});

test('startup checks start the service once they all pass', async () => {
  let migrated = false;
  const health = createHealth({
    logger,
    checks: {
      migrations: {
        probes: ['startup'],
        minIntervalMs: 0,
        run: () => {
          if (!migrated) throw new Error('migrations pending');
        },
      },
    },
  });
  let r = await health.report('startup');
  assert.equal(r.status, 'critical');
  assert.equal(r.checks['migrations']?.output, 'migrations pending');
  assert.equal((await health.report('ready')).status, 'critical');
  migrated = true;
  assert.equal((await health.report('ready')).status, 'passing');
  assert.equal(health.phase, 'running');
  migrated = false; // latched: startup does not un-pass
  r = await health.report('startup');
  assert.equal(r.status, 'passing');
});

test('check definitions are validated with the check name', () => {
  assert.throws(() => createHealth({ logger, checks: { db: { run: async () => {}, timeoutMs: -1 } } }), {
    code: 'PHARE_ERR_INVALID_ARGUMENT',
    message: /health\.checks\.db\.timeoutMs: expected a positive number, got -1/,
  });
  assert.throws(() => createHealth({ logger, checks: { lifecycle: async () => {} } }), /reserved/);
  assert.throws(
    () => createHealth({ logger, checks: { x: { run: async () => {}, probes: ['alive' as 'live'] } } }),
    /probes: expected some of live, ready, startup/,
  );
  const h = createHealth({ logger, checks: { a: async () => {} } });
  assert.throws(() => h.addCheck('a', async () => {}), /exists/);
});

test('node:http adapter: status codes, JSON body, HEAD, 405, other paths left alone', async () => {
  let mode: 'ok' | 'warn' | 'fail' = 'ok';
  const health = createHealth({
    logger,
    checks: {
      dep: {
        minIntervalMs: 0,
        run: () => {
          if (mode === 'warn') return { status: 'warning', output: 'slow' };
          if (mode === 'fail') throw new Error('down');
        },
      },
    },
  });
  health.markReady();
  const server = createServer((req, res) => {
    if (health.handle(req, res)) return;
    res.end('app');
  });
  const base = await listen(server);
  try {
    let res = await fetch(`${base}/health/ready`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = (await res.json()) as { status: string; checks: Record<string, { status: string }> };
    assert.equal(body.status, 'passing');
    assert.equal(body.checks['dep']?.status, 'passing');
    mode = 'warn';
    assert.equal((await fetch(`${base}/health/ready?x=1`)).status, 429);
    mode = 'fail';
    assert.equal((await fetch(`${base}/health`)).status, 503);
    res = await fetch(`${base}/health/ready`, { method: 'HEAD' });
    assert.equal(res.status, 503);
    assert.equal(await res.text(), '');
    res = await fetch(`${base}/health/live`, { method: 'POST' });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'GET, HEAD');
    assert.equal(await (await fetch(`${base}/health/other`)).text(), 'app');
    assert.equal(await (await fetch(`${base}/healthz`)).text(), 'app');
  } finally {
    server.close();
  }
});

test('x-phare-deadline-ms bounds how long a probe waits; the check keeps running and caches', async () => {
  let finish: (() => void) | undefined;
  const health = createHealth({
    logger,
    checks: {
      slow: {
        timeoutMs: 10_000,
        minIntervalMs: 60_000,
        run: () =>
          new Promise<string>((resolve) => {
            finish = () => resolve('finally');
          }),
      },
    },
  });
  health.markReady();
  const server = createServer((req, res) => void health.handle(req, res));
  const base = await listen(server);
  try {
    const res = await fetch(`${base}/health/ready`, { headers: { [DEADLINE_HEADER]: '30' } });
    assert.equal(res.status, 503);
    const body = (await res.json()) as { checks: Record<string, { output: string }> };
    assert.match(body.checks['slow']?.output ?? '', /deadline \(30 ms\)/);
    finish?.();
    const after = await health.report('ready');
    assert.equal(after.status, 'passing');
    assert.equal(after.checks['slow']?.output, 'finally');
  } finally {
    server.close();
  }
});

test('remainingDeadline reads node headers, Fetch headers, and ignores bad values', () => {
  assert.equal(remainingDeadline({ headers: { [DEADLINE_HEADER]: '250' } }), 250);
  assert.equal(remainingDeadline({ headers: { [DEADLINE_HEADER]: ['99.7', '5'] } }), 99);
  assert.equal(remainingDeadline(new Request('http://x/', { headers: { [DEADLINE_HEADER]: '7' } })), 7);
  assert.equal(remainingDeadline({ headers: {} }), undefined);
  assert.equal(remainingDeadline({ headers: { [DEADLINE_HEADER]: 'soon' } }), undefined);
  assert.equal(remainingDeadline({ headers: { [DEADLINE_HEADER]: '-5' } }), undefined);
});

test('tcpCheck and httpCheck against real servers', async () => {
  let code = 200;
  const server = createServer((_req, res) => {
    res.statusCode = code;
    res.end('x');
  });
  const base = await listen(server);
  const port = (server.address() as AddressInfo).port;
  const health = createHealth({
    logger,
    checks: {
      tcp: { ...tcpCheck({ host: '127.0.0.1', port }), minIntervalMs: 0 },
      http: { ...httpCheck(`${base}/status`), minIntervalMs: 0 },
    },
  });
  health.markReady();
  try {
    let r = await health.report('ready');
    assert.equal(r.status, 'passing', JSON.stringify(r));
    assert.equal(r.checks['tcp']?.output, `connected to 127.0.0.1:${port}`);
    code = 429;
    r = await health.report('ready');
    assert.equal(r.checks['http']?.status, 'warning');
    code = 500;
    r = await health.report('ready');
    assert.equal(r.checks['http']?.status, 'critical');
    assert.match(r.checks['http']?.output ?? '', /HTTP 500/);
  } finally {
    server.close();
    server.closeAllConnections();
  }
  await once(server, 'close');
  const r = await health.report('ready');
  assert.equal(r.checks['tcp']?.status, 'critical');
  assert.match(r.checks['tcp']?.output ?? '', /ECONNREFUSED/);
  assert.equal(r.checks['http']?.status, 'critical');
  assert.throws(() => tcpCheck({ host: '127.0.0.1', port: 70000 }), /tcpCheck port/);
  assert.throws(() => httpCheck('not a url'), /httpCheck url/);
});

test('eventLoopDelayCheck and memoryCheck join the live probe', async () => {
  const loop = eventLoopDelayCheck({ maxDelayMs: 300, resolutionMs: 10, minIntervalMs: 0 });
  const health = createHealth({
    logger,
    checks: {
      loop,
      mem: memoryCheck({ maxRssBytes: 1e15, minIntervalMs: 0 }),
      tiny: { ...memoryCheck({ maxHeapUsedBytes: 1 }), probes: ['ready'], critical: false },
    },
  });
  try {
    // Block the loop well past the threshold; the histogram records the stall.
    await new Promise((r) => setTimeout(r, 30));
    const until = Date.now() + 1000;
    while (Date.now() < until) {
      /* busy */
    }
    await new Promise((r) => setTimeout(r, 30));
    let r = await health.report('live');
    assert.equal(r.checks['loop']?.status, 'critical', JSON.stringify(r));
    assert.equal(r.checks['mem']?.status, 'passing');
    assert.equal(r.checks['tiny'], undefined, 'a ready-only check is not part of live');
    // Once the stall is read, later windows are clean again (polled: a loaded machine may stall briefly).
    for (let i = 0; i < 30; i++) {
      await new Promise((r) => setTimeout(r, 100));
      r = await health.report('live');
      if (r.checks['loop']?.status === 'passing') break;
    }
    assert.equal(r.checks['loop']?.status, 'passing', JSON.stringify(r));
    health.markReady();
    r = await health.report('ready');
    assert.equal(r.status, 'warning');
    assert.match(r.checks['tiny']?.output ?? '', /heap used/);
  } finally {
    health.close();
  }
  assert.throws(() => memoryCheck({}), /maxRssBytes/);
});
