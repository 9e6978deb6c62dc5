import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { phareError } from '../../api/index.ts';
import { KEY_SCHEMA, storeKey } from './keys.ts';
import {
  type LoadOptions,
  STORE_TABLES,
  type Store,
  type StoreOp,
  type StoreSnapshot,
  type StoreTable,
} from './store.ts';
import { inspectWal } from './wal.ts';

/** Options of {@link createSqliteStore}. */
export interface SqliteStoreOptions {
  /** Database file; its directory is created if missing. */
  path: string;
  /**
   * A store was created at `path` before (the data dir's manifest says so): a missing or empty file is then
   * damage, not a new data dir, and the store refuses to open. @default false
   */
  existing?: boolean;
  /** Told about damage the store cannot tell from a crash (it opens anyway). @default ignore */
  onWarning?: (message: string) => void;
}

const TABLES: readonly StoreTable[] = STORE_TABLES;
const ALL_TABLES = [...TABLES, 'meta'] as const;

/**
 * The default store: one SQLite file in WAL mode with `synchronous=FULL`, so a commit is on disk when
 * it returns. Writes issued in the same turn of the event loop share one transaction and one fsync
 * (group commit), which keeps durable throughput high under concurrency.
 *
 * Opening refuses damaged data with PHARE_ERR_STORE_DAMAGED and a message that says what to do, never a
 * stack trace: a file that vanished or was truncated to 0 bytes (with `existing`), a file that is not
 * SQLite, a failed `PRAGMA quick_check` (a truncated or overwritten file), a table of ours with a foreign
 * shape, a schema newer than this Phare, and (in `load`) a row that is not JSON or that `options.check`
 * rejects — naming the file, the table, the row ID and the key. Keys of schema 1 (`node + "\0" + id`) are
 * migrated to the unambiguous schema 2 (keys.ts) in one transaction.
 *
 * @example
 * const store = createSqliteStore({ path: '.phare/data/phare.db' });
 */
export function createSqliteStore(options: SqliteStoreOptions): Store {
  const file = options.path;
  const damaged = (what: string, cause?: unknown) =>
    phareError(
      'PHARE_ERR_STORE_DAMAGED',
      `store: ${file} ${what}. Restore the data dir from a backup, or to start over move ${dirname(file)} away ` +
        '(every registration in it is lost) or give the agent another --data-dir',
      cause === undefined ? undefined : { cause },
    );
  if (options.existing) {
    if (!existsSync(file)) throw damaged('is missing, but this data dir held a store (see agent.lock)');
    if (statSync(file).size === 0)
      throw damaged('is empty (0 bytes), but this data dir held a store: the file was truncated');
  }
  checkWal(`${file}-wal`, damaged, options.onWarning ?? (() => {}));
  let db: DatabaseSync;
  try {
    mkdirSync(dirname(file), { recursive: true });
    // Loaded at call time, not by a static import: on a Node without node:sqlite a static import fails
    // while linking, before `phare/agent` can say which Node it needs (src/node-check.ts).
    const sqlite = process.getBuiltinModule('node:sqlite');
    db = new sqlite.DatabaseSync(file);
  } catch (cause) {
    throw phareError('PHARE_ERR_STORE', `store: cannot open SQLite database ${file}: ${String(cause)}`, {
      cause,
    });
  }
  try {
    db.exec('PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;');
    checkIntegrity(db, damaged);
    checkTables(db, damaged);
    for (const t of TABLES)
      db.exec(`CREATE TABLE IF NOT EXISTS ${t} (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
    migrateKeys(db, damaged);
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'PHARE_ERR_STORE_DAMAGED') throw err;
    const e = err as { errcode?: number; message?: string };
    // SQLITE_CORRUPT (11), SQLITE_NOTADB (26): bad data, not a bad environment
    if (e.errcode !== undefined && [11, 26].includes(e.errcode & 0xff))
      throw damaged(`is not a readable SQLite database (${e.message})`, err);
    throw phareError('PHARE_ERR_STORE', `store: cannot open SQLite database ${file}: ${String(err)}`, {
      cause: err,
    });
  }
  const put: Record<StoreTable, StatementSync> = Object.fromEntries(
    TABLES.map((t) => [t, db.prepare(`INSERT OR REPLACE INTO ${t} (key, value) VALUES (?, ?)`)]),
  ) as Record<StoreTable, StatementSync>;
  const del: Record<StoreTable, StatementSync> = Object.fromEntries(
    TABLES.map((t) => [t, db.prepare(`DELETE FROM ${t} WHERE key = ?`)]),
  ) as Record<StoreTable, StatementSync>;
  const putIndex = db.prepare(
    "INSERT INTO meta (key, value) VALUES ('index', ?) ON CONFLICT(key) DO UPDATE SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
  );

  interface Pending {
    ops: readonly StoreOp[];
    index: number;
    resolve: () => void;
    reject: (err: unknown) => void;
  }
  let queue: Pending[] = [];
  let scheduled = false;
  let closed = false;

  function flush(): void {
    scheduled = false;
    const batch = queue;
    queue = [];
    if (batch.length === 0) return;
    let maxIndex = 0;
    try {
      db.exec('BEGIN IMMEDIATE');
      for (const p of batch) {
        for (const op of p.ops) {
          if (op.type === 'put') put[op.table].run(op.key, JSON.stringify(op.value));
          else del[op.table].run(op.key);
        }
        if (p.index > maxIndex) maxIndex = p.index;
      }
      putIndex.run(String(maxIndex));
      db.exec('COMMIT');
    } catch (cause) {
      try {
        db.exec('ROLLBACK');
      } catch {
        // the transaction may not have started; nothing to roll back
      }
      const err = phareError('PHARE_ERR_STORE', `store: commit failed: ${String(cause)}`, { cause });
      for (const p of batch) p.reject(err);
      return;
    }
    for (const p of batch) p.resolve();
  }

  return {
    kind: 'sqlite',
    location: file,
    async load(opts: LoadOptions = {}): Promise<StoreSnapshot> {
      const read = (t: StoreTable) =>
        (db.prepare(`SELECT rowid, key, value FROM ${t} ORDER BY key`).all() as unknown as Row[]).map((r) => {
          let value: unknown;
          try {
            value = JSON.parse(r.value);
          } catch {
            throw damaged(
              `has a bad row: table ${t}, rowid ${r.rowid}, key ${JSON.stringify(r.key)}: not JSON`,
            );
          }
          const problem = opts.check?.(t, value);
          if (problem !== undefined)
            throw damaged(
              `has a bad row: table ${t}, rowid ${r.rowid}, key ${JSON.stringify(r.key)}: ${problem}`,
            );
          return value;
        });
      const row = db.prepare("SELECT value FROM meta WHERE key = 'index'").get() as
        | { value: string }
        | undefined;
      const index = row ? Number(row.value) : 0;
      if (!Number.isSafeInteger(index) || index < 0)
        throw damaged(
          `has a bad row: table meta, key "index": ${JSON.stringify(row?.value)} is not an index`,
        );
      return {
        index,
        nodes: read('nodes'),
        services: read('services'),
        checks: read('checks'),
        kv: read('kv'),
        sessions: read('sessions'),
        acl: read('acl'),
      };
    },
    write(ops: readonly StoreOp[], index: number): Promise<void> {
      if (closed) return Promise.reject(phareError('PHARE_ERR_STORE_CLOSED', 'store: write after close'));
      return new Promise<void>((resolve, reject) => {
        queue.push({ ops, index, resolve, reject });
        if (!scheduled) {
          scheduled = true;
          // setImmediate lets every request parsed in this turn of the loop join the same commit.
          setImmediate(flush);
        }
      });
    },
    async close(): Promise<void> {
      if (closed) return;
      flush();
      closed = true;
      db.close();
    },
  };
}

interface Row {
  rowid: number;
  key: string;
  value: string;
}

type Damaged = (what: string, cause?: unknown) => Error;

/** `PRAGMA quick_check`: catches truncated and overwritten pages (a few ms for thousands of rows). */
function checkIntegrity(db: DatabaseSync, damaged: Damaged): void {
  const rows = db.prepare('PRAGMA quick_check(3)').all() as { quick_check: string }[];
  const problems = rows.map((r) => r.quick_check).filter((m) => m !== 'ok');
  if (problems.length > 0) throw damaged(`is damaged (integrity check: ${problems.join('; ')})`);
}

/** Our tables, where they exist, must have our shape: a table of the same name from elsewhere is refused. */
function checkTables(db: DatabaseSync, damaged: Damaged): void {
  for (const t of ALL_TABLES) {
    const cols = db.prepare(`PRAGMA table_info(${t})`).all() as {
      name: string;
      type: string;
      pk: number;
    }[];
    if (cols.length === 0) continue;
    const shape = cols.map((c) => `${c.name} ${c.type}${c.pk ? ' PRIMARY KEY' : ''}`).join(', ');
    if (shape !== 'key TEXT PRIMARY KEY, value TEXT')
      throw damaged(
        `has a table "${t}" that is not Phare's (columns: ${shape}; expected key TEXT PRIMARY KEY, value TEXT)`,
      );
  }
}

/** Brings keys to {@link KEY_SCHEMA}, in one transaction; refuses data from a newer Phare. */
function migrateKeys(db: DatabaseSync, damaged: Damaged): void {
  const row = db.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as
    | { value: string }
    | undefined;
  const schema = row ? Number(row.value) : 1;
  if (schema === KEY_SCHEMA) return;
  if (!(schema >= 1 && schema < KEY_SCHEMA))
    throw damaged(
      `has key schema ${JSON.stringify(row?.value)}; this Phare reads schema ${KEY_SCHEMA} and older`,
    );
  db.exec('BEGIN IMMEDIATE');
  try {
    // schema 1: services and checks were keyed `node + "\0" + id`; nodes by lower-case name (unchanged)
    for (const t of ['services', 'checks'] as const) {
      const rows = db.prepare(`SELECT rowid, key, value FROM ${t}`).all() as unknown as Row[];
      const update = db.prepare(`UPDATE ${t} SET key = ? WHERE rowid = ?`);
      for (const r of rows) {
        const parts = r.key.split('\u0000');
        if (parts.length !== 2)
          throw damaged(
            `has a row whose key cannot be migrated: table ${t}, rowid ${r.rowid}, key ${JSON.stringify(r.key)} ` +
              '(a NUL inside a name; such names are refused since key schema 2); delete that row with sqlite3',
          );
        update.run(storeKey(parts[0] as string, parts[1] as string), r.rowid);
      }
    }
    db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)").run(String(KEY_SCHEMA));
    db.exec('COMMIT');
  } catch (err) {
    db.exec('ROLLBACK');
    throw err;
  }
}

/**
 * Looks at the write-ahead log before SQLite's recovery silently drops what it cannot use (wal.ts): a
 * header overwritten with garbage is refused (SQLite would drop every change since the last checkpoint);
 * a zeroed header (power loss) and a damaged frame after the valid ones (which a kill -9 between the two
 * writes of a frame also leaves) are reported and the store opens.
 */
function checkWal(wal: string, damaged: Damaged, warn: (message: string) => void): void {
  const r = inspectWal(wal);
  if (r.state === 'bad-header' && !r.zeroed)
    throw damaged(
      `has a write-ahead log ${wal} (${r.size} bytes) whose header is not SQLite's: opening would drop every ` +
        'change since the last checkpoint',
    );
  if (r.state === 'bad-header')
    warn(`store: ${wal} has a zeroed header (a power loss?): SQLite ignores it; changes in it are lost`);
  if (r.state === 'bad-frame')
    warn(
      `store: ${wal} is damaged at byte ${r.offset}, after ${r.validCommits} valid commits: SQLite keeps the ` +
        'log up to there. If the agent was killed while writing, that is the unacknowledged change it was ' +
        'writing; otherwise the disk or another program damaged the log and the changes after that point are lost',
    );
}
