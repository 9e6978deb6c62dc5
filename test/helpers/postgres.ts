/**
 * A real PostgreSQL server for tests (Debian package `postgresql`): `initdb` into a temp dir, `postgres`
 * on a free loopback port, stopped (and restartable) on demand, removed afterwards. PostgreSQL refuses to
 * run as root, so under root the server runs as the `postgres` user (or `nobody`) that owns the temp dir.
 */

import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { dependencySkip } from './requires.ts';
import { startServerProcess } from './server-process.ts';

/** Where Debian puts the server binaries: /usr/lib/postgresql/<major>/bin (newest first). */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const majors = readdirSync(root)
    .filter((d) => /^\d+$/.test(d))
    .sort((a, b) => Number(b) - Number(a));
  for (const m of majors) {
    const bin = join(root, m, 'bin');
    if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'postgres'))) return bin;
  }
  return undefined;
}

/** `false` when PostgreSQL is installed, else the reason to pass to `test(…, { skip })`. */
export const POSTGRES_SKIP: string | false = dependencySkip(
  postgresBinDir()
    ? undefined
    : 'PostgreSQL binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)',
);

/** A running (or stopped, restartable) PostgreSQL server. */
export interface PostgresServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly user: 'postgres';
  readonly database: 'postgres';
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust auth on loopback). */
  readonly url: string;
  /** Whether the server process is up. */
  readonly running: boolean;
  /** Fast shutdown (SIGINT): open connections are terminated, like a database going away mid-test. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory; resolves once it accepts queries. */
  start(): Promise<void>;
  /** Stops the server and removes its directory. */
  close(): Promise<void>;
  /** What the server logged (for assertion messages). */
  log(): string;
}

/**
 * Starts PostgreSQL on a free port in a temp directory. Call `close()` in an `after` hook.
 *
 * @example
 * const db = await startPostgres();
 * const pool = new pg.Pool({ connectionString: db.url });
 * after(() => db.close());
 */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = postgresBinDir();
  if (!bin) throw new Error(POSTGRES_SKIP || 'no postgres');
  const dir = mkdtempSync(join(tmpdir(), 'phare-pg-'));
  const data = join(dir, 'data');
  const owner = runAsUser();
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const ids = owner ? { uid: owner.uid, gid: owner.gid } : {};
  const init = spawnSync(
    join(bin, 'initdb'),
    ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions'],
    { ...ids, encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C' } },
  );
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status}): ${init.stderr || init.stdout}`);
  }

  const server = await startServerProcess({
    dir,
    spawn: (port) =>
      spawn(
        join(bin, 'postgres'),
        [
          '-D',
          data,
          '-p',
          String(port),
          '-k',
          dir,
          '-c',
          'listen_addresses=127.0.0.1',
          // Durability is irrelevant for a throw-away test database; these make start and stop fast.
          '-c',
          'fsync=off',
          '-c',
          'synchronous_commit=off',
          '-c',
          'full_page_writes=off',
          '-c',
          'max_connections=30',
          '-c',
          'shared_buffers=16MB',
        ],
        { ...ids, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '', LC_ALL: 'C' } },
      ),
    ready: waitForQueries,
    // Fast shutdown: open connections are terminated, like a database going away mid-test.
    stopSignal: 'SIGINT',
    stopGraceMs: 15_000,
    portTaken: /could not (bind|create listen)/i,
  });

  return {
    host: '127.0.0.1',
    get port() {
      return server.port;
    },
    user: 'postgres',
    database: 'postgres',
    get url() {
      return `postgres://postgres@127.0.0.1:${server.port}/postgres`;
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

/** The user PostgreSQL runs as under root (it refuses root): `postgres`, else `nobody`; undefined when not root. */
export function runAsUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${name}:`));
    if (line) {
      const [, , uid, gid] = line.split(':');
      return { uid: Number(uid), gid: Number(gid) };
    }
  }
  // Last resort: ask the system (NSS users not in /etc/passwd).
  const uid = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

async function waitForQueries(child: ChildProcess, port: number, log: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`postgres exited (${child.exitCode ?? child.signalCode}) while starting:\n${log()}`);
    }
    const client = new pg.Client({
      host: '127.0.0.1',
      port,
      user: 'postgres',
      database: 'postgres',
      connectionTimeoutMillis: 2000,
    });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return;
    } catch (err) {
      lastErr = err;
      await client.end().catch(() => {});
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`postgres did not accept queries within 30 s: ${String(lastErr)}\n${log()}`);
}
