/**
 * The service client's layers, each alone: the pure retry/hedge decision, the retry budget and the deadline
 * on fake time, the latency window, one try against a real loopback server (timeout on fake time,
 * the caller's abort, the breaker as a strategy), an instance's connections (reuse, cap, queue, close), and
 * the observer's metrics and hooks.
 */
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { Dispatcher } from 'undici';
import { testEndpoint, testInstance } from '../../../test/helpers/endpoints.ts';
import { FakeClock } from '../../../test/helpers/fake-clock.ts';
import { samplingBreaker } from './breaker.ts';
import { RetryBudget } from './budget.ts';
import { CallDeadline, withDeadline } from './deadline.ts';
import { type AttemptInfo, decide, type FailureInfo, hedgeDelay, type RetryPolicy } from './decide.ts';
import { Observer } from './observe.ts';
import { InstancePool, InstancePools, LatencyWindow, ServiceLatency } from './pool.ts';
import { TryFailure, type TryRequest, TryRunner } from './try.ts';

const policy: RetryPolicy = {
  maxRetries: 2,
  baseDelayMs: 100,
  maxDelayMs: 1_000,
  statuses: new Set([502, 503, 504]),
  nonIdempotent: false,
  maxRetryAfterMs: 5_000,
  random: () => 0.5,
};
const attempt = (o: Partial<AttemptInfo> = {}): AttemptInfo => ({
  tries: 1,
  idempotent: true,
  otherInstance: true,
  policy,
  ...o,
});
const failure = (o: Partial<FailureInfo> = {}): FailureInfo => ({
  kind: 'connect',
  notSent: false,
  deadlineBound: false,
  ...o,
});
const open = { canRetry: () => true };
const spent = { canRetry: () => false };
const left = (leftMs: number) => ({ leftMs });

describe('decide (pure)', () => {
  test('retries connect errors, timeouts and retried statuses with full jitter', () => {
    assert.deepEqual(decide(failure(), attempt(), open, left(5_000)), {
      action: 'retry',
      delayMs: 50,
      spendsBudget: true,
    });
    assert.deepEqual(
      decide(failure({ kind: 'status', status: 503 }), attempt({ tries: 2 }), open, left(5_000)),
      {
        action: 'retry',
        delayMs: 100,
        spendsBudget: true,
      },
    );
    assert.equal(decide(failure({ kind: 'timeout' }), attempt(), open, left(5_000)).action, 'retry');
  });
  test('an answer with a status that is not retried is handed back', () => {
    assert.deepEqual(decide(failure({ kind: 'status', status: 500 }), attempt(), open, left(5_000)), {
      action: 'return',
    });
  });
  test('non-idempotent calls are retried only when nothing was sent (or opted in)', () => {
    const post = attempt({ idempotent: false });
    assert.deepEqual(decide(failure(), post, open, left(5_000)), {
      action: 'fail',
      code: 'PHARE_ERR_UPSTREAM',
    });
    assert.equal(decide(failure({ notSent: true }), post, open, left(5_000)).action, 'retry');
    const optIn = attempt({ idempotent: false, policy: { ...policy, nonIdempotent: true } });
    assert.equal(decide(failure(), optIn, open, left(5_000)).action, 'retry');
  });
  test('gives up after maxRetries, on a deadline-bound timeout, and when the wait outlasts the deadline', () => {
    assert.deepEqual(decide(failure(), attempt({ tries: 3 }), open, left(5_000)), {
      action: 'fail',
      code: 'PHARE_ERR_UPSTREAM',
    });
    assert.deepEqual(
      decide(failure({ kind: 'timeout', deadlineBound: true }), attempt(), open, left(5_000)),
      {
        action: 'fail',
        code: 'PHARE_ERR_DEADLINE_EXCEEDED',
      },
    );
    assert.deepEqual(decide(failure(), attempt(), open, left(40)), {
      action: 'fail',
      code: 'PHARE_ERR_UPSTREAM',
    });
    const none = attempt({ policy: { ...policy, maxRetries: 0 } });
    assert.equal(decide(failure(), none, open, left(5_000)).action, 'fail');
  });
  test('Retry-After: another instance takes the retry now; alone, the wait is the asked one; too long fails', () => {
    const ra = failure({ kind: 'status', status: 503, retryAfterMs: 2_000 });
    assert.deepEqual(decide(ra, attempt(), open, left(5_000)), {
      action: 'retry',
      delayMs: 50,
      spendsBudget: true,
      awayMs: 2_000,
    });
    assert.deepEqual(decide(ra, attempt({ otherInstance: false }), open, left(5_000)), {
      action: 'retry',
      delayMs: 2_000,
      spendsBudget: true,
      awayMs: 2_000,
    });
    assert.equal(decide(ra, attempt({ otherInstance: false }), open, left(1_500)).action, 'fail');
    assert.equal(decide({ ...ra, retryAfterMs: 9_000 }, attempt(), open, left(60_000)).action, 'fail');
  });
  test('the budget stops retries; an open circuit retries elsewhere without spending it', () => {
    assert.deepEqual(decide(failure(), attempt(), spent, left(5_000)), {
      action: 'fail',
      code: 'PHARE_ERR_RETRY_BUDGET_EXHAUSTED',
    });
    assert.deepEqual(decide(failure({ kind: 'circuit' }), attempt(), spent, left(5_000)), {
      action: 'retry',
      delayMs: 50,
      spendsBudget: false,
    });
    assert.deepEqual(decide(failure({ kind: 'circuit' }), attempt({ tries: 3 }), open, left(5_000)), {
      action: 'fail',
      code: 'PHARE_ERR_CIRCUIT_OPEN',
    });
  });
  test('hedgeDelay: idempotent only, another instance needed, budget and deadline respected, p95 floored', () => {
    const h = { afterMs: undefined, initialAfterMs: 50, minAfterMs: 2 };
    assert.equal(hedgeDelay(h, attempt(), open, left(5_000), undefined), 50);
    assert.equal(hedgeDelay(h, attempt(), open, left(5_000), 12.5), 12.5);
    assert.equal(hedgeDelay(h, attempt(), open, left(5_000), 0.3), 2);
    assert.equal(hedgeDelay({ ...h, afterMs: 30 }, attempt(), open, left(5_000), 12.5), 30);
    assert.equal(hedgeDelay(h, attempt({ idempotent: false }), open, left(5_000), 10), undefined);
    assert.equal(hedgeDelay(h, attempt({ otherInstance: false }), open, left(5_000), 10), undefined);
    assert.equal(hedgeDelay(h, attempt(), spent, left(5_000), 10), undefined);
    assert.equal(hedgeDelay(h, attempt(), open, left(10), 10), undefined);
  });
});

test('retry budget on fake time: 20 % of requests plus the floor, sliding out of the window', () => {
  const clock = new FakeClock();
  const b = new RetryBudget({ percent: 20, minPerSecond: 0, windowMs: 10_000, now: () => clock.now() });
  for (let i = 0; i < 10; i++) b.request();
  assert.equal(b.canRetry(), true);
  assert.equal(b.tryRetry(), true);
  assert.equal(b.tryRetry(), true);
  assert.equal(b.canRetry(), false, '2 of 10 spent');
  b.spend(); // a hedge counts the same
  clock.advance(11_000);
  assert.equal(b.canRetry(), false, 'no requests in the window: nothing allowed without a floor');
  for (let i = 0; i < 5; i++) b.request();
  assert.equal(b.tryRetry(), true);
  assert.equal(b.tryRetry(), false);
});

test('deadline on fake time: try timeouts within it, deadline-bound and coarse-timer flags, header', () => {
  const clock = new FakeClock();
  const d = new CallDeadline(clock, 5_000, clock.now());
  assert.deepEqual(d.tryTime(1_000, 500), { timeoutMs: 1_000, deadlineBound: false, cheapTimer: true });
  clock.advance(4_200);
  assert.deepEqual(d.tryTime(1_000, 500), { timeoutMs: 800, deadlineBound: true, cheapTimer: false });
  clock.advance(1_000);
  assert.ok(d.left() < 0);
  assert.deepEqual(withDeadline(['a', '1'], 799.6), ['a', '1', 'x-phare-deadline-ms', '799']);
});

test('latency window: no p95 before 16 answers, then the 95th percentile of the last 64', () => {
  const w = new LatencyWindow();
  for (let i = 1; i <= 15; i++) w.record(i);
  assert.equal(w.p95(), undefined);
  w.record(16);
  assert.equal(w.p95(), 16);
  for (let i = 1; i <= 100; i++) w.record(i);
  // the last 64 are 37..100: the 61st of them is 97
  assert.equal(w.p95(), 97);
});

describe('one try against a real server', () => {
  const servers: Server[] = [];
  after(async () => {
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });
  async function server(status: number | 'hang') {
    const s = createServer((req, res) => {
      req.resume();
      if (status === 'hang') return;
      res.statusCode = status;
      res.end('x');
    });
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return (s.address() as AddressInfo).port;
  }
  const endpoint = (port: number) => testEndpoint(port);

  const req = (o: Partial<TryRequest> = {}): TryRequest => ({
    method: 'GET',
    path: '/',
    headers: undefined,
    body: undefined,
    timeoutMs: 1_000,
    deadlineBound: false,
    deadlineAt: Infinity,
    cheapTimer: false,
    signal: undefined,
    ...o,
  });

  test("timeout on fake time, the caller's abort, and a 5xx as a failure carrying the answer", async () => {
    const clock = new FakeClock();
    const pools = new InstancePools({
      connections: 4,
      keepAliveTimeoutMs: 1_000,
      connectTimeoutMs: 1_000,
      breaker: undefined,
    });
    const runner = new TryRunner(clock, 2_000);
    const hang = endpoint(await server('hang'));
    try {
      const p = runner.run(hang, pools.of(hang), req({ deadlineBound: true }));
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(hang.active, 1);
      clock.advance(1_000);
      const r = await p;
      assert.ok(r instanceof TryFailure);
      assert.equal(r.kind, 'timeout');
      assert.equal(r.deadlineBound, true);
      assert.equal(hang.active, 0);

      const user = new AbortController();
      const u = runner.run(hang, pools.of(hang), req({ signal: user.signal }));
      setTimeout(() => user.abort(new Error('caller gave up')), 30);
      await assert.rejects(u, /caller gave up/);

      const bad = endpoint(await server(503));
      const s = await runner.run(bad, pools.of(bad), req());
      assert.ok(s instanceof TryFailure);
      assert.equal(s.kind, 'status');
      assert.equal(s.res?.statusCode, 503);
      await s.res?.body.dump();
    } finally {
      await pools.close([hang]);
    }
  });

  test('the breaker strategy opens on failures and then refuses without sending', async () => {
    const pools = new InstancePools({
      connections: 4,
      keepAliveTimeoutMs: 1_000,
      connectTimeoutMs: 1_000,
      breaker: samplingBreaker({
        threshold: 0.5,
        durationMs: 10_000,
        minimumRps: 1,
        halfOpenAfterMs: 60_000,
      }),
    });
    const runner = new TryRunner(new FakeClock(), 2_000);
    const bad = endpoint(await server(500));
    try {
      pools.of(bad);
      assert.equal(pools.usableFilter, undefined, 'no circuit open: candidates() asks no breaker');
      const kinds: string[] = [];
      for (let i = 0; i < 30; i++) {
        const r = await runner.run(bad, pools.of(bad), req());
        if (r instanceof TryFailure) {
          kinds.push(r.kind);
          await r.res?.body.dump();
        }
      }
      assert.ok(kinds.includes('circuit'), kinds.join(','));
      assert.equal(pools.usable?.(bad), false);
      assert.equal(pools.usableFilter, pools.usable, 'an open circuit: candidates() filters by breaker');
      // the instance leaves the set: its open circuit no longer counts
      pools.release(bad);
      assert.equal(pools.usableFilter, undefined);
    } finally {
      await pools.close([bad]);
    }
  });
});

describe("an instance's connections (InstancePool) against a real server", () => {
  const servers: Server[] = [];
  after(async () => {
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });
  /** A server answering at once, `/slow` after 100 ms, `/stream` half now and half then; it counts sockets. */
  async function server() {
    let sockets = 0;
    const s = createServer((req, res) => {
      req.resume();
      if (req.url === '/slow') setTimeout(() => res.end('slow'), 100);
      else if (req.url === '/stream') {
        res.write('part');
        setTimeout(() => res.end('rest'), 100);
      } else res.end(req.url);
    });
    s.on('connection', () => sockets++);
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, sockets: () => sockets };
  }
  const pool = (url: string, connections: number, onIdle?: () => void) =>
    new InstancePool(url, { connections, keepAliveTimeout: 4_000, connect: { timeout: 1_000 }, onIdle });

  test('a caller that sends its next request as soon as it has read an answer reuses that connection', async () => {
    const s = await server();
    const p = pool(s.url, 64);
    try {
      // 4 callers, 50 calls each: an undici Pool would open a connection for most of the calls that find
      // the last one's connection not yet drained; this one keeps to 4.
      await Promise.all(
        Array.from({ length: 4 }, async (_, i) => {
          for (let n = 0; n < 50; n++) {
            const res = await p.request({ path: `/${i}-${n}`, method: 'GET' });
            assert.equal(await res.body.text(), `/${i}-${n}`);
          }
        }),
      );
      assert.equal(p.connections, 4);
      assert.equal(s.sockets(), 4);
      assert.equal(p.saturated, false);
    } finally {
      await p.close();
    }
  });

  test('at most `connections` connections; the rest wait in arrival order and are bounded by nothing but their caller', async () => {
    const s = await server();
    let idle = 0;
    const p = pool(s.url, 2, () => idle++);
    try {
      const order: string[] = [];
      const calls = ['slow', 'slow', 'a', 'b', 'c'].map((path, i) => {
        const r = p.request({ path: `/${path}`, method: 'GET' }).then(async (res) => {
          order.push(await res.body.text());
        });
        // the first two take both connections: from the third on, requests wait here
        assert.equal(p.saturated, i >= 1);
        return r;
      });
      await Promise.all(calls);
      assert.deepEqual(order.slice(2), ['/a', '/b', '/c']);
      // a connection handed to a waiting request is not idle: only the last two answers left theirs free
      assert.equal(idle, 2);
      assert.equal(p.connections, 2);
      assert.equal(s.sockets(), 2);
      assert.equal(p.saturated, false);
      // a waiting request whose caller gives up is answered by its abort, and frees nothing it never had
      const slow = [p.request({ path: '/slow', method: 'GET' }), p.request({ path: '/slow', method: 'GET' })];
      const ac = new AbortController();
      const waiting = p.request({ path: '/x', method: 'GET', signal: ac.signal });
      ac.abort(new Error('gave up'));
      await assert.rejects(waiting, /gave up/);
      for (const r of await Promise.all(slow)) await r.body.dump();
      const after = await p.request({ path: '/after', method: 'GET' });
      assert.equal(await after.body.text(), '/after');
    } finally {
      await p.close();
    }
  });

  test('a request undici refuses at once, a refused connection and an answer cut short all free their connection', async () => {
    const s = await server();
    const p = pool(s.url, 1);
    try {
      // a header value undici refuses before sending anything
      await assert.rejects(p.request({ path: '/', method: 'GET', headers: { 'x-bad': 'a\r\nb' } }));
      const ok = await p.request({ path: '/ok', method: 'GET' });
      assert.equal(await ok.body.text(), '/ok');
      // the caller destroys the body mid-way: the connection is closed and made again for the next one
      const cut = await p.request({ path: '/stream', method: 'GET' });
      const gone = new Promise((resolve) => cut.body.on('error', resolve));
      cut.body.destroy();
      assert.match(String(await gone), /aborted/);
      const again = await p.request({ path: '/again', method: 'GET' });
      assert.equal(await again.body.text(), '/again');
      assert.equal(p.connections, 1);
    } finally {
      await p.close();
    }
    const dead = await server();
    const url = dead.url;
    await new Promise((r) => servers.pop()?.close(r));
    const q = pool(url, 1);
    try {
      for (let i = 0; i < 3; i++)
        await assert.rejects(q.request({ path: '/', method: 'GET' }), /ECONNREFUSED/);
      assert.equal(q.saturated, false, 'a refused connect leaves the connection free for the next try');
    } finally {
      await q.close();
    }
  });

  test("a request that ended (answered or failed) no longer holds its caller's handler", async () => {
    // undici may keep a finished request's objects around; what matters is that ours then hold nothing
    // of the caller's (see Tracked in pool.ts: a pretenured wrapper kept every finished body alive
    // through a scavenge). The requests are held here through undici's diagnostics channel, the caller's
    // handlers only weakly: once each ends, a full GC must collect them.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const s = await server();
    const p = pool(s.url, 1);
    const requests: unknown[] = [];
    const hold = (m: unknown) => requests.push((m as { request: unknown }).request);
    diagnosticsChannel.subscribe('undici:request:create', hold);
    const handlers: WeakRef<object>[] = [];
    try {
      const send = (path: string, headers?: Record<string, string>) =>
        new Promise<string>((resolve) => {
          let body = '';
          const h: Dispatcher.DispatchHandler = {
            onResponseData: (_c, chunk) => {
              body += chunk.toString();
            },
            onResponseEnd: () => resolve(`end ${body}`),
            onResponseError: (_c, err) => resolve(`error ${err.message}`),
          };
          handlers.push(new WeakRef(h));
          p.dispatch({ path, method: 'GET', headers }, h);
        });
      assert.equal(await send('/a'), 'end /a');
      assert.match(await send('/b', { 'x-bad': 'a\r\nb' }), /^error /);
      assert.equal(await send('/c'), 'end /c');
      assert.ok(requests.length >= 2, 'the requests are held');
      await new Promise((r) => setImmediate(r));
      gc();
      assert.deepEqual(
        handlers.map((w) => w.deref() === undefined),
        [true, true, true],
      );
    } finally {
      diagnosticsChannel.unsubscribe('undici:request:create', hold);
      await p.close();
    }
  });

  test('close() answers what is in flight and waiting, then refuses; destroy() fails them', async () => {
    const s = await server();
    const p = pool(s.url, 1);
    const inFlight = p.request({ path: '/slow', method: 'GET' });
    const waiting = p.request({ path: '/w', method: 'GET' });
    const closed = p.close();
    await assert.rejects(p.request({ path: '/late', method: 'GET' }), { code: 'UND_ERR_CLOSED' });
    assert.equal(await (await inFlight).body.text(), 'slow');
    assert.equal(await (await waiting).body.text(), '/w');
    await closed;

    const d = pool(s.url, 1);
    const a = d.request({ path: '/slow', method: 'GET' });
    const b = d.request({ path: '/w', method: 'GET' });
    await d.destroy();
    await assert.rejects(a);
    await assert.rejects(b, { code: 'UND_ERR_DESTROYED' });
  });
});

test('observer: metrics by service and outcome, hooks called, hedges counted', async () => {
  const registry = new Registry();
  const seen: string[] = [];
  const o = new Observer(
    {
      onResponse: (i) => seen.push(`response ${i.statusCode}`),
      onRetry: (i) => seen.push(`retry ${i.reason}`),
      onHedge: (i) => seen.push(`hedge after ${i.afterMs}`),
      onError: (i) => seen.push(`error ${i.error.message}`),
    },
    registry,
    pino({ level: 'silent' }),
  );
  const inst = testInstance(1, { service: 'users' });
  const info = { service: 'users', method: 'GET', path: '/' };
  o.response(info, inst, 200, 1, 12);
  o.retry(info, inst, 1, '503', 20);
  o.hedge(info, inst, inst, 7);
  o.error(info, inst, new Error('boom'), 'upstream', 3, 40);
  assert.deepEqual(seen, ['response 200', 'retry 503', 'hedge after 7', 'error boom']);
  const text = await registry.metrics();
  assert.match(
    text,
    /phare_client_requests_total\{service="users",instance="http:\/\/127.0.0.1:1",outcome="200"\} 1/,
  );
  assert.match(text, /phare_client_hedges_total\{service="users"\} 1/);
  assert.match(text, /phare_client_retries_total\{service="users",reason="503"\} 1/);
});

test('service latency: the hedge delay is the fastest instance’s p95 — one slow instance of three does not set it', () => {
  const s = new ServiceLatency();
  const [a, b, slow, fresh] = [{}, {}, {}, {}];
  const all = [a, b, slow, fresh];
  assert.equal(s.p95(all), undefined);
  // a third of the answers from a slow instance: a service-wide p95 would be ~100
  for (let i = 0; i < 64; i++) {
    s.record(a, 10 + (i % 2));
    s.record(b, 12 + (i % 2));
    s.record(slow, 100);
  }
  assert.equal(s.p95(all), 11);
  // an instance with fewer than 16 answers does not count, however fast
  for (let i = 0; i < 15; i++) s.record(fresh, 1);
  for (let i = 0; i < 16; i++) s.record(slow, 100);
  assert.equal(s.p95(all), 11);
  // an instance that left the set no longer counts: the fastest is then the other one
  const left = [b, slow, fresh];
  assert.equal(s.p95(left), 13);
  assert.equal(s.p95([slow]), 100);
});
