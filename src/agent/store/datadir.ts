/**
 * The data dir: one agent at a time, and a memory of what it held.
 *
 * **Lock.** `<data-dir>/agent.lock` is a tiny SQLite database the agent opens with
 * `locking_mode=EXCLUSIVE` and keeps locked while it runs. SQLite's locks are POSIX record locks, which the
 * kernel drops when the process dies — so a second agent on the same dir is refused (exit 2, naming the
 * holder's PID, read from `/proc/locks`), and a lock left by a `kill -9`'d agent blocks nothing: there is
 * no stale lock file to clean up. Consul takes a similar lock on its data dir (`agent/consul/server.go`,
 * BoltDB's flock).
 *
 * **Manifest.** The same file records that a store was created in the dir (`store_created`), which is how a
 * start-up tells "a new data dir" (start empty) from "a data dir whose database vanished or was truncated"
 * (refuse to start: starting empty would silently drop every registration).
 */
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { phareError } from '../../api/index.ts';

/** The file holding the lock and the manifest. */
export const LOCK_FILE = 'agent.lock';

/** An open, locked data dir. */
export interface DataDir {
  readonly path: string;
  /** When a store was first created in this dir (ISO time), or undefined for a new dir. */
  readonly storeCreated: string | undefined;
  /** Records that the store now exists (called once it was created and initialized). */
  markStoreCreated(): void;
  /** Releases the lock. Idempotent. */
  close(): void;
}

/**
 * Creates (if needed) and locks a data dir. Throws PHARE_ERR_LOCKED when another process holds it,
 * PHARE_ERR_STORE when it cannot be created or opened.
 *
 * @example
 * const dir = openDataDir('.phare/data');
 * try { ... } finally { dir.close(); }
 */
export function openDataDir(path: string): DataDir {
  const file = join(path, LOCK_FILE);
  let db: DatabaseSync;
  try {
    mkdirSync(path, { recursive: true });
    // node:sqlite loaded at call time, as in sqlite.ts (src/node-check.ts names the Node it needs)
    db = new (process.getBuiltinModule('node:sqlite').DatabaseSync)(file, { timeout: 0 });
  } catch (cause) {
    throw phareError('PHARE_ERR_STORE', `data dir ${path}: cannot open ${file}: ${String(cause)}`, { cause });
  }
  try {
    // The first write takes the EXCLUSIVE lock; locking_mode=EXCLUSIVE keeps it until the connection closes.
    db.exec('PRAGMA locking_mode=EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS manifest (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
    db.prepare("INSERT OR REPLACE INTO manifest (key, value) VALUES ('pid', ?)").run(String(process.pid));
    db.exec('COMMIT');
  } catch (cause) {
    db.close();
    if (isBusy(cause)) {
      const pid = lockHolder(file);
      throw phareError(
        'PHARE_ERR_LOCKED',
        `data dir ${path} is in use by another agent${pid ? ` (PID ${pid})` : ''}: stop it, or give this agent ` +
          'another --data-dir',
        { cause },
      );
    }
    throw phareError(
      'PHARE_ERR_STORE_DAMAGED',
      `data dir ${path}: ${file} is not a Phare lock file (${String((cause as Error).message ?? cause)}); ` +
        'move it away if nothing else uses this dir',
      { cause },
    );
  }
  const row = db.prepare("SELECT value FROM manifest WHERE key = 'store_created'").get() as
    | { value: string }
    | undefined;
  let closed = false;
  return {
    path,
    storeCreated: row?.value,
    markStoreCreated() {
      db.prepare("INSERT OR IGNORE INTO manifest (key, value) VALUES ('store_created', ?)").run(
        new Date().toISOString(),
      );
    },
    close() {
      if (closed) return;
      closed = true;
      db.close();
    },
  };
}

function isBusy(err: unknown): boolean {
  const e = err as { errcode?: number; message?: string };
  // SQLITE_BUSY (5) and SQLITE_LOCKED (6), primary codes
  return (
    (e.errcode !== undefined && [5, 6].includes(e.errcode & 0xff)) || /locked|busy/i.test(e.message ?? '')
  );
}

/** The PID holding a POSIX lock on `file`, from /proc/locks (Linux); undefined elsewhere or if unknown. */
function lockHolder(file: string): number | undefined {
  try {
    const ino = statSync(file).ino;
    for (const line of readFileSync('/proc/locks', 'utf8').split('\n')) {
      // "1: POSIX  ADVISORY  WRITE 12345 fd:01:1234567 1073741824 1073742335"
      const f = line.trim().split(/\s+/);
      const dev = f[5]?.split(':');
      if (f[1] === 'POSIX' && dev?.length === 3 && Number(dev[2]) === ino) {
        const pid = Number(f[4]);
        if (pid > 0) return pid;
      }
    }
  } catch {
    // no /proc/locks (not Linux): the message goes without the PID
  }
  return undefined;
}
