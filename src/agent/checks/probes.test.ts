import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CheckDefinition } from '../catalog/index.ts';
import { createHttpProber } from './http.ts';
import { createTcpProber } from './tcp.ts';

const base: CheckDefinition = {
  type: 'http',
  successBeforePassing: 0,
  failuresBeforeWarning: 0,
  failuresBeforeCritical: 0,
  outputMaxSize: 4096,
};

function listen(server: http.Server | https.Server | net.Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)),
  );
}

/** A port nobody listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  return port;
}

describe('http prober', () => {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    switch (url.pathname) {
      case '/ok':
        res.end('ok');
        return;
      case '/limited':
        res.writeHead(429).end('slow down');
        return;
      case '/down':
        res.writeHead(503).end('maintenance');
        return;
      case '/slow':
        return; // never answers; the probe's timeout must fire
      case '/reset':
        req.socket.destroy();
        return;
      case '/big':
        res.end('a'.repeat(4096) + 'TAIL'.repeat(1000));
        return;
      case '/huge': {
        // 8 MiB in 64 KiB writes, then the end: the part an operator needs (the error) comes last
        const block = Buffer.alloc(64 * 1024, 'x');
        for (let i = 0; i < 128; i++) res.write(block);
        res.end('THE END');
        return;
      }
      case '/redirect':
        res.writeHead(302, { location: '/ok' }).end();
        return;
      case '/echo': {
        const chunks: Buffer[] = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
          res.setHeader('content-type', 'application/json');
          res.end(
            JSON.stringify({
              method: req.method,
              body: Buffer.concat(chunks).toString(),
              ua: req.headers['user-agent'],
              accept: req.headers.accept,
              multi: req.headers['x-multi'],
              host: req.headers.host,
              connection: req.headers.connection,
            }),
          );
        });
        return;
      }
      default:
        res.writeHead(404).end();
    }
  });
  let port = 0;
  const prober = createHttpProber();
  const signal = new AbortController().signal;
  const run = (path: string, extra: Partial<CheckDefinition> = {}) =>
    prober.run({ ...base, http: `http://127.0.0.1:${port}${path}`, ...extra }, signal);

  before(async () => {
    port = await listen(server);
  });
  after(async () => {
    await prober.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  test('2xx is passing, with Consul output', async () => {
    assert.deepEqual(await run('/ok'), {
      status: 'passing',
      output: `HTTP GET http://127.0.0.1:${port}/ok: 200 OK Output: ok`,
    });
  });

  test('429 is warning', async () => {
    assert.deepEqual(await run('/limited'), {
      status: 'warning',
      output: `HTTP GET http://127.0.0.1:${port}/limited: 429 Too Many Requests Output: slow down`,
    });
  });

  test('503 is critical', async () => {
    assert.deepEqual(await run('/down'), {
      status: 'critical',
      output: `HTTP GET http://127.0.0.1:${port}/down: 503 Service Unavailable Output: maintenance`,
    });
  });

  test('no answer within Timeout is critical', async () => {
    const r = await run('/slow', { timeoutMs: 200 });
    assert.equal(r.status, 'critical');
    assert.equal(
      r.output,
      `Get "http://127.0.0.1:${port}/slow": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`,
    );
  });

  test('a reset connection is critical', async () => {
    const r = await run('/reset');
    assert.equal(r.status, 'critical');
    assert.match(r.output, new RegExp(`^Get "http://127\\.0\\.0\\.1:${port}/reset": `));
  });

  test('a closed port is critical with a Go-style dial error', async () => {
    const p = await closedPort();
    const r = await prober.run({ ...base, http: `http://127.0.0.1:${p}/health` }, signal);
    assert.deepEqual(r, {
      status: 'critical',
      output: `Get "http://127.0.0.1:${p}/health": dial tcp 127.0.0.1:${p}: connect: connection refused`,
    });
  });

  test('keeps the last OutputMaxSize bytes of the body, as the circular buffer of Consul does', async () => {
    const r = await run('/big');
    const tail = `${'a'.repeat(96)}${'TAIL'.repeat(1000)}`;
    assert.equal(r.output, `HTTP GET http://127.0.0.1:${port}/big: 200 OK Output: ${tail}`);
    const small = await run('/big', { outputMaxSize: 10 });
    assert.equal(small.output, `HTTP GET http://127.0.0.1:${port}/big: 200 OK Output: ILTAILTAIL`);
  });

  test('a body of megabytes, sent in many chunks, still stores only the last 4 KiB', async () => {
    const r = await run('/huge');
    const body = r.output.slice(r.output.indexOf(' Output: ') + 9);
    assert.equal(Buffer.byteLength(body), 4096);
    assert.ok(body.endsWith('THE END'), body.slice(-20));
  });

  test('follows redirects unless DisableRedirects', async () => {
    assert.equal((await run('/redirect')).status, 'passing');
    const r = await run('/redirect', { disableRedirects: true });
    assert.equal(r.status, 'critical');
    assert.match(r.output, /: 302 Found Output: $/);
  });

  test('sends Method, Body, Header and the default headers; keep-alive off', async () => {
    const r = await run('/echo', {
      method: 'POST',
      body: '{"ping":1}',
      header: { 'X-Multi': ['a', 'b'], Host: ['example.test'] },
    });
    assert.equal(r.status, 'passing');
    const json = JSON.parse(r.output.slice(r.output.indexOf('Output: ') + 8));
    assert.equal(json.method, 'POST');
    assert.equal(json.body, '{"ping":1}');
    assert.equal(json.ua, 'Consul Health Check');
    assert.equal(json.accept, 'text/plain, text/*, */*');
    assert.equal(json.multi, 'a, b');
    assert.equal(json.host, 'example.test');
    assert.equal(json.connection, 'close');
    assert.match(r.output, new RegExp(`^HTTP POST http://127\\.0\\.0\\.1:${port}/echo: 200 OK Output: `));
  });

  test('a check header overrides the default User-Agent', async () => {
    const r = await run('/echo', { header: { 'user-agent': ['probe/1'] } });
    assert.equal(JSON.parse(r.output.slice(r.output.indexOf('Output: ') + 8)).ua, 'probe/1');
  });

  test('an aborted probe settles promptly', async () => {
    const ac = new AbortController();
    const p = prober.run({ ...base, http: `http://127.0.0.1:${port}/slow`, timeoutMs: 60_000 }, ac.signal);
    setTimeout(() => ac.abort(), 20);
    const r = await p;
    assert.equal(r.status, 'critical');
  });

  test('an invalid URL is critical, not a throw', async () => {
    const r = await prober.run({ ...base, http: 'not a url' }, signal);
    assert.equal(r.status, 'critical');
    assert.match(r.output, /^Get "not a url": /);
  });
});

describe('tcp prober', () => {
  const tcp = createTcpProber();
  const signal = new AbortController().signal;
  const def = (addr: string, extra: Partial<CheckDefinition> = {}): CheckDefinition => ({
    ...base,
    type: 'tcp',
    tcp: addr,
    ...extra,
  });

  test('a listener is passing', async () => {
    const server = net.createServer((s) => s.end());
    const port = await listen(server);
    try {
      assert.deepEqual(await tcp.run(def(`127.0.0.1:${port}`), signal), {
        status: 'passing',
        output: `TCP connect 127.0.0.1:${port}: Success`,
      });
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  test('a closed port is critical', async () => {
    const port = await closedPort();
    assert.deepEqual(await tcp.run(def(`127.0.0.1:${port}`), signal), {
      status: 'critical',
      output: `dial tcp 127.0.0.1:${port}: connect: connection refused`,
    });
  });

  test('a malformed address is critical', async () => {
    const r = await tcp.run(def('127.0.0.1'), signal);
    assert.equal(r.status, 'critical');
    assert.equal(r.output, 'dial tcp: address 127.0.0.1: missing port in address');
  });

  test('IPv6 literals in brackets', async () => {
    const server = net.createServer((s) => s.end());
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(0, '::1', () => resolve(true));
    });
    if (!ok) return; // no IPv6 loopback on this machine
    const port = (server.address() as net.AddressInfo).port;
    try {
      assert.equal((await tcp.run(def(`[::1]:${port}`), signal)).status, 'passing');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('http prober over TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'phare-health-tls-'));
  let server: https.Server | undefined;
  let port = 0;
  const prober = createHttpProber();
  const signal = new AbortController().signal;

  before(async () => {
    // A throwaway self-signed certificate; skip the suite where openssl is missing.
    const gen = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=phare.test',
        '-keyout',
        'key.pem',
        '-out',
        'cert.pem',
      ],
      { cwd: dir, timeout: 30_000, stdio: 'ignore' },
    );
    if (gen.status !== 0) return;
    server = https.createServer(
      { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
      (_req, res) => res.end('secure'),
    );
    port = await listen(server);
  });
  after(async () => {
    await prober.close();
    if (server) await new Promise((r) => server?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  test('a self-signed certificate is critical unless TLSSkipVerify', async (t) => {
    if (!server) return t.skip('openssl not available');
    const url = `https://127.0.0.1:${port}/`;
    const strict = await prober.run({ ...base, http: url }, signal);
    assert.equal(strict.status, 'critical');
    assert.match(strict.output, /^Get "https:\/\/127\.0\.0\.1:\d+\/": /);
    assert.deepEqual(await prober.run({ ...base, http: url, tlsSkipVerify: true }, signal), {
      status: 'passing',
      output: `HTTP GET ${url}: 200 OK Output: secure`,
    });
  });
});
