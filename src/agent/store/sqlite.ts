import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { phareError } from '../../api/index.ts';
import type { Store, StoreOp, StoreSnapshot, StoreTable } from './store.ts';

/** Options of {@link createSqliteStore}. */
export interface SqliteStoreOptions {
  /** Database file; its directory is created if missing. */
  path: string;
}

const TABLES: readonly StoreTable[] = ['nodes', 'services', 'checks'];

/**
 * The default store: one SQLite file in WAL mode with `synchronous=FULL`, so a commit is on disk when
 * it returns. Writes issued in the same turn of the event loop share one transaction and one fsync
 * (group commit), which keeps durable throughput high under concurrency.
 *
 * @example
 * const store = createSqliteStore({ path: '.phare/data/phare.db' });
 */
export function createSqliteStore(options: SqliteStoreOptions): Store {
  let db: DatabaseSync;
  try {
    mkdirSync(dirname(options.path), { recursive: true });
    // Loaded at call time, not by a static import: on a Node without node:sqlite a static import fails
    // while linking, before `phare/agent` can say which Node it needs (src/node-check.ts).
    const sqlite = process.getBuiltinModule('node:sqlite');
    db = new sqlite.DatabaseSync(options.path);
    db.exec('PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;');
    for (const t of TABLES)
      db.exec(`CREATE TABLE IF NOT EXISTS ${t} (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
    db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
  } catch (cause) {
    throw phareError(
      'PHARE_ERR_STORE',
      `store: cannot open SQLite database ${options.path}: ${String(cause)}`,
      {
        cause,
      },
    );
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
    async load(): Promise<StoreSnapshot> {
      const read = (t: StoreTable) =>
        (db.prepare(`SELECT value FROM ${t} ORDER BY key`).all() as { value: string }[]).map((r) =>
          JSON.parse(r.value),
        );
      const row = db.prepare("SELECT value FROM meta WHERE key = 'index'").get() as
        | { value: string }
        | undefined;
      return {
        index: row ? Number(row.value) : 0,
        nodes: read('nodes'),
        services: read('services'),
        checks: read('checks'),
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
