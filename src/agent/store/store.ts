/**
 * The Store interface: where the catalog keeps its state durably. One conformance suite
 * (test/conformance/store.conformance.ts) runs against every backend.
 */

/** The tables the catalog persists. */
export type StoreTable = 'nodes' | 'services' | 'checks';

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
  /** Reads the whole state. Called once, before any write. */
  load(): Promise<StoreSnapshot>;
  /**
   * Applies `ops` atomically and records `index`. Resolves only once the batch is durable; concurrent
   * calls may share one commit (group commit). Rejects with PHARE_ERR_STORE if it could not be written.
   */
  write(ops: readonly StoreOp[], index: number): Promise<void>;
  /** Flushes pending writes and releases the backend. Writes after close reject with PHARE_ERR_STORE_CLOSED. */
  close(): Promise<void>;
}
