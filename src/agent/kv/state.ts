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
 *
 * **On a shared store (etcd, docs/cluster.md)** the state is a cache fed by the store's KV watch, so every
 * agent applies the same committed changes in revision order and every index is an etcd revision. A write
 * is built against the cache exactly as above, but while it runs every row it reads is recorded, and the
 * store commits it only if none of them changed meanwhile (etcd compare clauses checked inside the
 * transaction, {@link SharedStore.commitIf}); when one did — another agent won a race — the cache is brought
 * up to the revision etcd answered and the write is built again. So CAS, acquire and `/v1/txn` are decided
 * by etcd, never by one agent's possibly stale view: of two agents acquiring one key, exactly one wins. A
 * write answered `false` (a CAS that lost, a held lock) is validated the same way before it is answered.
 * Lock-delays are rows too (`lockdelays`), so a delay set by an invalidation blocks acquires on every agent.
 */
import { isDeepStrictEqual } from 'node:util';
import { phareError } from '../../api/index.ts';
import { type Clock, systemClock } from '../clock.ts';
import {
  isSharedStore,
  type SharedStore,
  type SharedStoreOp,
  type Store,
  type StoreEvent,
  type StoreGuard,
  type StoreOp,
  type StoreRow,
  type StoreWatch,
} from '../store/index.ts';

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
  /** Entries whose lock `id` holds. */
  heldBy(id: string): KvEntry[];
}

/** The base a transaction reads through: a state plus its lock-delays. */
type TxBase = Reader & { lockDelayUntil(key: string): number };

/**
 * A write transaction over the KV state: reads see the state plus this transaction's own changes;
 * nothing is visible outside until the commit. Built by {@link KvState.write}.
 */
export class KvTx implements Reader {
  /** The index this transaction's changes get. */
  readonly index: number;
  /** Clock time of the transaction (lock-delay). */
  readonly now: number;
  readonly #base: TxBase;
  readonly kv = new Map<string, KvEntry | null>();
  readonly sess = new Map<string, SessionRecord | null>();
  /** Lock delays set by invalidated sessions: key -> until (epoch ms; 0 = clear a lapsed one). */
  readonly lockDelays = new Map<string, number>();
  /** Shared store only: the etcd lease a new TTL session's marker hangs on (session id -> lease). */
  readonly sessionLeases = new Map<string, string>();
  /** Prefixes deleted whole (delete-tree): a shared store deletes each with one range delete. */
  readonly trees = new Set<string>();

  constructor(base: TxBase, index: number, now: number) {
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

  heldBy(id: string): KvEntry[] {
    const out = new Map<string, KvEntry>();
    for (const e of this.#base.heldBy(id)) out.set(e.key, e);
    for (const [k, e] of this.kv) {
      if (e && e.session === id) out.set(k, e);
      else out.delete(k);
    }
    return [...out.values()].sort((a, b) => cmp(a.key, b.key));
  }

  /** Until when `key` may not be locked (epoch ms; 0 = no delay). */
  lockDelayUntil(key: string): number {
    return this.lockDelays.get(key) ?? this.#base.lockDelayUntil(key);
  }

  /** Shared store: removes a lapsed lock-delay row. */
  clearLockDelay(key: string): void {
    this.lockDelays.set(key, 0);
  }

  /** Shared store: ties a new TTL session to the etcd lease whose expiry invalidates it. */
  setSessionLease(id: string, lease: string): void {
    this.sessionLeases.set(id, lease);
  }

  put(e: KvEntry): void {
    this.kv.set(e.key, e);
  }

  del(key: string): void {
    if (this.get(key)) this.kv.set(key, null);
  }

  /** Deletes every key under `prefix` (`''` = everything). */
  delTree(prefix: string): void {
    for (const e of this.list(prefix)) this.kv.set(e.key, null);
    this.trees.add(prefix);
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
    for (const e of this.heldBy(id)) {
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
    for (const [k, v] of child.sessionLeases) this.sessionLeases.set(k, v);
    for (const p of child.trees) this.trees.add(p);
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
  /**
   * Shared store: how long a write waits for this agent's cache to show its own commit (read-your-writes)
   * before it answers anyway. @default 10000
   */
  applyTimeoutMs?: number;
}

/** Shared store: the index a write's rows carry until etcd assigns the revision (patched after commit). */
const PENDING = Number.MAX_SAFE_INTEGER;
/** Shared store: how often one write is rebuilt after losing a race before it gives up. */
const MAX_CONFLICTS = 64;

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
  readonly #listeners = new Set<() => void>();
  // ---- shared store (etcd) only
  readonly #shared: SharedStore | undefined;
  /** Mod revision of every cached row: `<table>\0<key>` -> revision (the guards of a write). */
  readonly #revs = new Map<string, number>();
  /** TTL session markers: session id -> lease. */
  readonly #ttlMarkers = new Map<string, string>();
  readonly #appliedWaiters = new Set<{ index: number; resolve: () => void }>();
  readonly #applyTimeoutMs: number;
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #eventWaiters = new Set<{ index: number; resolve: () => void }>();
  /** Events the watch delivered so far (a lost race waits for the next one). */
  #seq = 0;
  #watch: StoreWatch | undefined;
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
    this.#shared = isSharedStore(options.store) ? options.store : undefined;
    this.#applyTimeoutMs = options.applyTimeoutMs ?? 10_000;
    this.clock = options.clock ?? systemClock;
    this.#maxTombstones = options.maxTombstones ?? 10_000;
    this.#index = index;
    this.#floor = index;
    this.#kvIndex = index;
    this.#sessionsIndex = index;
  }

  /** Loads the KV entries and sessions from the store. */
  static async open(options: KvStateOptions): Promise<KvState> {
    if (isSharedStore(options.store)) return KvState.#openShared(options, options.store);
    const snap = await options.store.load({
      check: (t, v) => (t === 'kv' ? kvRowProblem(v) : t === 'sessions' ? sessionRowProblem(v) : undefined),
    });
    const s = new KvState(options, Math.max(1, snap.index, options.minIndex ?? 1));
    for (const e of snap.kv as KvEntry[]) s.#entries.set(e.key, e);
    for (const r of snap.sessions as SessionRecord[]) s.#sessions.set(r.id, r);
    return s;
  }

  /**
   * Shared store: loads the KV space with its revisions and starts the watch that feeds the state from then
   * on. A row that does not look like a KV entry or a session is skipped with the store's damage message.
   */
  static async #openShared(options: KvStateOptions, store: SharedStore): Promise<KvState> {
    const { index, rows } = await store.loadSpace('kv');
    const s = new KvState(options, Math.max(1, index));
    for (const r of rows) s.#applyRow(r, undefined);
    s.#kvIndex = s.#sessionsIndex = s.#floor = s.#index;
    s.#watch = store.watch(index, (e) => s.#applyEvent(e), 'kv');
    s.#watch.prime(rows);
    return s;
  }

  /** Whether this state is a cache of a shared store (etcd). */
  get shared(): boolean {
    return this.#shared !== undefined;
  }

  /** Shared store: the lease of a TTL session's marker; undefined once the lease expired (or no TTL). */
  sessionLease(id: string): string | undefined {
    return this.#ttlMarkers.get(id);
  }

  /** Shared store: keys whose lock-delay row has lapsed by `now` (the reaper removes them). */
  lapsedLockDelays(now: number): string[] {
    return [...this.#lockDelays].filter(([, until]) => until <= now).map(([k]) => k);
  }

  /**
   * `?consistent`: on a shared store, resolves once the cache has applied the revision a quorum read of etcd
   * reports now (so the answer includes every write any agent had acknowledged); at once otherwise. Rejects
   * with PHARE_ERR_NO_LEADER without quorum, as a consistent read of Consul fails without a leader.
   */
  async catchUp(): Promise<void> {
    if (this.#shared) await this.#catchUpTo();
  }

  /** Shared store: the store itself (session leases). */
  get sharedStore(): SharedStore | undefined {
    return this.#shared;
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

  heldBy(id: string): KvEntry[] {
    const out: KvEntry[] = [];
    for (const e of this.#entries.values()) if (e.session === id) out.push(e);
    return out.sort((a, b) => cmp(a.key, b.key));
  }

  lockDelayUntil(key: string): number {
    const until = this.#lockDelays.get(key) ?? 0;
    // A shared store's delays are rows: only the reaper's write removes them, so every agent agrees.
    if (!this.#shared && until !== 0 && until <= this.clock.now()) this.#lockDelays.delete(key);
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

  /** Called after every change made visible (the shared session reaper looks again then). */
  onChange(listener: () => void): () => void {
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
    if (this.#shared) {
      const p = this.#writeShared(fn);
      this.#inflight.add(p);
      const done = () => this.#inflight.delete(p);
      p.then(done, done);
      return p;
    }
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
    this.#wake(touched, sessionsTouched);
  }

  /** Wakes the parked reads over what changed, then the change listeners. */
  #wake(touched: ReadonlySet<string>, sessionsTouched: boolean): void {
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
    for (const l of this.#listeners) l();
  }

  // ---------------------------------------------------------------- shared store (etcd)

  /**
   * Runs `fn` against the cache with every read recorded, then commits its changes guarded by those reads.
   * A lost race (a guard failed) rebuilds it once the cache reached the revision etcd answered. An outcome
   * that changes nothing (false, or an error such as `invalid session`) is validated the same way: it is
   * answered only if what it was decided on is still current.
   */
  async #writeShared<T>(fn: (tx: KvTx) => T): Promise<T> {
    const store = this.#shared as SharedStore;
    for (let attempt = 0; ; attempt++) {
      const guards = new Map<string, StoreGuard>();
      const seq = this.#seq;
      const tx = new KvTx(this.#tracking(guards), PENDING, this.clock.now());
      let value: T | undefined;
      let thrown: { err: unknown } | undefined;
      try {
        value = fn(tx);
      } catch (err) {
        thrown = { err };
      }
      const ops = thrown ? [] : this.#sharedOps(tx, guards);
      // Decided on nothing it read and changing nothing (a lock-delay refusal, a malformed request): there
      // is nothing to validate, so no round trip to etcd.
      if (ops.length === 0 && guards.size === 0) {
        if (thrown) throw thrown.err;
        return value as T;
      }
      const res = await store.commitIf(ops, [...guards.values()]);
      if (res.ok) {
        if (ops.length > 0) {
          await this.#waitApplied(res.index);
          for (const e of tx.kv.values()) {
            if (!e) continue;
            e.modifyIndex = res.index;
            if (e.createIndex === PENDING) e.createIndex = res.index;
          }
          for (const r of tx.sess.values()) {
            if (!r) continue;
            r.modifyIndex = res.index;
            if (r.createIndex === PENDING) r.createIndex = res.index;
          }
        }
        if (thrown) throw thrown.err;
        return value as T;
      }
      if (attempt >= MAX_CONFLICTS)
        throw phareError(
          'PHARE_ERR_STORE',
          `kv: the write lost ${attempt + 1} races in a row for the same keys; retry it`,
        );
      // The row that changed was committed before `res.index`; the watch brings it within milliseconds.
      // Rebuild once it applied something new since this attempt was built (or after a short wait: etcd
      // checks the guards again either way, so the wait only saves round trips).
      await this.#waitEvent(seq, res.index, 50);
    }
  }

  /**
   * Brings the cache up to the store's revision now (`?consistent`). The KV watch only hears of its own
   * space, so after writes elsewhere (the catalog's) its revision can lag the store's with nothing missing: a
   * quorum read of the space's shape (row count and newest mod revision) tells the two cases apart; otherwise
   * it waits for the watch to deliver what is missing and looks again (at most the apply timeout).
   */
  async #catchUpTo(): Promise<void> {
    const store = this.#shared as SharedStore;
    const deadline = Date.now() + this.#applyTimeoutMs;
    let target = 0;
    while (!this.#closed && Date.now() < deadline) {
      const st = await store.statSpace('kv');
      if (st.maxModifyIndex <= this.#index && st.count === this.#revs.size) {
        this.#applyEvent({ index: st.index, changes: [] });
        return;
      }
      target ||= st.index;
      if (this.#index >= target) return;
      await this.#waitEvent(this.#seq, target, 200);
      if (this.#index >= target) return;
    }
  }

  /** Resolves when the watch applied another event (any), the cache reached `index`, or after `ms`. */
  #waitEvent(seq: number, index: number, ms: number): Promise<void> {
    if (this.#seq !== seq || (index > 0 && this.#index >= index)) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const w = {
        index: 0,
        resolve: () => {
          clearTimeout(timer);
          this.#eventWaiters.delete(w);
          resolve();
        },
      };
      const timer = setTimeout(w.resolve, ms);
      this.#eventWaiters.add(w);
    });
  }

  /** A reader over the cache that records, as guards, the revision of every row it hands out. */
  #tracking(guards: Map<string, StoreGuard>): TxBase {
    const track = (table: 'kv' | 'sessions' | 'lockdelays', key: string) => {
      const id = `${table}\u0000${key}`;
      if (!guards.has(id)) guards.set(id, { table, key, modifyIndex: this.#revs.get(id) ?? 0 });
    };
    return {
      get: (k) => {
        track('kv', k);
        return this.get(k);
      },
      list: (p) => {
        // No key under the prefix may appear or change after what the cache shows.
        const id = `prefix\u0000${p}`;
        if (!guards.has(id)) guards.set(id, { table: 'kv', key: p, prefix: true, modifyIndex: this.#index });
        return this.list(p);
      },
      session: (id) => {
        track('sessions', id);
        return this.session(id);
      },
      sessions: () => this.sessions(),
      heldBy: (id) => {
        const out = this.heldBy(id);
        for (const e of out) track('kv', e.key);
        return out;
      },
      // Not a guard: a delay row is only ever written together with its key's row (an invalidation releases
      // or deletes the key in the same transaction, and the key's guard sees that), or removed once lapsed.
      // So a refusal on an active delay needs no round trip to etcd, and an acquire right after the delay
      // lapsed does not lose a race against the reaper's purge of the row (which guards what it deletes, see
      // #sharedOps).
      lockDelayUntil: (k) => this.lockDelayUntil(k),
    };
  }

  /**
   * The store ops of a shared-store transaction. A deleted tree with nothing written under it in the same
   * transaction is one range delete (etcd's transaction limit counts ops, not keys), and its keys need no
   * guards of their own: the tree's prefix guard already refuses the write if any key under it was created or
   * changed meanwhile, and one deleted meanwhile is deleted either way.
   */
  #sharedOps(tx: KvTx, guards: Map<string, StoreGuard>): SharedStoreOp[] {
    const ops: SharedStoreOp[] = [];
    const written = [...tx.kv].filter(([, e]) => e !== null).map(([k]) => k);
    const trees = [...tx.trees].filter(
      (p) => guards.has(`prefix\u0000${p}`) && !written.some((k) => k.startsWith(p)),
    );
    for (const p of trees) ops.push({ type: 'del', table: 'kv', key: p, prefix: true });
    for (const [key, e] of tx.kv) {
      if (!e) {
        if (trees.some((p) => key.startsWith(p))) guards.delete(`kv\u0000${key}`);
        else ops.push({ type: 'del', table: 'kv', key });
        continue;
      }
      ops.push({ type: 'put', table: 'kv', key, value: e });
      // A newly taken lock rewrites its session's record (same value, new revision): a concurrent
      // invalidation of that session, guarded on the record, then loses and sees the new lock when it is
      // rebuilt, so a lock can never outlive its session.
      if (e.session !== '' && this.get(key)?.session !== e.session && !tx.sess.has(e.session)) {
        const s = this.session(e.session);
        if (s) ops.push({ type: 'put', table: 'sessions', key: s.id, value: s });
      }
    }
    const touchedSessions = new Set<string>();
    for (const op of ops) if (op.table === 'sessions') touchedSessions.add(op.key);
    for (const [id, r] of tx.sess) {
      if (touchedSessions.has(id)) continue;
      if (r) ops.push({ type: 'put', table: 'sessions', key: id, value: r });
      else {
        ops.push({ type: 'del', table: 'sessions', key: id });
        if (this.#ttlMarkers.has(id)) ops.push({ type: 'del', table: 'sessionttls', key: id });
      }
    }
    for (const [id, lease] of tx.sessionLeases)
      ops.push({ type: 'put', table: 'sessionttls', key: id, value: { session: id }, lease });
    for (const [key, until] of tx.lockDelays) {
      if (until > 0) ops.push({ type: 'put', table: 'lockdelays', key, value: { until } });
      else if (this.#lockDelays.has(key)) {
        ops.push({ type: 'del', table: 'lockdelays', key });
        // the purge of a lapsed delay must not remove a newer one set meanwhile
        const id = `lockdelays\u0000${key}`;
        guards.set(id, { table: 'lockdelays', key, modifyIndex: this.#revs.get(id) ?? 0 });
      }
    }
    return ops;
  }

  /** Puts (row given) or deletes one KV-space row into the cache; returns what it touched. */
  #applyRow(
    row: StoreRow | undefined,
    del: { table: string; key: string; index: number } | undefined,
  ): { kvKey?: string; sessions?: boolean } {
    const table = row ? row.table : (del as { table: string }).table;
    const key = row ? row.key : (del as { key: string }).key;
    const id = `${table}\u0000${key}`;
    if (row) this.#revs.set(id, row.modifyIndex);
    else this.#revs.delete(id);
    switch (table) {
      case 'kv': {
        if (row) {
          const v = row.value as KvEntry;
          if (kvRowProblem(v) !== undefined) return {};
          this.#entries.set(key, { ...v, createIndex: row.createIndex, modifyIndex: row.modifyIndex });
          this.#tombstones.delete(key);
        } else if (this.#entries.delete(key)) this.#tombstones.set(key, (del as { index: number }).index);
        return { kvKey: key };
      }
      case 'sessions': {
        if (row) {
          const v = row.value as SessionRecord;
          if (sessionRowProblem(v) !== undefined) return {};
          // A session never changes after it is created (Consul): its indexes are its creation's, and the
          // rewrite a new lock makes (see #sharedOps) is no change readers see.
          const next = { ...v, createIndex: row.createIndex, modifyIndex: row.createIndex };
          const same = isDeepStrictEqual(this.#sessions.get(key), next);
          this.#sessions.set(key, next);
          return same ? {} : { sessions: true };
        }
        return this.#sessions.delete(key) ? { sessions: true } : {};
      }
      case 'lockdelays': {
        const until = Number((row?.value as { until?: unknown } | undefined)?.until);
        if (row && Number.isFinite(until)) this.#lockDelays.set(key, until);
        else this.#lockDelays.delete(key);
        return {};
      }
      case 'sessionttls':
        if (row?.lease) this.#ttlMarkers.set(key, row.lease);
        else this.#ttlMarkers.delete(key);
        return { sessions: false };
      default:
        return {};
    }
  }

  /** Applies one committed event of the KV space: rows, indexes, then wakes who watches what it touched. */
  #applyEvent(e: StoreEvent): void {
    if (this.#closed) return;
    const touched = new Set<string>();
    let sessionsTouched = false;
    let any = false;
    for (const ch of e.changes) {
      any = true;
      const r =
        ch.type === 'put'
          ? this.#applyRow(ch, undefined)
          : this.#applyRow(undefined, { table: ch.table, key: ch.key, index: e.index });
      if (r.kvKey !== undefined) {
        touched.add(r.kvKey);
        this.#kvIndex = e.index;
      }
      if (r.sessions) {
        sessionsTouched = true;
        this.#sessionsIndex = e.index;
      }
    }
    if (e.index > this.#index) this.#index = e.index;
    this.#seq++;
    for (const w of [...this.#eventWaiters]) w.resolve();
    if (touched.size > 0) this.#reapTombstones();
    if (any) this.#wake(touched, sessionsTouched);
    for (const w of [...this.#appliedWaiters]) {
      if (w.index <= this.#index) {
        this.#appliedWaiters.delete(w);
        w.resolve();
      }
    }
  }

  /** Resolves once the cache has applied revision `index` (or after the apply timeout). */
  #waitApplied(index: number): Promise<void> {
    if (this.#index >= index || this.#closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const w = {
        index,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.#appliedWaiters.delete(w);
        resolve();
      }, this.#applyTimeoutMs);
      this.#appliedWaiters.add(w);
    });
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
    await Promise.allSettled([...this.#inflight]);
    this.#closed = true;
    await this.#watch?.close();
    for (const w of [...this.#waiters]) w.wake();
    for (const w of [...this.#appliedWaiters]) w.resolve();
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
