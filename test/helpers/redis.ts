/**
 * A real Redis server for tests (Debian package `redis-server`) on a free loopback port in a temp dir,
 * without persistence, stoppable and restartable mid-test.
 */

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { dependencySkip } from './requires.ts';
import { startServerProcess } from './server-process.ts';

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
export const REDIS_SKIP: string | false = dependencySkip(
  redisServerBin() ? undefined : 'redis-server on PATH (apt-get install redis-server)',
);

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
  const server = await startServerProcess({
    dir,
    spawn: (port) =>
      spawn(
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
      ),
    async ready(c, port, log) {
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        if (c.exitCode !== null || c.signalCode !== null) {
          throw new Error(`redis-server exited (${c.exitCode ?? c.signalCode}) while starting:\n${log()}`);
        }
        if (await ping(port)) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`redis-server did not answer PING within 20 s:\n${log()}`);
    },
    // Nothing is saved: SIGTERM is a plain stop.
    stopSignal: 'SIGTERM',
    stopGraceMs: 10_000,
    portTaken: /address already in use|could not create server/i,
  });

  return {
    host: '127.0.0.1',
    get port() {
      return server.port;
    },
    get url() {
      return `redis://127.0.0.1:${server.port}`;
    },
    get running() {
      return server.running;
    },
    stop: server.stop,
    start: server.start,
    close: server.close,
    log: server.log,
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
