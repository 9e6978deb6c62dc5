/**
 * The service client's hot-path shortcuts against real loopback servers: a try timed by undici's
 * `headersTimeout` (the fast path) still ends as a timeout and is retried elsewhere, a try that would queue in
 * a saturated pool keeps its own timer, the caller's signal still aborts, and a breaker fed outside
 * cockatiel's `execute` still opens.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { FakeClock } from '../../../test/helpers/fake-clock.ts';
import { createDiscovery, staticResolver } from '../discovery/index.ts';
import { createServiceClient } from './client.ts';

const logger = pino({ level: 'silent' });
const servers: Server[] = [];
after(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

/** A loopback server: `hang` never answers, `ok` answers 200, `fail` answers 503, `broken` 500. */
async function server(kind: 'hang' | 'ok' | 'fail' | 'broken'): Promise<{ url: string; hits: () => number }> {
  let hits = 0;
  const s = createServer((req, res) => {
    hits++;
    req.resume();
    if (kind === 'hang') return;
    res.statusCode = kind === 'ok' ? 200 : kind === 'fail' ? 503 : 500;
    res.end(kind);
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, hits: () => hits };
}

function setup(urls: string[]) {
  const discovery = createDiscovery({ resolver: staticResolver({ services: { svc: urls } }), logger });
  return discovery;
}

test('a try timed by headersTimeout ends as a timeout and the retry goes elsewhere', async () => {
  const hang = await server('hang');
  const ok = await server('ok');
  const discovery = setup([hang.url, ok.url]);
  const reasons: string[] = [];
  // a try of >= 2 s far from the deadline: undici's headersTimeout times it (the fast path)
  const http = createServiceClient({
    discovery,
    logger,
    tryTimeoutMs: 2_000,
    connectTimeoutMs: 500,
    balancer: () => ({
      name: 'first-untried',
      pick: (c) => c.find((e) => e.instance.url === hang.url) ?? c[0],
    }),
    hooks: { onRetry: (i) => reasons.push(i.reason) },
  });
  try {
    const res = await http.get('svc', '/');
    assert.equal(res.statusCode, 200);
    assert.equal(await res.text(), 'ok');
    assert.equal(res.attempts, 2);
    assert.deepEqual(reasons, ['timeout']);
    assert.equal(hang.hits(), 1);
    // and without retries the error names the timeout
    const noRetry = createServiceClient({
      discovery,
      logger,
      tryTimeoutMs: 2_000,
      connectTimeoutMs: 500,
      retry: false,
      balancer: () => ({ name: 'hang', pick: (c) => c.find((e) => e.instance.url === hang.url) }),
    });
    await assert.rejects(noRetry.get('svc', '/'), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'PHARE_ERR_UPSTREAM');
      assert.match(err.message, /timeout error \(try timed out after 2000ms\)/);
      return true;
    });
    await noRetry.close();
  } finally {
    await http.close();
    await discovery.close();
  }
});

test('a call that would queue in a saturated pool is still bounded by its try timeout', async () => {
  const hang = await server('hang');
  const discovery = setup([hang.url]);
  const http = createServiceClient({
    discovery,
    logger,
    connections: 1,
    connectTimeoutMs: 500,
    retry: false,
  });
  try {
    const first = http.get('svc', '/', { tryTimeoutMs: 3_000 });
    // let the first one take the only connection
    await new Promise((r) => setTimeout(r, 100));
    // it would wait in the pool's queue behind the first: its own timer must end it there
    const second = http.get('svc', '/', { tryTimeoutMs: 2_000 });
    const results = await Promise.allSettled([first, second]);
    for (const [i, r] of results.entries()) {
      assert.equal(r.status, 'rejected');
      const ms = i === 0 ? 3000 : 2000;
      assert.match(
        String((r as PromiseRejectedResult).reason?.message),
        new RegExp(`timed out after ${ms}ms`),
      );
    }
    assert.equal(hang.hits(), 1, 'the second call timed out in the queue, before it was sent');
  } finally {
    await http.close();
    await discovery.close();
  }
});

test('the callback fast path: a 503 first try is retried by the general loop, a 500 is handed back, in-flight counts return to 0, a throwing hook rejects the call', async () => {
  const ok = await server('ok');
  const fail = await server('fail');
  const broken = await server('broken');
  const discovery = setup([fail.url, ok.url]);
  const busyAtPick: number[] = [];
  let throwOnce = false;
  const http = createServiceClient({
    discovery,
    logger,
    // the untried 503 instance first, so every call's first try fails and its retry goes to the other
    balancer: () => ({
      name: 'fail-first',
      pick: (c) => {
        for (const e of c) busyAtPick.push(e.active);
        return c.find((e) => e.instance.url === fail.url) ?? c[0];
      },
    }),
    retry: { baseDelayMs: 1 },
    retryBudget: { minPerSecond: 1_000 },
    hooks: {
      onResponse: () => {
        if (throwOnce) {
          throwOnce = false;
          throw new Error('hook failed');
        }
      },
    },
  });
  const alone = createServiceClient({ discovery: setup([broken.url]), logger });
  try {
    for (let i = 0; i < 5; i++) {
      const res = await http.get('svc', '/');
      assert.equal(res.statusCode, 200);
      assert.equal(res.attempts, 2);
      assert.equal(await res.text(), 'ok');
    }
    assert.equal(fail.hits(), 5);
    assert.equal(ok.hits(), 5);
    // sequential calls: nothing is in flight when a call picks (each try's count was given back)
    assert.ok(busyAtPick.length >= 10);
    assert.deepEqual(new Set(busyAtPick), new Set([0]));
    // a 500 (not a retried status) is the caller's answer, first try and only try
    await (await alone.get('svc', '/')).body.dump();
    const res = await alone.get('svc', '/');
    assert.equal(res.statusCode, 500);
    assert.equal(res.attempts, 1);
    assert.equal(await res.text(), 'broken');
    // a hook that throws rejects its call, and the client carries on
    throwOnce = true;
    await assert.rejects(http.get('svc', '/'), /hook failed/);
    const after = await http.get('svc', '/');
    assert.equal(after.statusCode, 200);
    await after.body.dump();
  } finally {
    await http.close();
    await alone.close();
    await discovery.close();
  }
});

test("the caller's signal aborts a fast-path try, also when aborted before the call", async () => {
  const hang = await server('hang');
  const discovery = setup([hang.url]);
  const http = createServiceClient({ discovery, logger, retry: false });
  try {
    const ac = new AbortController();
    const p = http.get('svc', '/', { signal: ac.signal });
    setTimeout(() => ac.abort(new Error('caller gave up')), 100);
    await assert.rejects(p, /caller gave up/);
    await assert.rejects(
      http.get('svc', '/', { signal: AbortSignal.abort(new Error('already gone')) }),
      /already gone/,
    );
    // the set is in memory now: this call takes the callback fast path, and an abort in flight still ends it
    const late = new AbortController();
    const inFlight = http.get('svc', '/', { signal: late.signal });
    setTimeout(() => late.abort(new Error('gave up in flight')), 50);
    await assert.rejects(inFlight, /gave up in flight/);
  } finally {
    await http.close();
    await discovery.close();
  }
});

test('the circuit breaker still opens when tries run outside cockatiel', async () => {
  const bad = await server('fail');
  const discovery = setup([bad.url]);
  const http = createServiceClient({
    discovery,
    logger,
    retry: false,
    outlier: false,
    breaker: { threshold: 0.5, durationMs: 10_000, minimumRps: 1, halfOpenAfterMs: 60_000 },
  });
  try {
    const codes: string[] = [];
    for (let i = 0; i < 40; i++) {
      try {
        const res = await http.get('svc', '/');
        await res.body.dump();
        codes.push(String(res.statusCode));
      } catch (err) {
        codes.push((err as { code?: string }).code ?? '?');
      }
    }
    assert.ok(codes.includes('PHARE_ERR_CIRCUIT_OPEN'), `circuit never opened: ${codes.join(',')}`);
    const before = bad.hits();
    await assert.rejects(
      http.get('svc', '/'),
      (err: { code?: string }) => err.code === 'PHARE_ERR_CIRCUIT_OPEN',
    );
    assert.equal(bad.hits(), before, 'an open circuit sends nothing');
  } finally {
    await http.close();
    await discovery.close();
  }
});

test('hedging on fake time: a try that has not answered by afterMs is hedged elsewhere, the first answer wins, the slow try runs on to its own timeout', async () => {
  const slowClosed: boolean[] = [];
  // a slow instance that never answers by itself: only the try's timeout ends its request
  const s = createServer((req) => {
    req.resume();
    req.socket.once('close', () => slowClosed.push(true));
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const slowUrl = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  const ok = await server('ok');
  const discovery = setup([slowUrl, ok.url]);
  const clock = new FakeClock();
  const hedges: string[] = [];
  const http = createServiceClient({
    discovery,
    logger,
    clock,
    hedge: { afterMs: 100 },
    tryTimeoutMs: 60_000,
    // the slow one first, then whichever is left
    balancer: () => ({ name: 'slow-first', pick: (c) => c.find((e) => e.instance.url === slowUrl) ?? c[0] }),
    hooks: { onHedge: (i) => hedges.push(`${i.slow.url} -> ${i.instance.url} after ${i.afterMs}`) },
  });
  try {
    const p = http.get('svc', '/');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(ok.hits(), 0, 'no hedge before afterMs');
    clock.advance(99);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(ok.hits(), 0);
    clock.advance(1);
    const res = await p;
    assert.equal(res.statusCode, 200);
    assert.equal(await res.text(), 'ok');
    assert.equal(res.instance.url, ok.url);
    assert.equal(res.attempts, 2);
    assert.deepEqual(hedges, [`${slowUrl} -> ${ok.url} after 100`]);
    // The losing try is not aborted (its latency and its failure count for its instance): it is still in
    // flight on the slow instance, and ends at its own timeout (the 30 s default deadline, on fake time).
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(slowClosed.length, 0, 'the losing try was aborted');
    clock.advance(30_000);
    await waitUntil(() => slowClosed.length === 1);

    // POST is not hedged: only the slow instance sees it, until the caller gives up.
    const ac = new AbortController();
    const post = http.post('svc', '/', { body: 'x', signal: ac.signal });
    await new Promise((r) => setTimeout(r, 30));
    clock.advance(1_000);
    await new Promise((r) => setTimeout(r, 30));
    ac.abort(new Error('enough'));
    await assert.rejects(post, /enough/);
    assert.equal(ok.hits(), 1);
  } finally {
    await http.close();
    await discovery.close();
  }
});

test('hedges take retry-budget tokens: with the budget spent, no hedge is sent', async () => {
  const hang = await server('hang');
  const ok = await server('ok');
  const discovery = setup([hang.url, ok.url]);
  const clock = new FakeClock();
  const http = createServiceClient({
    discovery,
    logger,
    clock,
    hedge: { afterMs: 10 },
    retryBudget: { percent: 0, minPerSecond: 0 },
    balancer: () => ({ name: 'hang-first', pick: (c) => c.find((e) => e.instance.url === hang.url) ?? c[0] }),
  });
  try {
    const ac = new AbortController();
    const p = http.get('svc', '/', { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 30));
    clock.advance(1_000);
    await new Promise((r) => setTimeout(r, 30));
    ac.abort(new Error('caller gave up'));
    await assert.rejects(p, /caller gave up/);
    assert.equal(ok.hits(), 0, 'no token, no hedge');
  } finally {
    await http.close();
    await discovery.close();
  }
});

async function waitUntil(fn: () => boolean, ms = 5_000): Promise<void> {
  const until = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > until) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 10));
  }
}
