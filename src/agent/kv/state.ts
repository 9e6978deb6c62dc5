/**
 * KV state: the key/value entries and the sessions that lock them, with one write path for both (a lock
 * release on session invalidation is one atomic change of both tables, as in Consul's state store).
 *
 * The write rule (docs/architecture.md, "Writes"): a change is built against the latest state (committed state plus the
 * writes queued before it), committed to the store, and only then made visible, its index handed out and
 * its watchers woken. Writes that arrive while a commit is in flight are evaluated in order and committed
 * together as the next batch (group commit: one fsync for many writes). A failed commit changes nothing:
 * every write of that batch rejects and the visible state and index stay where they were.
 *
 * Indexes follow Consul's KV rules (Consul docs, HTTP API overview: blocking queries): a key's index is its ModifyIndex (a missing key
 * answers the KV table index); a prefix's index is the highest ModifyIndex under it, deletions included
 * (tombstones), else the table index.
 */
import { phareError } from '../../api/index.ts';
import { type Clock, systemClock } from '../clock.ts';
import type { Store, StoreOp } from '../store/index.ts';

/** Consul's structs.MaxLockDelay. */
export const MAX_LOCK_DELAY_MS = 60_000;

/** One KV entry as stored. `value` is base64 (null = empty), `flags` a decimal uint64. */
export interface KvEntry {
  key: string;
  value: string | null;
  flags: string;
  /** The session holding the lock, or ''. */
  session: string;
  lockIndex: number;
  createIndex: number;
  modifyIndex: number;
}

/** What a session does to the locks it holds when it is invalidated. */
export type SessionBehavior = 'release' | 'delete';

/** A service check a session is tied to. */
export interface SessionServiceCheck {
  id: string;
  namespace: string;
}

/** One session as stored (Consul `structs.Session`). */
export interface SessionRecord {
  id: string;
  name: string;
  node: string;
  nodeChecks: string[];
  serviceChecks: SessionServiceCheck[];
  lockDelayMs: number;
  behavior: SessionBehavior;
  /** 0 = no TTL. */
  ttlMs: number;
  /** The TTL as the client wrote it (`"15.0s"`), echoed back as Consul does; '' = none. */
  ttl: string;
  createIndex: number;
  modifyIndex: number;
}

/** Read access to a state (committed, or a transaction's view of it). */
interface Reader {
  get(key: string): KvEntry | undefined;
  /** Entries whose key starts with `prefix`, in key order. */
  list(prefix: string): KvEntry[];
  session(id: string): SessionRecord | undefined;
  sessions(): SessionRecord[];
}

/**
 * A write transaction over the KV state: reads see the state plus this transaction's own changes;
 * nothing is visible outside until the commit. Built by {@link KvState.write}.
 */
export class KvTx implements Reader {
  /** The index this transaction's changes get. */
  readonly index: number;
  /** Clock time of the transaction (lock-delay). */
  readonly now: number;
  readonly #base: Reader & { lockDelayUntil(key: string): number };
  readonly kv = new Map<string, KvEntry | null>();
  readonly sess = new Map<string, SessionRecord | null>();
  /** Lock delays set by invalidated sessions: key -> until (epoch ms). */
  readonly lockDelays = new Map<string, number>();

  constructor(base: Reader & { lockDelayUntil(key: string): number }, index: number, now: number) {
    this.#base = base;
    this.index = index;
    this.now = now;
  }

  /** True if the transaction changed anything. */
  get changed(): boolean {
    return this.kv.size > 0 || this.sess.size > 0;
  }

  get(key: string): KvEntry | undefined {
    if (this.kv.has(key)) return this.kv.get(key) ?? undefined;
    return this.#base.get(key);
  }

  list(prefix: string): KvEntry[] {
    const out = new Map<string, KvEntry>();
    for (const e of this.#base.list(prefix)) out.set(e.key, e);
    for (const [k, e] of this.kv) {
      if (!k.startsWith(prefix)) continue;
      if (e) out.set(k, e);
      else out.delete(k);
    }
    return [...out.values()].sort((a, b) => cmp(a.key, b.key));
  }

  session(id: string): SessionRecord | undefined {
    if (this.sess.has(id)) return this.sess.get(id) ?? undefined;
    return this.#base.session(id);
  }

  sessions(): SessionRecord[] {
    const out = new Map<string, SessionRecord>();
    for (const s of this.#base.sessions()) out.set(s.id, s);
    for (const [id, s] of this.sess) {
      if (s) out.set(id, s);
      else out.delete(id);
    }
    return [...out.values()];
  }

  /** Until when `key` may not be locked (epoch ms; 0 = no delay). */
  lockDelayUntil(key: string): number {
    return this.lockDelays.get(key) ?? this.#base.lockDelayUntil(key);
  }

  put(e: KvEntry): void {
    this.kv.set(e.key, e);
  }

  del(key: string): void {
    if (this.get(key)) this.kv.set(key, null);
  }

  putSession(s: SessionRecord): void {
    this.sess.set(s.id, s);
  }

  /**
   * Removes a session and applies its Behavior to the locks it holds: released (Session cleared) or
   * deleted, each key then blocked for the session's lock-delay (Consul `deleteSessionTxn`).
   */
  destroySession(id: string): boolean {
    const s = this.session(id);
    if (!s) return false;
    this.sess.set(id, null);
    for (const e of this.list('')) {
      if (e.session !== id) continue;
      if (s.behavior === 'delete') this.del(e.key);
      else this.put({ ...e, session: '', modifyIndex: this.index });
      // Consul caps the delay it applies at MaxLockDelay (60 s), whatever the session asked for.
      const delay = Math.min(s.lockDelayMs, MAX_LOCK_DELAY_MS);
      if (delay > 0) this.lockDelays.set(e.key, this.now + delay);
    }
    return true;
  }

  /** Folds a child transaction's changes into this one. */
  merge(child: KvTx): void {
    for (const [k, v] of child.kv) this.kv.set(k, v);
    for (const [k, v] of child.sess) this.sess.set(k, v);
    for (const [k, v] of child.lockDelays) this.lockDelays.set(k, v);
  }
}

/** What a blocking KV read watches: one key, or every key under a prefix. */
export interface KvWatch {
  key: string;
  prefix: boolean;
}

interface Waiter {
  watch: KvWatch | 'sessions';
  minIndex: number;
  wake: () => void;
}

interface Pending<T> {
  fn: (tx: KvTx) => T;
  resolve: (v: T) => void;
  reject: (err: unknown) => void;
}

/** Options of {@link KvState.open}. */
export interface KvStateOptions {
  store: Store;
  /** @default systemClock */
  clock?: Clock;
  /**
   * The lowest index to start from: the agent passes the catalog's, so a fresh agent never answers a KV read
   * with an index below its catalog's (clients expect X-Consul-Index ≥ 2 once the agent's node is in).
   * @default 1
   */
  minIndex?: number;
  /**
   * Deleted keys whose index is remembered for prefix reads; past it the oldest are folded into the table
   * floor (Consul reaps its tombstones too). @default 10000
   */
  maxTombstones?: number;
}

/**
 * The KV and session state of one agent.
 *
 * @example
 * const kv = await KvState.open({ store: createMemoryStore() });
 * await kv.write((tx) => tx.put({ key: 'a', value: null, flags: '0', session: '', lockIndex: 0, createIndex: tx.index, modifyIndex: tx.index }));
 * kv.get('a')?.modifyIndex; // the index of that write
 */
export class KvState implements Reader {
  readonly clock: Clock;
  readonly #store: Store;
  readonly #entries = new Map<string, KvEntry>();
  readonly #sessions = new Map<string, SessionRecord>();
  readonly #tombstones = new Map<string, number>();
  readonly #lockDelays = new Map<string, number>();
  readonly #maxTombstones: number;
  readonly #waiters = new Set<Waiter>();
  readonly #listeners = new Set<(tx: KvTx) => void>();
  /** Last committed index. */
  #index: number;
  /** Lowest index any KV read answers (the index loaded at start, raised as tombstones are reaped). */
  #floor: number;
  #kvIndex: number;
  #sessionsIndex: number;
  #queue: Pending<unknown>[] = [];
  #committing: Promise<void> | undefined;
  #closed = false;

  private constructor(options: KvStateOptions, index: number) {
    this.#store = options.store;
    this.clock = options.clock ?? systemClock;
    this.#maxTombstones = options.maxTombstones ?? 10_000;
    this.#index = index;
    this.#floor = index;
    this.#kvIndex = index;
    this.#sessionsIndex = index;
  }

  /** Loads the KV entries and sessions from the store. */
  static async open(options: KvStateOptions): Promise<KvState> {
    const snap = await options.store.load({
      check: (t, v) => (t === 'kv' ? kvRowProblem(v) : t === 'sessions' ? sessionRowProblem(v) : undefined),
    });
    const s = new KvState(options, Math.max(1, snap.index, options.minIndex ?? 1));
    for (const e of snap.kv as KvEntry[]) s.#entries.set(e.key, e);
    for (const r of snap.sessions as SessionRecord[]) s.#sessions.set(r.id, r);
    return s;
  }

  // ---------------------------------------------------------------- reads (committed state only)

  /** The last committed index. */
  get index(): number {
    return this.#index;
  }

  get(key: string): KvEntry | undefined {
    return this.#entries.get(key);
  }

  list(prefix: string): KvEntry[] {
    const out: KvEntry[] = [];
    for (const [k, e] of this.#entries) if (k.startsWith(prefix)) out.push(e);
    return out.sort((a, b) => cmp(a.key, b.key));
  }

  session(id: string): SessionRecord | undefined {
    return this.#sessions.get(id);
  }

  sessions(): SessionRecord[] {
    return [...this.#sessions.values()].sort((a, b) => cmp(a.id, b.id));
  }

  lockDelayUntil(key: string): number {
    const until = this.#lockDelays.get(key) ?? 0;
    if (until !== 0 && until <= this.clock.now()) this.#lockDelays.delete(key);
    return until;
  }

  /** The index of a KV read (Consul's rules, see the module comment). Never 0. */
  indexOf(w: KvWatch): number {
    if (!w.prefix) return this.#entries.get(w.key)?.modifyIndex ?? this.#kvIndex;
    if (w.key === '') return this.#kvIndex;
    let max = 0;
    for (const [k, e] of this.#entries) if (k.startsWith(w.key) && e.modifyIndex > max) max = e.modifyIndex;
    for (const [k, i] of this.#tombstones) if (k.startsWith(w.key) && i > max) max = i;
    return max > 0 ? Math.max(max, this.#floor) : this.#kvIndex;
  }

  /** The sessions table index (session list/info/node reads). */
  get sessionsIndex(): number {
    return this.#sessionsIndex;
  }

  /**
   * Resolves once the watched data's index passes `minIndex`, after `timeoutMs`, or when `signal` aborts.
   * Only changes under the watched key or prefix wake it. Never rejects.
   */
  waitForChange(
    watch: KvWatch | 'sessions',
    minIndex: number,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const current = () => (watch === 'sessions' ? this.#sessionsIndex : this.indexOf(watch));
    if (current() > minIndex || this.#closed || signal?.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const waiter: Waiter = {
        watch,
        minIndex,
        wake: () => {
          if (current() > minIndex || this.#closed) done();
        },
      };
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done, { once: true });
      this.#waiters.add(waiter);
    });
  }

  /** Number of parked blocking KV/session reads. */
  get waiterCount(): number {
    return this.#waiters.size;
  }

  /** Called after every committed transaction (the sessions module re-arms TTL timers from it). */
  onCommit(listener: (tx: KvTx) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // ---------------------------------------------------------------- writes

  /**
   * Runs `fn` as one transaction and resolves with its result once the change is durable and visible.
   * If `fn` throws, its changes are dropped and the promise rejects with that error (after the batch it
   * was part of settled, so an answer never rests on state that might still fail to commit).
   */
  write<T>(fn: (tx: KvTx) => T): Promise<T> {
    if (this.#closed)
      return Promise.reject(phareError('PHARE_ERR_STORE_CLOSED', 'kv: the agent is shutting down'));
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ fn, resolve, reject } as Pending<unknown>);
      if (!this.#committing) this.#committing = this.#flushSoon();
    });
  }

  async #flushSoon(): Promise<void> {
    // Let every request parsed in this turn of the event loop join the batch.
    await new Promise<void>((r) => setImmediate(r));
    while (this.#queue.length > 0) await this.#flush();
    this.#committing = undefined;
  }

  async #flush(): Promise<void> {
    const batch = this.#queue;
    this.#queue = [];
    const now = this.clock.now();
    const view = new KvTx(this, this.#index, now);
    let next = this.#index;
    const settled: { p: Pending<unknown>; ok: boolean; value: unknown }[] = [];
    const txs: KvTx[] = [];
    for (const p of batch) {
      const child = new KvTx(view, next + 1, now);
      try {
        const value = p.fn(child);
        if (child.changed) {
          next = child.index;
          view.merge(child);
          txs.push(child);
        }
        settled.push({ p, ok: true, value });
      } catch (err) {
        settled.push({ p, ok: false, value: err });
      }
    }
    if (txs.length > 0) {
      const ops: StoreOp[] = [];
      for (const [key, e] of view.kv)
        ops.push(e ? { type: 'put', table: 'kv', key, value: e } : { type: 'del', table: 'kv', key });
      for (const [id, s] of view.sess)
        ops.push(
          s
            ? { type: 'put', table: 'sessions', key: id, value: s }
            : { type: 'del', table: 'sessions', key: id },
        );
      try {
        await this.#store.write(ops, next);
      } catch (err) {
        // Nothing was applied: every write of the batch fails with the store's error.
        for (const s of settled) s.p.reject(s.ok ? err : s.value);
        return;
      }
      this.#apply(txs);
    }
    for (const s of settled) (s.ok ? s.p.resolve : s.p.reject)(s.value);
  }

  /** Makes committed transactions visible, in index order, and wakes the watchers of what they touched. */
  #apply(txs: KvTx[]): void {
    const touched = new Set<string>();
    let sessionsTouched = false;
    for (const tx of txs) {
      for (const [key, e] of tx.kv) {
        touched.add(key);
        if (e) {
          this.#entries.set(key, e);
          this.#tombstones.delete(key);
        } else if (this.#entries.delete(key)) {
          this.#tombstones.set(key, tx.index);
        }
        this.#kvIndex = tx.index;
      }
      for (const [id, s] of tx.sess) {
        if (s) this.#sessions.set(id, s);
        else this.#sessions.delete(id);
        this.#sessionsIndex = tx.index;
        sessionsTouched = true;
      }
      for (const [k, until] of tx.lockDelays) this.#lockDelays.set(k, until);
      this.#index = tx.index;
    }
    this.#reapTombstones();
    for (const tx of txs) for (const l of this.#listeners) l(tx);
    for (const w of [...this.#waiters]) {
      if (w.watch === 'sessions') {
        if (sessionsTouched) w.wake();
        continue;
      }
      const { key, prefix } = w.watch;
      for (const k of touched) {
        if (prefix ? k.startsWith(key) : k === key) {
          w.wake();
          break;
        }
      }
    }
  }

  #reapTombstones(): void {
    if (this.#tombstones.size <= this.#maxTombstones) return;
    // Oldest first (insertion order follows deletion order); their indexes fold into the floor.
    for (const [k, i] of this.#tombstones) {
      if (this.#tombstones.size <= this.#maxTombstones / 2) break;
      this.#tombstones.delete(k);
      if (i > this.#floor) this.#floor = i;
    }
  }

  /** Waits for queued writes to settle, then releases every parked read. */
  async close(): Promise<void> {
    while (this.#committing) await this.#committing;
    this.#closed = true;
    for (const w of [...this.#waiters]) w.wake();
  }
}

/** What is wrong with a stored KV row (the store names its table and key when it refuses to load it). */
export function kvRowProblem(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null) return 'not an object';
  const e = v as Record<string, unknown>;
  if (typeof e.key !== 'string' || e.key === '') return 'field "key": expected a non-empty string';
  if (e.value !== null && typeof e.value !== 'string') return 'field "value": expected base64 or null';
  if (typeof e.flags !== 'string' || !/^\d+$/.test(e.flags))
    return 'field "flags": expected a decimal uint64';
  if (typeof e.session !== 'string') return 'field "session": expected a string';
  for (const f of ['lockIndex', 'createIndex', 'modifyIndex'])
    if (!Number.isSafeInteger(e[f])) return `field "${f}": expected an integer`;
  return undefined;
}

/** What is wrong with a stored session row. */
export function sessionRowProblem(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null) return 'not an object';
  const s = v as Record<string, unknown>;
  for (const f of ['id', 'node', 'name', 'ttl'])
    if (typeof s[f] !== 'string') return `field "${f}": expected a string`;
  if (s.behavior !== 'release' && s.behavior !== 'delete')
    return 'field "behavior": expected release or delete';
  if (!Array.isArray(s.nodeChecks) || !Array.isArray(s.serviceChecks))
    return 'fields "nodeChecks"/"serviceChecks": expected lists';
  for (const f of ['lockDelayMs', 'ttlMs', 'createIndex', 'modifyIndex'])
    if (typeof s[f] !== 'number' || !Number.isFinite(s[f])) return `field "${f}": expected a number`;
  return undefined;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
