/**
 * Answers as the service client hands them back (reply.ts), against real loopback servers: a small answer
 * is read whole before the call resolves and decoded without a stream, a large or chunked one is streamed
 * from its headers, a body cut mid-way is a failed try (retried when the call may be), a stalled body is
 * bounded, the caller's signal cuts a body, and hooks run in the caller's async context.
 */
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  type AddressInfo,
  createServer as createTcpServer,
  type Socket,
  type Server as TcpServer,
} from 'node:net';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { createDiscovery, staticResolver } from '../discovery/index.ts';
import { createServiceClient, type ServiceClientOptions } from './client.ts';
import { BUFFERED_MAX } from './reply.ts';

const logger = pino({ level: 'silent' });
const servers: Array<Server | TcpServer> = [];
const sockets = new Set<Socket>();
after(async () => {
  for (const s of sockets) s.destroy();
  for (const s of servers) {
    if ('closeAllConnections' in s) s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function http(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const s = createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

/** A raw TCP server: `onRequest` gets the socket and the how-many-th request (from 1) it carries. */
async function raw(onRequest: (socket: Socket, n: number) => void): Promise<string> {
  let n = 0;
  const s = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      while (buf.includes('\r\n\r\n')) {
        const end = buf.indexOf('\r\n\r\n') + 4;
        const head = buf.slice(0, end);
        const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + len) return;
        buf = buf.slice(end + len);
        onRequest(socket, ++n);
      }
    });
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

function client(urls: string[], o: Partial<ServiceClientOptions> = {}) {
  const discovery = createDiscovery({ resolver: staticResolver({ services: { svc: urls } }), logger });
  return createServiceClient({ discovery, logger, ...o });
}

/** Settles within `ms`, or 'pending'. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    p,
    new Promise<'pending'>((ok) => (timer = setTimeout(() => ok('pending'), ms))),
  ]);
  clearTimeout(timer);
  return r;
}

test('a small answer: json, text, a byte-order mark, one read only, the stream on demand', async () => {
  const url = await http((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/bom') res.end(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}')]));
    else if (req.url === '/bad') res.end('{nope');
    else res.end(JSON.stringify({ path: req.url, s: 'é' }));
  });
  const c = client([url]);
  try {
    const a = await c.get('svc', '/a');
    assert.equal(a.statusCode, 200);
    assert.deepEqual(await a.json(), { path: '/a', s: 'é' });
    await assert.rejects(a.json(), (err: Error) => err instanceof TypeError && /unusable/.test(err.message));
    await assert.rejects(a.text(), TypeError);
    // the stream asked for after a read is used up as well
    await assert.rejects(a.body.text(), TypeError);

    assert.deepEqual(await (await c.get('svc', '/bom')).json(), { a: 1 });
    assert.equal(await (await c.get('svc', '/t')).text(), '{"path":"/t","s":"é"}');
    await assert.rejects((await c.get('svc', '/bad')).json(), SyntaxError);

    // the body as a stream: iterated, or read through undici's mixin, then used up
    const s = await c.get('svc', '/s');
    const parts: Buffer[] = [];
    for await (const chunk of s.body) parts.push(chunk as Buffer);
    assert.equal(Buffer.concat(parts).toString(), '{"path":"/s","s":"é"}');
    await assert.rejects(s.json(), TypeError);
    const m = await c.get('svc', '/m');
    assert.deepEqual(await m.body.json(), { path: '/m', s: 'é' });
    assert.equal(m.body.bodyUsed, true);
    const b = await c.get('svc', '/b');
    assert.equal(Buffer.from(await b.body.arrayBuffer()).toString(), '{"path":"/b","s":"é"}');

    // dump() lets it go; the connection is reused for the next call
    await (await c.get('svc', '/d')).body.dump();
    const head = await c.request('svc', '/h', { method: 'HEAD' });
    assert.equal(await head.text(), '');
  } finally {
    await c.close();
  }
});

test('up to 64 KiB is read before the call resolves; a larger or chunked answer streams from its headers', async () => {
  const release: Array<() => void> = [];
  const url = await http((req, res) => {
    const size = req.url === '/at' ? BUFFERED_MAX : BUFFERED_MAX + 1;
    const body = Buffer.alloc(size, 'x');
    if (req.url !== '/chunked') res.setHeader('content-length', String(size));
    // the headers and the first half now, the rest when the test says so
    res.write(body.subarray(0, size >> 1));
    release.push(() => res.end(body.subarray(size >> 1)));
  });
  const c = client([url], { retry: false });
  try {
    for (const [path, streamed] of [
      ['/at', false],
      ['/over', true],
      ['/chunked', true],
    ] as const) {
      const p = c.get('svc', path);
      const early = await within(p, 300);
      assert.equal(
        early === 'pending',
        !streamed,
        `${path}: resolved before its body ended: ${early !== 'pending'}`,
      );
      release.shift()?.();
      const res = await p;
      assert.equal((await res.text()).length, path === '/at' ? BUFFERED_MAX : BUFFERED_MAX + 1);
    }
  } finally {
    await c.close();
  }
});

test('a body cut mid-way fails the try: a GET is retried on another instance, a POST is not repeated', async () => {
  const cut = await raw((socket) => {
    socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789');
    setTimeout(() => socket.destroy(), 20);
  });
  let okHits = 0;
  const ok = await http((req, res) => {
    okHits++;
    req.resume();
    res.end('whole');
  });
  const reasons: string[] = [];
  const c = client([cut, ok], {
    balancer: () => ({
      name: 'cut-first',
      pick: (list) => list.find((e) => e.instance.url === cut) ?? list[0],
    }),
    hooks: { onRetry: (i) => reasons.push(i.reason) },
  });
  try {
    const res = await c.get('svc', '/');
    assert.equal(await res.text(), 'whole');
    assert.equal(res.attempts, 2);
    assert.deepEqual(reasons, ['connect']);
    const before = okHits;
    await assert.rejects(c.post('svc', '/', { body: 'x' }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'PHARE_ERR_UPSTREAM');
      return true;
    });
    assert.equal(okHits, before, 'the POST was sent again');
  } finally {
    await c.close();
  }
});

test('a stalled small body is bounded by the try timeout, on its own timer and on the fast path', async () => {
  const url = await raw((socket) => {
    socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789');
  });
  for (const tryTimeoutMs of [300, 2_000]) {
    const c = client([url], { retry: false, tryTimeoutMs, connectTimeoutMs: 500 });
    try {
      const t0 = performance.now();
      await assert.rejects(c.get('svc', '/'), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'PHARE_ERR_UPSTREAM');
        assert.match(err.message, /timeout error/);
        return true;
      });
      const ms = performance.now() - t0;
      assert.ok(
        ms >= tryTimeoutMs - 5 && ms < tryTimeoutMs + 1_500,
        `${tryTimeoutMs} ms try ended after ${ms} ms`,
      );
    } finally {
      await c.close();
    }
  }
});

test("the caller's signal ends a stalled body, and destroys a streamed one", async () => {
  const url = await raw((socket, n) => {
    if (n === 1) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789');
    else socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n');
  });
  const c = client([url], { retry: false, tryTimeoutMs: 5_000, connections: 1 });
  try {
    const ac = new AbortController();
    const p = c.get('svc', '/', { signal: ac.signal });
    assert.equal(await within(p, 200), 'pending');
    const reason = new Error('caller gave up');
    ac.abort(reason);
    await assert.rejects(p, (err) => err === reason || (err as Error).cause === reason);

    const ac2 = new AbortController();
    const res = await c.get('svc', '/', { signal: ac2.signal });
    const chunks: Buffer[] = [];
    const read = (async () => {
      for await (const chunk of res.body) chunks.push(chunk as Buffer);
    })();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(Buffer.concat(chunks).toString(), 'hello');
    ac2.abort(new Error('enough'));
    await assert.rejects(read, /enough/);
    assert.equal(res.body.destroyed, true);
  } finally {
    await c.close();
  }
});

test("hooks run in the caller's async context, not the connection's", async () => {
  const url = await http((_req, res) => res.end('ok'));
  const als = new AsyncLocalStorage<string>();
  const seen: Array<string | undefined> = [];
  const c = client([url], { connections: 1, hooks: { onResponse: () => seen.push(als.getStore()) } });
  try {
    // the connection is made in the first call's context; later calls reuse it
    for (const name of ['first', 'second', 'third'])
      await als.run(name, async () => (await c.get('svc', '/')).body.dump());
    assert.deepEqual(seen, ['first', 'second', 'third']);
  } finally {
    await c.close();
  }
});
