/**
 * Graceful shutdown: in-process (order of steps, idempotence, forced exits; exit injected) and against a
 * real child process that gets SIGTERM under keep-alive load.
 *
 * The child service is this same file run with PHARE_SHUTDOWN_FIXTURE=1 (see `runFixture`), so the test and
 * the service it kills stay side by side.
 */
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { createGracefulShutdown, createHealth } from '../../src/health/index.ts';

const FIXTURE_ENV = 'PHARE_SHUTDOWN_FIXTURE';
const DRAIN_DELAY_MS = 1500;
const SLOW_MS = 2500;

/** Messages the fixture sends its parent over IPC. */
type FixtureMessage =
  | { type: 'listening'; port: number }
  | { type: 'slow-started' }
  | { type: 'deregistered' }
  | { type: 'closed' };

/** The service under test: keep-alive HTTP, a slow route, health endpoints and graceful shutdown. */
async function runFixture(): Promise<void> {
  const send = (m: FixtureMessage) => process.send?.(m);
  const health = createHealth({ logger: pino({ level: 'silent' }), checks: { self: async () => {} } });
  const server = createServer((req, res) => {
    if (health.handle(req, res)) return;
    if (req.url === '/slow') {
      send({ type: 'slow-started' });
      setTimeout(() => res.end('slow done'), SLOW_MS);
      return;
    }
    res.end('ok');
  });
  createGracefulShutdown({
    server,
    health,
    drainDelayMs: DRAIN_DELAY_MS,
    timeoutMs: 15_000,
    logger: pino({ level: 'silent' }),
    // Stands in for the SDK deregistering from the agent: the parent's "client" learns of it over IPC.
    beforeShutdown: () => send({ type: 'deregistered' }),
    onShutdown: () => send({ type: 'closed' }),
    exit: (code) => {
      process.disconnect?.();
      process.exitCode = code;
    },
  });
  server.listen(0, '127.0.0.1', () => {
    health.markReady();
    send({ type: 'listening', port: (server.address() as AddressInfo).port });
  });
}

if (process.env[FIXTURE_ENV] === '1') {
  await runFixture();
} else {
  registerTests();
}

function registerTests(): void {
  const silent = pino({ level: 'silent' });

  async function listen(server: Server): Promise<string> {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  test('steps run in order: readiness fails, beforeShutdown, drain, close, onShutdown, exit(0)', async () => {
    const steps: string[] = [];
    const health = createHealth({ logger: silent });
    health.markReady();
    const server = createServer((req, res) => void (health.handle(req, res) || res.end('ok')));
    const base = await listen(server);
    server.on('close', () => steps.push('server closed'));
    let exitCode: number | undefined;
    const graceful = createGracefulShutdown({
      server,
      health,
      drainDelayMs: 200,
      timeoutMs: 10_000,
      signals: [],
      logger: silent,
      beforeShutdown: async () => {
        steps.push(`beforeShutdown (ready ${(await fetch(`${base}/health/ready`)).status})`);
      },
      onShutdown: () => void steps.push('onShutdown'),
      exit: (code) => {
        exitCode = code;
        steps.push(`exit ${code}`);
      },
    });
    graceful.addBeforeShutdown(async () => {
      // Requests during the drain delay are served, and told to close their connection.
      const res = await fetch(`${base}/work`);
      steps.push(`drain request ${res.status} connection=${res.headers.get('connection')}`);
      await res.text();
    });
    const first = graceful.shutdown('test');
    assert.equal(graceful.shuttingDown, true);
    assert.equal(graceful.shutdown('again'), first, 'idempotent');
    await first;
    assert.deepEqual(steps, [
      'beforeShutdown (ready 503)',
      'drain request 200 connection=close',
      'server closed',
      'onShutdown',
      'exit 0',
    ]);
    assert.equal(exitCode, 0);
  });

  test('a hung request is cut at timeoutMs and the exit code is 1; a failing hook does not stop the sequence', async () => {
    const server = createServer(() => {
      /* never answers */
    });
    const base = await listen(server);
    const codes: number[] = [];
    const graceful = createGracefulShutdown({
      server,
      drainDelayMs: 0,
      timeoutMs: 300,
      signals: [],
      logger: silent,
      beforeShutdown: () => {
        throw new Error('registry unreachable');
      },
      exit: (code) => void codes.push(code),
    });
    const hung = fetch(`${base}/hang`).then(
      () => 'answered',
      () => 'cut',
    );
    // Wait until the request reached the server, then shut down.
    while ((await connections(server)) === 0) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await graceful.shutdown();
    assert.deepEqual(codes, [1], 'forced exit once, not again when the sequence finishes');
    assert.equal(await hung, 'cut');
  });

  test('a second signal forces the exit at once', async () => {
    const server = createServer((_req, res) => res.end());
    await listen(server);
    const codes: number[] = [];
    // process.emit only calls JS listeners; no real signal is sent. (Not SIGUSR2: Node reports on it.)
    const listenersBefore = process.listenerCount('SIGHUP');
    const graceful = createGracefulShutdown({
      server,
      drainDelayMs: 5_000,
      timeoutMs: 20_000,
      signals: ['SIGHUP'],
      logger: silent,
      exit: (code) => void codes.push(code),
    });
    try {
      process.emit('SIGHUP', 'SIGHUP');
      assert.equal(graceful.shuttingDown, true);
      assert.deepEqual(codes, []);
      process.emit('SIGHUP', 'SIGHUP');
      assert.deepEqual(codes, [1]);
    } finally {
      graceful.dispose();
      server.close();
    }
    assert.equal(process.listenerCount('SIGHUP'), listenersBefore);
  });

  test('options are validated', () => {
    assert.throws(() => createGracefulShutdown({ drainDelayMs: -1, signals: [] }), {
      code: 'PHARE_ERR_INVALID_ARGUMENT',
      message: /gracefulShutdown\.drainDelayMs: expected a number >= 0, got -1/,
    });
  });

  test('SIGTERM to a real service under keep-alive load: no accepted request fails, the in-flight slow one completes', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, [FIXTURE_ENV]: '1' };
    // The test runner's context variable would make the child report as a test file.
    delete env['NODE_TEST_CONTEXT'];
    const child = fork(import.meta.filename, [], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const events: string[] = [];
    const messages = new Map<string, (m: FixtureMessage) => void>();
    const next = (type: FixtureMessage['type']) =>
      new Promise<FixtureMessage>((resolve) => messages.set(type, resolve));
    const listening = next('listening');
    child.on('message', (m: FixtureMessage) => {
      events.push(m.type);
      messages.get(m.type)?.(m);
    });
    const dispatcher = new Agent({ connections: 4, keepAliveTimeout: 30_000 });
    try {
      const msg = (await listening) as { type: 'listening'; port: number };
      const base = `http://127.0.0.1:${msg.port}`;
      const results = { ok: 0, failed: [] as string[], connectionClose: 0 };
      let sending = true;

      // Four keep-alive loops, like a service client with pooled connections.
      const loop = async () => {
        while (sending) {
          try {
            const res = await request(`${base}/work`, { dispatcher });
            const body = await res.body.text();
            if (res.statusCode === 200 && body === 'ok') results.ok++;
            else results.failed.push(`HTTP ${res.statusCode} ${body}`);
            if (res.headers['connection'] === 'close') results.connectionClose++;
          } catch (err) {
            results.failed.push(String(err));
          }
        }
      };
      const loops = [loop(), loop(), loop(), loop()];
      while (results.ok < 50 && results.failed.length === 0) await new Promise((r) => setTimeout(r, 10));

      const slowStarted = next('slow-started');
      const slow = request(`${base}/slow`, { dispatcher }).then(async (res) => ({
        status: res.statusCode,
        body: await res.body.text(),
      }));
      await slowStarted;

      const deregistered = next('deregistered');
      child.kill('SIGTERM');
      await deregistered;
      // Readiness fails from the first step on.
      const ready = await request(`${base}/health/ready`, { dispatcher });
      await ready.body.text();
      assert.equal(ready.statusCode, 503);
      // The client learns of the deregistration well within the drain delay, then stops sending.
      await new Promise((r) => setTimeout(r, 100));
      sending = false;
      await Promise.all(loops);

      assert.deepEqual(await slow, { status: 200, body: 'slow done' });
      const [code, signal] = await exited;
      assert.deepEqual(results.failed, []);
      assert.ok(results.ok >= 50, `expected load, got ${results.ok} requests`);
      assert.ok(results.connectionClose > 0, 'responses during the drain carry Connection: close');
      assert.deepEqual({ code, signal }, { code: 0, signal: null });
      assert.deepEqual(events, ['listening', 'slow-started', 'deregistered', 'closed']);
    } finally {
      await dispatcher.close();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
}

function connections(server: Server): Promise<number> {
  return new Promise((resolve) => server.getConnections((_err, n) => resolve(n)));
}
