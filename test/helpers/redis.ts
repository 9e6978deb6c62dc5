/**
 * A real Redis server for tests (Debian package `redis-server`) on a free loopback port in a temp dir,
 * without persistence, stoppable and restartable mid-test.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from './postgres.ts';

/** Path of `redis-server`, if installed. */
export function redisServerBin(): string | undefined {
  const dirs = (process.env['PATH'] ?? '')
    .split(delimiter)
    .concat(['/usr/bin', '/usr/local/bin', '/usr/sbin']);
  for (const d of dirs) {
    if (d && existsSync(join(d, 'redis-server'))) return join(d, 'redis-server');
  }
  return undefined;
}

/** `false` when Redis is installed, else the reason to pass to `test(…, { skip })`. */
export const REDIS_SKIP: string | false = redisServerBin()
  ? false
  : 'redis-server not found on PATH (apt-get install redis-server)';

/** A running (or stopped, restartable) Redis server. */
export interface RedisServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly running: boolean;
  /** Stops the server (SIGTERM; nothing is saved). */
  stop(): Promise<void>;
  /** Starts it again on the same port; resolves once it answers PING. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
  log(): string;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/**
 * Starts `redis-server` on a free port. Call `close()` in an `after` hook.
 *
 * @example
 * const redis = await startRedis();
 * const client = new Redis(redis.port, '127.0.0.1');
 * after(() => redis.close());
 */
export async function startRedis(): Promise<RedisServer> {
  const bin = redisServerBin();
  if (!bin) throw new Error(REDIS_SKIP || 'no redis');
  const dir = mkdtempSync(join(tmpdir(), 'phare-redis-'));
  let port = await freePort();
  let child: ChildProcess | undefined;
  let logText = '';

  const launch = async () => {
    logText += `--- start on port ${port}\n`;
    const c = spawn(
      bin,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
        '--protected-mode',
        'no',
        '--loglevel',
        'warning',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    live.add(c);
    c.stdout?.on('data', (d) => {
      logText += String(d);
    });
    c.stderr?.on('data', (d) => {
      logText += String(d);
    });
    c.once('exit', () => live.delete(c));
    child = c;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (c.exitCode !== null || c.signalCode !== null) {
        throw new Error(`redis-server exited (${c.exitCode ?? c.signalCode}) while starting:\n${logText}`);
      }
      if (await ping(port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server did not answer PING within 20 s:\n${logText}`);
  };

  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };

  for (let attempt = 0; ; attempt++) {
    try {
      await launch();
      break;
    } catch (err) {
      await stop();
      if (attempt >= 2 || !/address already in use|could not create server/i.test(logText)) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
      port = await freePort();
    }
  }

  const isRunning = () => child !== undefined && child.exitCode === null && child.signalCode === null;

  return {
    host: '127.0.0.1',
    get port() {
      return port;
    },
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    get running() {
      return isRunning();
    },
    stop,
    async start() {
      if (isRunning()) return;
      await launch();
    },
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    log: () => logText,
  };
}

/** Sends an inline PING; true when the answer is +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('error', () => done(false));
    s.once('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      buf += String(d);
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}
