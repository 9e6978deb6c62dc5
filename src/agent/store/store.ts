/**
 * The Store interface: where the catalog keeps its state durably. One conformance suite
 * (test/conformance/store.conformance.ts) runs against every backend.
 *
 * The rule every writer on top of a store keeps (docs/store.md): **a change is applied to what readers see,
 * and its index handed out, only after it is durable; a failed write changes nothing.** The catalog builds
 * a change, commits it with {@link Store.write}, and only when that resolves applies it to its in-memory
 * view, hands out its index and answers; when it rejects, the view and the index stay as they were. So the
 * index after a restart is never lower than one already served: every served index was committed first.
 * A shared store (etcd) keeps the same rule with its committed revisions as the only source of the view.
 */

/**
 * The tables the agent persists: the catalog's (`nodes`, `services`, `checks`), the KV store's (`kv`
 * entries and the `sessions` that lock them; src/agent/kv) and the ACL system's (`acl`: tokens, policies
 * and the bootstrap marker; src/agent/acl).
 */
export type StoreTable = 'nodes' | 'services' | 'checks' | 'kv' | 'sessions' | 'acl';

/** Every table, in load order. */
export const STORE_TABLES: readonly StoreTable[] = ['nodes', 'services', 'checks', 'kv', 'sessions', 'acl'];

/** One change in a write batch. */
export type StoreOp =
  | { type: 'put'; table: StoreTable; key: string; value: unknown }
  | { type: 'del'; table: StoreTable; key: string };

/** Everything a store holds, as loaded at start. */
export interface StoreSnapshot {
  /** The highest catalog index ever written; the agent never hands out a lower one after restart. */
  index: number;
  nodes: unknown[];
  services: unknown[];
  checks: unknown[];
  /** KV entries (src/agent/kv). */
  kv: unknown[];
  /** Sessions (src/agent/sessions). */
  sessions: unknown[];
  /** ACL tokens, policies and the bootstrap marker (src/agent/acl). */
  acl: unknown[];
}

/** Options of {@link Store.load}. */
export interface LoadOptions {
  /**
   * Checks each row's value as it is read; a returned text is the problem, and the store refuses to load
   * with PHARE_ERR_STORE_DAMAGED naming its file (or location), table and row. The catalog passes its
   * record shapes here, so a bad row is reported where it is, not as a crash later.
   */
  check?: (table: StoreTable, value: unknown) => string | undefined;
}

/**
 * A durable home for catalog state. Implementations: `memory` (for `--dev`), `sqlite` (default).
 *
 * @example
 * const store = openSqliteStore({ path: './.phare/data/phare.db' });
 * const snap = await store.load();
 * await store.write([{ type: 'put', table: 'services', key: 'n1/web', value: {...} }], 7);
 */
export interface Store {
  /** Backend name (`memory`, `sqlite`), for logs and metrics. */
  readonly kind: string;
  /** Where the data lives (a file path, an etcd prefix), for messages. */
  readonly location?: string;
  /** Reads the whole state. Called once, before any write. */
  load(options?: LoadOptions): Promise<StoreSnapshot>;
  /**
   * Applies `ops` atomically and records `index` (the store keeps the highest index ever written). Resolves
   * only once the batch is durable (on disk, or for a shared store, committed by its quorum); concurrent
   * calls may share one commit (group commit). Rejects with PHARE_ERR_STORE if it could not be written, and
   * then none of `ops` is applied: a caller may rely on "rejected" meaning "nothing changed".
   */
  write(ops: readonly StoreOp[], index: number): Promise<void>;
  /** Flushes pending writes and releases the backend. Writes after close reject with PHARE_ERR_STORE_CLOSED. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------- shared stores (etcd)
//
// A shared store is written by many agents. The catalog then never applies its own writes: it is a cache fed by
// the store's watch, so every agent applies the same committed changes in the same (revision) order, and the
// index of a change is the revision the store committed it at. Future replicated state (KV, sessions, ACL
// tokens) becomes more tables here: each backend maps a table to a key range (etcd) or an SQL table (sqlite),
// and the watch delivers their changes like the catalog's.

/**
 * Tables only a shared store has: agent membership, liveness (leased) and elections (leased); and for KV,
 * the lock-delays an invalidated session left (`lockdelays`, key -> until, so every agent honours them) and
 * one leased marker per TTL session (`sessionttls`: it vanishes when the session's lease expires, which is
 * how every agent learns the TTL lapsed, whichever agent the session was renewed through).
 */
export type ClusterTable = 'members' | 'live' | 'election' | 'lockdelays' | 'sessionttls';

/**
 * The two key spaces of a shared store, each with its own watch: the catalog's (`nodes`, `services`,
 * `checks` and the membership tables) and the KV store's (`kv`, `sessions`, `lockdelays`, `sessionttls`).
 * A KV write never wakes the catalog's watch and the reverse; one transaction never spans both.
 */
export type StoreSpace = 'catalog' | 'kv' | 'acl';

/**
 * The space a table lives in. ACL tokens and policies have a space of their own: every agent watches it,
 * and with its own prefix that watch carries only ACL changes, never the catalog's traffic.
 */
export function spaceOf(table: StoreTable | ClusterTable): StoreSpace {
  if (table === 'acl') return 'acl';
  return table === 'kv' || table === 'sessions' || table === 'lockdelays' || table === 'sessionttls'
    ? 'kv'
    : 'catalog';
}

/**
 * A write to a shared store; `lease` ties the key to an etcd lease (it vanishes when the lease expires). A
 * `del` with `prefix` deletes every key of the table starting with `key` (KV delete-tree: one range delete,
 * however many keys).
 */
export type SharedStoreOp =
  | { type: 'put'; table: StoreTable | ClusterTable; key: string; value: unknown; lease?: string }
  | { type: 'del'; table: StoreTable | ClusterTable; key: string; prefix?: boolean };

/**
 * A condition a guarded commit checks inside the store's transaction (etcd compare clauses), so a write
 * built on what this agent's cache showed applies only if nothing it read changed meanwhile, whichever agent
 * changed it: `modifyIndex` is the row's mod revision as read (0 = the row was absent); with `prefix`, no row
 * of the table under `key` was created or modified after `modifyIndex`.
 */
export interface StoreGuard {
  table: StoreTable | ClusterTable;
  key: string;
  modifyIndex: number;
  prefix?: boolean;
}

/** A record as a shared store holds it, with the revisions it was created and last modified at. */
export interface StoreRow {
  table: StoreTable | ClusterTable;
  key: string;
  value: unknown;
  createIndex: number;
  modifyIndex: number;
  /** The lease the key is attached to, if any. */
  lease?: string | undefined;
}

/** One committed change. A deletion carries the revision it happened at as `modifyIndex`. */
export type StoreChange =
  | ({ type: 'put' } & StoreRow)
  | { type: 'del'; table: StoreTable | ClusterTable; key: string; createIndex: number; modifyIndex: number };

/**
 * What a watch delivers: the changes committed at `index` (one transaction), in revision order; or, with no
 * changes, news that the store's revision reached `index`.
 */
export interface StoreEvent {
  index: number;
  changes: StoreChange[];
}

/** A running watch. */
export interface StoreWatch {
  /** The last revision delivered. */
  readonly index: number;
  /** Tells the watch which rows a load already delivered, so a re-list after compaction diffs against them. */
  prime(rows: readonly StoreRow[]): void;
  close(): Promise<void>;
}

/**
 * A store shared by several agents (etcd).
 *
 * @example
 * const { index, rows } = await store.loadRows();
 * const w = store.watch(index, (e) => catalog.applyCommitted(e));
 * w.prime(rows);
 * const rev = await store.commit([{ type: 'put', table: 'services', key: 'n1\u0000web', value: rec }]);
 */
export interface SharedStore extends Store {
  readonly shared: true;
  /** Every row under the store's prefix, with the revision of the read. */
  loadRows(): Promise<{ index: number; rows: StoreRow[] }>;
  /** Commits `ops` as one transaction; resolves with its revision. PHARE_ERR_NO_LEADER without quorum. */
  commit(ops: readonly SharedStoreOp[]): Promise<number>;
  /**
   * Commits `ops` as one transaction only if every guard holds at commit time (checked by the store, so two
   * agents racing on one key cannot both win). `ok` false: nothing was written, and `index` is the revision
   * the guards were checked at (wait for the cache to reach it, then rebuild the write). Ops may be empty: a
   * read-only check that what was read is still current.
   */
  commitIf(
    ops: readonly SharedStoreOp[],
    guards: readonly StoreGuard[],
  ): Promise<{ ok: boolean; index: number }>;
  /**
   * A quorum read of one space's shape: the store's revision now, how many rows the space holds and the
   * highest mod revision among them. A cache that applied every change up to some revision R holds the same
   * rows as the store now when `maxModifyIndex <= R` and the counts agree (no write and no deletion since):
   * how a cache fed by a prefix watch learns it is current without waiting for a change of its own prefix.
   * PHARE_ERR_NO_LEADER without quorum.
   */
  statSpace(space: StoreSpace): Promise<{ index: number; count: number; maxModifyIndex: number }>;
  /** Every row of one space (`kv`: the KV tables), with the revision of the read. */
  loadSpace(space: StoreSpace): Promise<{ index: number; rows: StoreRow[] }>;
  /** Watches every change after `fromIndex`; `space` defaults to the catalog's. */
  watch(fromIndex: number, onEvent: (e: StoreEvent) => void, space?: StoreSpace): StoreWatch;
  /** Grants a lease of `ttlSec` that nobody keeps alive (a session TTL: {@link SharedStore.renewLease}). */
  grantBareLease(ttlSec: number): Promise<string>;
  /** Renews a lease once; resolves with its remaining TTL in seconds, 0 when it has expired or is unknown. */
  renewLease(id: string): Promise<number>;
  /** Revokes a lease (best effort: an unknown lease is fine). */
  revokeLease(id: string): Promise<void>;
  /**
   * What a `?consistent` read must wait for, read through the cluster's quorum in one linearizable read
   * (PHARE_ERR_NO_LEADER without quorum): `index`, the revision of the last write committed under the store's
   * prefix by any agent; `live`, the keys of the `live` table that exist now. A lease expiry deletes `live`
   * rows at a revision no Phare write made, so it moves no `index`: the view has caught up once it has applied
   * `index` and holds no `live` row missing from `live` (or has applied `revision`, the cluster's revision
   * at the read, which covers everything).
   */
  latestIndex(): Promise<{ index: number; revision: number; live: ReadonlySet<string> }>;
  /** Whether the store's cluster has a leader now, and how long since one was last confirmed (ms). */
  health(): { knownLeader: boolean; lastContactMs: number };
}

/** True for a {@link SharedStore}. */
export function isSharedStore(s: Store): s is SharedStore {
  return (s as Partial<SharedStore>).shared === true;
}
