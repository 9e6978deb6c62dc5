/**
 * The catalog: the single owner of nodes, services and checks, and of the index that orders every change.
 *
 * Writes follow the write rule (docs/architecture.md): validate → build the change → commit it to the store → apply it to the
 * view readers see → hand out its index → answer. **A change is applied to what readers see, and its index
 * handed out, only after it is durable; a failed write changes nothing.**
 *
 * Writes are queued and committed in batches (group commit): every write queued in one turn of the event
 * loop is built, in order, against the committed view plus the writes before it in the same batch, then the
 * whole batch is undone from the view (synchronously, so no reader ever sees it), committed as one store
 * write, and only then re-applied, its indexes handed out and its watchers woken. One batch is in flight at
 * a time, so a batch is always built on committed state only; if its commit fails every write in it is
 * rejected and the view and the index are exactly as before.
 *
 * Every change is a row (table, key, value or deletion), the same shape the store holds, and the view is
 * updated from rows alone (`#applyRow`), with the topics a row touches derived from the row — so a shared
 * store's committed changes can feed the same path. Topics give each read its own index, so a watch on
 * service A is not woken by service B (Consul GH-1244/#2216; Consul docs, Blocking Queries).
 */

import { isDeepStrictEqual } from 'node:util';
import type { CheckStatus } from '../../api/index.ts';
import { phareError } from '../../api/index.ts';
import { type Clock, systemClock } from '../clock.ts';
import {
  type ClusterTable,
  isSharedStore,
  type SharedStore,
  type SharedStoreOp,
  type Store,
  type StoreEvent,
  type StoreOp,
  type StoreRow,
  type StoreTable,
  type StoreWatch,
} from '../store/index.ts';
import {
  type CheckInput,
  type CheckRecord,
  type NodeRecord,
  recordKey,
  rowProblem,
  type ServiceInput,
  type ServiceRecord,
} from './model.ts';

/** Topic names: the unit a blocking query watches. */
export const Topic = {
  services: 'services',
  nodes: 'nodes',
  checks: 'checks',
  service: (name: string) => `svc:${name.toLowerCase()}`,
  node: (name: string) => `node:${name.toLowerCase()}`,
} as const;

/** The agent's own node, as given by its config. */
export interface LocalNode {
  name: string;
  id: string;
  address: string;
  /** The node's Meta. @default { "consul-network-segment": "" } */
  meta?: Record<string, string>;
}

/** Options of {@link Catalog.open}. */
export interface CatalogOptions {
  store: Store;
  node: LocalNode;
  datacenter: string;
  /** @default systemClock */
  clock?: Clock;
  /** Register the built-in `consul` service on the local node, as a Consul server does. @default true */
  builtinConsulService?: boolean;
  /**
   * Told of a row a shared store holds that is not a catalog record of the shape its key says (written by
   * something other than a Phare agent, or damaged): the view treats its key as absent. @default ignored
   */
  onBadRow?: (table: StoreTable | ClusterTable, key: string, problem: string) => void;
}

/** A change the health module listens to. */
export type CatalogEvent =
  | { type: 'check-added'; check: CheckRecord }
  | { type: 'check-removed'; check: CheckRecord }
  /** `announce`: the write came from a TTL endpoint (pass/warn/fail/update), not from a check runner. */
  | { type: 'check-status'; check: CheckRecord; announce: boolean };

/**
 * What operators want in the log (issue 18): a service registered or deregistered and why, a check's status
 * changing (from → to, with its output), another agent joining or failing (cluster). Emitted once durable.
 */
export type LifecycleEvent =
  | { type: 'service-registered'; service: ServiceRecord; replaced: boolean; why: string }
  | { type: 'service-deregistered'; service: ServiceRecord; why: string }
  | { type: 'check-status'; check: CheckRecord; from: CheckStatus }
  | { type: 'agent-liveness'; node: string; address: string; alive: boolean; output: string };

/** Maintenance check IDs and texts, as Consul writes them (Consul docs, Agent HTTP API). */
export const MAINTENANCE = {
  serviceCheckId: (sid: string) => `_service_maintenance:${sid}`,
  nodeCheckId: '_node_maintenance',
  serviceName: 'Service Maintenance Mode',
  nodeName: 'Node Maintenance Mode',
  serviceNotes:
    'Maintenance mode is enabled for this service, but no reason was provided. This is a default message.',
  nodeNotes:
    'Maintenance mode is enabled for this node, but no reason was provided. This is a default message.',
} as const;

const SERF_CHECK_ID = 'serfHealth';
/** Writes one shared-store transaction carries at most (etcd's --max-txn-ops is 128). */
const SHARED_BATCH_MAX = 24;
/** How long a batch short of full waits for more writes under load (group commit, shared store only). */
const GROUP_WAIT_MS = 2;

/** A record as stored in one of the catalog's tables. */
type Row = NodeRecord | ServiceRecord | CheckRecord;

/** One row change of a write: `next` undefined deletes. `prev` is what the view held before. */
interface Change {
  table: StoreTable;
  key: string;
  prev: Row | undefined;
  next: Row | undefined;
  /** Not persisted: the row lives in memory only (the agent's node, serfHealth, the `consul` service). */
  ephemeral: boolean;
  /** Whether the key was ephemeral before this change (to undo it). */
  wasEphemeral: boolean;
}

/** A write transaction: the row changes it made while being built, and the events to emit once durable. */
class Tx {
  readonly changes: Change[] = [];
  readonly events: CatalogEvent[] = [];
  readonly lifecycle: LifecycleEvent[] = [];
  readonly index: number;
  /** Only check results (updateCheck): with a shared store, kept as local truth even if the commit fails. */
  statusOnly = false;
  constructor(index: number) {
    this.index = index;
  }
}

/** A queued write: how to build it and whom to answer. */
interface QueuedWrite {
  build: (tx: Tx) => void;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * The catalog. Create it with {@link Catalog.open}, which loads the store.
 *
 * @example
 * const catalog = await Catalog.open({ store: createMemoryStore(), node: { name: 'n1', id, address: '127.0.0.1' }, datacenter: 'dc1' });
 * await catalog.registerService({ id: 'web-1', name: 'web', ... }, []);
 * catalog.instancesOf('web'); // [ServiceRecord]
 */
export class Catalog {
  readonly datacenter: string;
  readonly local: LocalNode;
  readonly clock: Clock;
  readonly #store: Store;
  readonly #onBadRow: ((table: StoreTable | ClusterTable, key: string, problem: string) => void) | undefined;
  #index = 0;
  #closed = false;
  readonly #nodes = new Map<string, NodeRecord>(); // lower(node) -> node
  readonly #services = new Map<string, ServiceRecord>(); // node\0id -> service
  readonly #byName = new Map<string, Set<string>>(); // lower(name) -> keys
  readonly #checks = new Map<string, CheckRecord>(); // node\0checkId -> check
  // Secondary indexes, so reads of one service or node do not scan the whole catalog (10k+ instances).
  readonly #servicesByNode = new Map<string, Set<string>>(); // node -> service keys
  readonly #checksByOwner = new Map<string, Set<string>>(); // node\0serviceId ('' = node check) -> check keys
  readonly #checksByNode = new Map<string, Set<string>>(); // node -> check keys
  readonly #topicIndex = new Map<string, number>();
  /** When each index was handed out (epoch ms), so clients can measure change-to-update latency. */
  readonly #indexTime = new Map<number, number>();
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #listeners = new Set<(e: CatalogEvent) => void>();
  readonly #lifecycleListeners = new Set<(e: LifecycleEvent) => void>();
  /** Records that live only in memory (the agent's node, serfHealth, the `consul` service), as `table:key`. */
  readonly #ephemeral = new Set<string>();
  /** Writes waiting for the next batch. */
  #queue: QueuedWrite[] = [];
  /** The batch loop, while one runs (at most one batch is being committed at a time). */
  #draining: Promise<void> | undefined;
  /** Writes in the batch committed last (the group-commit wait of {@link Catalog.#drain}). */
  #lastBatch = 0;
  // ---- shared store (etcd) only: the view is a cache fed by the store's watch
  #shared: SharedStore | undefined;
  #watch: StoreWatch | undefined;
  /** The store revision the view has applied. */
  #applied = 0;
  readonly #appliedWaiters = new Set<{ ready: () => boolean; resolve: () => void }>();
  /** While a batch is being committed: watch events held back until its revision is known. */
  #held: StoreEvent[] | undefined;
  /** Revisions this agent committed itself whose events the watch has not delivered yet. */
  readonly #ownRevisions = new Set<number>();
  /** Cluster rows (members, live, election) by table then key. */
  readonly #clusterRows = new Map<string, Map<string, StoreRow>>();
  /** lower(node) -> when its agent was first seen not alive (epoch ms). */
  readonly #downSince = new Map<string, number>();
  /** What this agent owns (its services and checks), as `table:key` -> row: the truth anti-entropy restores. */
  readonly #own = new Map<string, Row>();

  private constructor(options: CatalogOptions) {
    this.#store = options.store;
    this.#onBadRow = options.onBadRow;
    this.datacenter = options.datacenter;
    this.local = options.node;
    this.clock = options.clock ?? systemClock;
  }

  /** Loads the store and adds the agent's own node, its `serfHealth` check and the `consul` service. */
  static async open(options: CatalogOptions): Promise<Catalog> {
    const c = new Catalog(options);
    if (isSharedStore(options.store)) {
      await c.#openShared(options.store);
      return c;
    }
    // The store holds other tables too (KV, sessions): their owners check their own rows.
    const snap = await options.store.load({
      check: (t, v) => (t === 'nodes' || t === 'services' || t === 'checks' ? rowProblem(t, v) : undefined),
    });
    c.#index = Math.max(1, snap.index);
    const localLower = c.local.name.toLowerCase();
    for (const n of snap.nodes as NodeRecord[]) {
      if (n.node.toLowerCase() !== localLower) c.#nodes.set(n.node.toLowerCase(), n);
    }
    // The agent owns its services and checks wherever its node name moved (--node changed): they follow it,
    // and their rows move to the new keys, so a later deregistration deletes the row that is really there.
    const rekey: StoreOp[] = [];
    const follow = (table: StoreTable, r: ServiceRecord | CheckRecord, id: string) => {
      if (!r.agent || r.node === c.local.name) return;
      rekey.push({ type: 'del', table, key: recordKey(r.node, id) });
      r.node = c.local.name;
      rekey.push({ type: 'put', table, key: recordKey(r.node, id), value: r });
    };
    for (const s of snap.services as ServiceRecord[]) {
      follow('services', s, s.id);
      c.#indexService(s);
    }
    for (const ch of snap.checks as CheckRecord[]) {
      follow('checks', ch, ch.checkId);
      c.#setCheck(ch);
    }
    if (rekey.length > 0) await options.store.write(rekey, c.#index);
    // Topic indexes after a restart: every known service and node resumes at the stored index. Not at its
    // records' own modifyIndex: a deletion that moved a topic is not stored, and the index must never go
    // backwards. Watchers see one wake-up after a restart; after that each topic moves on its own.
    for (const t of [Topic.services, Topic.nodes, Topic.checks]) c.#topicIndex.set(t, c.#index);
    for (const sv of c.#services.values()) c.#topicIndex.set(Topic.service(sv.name), c.#index);
    for (const n of c.#nodes.values()) c.#topicIndex.set(Topic.node(n.node), c.#index);
    c.#topicIndex.set(Topic.node(c.local.name), c.#index);
    // The agent's own node and the records a Consul server always has. Not persisted: rebuilt each start.
    // Each takes an index, as in Consul (node, then its serfHealth check, then the `consul` service), so a
    // fresh agent's reads answer index >= 2 — tools wait for that before they trust the catalog.
    const nodeIdx = ++c.#index;
    c.#nodes.set(localLower, c.localNodeRecord(nodeIdx));
    c.#topicIndex.set(Topic.nodes, nodeIdx);
    const idx = ++c.#index;
    c.#topicIndex.set(Topic.checks, idx);
    c.#topicIndex.set(Topic.node(c.local.name), idx);
    const serfKey = recordKey(c.local.name, SERF_CHECK_ID);
    c.#setCheck(serfCheck(c.local.name, true, idx, idx));
    c.#ephemeral.add(`checks:${serfKey}`);
    if (options.builtinConsulService !== false) {
      const key = recordKey(c.local.name, 'consul');
      if (!c.#services.has(key)) {
        const idx = ++c.#index;
        for (const t of [Topic.services, Topic.service('consul'), Topic.node(c.local.name)])
          c.#topicIndex.set(t, idx);
        c.#indexService(c.consulServiceRecord(idx));
        c.#ephemeral.add(`services:${key}`);
      }
    }
    return c;
  }

  /**
   * The `consul` service a Consul server registers on its node (port 8300, its raft and serf versions in
   * Meta). A single agent holds it in memory; over etcd every agent writes its own when it joins, since each
   * answers the whole API as a server would: `consul.service.consul` and `?passing` then list the live agents.
   */
  consulServiceRecord(index = this.#index): ServiceRecord {
    return {
      node: this.local.name,
      id: 'consul',
      name: 'consul',
      kind: '',
      tags: [],
      address: '',
      port: 8300,
      meta: {
        raft_version: '3',
        serf_protocol_current: '2',
        serf_protocol_max: '5',
        serf_protocol_min: '1',
      },
      weights: { Passing: 1, Warning: 1 },
      enableTagOverride: false,
      agent: false,
      createIndex: index,
      modifyIndex: index,
    };
  }

  /** The op that writes this agent's `consul` service to a shared store (the cluster join). */
  consulServiceOp(): SharedStoreOp {
    const { createIndex: _c, modifyIndex: _m, ...value } = this.consulServiceRecord();
    return { type: 'put', table: 'services', key: recordKey(this.local.name, 'consul'), value };
  }

  /** The agent's own node record, as a Consul agent describes itself. */
  localNodeRecord(index = this.#index): NodeRecord {
    const a = this.local.address;
    return {
      id: this.local.id,
      node: this.local.name,
      address: a,
      taggedAddresses: { lan: a, lan_ipv4: a, wan: a, wan_ipv4: a },
      meta: { ...(this.local.meta ?? { 'consul-network-segment': '' }) },
      createIndex: index,
      modifyIndex: index,
    };
  }

  // ---------------------------------------------------------------- shared store (etcd): the view as a cache

  /** Whether the view is a cache of a shared store (etcd). */
  get shared(): boolean {
    return this.#shared !== undefined;
  }

  /**
   * Loads every row with its revisions and starts the one watch that feeds the view from then on. A
   * service's topic index is the highest mod revision of its keys (so a watch on A is never woken by B), and
   * every node's serfHealth is derived from its agent's leased `live` key.
   */
  async #openShared(store: SharedStore): Promise<void> {
    this.#shared = store;
    const { index, rows } = await store.loadRows();
    this.#index = Math.max(1, index);
    this.#applied = index;
    for (const r of rows) this.#applyStoreRow(r, r);
    for (const n of this.#nodes.values()) this.#deriveSerf(n.node.toLowerCase(), index);
    for (const t of [Topic.services, Topic.nodes, Topic.checks]) this.#topicIndex.set(t, this.#index);
    for (const r of rows) {
      if (r.table !== 'nodes' && r.table !== 'services' && r.table !== 'checks') continue;
      const topics = new Set<string>();
      this.#topicsOf({ table: r.table, key: r.key, prev: undefined, next: r.value as Row } as Change, topics);
      for (const t of topics) {
        if (t === Topic.services || t === Topic.nodes || t === Topic.checks) continue;
        if ((this.#topicIndex.get(t) ?? 0) < r.modifyIndex) this.#topicIndex.set(t, r.modifyIndex);
      }
    }
    // What this agent owns, as etcd last had it: a restarted agent resumes with it (nothing re-registered).
    const localLower = this.local.name.toLowerCase();
    for (const s of this.#services.values())
      if (s.agent && s.node.toLowerCase() === localLower)
        this.#own.set(`services:${recordKey(s.node, s.id)}`, s);
    for (const ch of this.#checks.values())
      if (ch.agent && ch.node.toLowerCase() === localLower)
        this.#own.set(`checks:${recordKey(ch.node, ch.checkId)}`, ch);
    this.#watch = store.watch(index, (e) => this.#onStoreEvent(e));
    this.#watch.prime(rows);
  }

  #onStoreEvent(e: StoreEvent): void {
    if (this.#held) {
      this.#held.push(e);
      return;
    }
    this.#applyStoreEvent(e);
  }

  /** Applies one committed store event to the view: rows, derived serfHealth, topics, watchers, events. */
  #applyStoreEvent(e: StoreEvent): void {
    if (this.#closed) return;
    const own = this.#ownRevisions.delete(e.index);
    if (e.changes.length > 0) {
      const topics = new Set<string>();
      const events: CatalogEvent[] = [];
      const lifecycle: LifecycleEvent[] = [];
      for (const ch of e.changes) {
        const row: StoreRow | undefined = ch.type === 'put' ? ch : undefined;
        const prev = this.#applyStoreRow({ table: ch.table, key: ch.key }, row);
        if (ch.table === 'live' || ch.table === 'members' || ch.table === 'nodes') {
          const node = ch.table === 'nodes' ? ch.key : ch.key;
          const serf = this.#deriveSerf(node, e.index);
          if (serf) this.#topicsOf(serf, topics);
          const now = serf?.next as CheckRecord | undefined;
          if (now) {
            const n = this.#nodes.get(node);
            lifecycle.push({
              type: 'agent-liveness',
              node: now.node,
              address: n?.address ?? '',
              alive: now.status === 'passing',
              output: now.output,
            });
          }
        }
        if (ch.table !== 'nodes' && ch.table !== 'services' && ch.table !== 'checks') continue;
        const change = { table: ch.table, key: ch.key, prev, next: row?.value as Row | undefined } as Change;
        this.#topicsOf(change, topics);
        if (!own && ch.table === 'checks') this.#deriveCheckEvents(change, events);
      }
      if (topics.size > 0) {
        this.#index = Math.max(this.#index, e.index);
        for (const t of topics) this.#topicIndex.set(t, e.index);
        this.#indexTime.set(e.index, this.clock.now());
        if (this.#indexTime.size > 4096)
          this.#indexTime.delete(this.#indexTime.keys().next().value as number);
      }
      for (const ev of events) for (const l of this.#listeners) l(ev);
      this.#emitLifecycle(lifecycle);
      this.#notify(topics);
    }
    if (e.index > this.#applied) this.#applied = e.index;
    for (const w of [...this.#appliedWaiters]) {
      if (w.ready()) {
        this.#appliedWaiters.delete(w);
        w.resolve();
      }
    }
  }

  /**
   * Puts (row given) or deletes one stored row into the view, with the store's revisions as the record's
   * CreateIndex/ModifyIndex. Returns the previous catalog row.
   */
  #applyStoreRow(at: { table: string; key: string }, row: StoreRow | undefined): Row | undefined {
    if (at.table === 'nodes' || at.table === 'services' || at.table === 'checks') {
      let next: Row | undefined;
      if (row) {
        // The value was parsed from the store for this delivery alone: stamp the revisions on it in place.
        const v = row.value as Row;
        if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
          v.createIndex = row.createIndex;
          v.modifyIndex = row.modifyIndex;
        }
        // Rows come from any writer of the shared store, not only from Phare agents: a row that is not a
        // record of its table, or whose key is not its own, must neither crash a read nor shadow another row.
        const problem = rowProblem(at.table, v) ?? keyProblem(at.table, at.key, v);
        if (problem === undefined) next = v;
        else {
          this.#onBadRow?.(at.table, at.key, problem);
          // what the caller reads as the row's new value (its topics, its events): absent
          (row as { value: unknown }).value = undefined;
        }
        if (at.table === 'checks' && next && (next as CheckRecord).checkId === SERF_CHECK_ID)
          return undefined;
      }
      return this.#applyRow(at.table, at.key, next);
    }
    let table = this.#clusterRows.get(at.table);
    if (!table) {
      table = new Map();
      this.#clusterRows.set(at.table, table);
    }
    // A member row is read field by field (memberStates, the reaper): one that is not a member record of its
    // own key counts as absent, as a bad catalog row does (a `{"status":42}` stopped every reaper pass).
    const problem = row && at.table === 'members' ? memberProblem(at.key, row.value) : undefined;
    if (problem !== undefined) {
      this.#onBadRow?.('members', at.key, problem);
      (row as { value: unknown }).value = undefined;
    }
    if (row && problem === undefined) table.set(at.key, row);
    else table.delete(at.key);
    return undefined;
  }

  /**
   * The node's serfHealth as its agent's liveness says (Consul: passing "Agent alive and reachable", else
   * critical "Agent not live or unreachable"). Nodes without an agent (catalog/register) have none.
   */
  #deriveSerf(nodeLower: string, index: number): Change | undefined {
    const node = this.#nodes.get(nodeLower);
    const member = this.#clusterRows.get('members')?.get(nodeLower);
    const key = node ? recordKey(node.node, SERF_CHECK_ID) : undefined;
    const prevByNode = key ? this.#checks.get(key) : undefined;
    if (!node || !member || !key) {
      // node gone (or not an agent's): drop any serfHealth it had
      for (const [k, c] of this.#checks) {
        if (c.checkId === SERF_CHECK_ID && c.node.toLowerCase() === nodeLower) {
          this.#applyRow('checks', k, undefined);
          this.#ephemeral.delete(`checks:${k}`);
          return { table: 'checks', key: k, prev: c, next: undefined, ephemeral: true, wasEphemeral: true };
        }
      }
      return undefined;
    }
    const alive = this.#clusterRows.get('live')?.has(nodeLower) === true;
    if (alive) this.#downSince.delete(nodeLower);
    else if (!this.#downSince.has(nodeLower)) this.#downSince.set(nodeLower, this.clock.now());
    if (prevByNode && (prevByNode.status === 'passing') === alive) return undefined;
    const next = serfCheck(node.node, alive, member.createIndex, index);
    if (!alive) next.criticalSince = this.#downSince.get(nodeLower) as number;
    this.#applyRow('checks', key, next);
    this.#ephemeral.add(`checks:${key}`);
    return { table: 'checks', key, prev: prevByNode, next, ephemeral: true, wasEphemeral: true };
  }

  /** Check lifecycle events for a change another writer made to a check this agent runs. */
  #deriveCheckEvents(c: Change, out: CatalogEvent[]): void {
    const prev = c.prev as CheckRecord | undefined;
    const next = c.next as CheckRecord | undefined;
    const mine = (r: CheckRecord | undefined) => r?.agent && r.node === this.local.name;
    if (!mine(prev) && !mine(next)) return;
    if (prev && next && isDeepStrictEqual(prev.def, next.def)) {
      if (prev.status !== next.status) out.push({ type: 'check-status', check: next, announce: false });
      return;
    }
    if (prev) out.push({ type: 'check-removed', check: prev });
    if (next) out.push({ type: 'check-added', check: next });
  }

  /** Resolves once the view has applied the store's revision `index` (shared store only). */
  waitForIndex(index: number, timeoutMs = 10_000): Promise<boolean> {
    return this.#waitApplied(() => this.#applied >= index, timeoutMs);
  }

  /** Resolves true once `ready()` holds after an applied store event (or the catalog closed), false after `timeoutMs`. */
  #waitApplied(ready: () => boolean, timeoutMs: number): Promise<boolean> {
    if (!this.#shared || ready() || this.#closed) return Promise.resolve(true);
    return new Promise((resolve) => {
      const w = {
        ready,
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        this.#appliedWaiters.delete(w);
        resolve(false);
      }, timeoutMs);
      this.#appliedWaiters.add(w);
    });
  }

  /**
   * The barrier of a `?consistent` read (Consul docs, Consistency Modes: "the leader verifies with a quorum
   * of peers that it is still leader"): over etcd, a quorum read of the last write's revision, then a wait
   * until this agent's view has applied it, so the read sees every write acknowledged anywhere before it
   * began. A single agent's view is always current. Rejects with PHARE_ERR_NO_LEADER without quorum, and
   * with PHARE_ERR_STORE when the watch does not catch up within `timeoutMs`.
   */
  async consistentRead(timeoutMs = 5000): Promise<void> {
    if (!this.#shared) return;
    const q = await this.#shared.latestIndex();
    // A lease that expired since the last Phare write is a deletion of its `live` row at a revision no write
    // made: wait until the view has dropped every `live` row the quorum no longer has (serfHealth critical).
    const caughtUp = () =>
      this.#applied >= q.revision ||
      (this.#applied >= q.index &&
        [...(this.#clusterRows.get('live')?.keys() ?? [])].every((k) => q.live.has(k)));
    if (!(await this.#waitApplied(caughtUp, timeoutMs)))
      throw phareError(
        'PHARE_ERR_STORE',
        `store: this agent's view did not reach revision ${q.index} within ${timeoutMs} ms; retry, or read with ?stale`,
      );
  }

  /**
   * `X-Consul-KnownLeader` / `X-Consul-LastContact`: a single agent always knows its leader (itself); over
   * etcd, whether etcd has a leader. Reads keep serving the cache either way.
   */
  leaderState(): { knownLeader: boolean; lastContactMs: number } {
    return this.#shared ? this.#shared.health() : { knownLeader: true, lastContactMs: 0 };
  }

  /** The store revision the view has applied (shared store); the catalog index otherwise. */
  get appliedIndex(): number {
    return this.#shared ? this.#applied : this.#index;
  }

  /** Rows of a cluster table (`members`, `live`, `election`) as the watch last delivered them. */
  clusterRows(table: 'members' | 'live' | 'election'): StoreRow[] {
    return [...(this.#clusterRows.get(table)?.values() ?? [])];
  }

  /**
   * Every agent's node with its state: `alive` (its lease holds), `left` (it left gracefully), `failed` (its
   * lease expired); `since` is when this agent first saw it not alive.
   */
  memberStates(): { node: string; address: string; status: 'alive' | 'left' | 'failed'; since?: number }[] {
    const out: { node: string; address: string; status: 'alive' | 'left' | 'failed'; since?: number }[] = [];
    const live = this.#clusterRows.get('live');
    for (const [lower, m] of this.#clusterRows.get('members') ?? []) {
      const v = m.value as { node: string; address: string; status?: string };
      const n = this.#nodes.get(lower);
      const status = live?.has(lower) ? 'alive' : v.status === 'left' ? 'left' : 'failed';
      const since = this.#downSince.get(lower);
      out.push({
        node: n?.node ?? v.node,
        address: n?.address ?? v.address,
        status,
        ...(since ? { since } : {}),
      });
    }
    return out.sort((a, b) => cmp(a.node, b.node));
  }

  /**
   * Anti-entropy (Consul agent/ae): the ops that make the store's rows under this agent's node what the agent
   * owns — puts for what differs or is missing, deletes for agent rows it no longer has.
   */
  antiEntropyOps(): SharedStoreOp[] {
    const ops: SharedStoreOp[] = [];
    const strip = (r: Row) => {
      const {
        createIndex: _c,
        modifyIndex: _m,
        ...rest
      } = r as Row & { createIndex: number; modifyIndex: number };
      return rest;
    };
    for (const [tk, row] of this.#own) {
      const [table, key] = splitTableKey(tk);
      const cur = table === 'services' ? this.#services.get(key) : this.#checks.get(key);
      if (!cur || !isDeepStrictEqual(strip(cur), strip(row)))
        ops.push({ type: 'put', table, key, value: row });
    }
    for (const s of this.servicesOnNode(this.local.name)) {
      const k = recordKey(s.node, s.id);
      if (s.agent && !this.#own.has(`services:${k}`)) ops.push({ type: 'del', table: 'services', key: k });
    }
    for (const ch of this.checksOnNode(this.local.name)) {
      const k = recordKey(ch.node, ch.checkId);
      if (ch.agent && !this.#own.has(`checks:${k}`)) ops.push({ type: 'del', table: 'checks', key: k });
    }
    return ops;
  }

  /** The ops that remove a node with everything on it (the cluster reaper). */
  nodeRemovalOps(node: string): SharedStoreOp[] {
    const lower = node.toLowerCase();
    const ops: SharedStoreOp[] = [];
    for (const s of this.servicesOnNode(node))
      ops.push({ type: 'del', table: 'services', key: recordKey(s.node, s.id) });
    for (const c of this.checksOnNode(node))
      if (c.checkId !== SERF_CHECK_ID)
        ops.push({ type: 'del', table: 'checks', key: recordKey(c.node, c.checkId) });
    ops.push({ type: 'del', table: 'nodes', key: lower }, { type: 'del', table: 'members', key: lower });
    return ops;
  }

  /** The ops that remove one service instance and its checks (the cluster reaper). */
  serviceRemovalOps(node: string, serviceId: string): SharedStoreOp[] {
    const n = this.node(node);
    if (!n) return [];
    const ops: SharedStoreOp[] = [{ type: 'del', table: 'services', key: recordKey(n.node, serviceId) }];
    for (const c of this.#ownedChecks(n.node, serviceId))
      ops.push({ type: 'del', table: 'checks', key: recordKey(c.node, c.checkId) });
    return ops;
  }

  /** Records what a committed (or, for check results, attempted) write means for what this agent owns. */
  #recordOwn(changes: readonly Change[]): void {
    const localLower = this.local.name.toLowerCase();
    for (const c of changes) {
      if (c.ephemeral || (c.table !== 'services' && c.table !== 'checks')) continue;
      const rec = (c.next ?? c.prev) as ServiceRecord | CheckRecord | undefined;
      if (!rec || rec.node.toLowerCase() !== localLower) continue;
      const tk = `${c.table}:${c.key}`;
      if (c.next && (c.next as ServiceRecord).agent) this.#own.set(tk, c.next);
      else this.#own.delete(tk);
    }
  }

  /** Commits a built batch to the shared store; resolves once the watch has applied it to the view. */
  async #commitShared(built: { tx: Tx; w: QueuedWrite }[], ops: SharedStoreOp[]): Promise<void> {
    const store = this.#shared as SharedStore;
    this.#held = [];
    let revision: number;
    try {
      revision = await store.commit(ops);
    } catch (err) {
      this.#releaseHeld();
      // A check result is the agent's truth even when etcd cannot take it: anti-entropy writes it later.
      for (const { tx } of built) if (tx.statusOnly) this.#recordOwn(tx.changes);
      for (const b of built) b.w.reject(err);
      return;
    }
    this.#ownRevisions.add(revision);
    this.#releaseHeld();
    // Read-your-writes: answer once this agent's view shows the change (its watch delivered the revision).
    await this.waitForIndex(revision);
    this.#ownRevisions.delete(revision);
    for (const { tx } of built) {
      this.#recordOwn(tx.changes);
      for (const e of tx.events) for (const l of this.#listeners) l(e);
      this.#emitLifecycle(tx.lifecycle);
    }
    for (const b of built) b.w.resolve();
  }

  #emitLifecycle(events: readonly LifecycleEvent[]): void {
    for (const e of events)
      for (const l of this.#lifecycleListeners) {
        try {
          l(e);
        } catch {
          // a logger's trouble must not fail a write that is already durable
        }
      }
  }

  #releaseHeld(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const e of held) this.#applyStoreEvent(e);
  }

  // ---------------------------------------------------------------- indexes and watching

  /** The highest index handed out so far. */
  get index(): number {
    return this.#index;
  }

  /**
   * The index of the data a read over `topics` returns: the last change to any of them. A topic never
   * written since start reports the `services` (or `nodes`) table index, so it is never 0 and never lower
   * than the deregistration that may have emptied it.
   */
  indexOf(topics: readonly string[]): number {
    let max = 0;
    for (const t of topics) {
      const i =
        this.#topicIndex.get(t) ?? this.#topicIndex.get(t.startsWith('node:') ? Topic.nodes : Topic.services);
      if (i !== undefined && i > max) max = i;
    }
    return max > 0 ? max : this.#index;
  }

  /**
   * Resolves once `indexOf(topics) > minIndex`, after `timeoutMs`, or when `signal` aborts — whichever is
   * first. Never rejects.
   */
  waitForChange(
    topics: readonly string[],
    minIndex: number,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<void> {
    if (this.indexOf(topics) > minIndex || this.#closed || signal?.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        for (const t of topics) this.#waiters.get(t)?.delete(wake);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const wake = () => {
        if (this.indexOf(topics) > minIndex || this.#closed) done();
      };
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done, { once: true });
      for (const t of topics) {
        let set = this.#waiters.get(t);
        if (!set) {
          set = new Set();
          this.#waiters.set(t, set);
        }
        set.add(wake);
      }
    });
  }

  /** When `index` was handed out (epoch ms), if it is recent; undefined for older or loaded indexes. */
  indexTime(index: number): number | undefined {
    return this.#indexTime.get(index);
  }

  /** Number of parked blocking queries (for metrics). */
  get waiterCount(): number {
    let n = 0;
    for (const s of this.#waiters.values()) n += s.size;
    return n;
  }

  /**
   * Listens to {@link LifecycleEvent}s (the agent's info log). Returns an unsubscribe function.
   *
   * @example
   * catalog.onLifecycle((e) => log.info(e, e.type));
   */
  onLifecycle(listener: (e: LifecycleEvent) => void): () => void {
    this.#lifecycleListeners.add(listener);
    return () => this.#lifecycleListeners.delete(listener);
  }

  /** Listens to check lifecycle events (the health module's feed). Returns an unsubscribe function. */
  subscribe(listener: (e: CatalogEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // ---------------------------------------------------------------- reads

  /** A node by name (case-insensitive). */
  node(name: string): NodeRecord | undefined {
    return this.#nodes.get(name.toLowerCase());
  }

  /** All nodes, ordered by name. */
  nodes(): NodeRecord[] {
    return [...this.#nodes.values()].sort((a, b) => cmp(a.node, b.node));
  }

  /** Every service instance, ordered by (node, service ID). */
  allServices(): ServiceRecord[] {
    return [...this.#services.values()].sort(byNodeThenId);
  }

  /** Instances of one service name (case-insensitive), ordered by (node, service ID). */
  instancesOf(name: string): ServiceRecord[] {
    const keys = this.#byName.get(name.toLowerCase());
    if (!keys) return [];
    const out: ServiceRecord[] = [];
    for (const k of keys) out.push(this.#services.get(k) as ServiceRecord);
    return out.sort(byNodeThenId);
  }

  /** One instance by node name and service ID. */
  serviceOn(node: string, id: string): ServiceRecord | undefined {
    return this.#services.get(recordKey(node, id));
  }

  /** Instances on one node, ordered by service ID. */
  servicesOnNode(node: string): ServiceRecord[] {
    const n = this.node(node);
    if (!n) return [];
    return [...(this.#servicesByNode.get(n.node) ?? [])]
      .map((k) => this.#services.get(k) as ServiceRecord)
      .sort(byNodeThenId);
  }

  /** A check by node and ID. */
  check(node: string, checkId: string): CheckRecord | undefined {
    return this.#checks.get(recordKey(node, checkId));
  }

  /** All checks, ordered by (node, check ID). */
  allChecks(): CheckRecord[] {
    return [...this.#checks.values()].sort((a, b) => cmp(a.node, b.node) || cmp(a.checkId, b.checkId));
  }

  /** The node-level checks of a node plus, with `serviceId`, that instance's checks — Consul's health entry. */
  checksFor(node: string, serviceId?: string): CheckRecord[] {
    const out: CheckRecord[] = [];
    for (const k of this.#checksByOwner.get(recordKey(node, '')) ?? [])
      out.push(this.#checks.get(k) as CheckRecord);
    if (serviceId) {
      for (const k of this.#checksByOwner.get(recordKey(node, serviceId)) ?? [])
        out.push(this.#checks.get(k) as CheckRecord);
    }
    return out.sort((a, b) => cmp(a.checkId, b.checkId));
  }

  /** Every check on a node (node checks and all its services' checks). */
  checksOnNode(node: string): CheckRecord[] {
    const n = this.node(node);
    if (!n) return [];
    return [...(this.#checksByNode.get(n.node) ?? [])]
      .map((k) => this.#checks.get(k) as CheckRecord)
      .sort((a, b) => cmp(a.checkId, b.checkId));
  }

  /** The checks of every instance of a service (not node checks). */
  checksOfService(name: string): CheckRecord[] {
    const out: CheckRecord[] = [];
    for (const s of this.instancesOf(name)) {
      for (const k of this.#checksByOwner.get(recordKey(s.node, s.id)) ?? [])
        out.push(this.#checks.get(k) as CheckRecord);
    }
    return out.sort((a, b) => cmp(a.node, b.node) || cmp(a.checkId, b.checkId));
  }

  /** Services registered through this agent, ordered by ID. */
  agentServices(): ServiceRecord[] {
    return this.servicesOnNode(this.local.name).filter((s) => s.agent);
  }

  /** A service registered through this agent. */
  agentService(id: string): ServiceRecord | undefined {
    const s = this.#services.get(recordKey(this.local.name, id));
    return s?.agent ? s : undefined;
  }

  /** Checks on this agent's node (what `agent/checks` lists), ordered by ID. */
  agentChecks(): CheckRecord[] {
    return this.checksOnNode(this.local.name).filter((c) => c.agent || c.checkId.startsWith('_'));
  }

  // ---------------------------------------------------------------- writes

  /**
   * Registers (or replaces) a service on the agent's node with its checks. A check that already existed
   * keeps its status and output (Consul #868).
   */
  registerService(
    input: ServiceInput,
    checks: readonly CheckInput[],
    options: { replaceExistingChecks?: boolean; why?: string } = {},
  ): Promise<void> {
    return this.#write((tx) => {
      const node = this.local.name;
      const key = recordKey(node, input.id);
      // a catalog-registered entry with the same ID on our node: the agent takes it over
      const prev = this.#services.get(key);
      const rec: ServiceRecord = {
        ...input,
        node,
        agent: true,
        createIndex: prev?.createIndex ?? tx.index,
        modifyIndex: tx.index,
      };
      this.#change(tx, 'services', key, rec);
      tx.lifecycle.push({
        type: 'service-registered',
        service: rec,
        replaced: prev !== undefined,
        why: options.why ?? '',
      });
      const keep = new Set<string>();
      for (const ci of checks) {
        keep.add(ci.checkId);
        this.#putCheck(tx, ci, rec);
      }
      if (options.replaceExistingChecks) {
        for (const c of this.#ownedChecks(node, rec.id)) if (!keep.has(c.checkId)) this.#deleteCheck(tx, c);
      }
    });
  }

  /** Removes a service of this agent and all its checks. Throws PHARE_ERR_NOT_FOUND if unknown. */
  deregisterService(id: string, options: { why?: string } = {}): Promise<void> {
    return this.#write((tx) => {
      const s = this.agentService(id);
      if (!s) {
        throw phareError(
          'PHARE_ERR_NOT_FOUND',
          `Unknown service ID ${JSON.stringify(id)}. Ensure that the service ID is passed, not the service name.`,
        );
      }
      this.#deleteService(tx, s);
      tx.lifecycle.push({ type: 'service-deregistered', service: s, why: options.why ?? '' });
    });
  }

  /** Registers (or replaces) a check on the agent's node; `serviceId` must name an agent service. */
  registerCheck(input: CheckInput): Promise<void> {
    return this.#write((tx) => {
      let svc: ServiceRecord | undefined;
      if (input.serviceId) {
        svc = this.agentService(input.serviceId);
        if (!svc)
          throw phareError(
            'PHARE_ERR_NOT_FOUND',
            `ServiceID ${JSON.stringify(input.serviceId)} does not exist`,
          );
      }
      this.#putCheck(tx, input, svc);
    });
  }

  /** Removes a check of this agent. Throws PHARE_ERR_NOT_FOUND if unknown. */
  deregisterCheck(checkId: string): Promise<void> {
    return this.#write((tx) => {
      const c = this.check(this.local.name, checkId);
      if (!c || checkId === SERF_CHECK_ID) throw unknownCheck(checkId);
      this.#deleteCheck(tx, c);
    });
  }

  /**
   * Sets a check's status and output. A status change bumps the index and wakes watchers; an output-only
   * change from a periodic prober stays in memory (Consul syncs output lazily, `check_update_interval`: the
   * health engine writes it later with {@link persistCheck}) unless `announce` is set, as it is for the TTL
   * endpoints.
   */
  updateCheck(
    node: string,
    checkId: string,
    status: CheckStatus,
    output: string,
    options: { announce?: boolean } = {},
  ): Promise<void> {
    const c = this.check(node, checkId);
    if (!c) return Promise.reject(unknownCheck(checkId));
    if (c.status === status && (c.output === output || !options.announce)) {
      // The same text keeps the old string: the probe's copy then dies young instead of living until the
      // next probe and being promoted (10,000 checks: 1,000 strings/s into the old generation).
      if (c.output !== output) {
        c.output = output;
        // What this agent owns follows, so anti-entropy neither sees a difference to write early nor puts
        // the old output back; the deferred write (persistCheck) carries it to the store.
        const own = this.#own.get(`checks:${recordKey(c.node, c.checkId)}`) as CheckRecord | undefined;
        if (own !== undefined) own.output = output;
      }
      return Promise.resolve();
    }
    return this.#write((tx) => {
      tx.statusOnly = true;
      const cur = this.check(node, checkId);
      if (!cur) throw unknownCheck(checkId);
      const changed = cur.status !== status;
      // criticalSince is left out rather than deleted: `delete` turns the record into a dictionary-mode
      // object (~800 B more per check, 8 MiB at 10,000 checks).
      const { criticalSince, ...rest } = cur;
      const next: CheckRecord = { ...rest, status, output, modifyIndex: tx.index };
      if (status === 'critical')
        next.criticalSince = changed ? this.clock.now() : (criticalSince ?? this.clock.now());
      this.#storeCheck(tx, next);
      if (changed) {
        tx.events.push({ type: 'check-status', check: next, announce: options.announce === true });
        tx.lifecycle.push({ type: 'check-status', check: next, from: cur.status });
      }
    });
  }

  /**
   * Writes a check as the view has it now: the deferred write of an output-only change (Consul's
   * `check_update_interval`; checks/output-sync.ts). Nothing if the check is gone.
   */
  persistCheck(node: string, checkId: string): Promise<void> {
    return this.#write((tx) => {
      tx.statusOnly = true;
      const cur = this.check(node, checkId);
      if (!cur) return;
      this.#storeCheck(tx, { ...cur, modifyIndex: tx.index });
    });
  }

  /** Turns maintenance mode on or off for an agent service (a synthetic critical check). */
  setServiceMaintenance(serviceId: string, enable: boolean, reason: string): Promise<void> {
    return this.#write((tx) => {
      const s = this.agentService(serviceId);
      if (!s)
        throw phareError('PHARE_ERR_NOT_FOUND', `No service registered with ID ${JSON.stringify(serviceId)}`);
      const id = MAINTENANCE.serviceCheckId(serviceId);
      const existing = this.check(s.node, id);
      if (enable && !existing) {
        this.#putCheck(
          tx,
          {
            checkId: id,
            name: MAINTENANCE.serviceName,
            notes: reason || MAINTENANCE.serviceNotes,
            serviceId,
            status: 'critical',
            def: emptyDef(),
          },
          s,
        );
      } else if (!enable && existing) {
        this.#deleteCheck(tx, existing);
      }
    });
  }

  /** Turns node maintenance mode on or off for the agent's node. */
  setNodeMaintenance(enable: boolean, reason: string): Promise<void> {
    return this.#write((tx) => {
      const existing = this.check(this.local.name, MAINTENANCE.nodeCheckId);
      if (enable && !existing) {
        this.#putCheck(tx, {
          checkId: MAINTENANCE.nodeCheckId,
          name: MAINTENANCE.nodeName,
          notes: reason || MAINTENANCE.nodeNotes,
          serviceId: '',
          status: 'critical',
          def: emptyDef(),
        });
      } else if (!enable && existing) {
        this.#deleteCheck(tx, existing);
      }
    });
  }

  /**
   * `PUT /v1/catalog/register`: upserts a node, optionally a service and checks on it. Checks written
   * this way are not run; their status is what was written.
   */
  catalogRegister(req: {
    node: Omit<NodeRecord, 'createIndex' | 'modifyIndex'>;
    service?: ServiceInput;
    checks: (CheckInput & { serviceId: string })[];
  }): Promise<void> {
    return this.#write((tx) => {
      const lower = req.node.node.toLowerCase();
      const isLocal = lower === this.local.name.toLowerCase();
      const prevNode = this.#nodes.get(lower);
      const nodeName = prevNode?.node ?? req.node.node;
      if (!isLocal) {
        const rec: NodeRecord = {
          ...req.node,
          node: nodeName,
          createIndex: prevNode?.createIndex ?? tx.index,
          modifyIndex: tx.index,
        };
        this.#change(tx, 'nodes', lower, rec);
      }
      let svc: ServiceRecord | undefined;
      if (req.service) {
        const key = recordKey(nodeName, req.service.id);
        const prev = this.#services.get(key);
        svc = {
          ...req.service,
          node: nodeName,
          agent: prev?.agent ?? false,
          createIndex: prev?.createIndex ?? tx.index,
          modifyIndex: tx.index,
        };
        this.#change(tx, 'services', key, svc);
      }
      for (const ci of req.checks) {
        let owner: ServiceRecord | undefined;
        if (ci.serviceId) {
          owner = this.#services.get(recordKey(nodeName, ci.serviceId));
          if (!owner) {
            throw phareError(
              'PHARE_ERR_INVALID_ARGUMENT',
              `Unknown service ID ${JSON.stringify(ci.serviceId)} for check ${JSON.stringify(ci.checkId)}`,
              { status: 500 },
            );
          }
        }
        this.#putCheck(tx, ci, owner, nodeName, false);
      }
    });
  }

  /** `PUT /v1/catalog/deregister`: a node (with everything on it), a service, or a check. */
  catalogDeregister(req: { node: string; serviceId?: string; checkId?: string }): Promise<void> {
    return this.#write((tx) => {
      const n = this.node(req.node);
      if (!n) return; // Consul answers true for an unknown node
      if (req.serviceId) {
        const s = this.#services.get(recordKey(n.node, req.serviceId));
        if (s) this.#deleteService(tx, s);
        return;
      }
      if (req.checkId) {
        const c = this.check(n.node, req.checkId);
        if (c && c.checkId !== SERF_CHECK_ID) this.#deleteCheck(tx, c);
        return;
      }
      const isLocal = n.node === this.local.name;
      for (const s of this.servicesOnNode(n.node)) if (!isLocal || !s.agent) this.#deleteService(tx, s);
      for (const c of this.checksOnNode(n.node))
        if (!isLocal || (!c.agent && c.checkId !== SERF_CHECK_ID)) this.#deleteCheck(tx, c);
      if (!isLocal) this.#change(tx, 'nodes', n.node.toLowerCase(), undefined);
    });
  }

  /**
   * Stops taking writes, waits for the queued ones to be committed (or to fail), then releases every
   * blocking query.
   */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#draining) await this.#draining;
    await this.#watch?.close();
    for (const w of [...this.#appliedWaiters]) w.resolve();
    for (const set of this.#waiters.values()) for (const w of [...set]) w();
  }

  // ---------------------------------------------------------------- the write path

  /** Queues a write; it resolves once durable and visible, or rejects having changed nothing. */
  #write(build: (tx: Tx) => void): Promise<void> {
    if (this.#closed)
      return Promise.reject(phareError('PHARE_ERR_STORE_CLOSED', 'catalog: the agent is shutting down'));
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ build, resolve, reject });
      this.#draining ??= this.#drain();
    });
  }

  /** Commits queued writes batch after batch until the queue is empty. Never rejects. */
  async #drain(): Promise<void> {
    // setImmediate lets every request parsed in this turn of the loop join the first batch.
    await new Promise<void>((r) => setImmediate(r));
    while (this.#queue.length > 0) {
      // Group commit on a shared store under load: when the last batch carried more than one write, a batch
      // short of full waits GROUP_WAIT_MS for more. Every etcd transaction costs etcd and each agent's watch a
      // fixed share on top of its writes, and without the wait a batch takes only what arrived while the one
      // before was committed (about half the writers: 8.5 registrations per transaction at 64 clients over 3
      // agents). With it, 13 per transaction: etcd −16 % and the agents −3 % CPU per registration, throughput
      // +8 % in the same rounds (bench/cluster.ts, BENCHMARKS.md). A lone write (the last batch had one) never waits.
      if (this.#shared && this.#lastBatch > 1 && this.#queue.length < SHARED_BATCH_MAX)
        await new Promise<void>((r) => setTimeout(r, GROUP_WAIT_MS));
      // etcd caps a transaction at 128 ops (--max-txn-ops): a shared store commits at most 24 writes at once.
      const batch = this.#shared ? this.#queue.splice(0, SHARED_BATCH_MAX) : this.#queue;
      if (!this.#shared) this.#queue = [];
      this.#lastBatch = batch.length;
      await this.#commitBatch(batch);
    }
    this.#draining = undefined;
  }

  async #commitBatch(batch: QueuedWrite[]): Promise<void> {
    // 1. Build each write in order against the committed view plus the writes before it in this batch.
    const built: { tx: Tx; w: QueuedWrite }[] = [];
    let index = this.#index;
    for (const w of batch) {
      const tx = new Tx(index + 1);
      try {
        w.build(tx);
      } catch (err) {
        this.#undo(tx);
        w.reject(err);
        continue;
      }
      // A write that changes nothing takes no index, but shares the batch's fate: it may rest on the
      // writes before it.
      if (tx.changes.length > 0) index = tx.index;
      built.push({ tx, w });
    }
    // 2. Take the batch back out of the view before anything else runs: readers see committed state only.
    for (let i = built.length - 1; i >= 0; i--) this.#undo((built[i] as { tx: Tx }).tx);
    if (index === this.#index) {
      for (const b of built) b.w.resolve();
      return;
    }
    // 3. Commit: one store write for the whole batch, with the highest index it hands out.
    const ops: StoreOp[] = [];
    for (const { tx } of built) {
      for (const c of tx.changes) {
        if (c.ephemeral) continue;
        ops.push(
          c.next === undefined
            ? { type: 'del', table: c.table, key: c.key }
            : { type: 'put', table: c.table, key: c.key, value: c.next },
        );
      }
    }
    if (this.#shared) return this.#commitShared(built, ops);
    try {
      await this.#store.write(ops, index);
    } catch (err) {
      for (const b of built) b.w.reject(err);
      return;
    }
    // 4. Durable: apply to the view, hand out the indexes, tell listeners, wake watchers, answer.
    const touched = new Set<string>();
    for (const { tx } of built) {
      if (tx.changes.length === 0) continue;
      const topics = new Set<string>();
      for (const c of tx.changes) {
        this.#applyRow(c.table, c.key, c.next);
        this.#markEphemeral(c.table, c.key, c.ephemeral && c.next !== undefined);
        this.#topicsOf(c, topics);
      }
      this.#index = tx.index;
      for (const t of topics) {
        this.#topicIndex.set(t, tx.index);
        touched.add(t);
      }
      this.#indexTime.set(tx.index, this.clock.now());
      // keep the times of recent indexes only: enough for any answer still in flight
      if (this.#indexTime.size > 4096) this.#indexTime.delete(this.#indexTime.keys().next().value as number);
      for (const e of tx.events) for (const l of this.#listeners) l(e);
      this.#emitLifecycle(tx.lifecycle);
    }
    this.#notify(touched);
    for (const b of built) b.w.resolve();
  }

  /** Changes one row of the view while a write is built, and records how to undo it. */
  #change(tx: Tx, table: StoreTable, key: string, next: Row | undefined, ephemeral = false): void {
    const wasEphemeral = this.#ephemeral.has(`${table}:${key}`);
    const prev = this.#applyRow(table, key, next);
    this.#markEphemeral(table, key, ephemeral && next !== undefined);
    // deleting an in-memory-only row is itself in memory only
    tx.changes.push({ table, key, prev, next, ephemeral: next ? ephemeral : wasEphemeral, wasEphemeral });
  }

  #undo(tx: Tx): void {
    for (let i = tx.changes.length - 1; i >= 0; i--) {
      const c = tx.changes[i] as Change;
      this.#applyRow(c.table, c.key, c.prev);
      this.#markEphemeral(c.table, c.key, c.wasEphemeral);
    }
  }

  #markEphemeral(table: StoreTable, key: string, on: boolean): void {
    if (on) this.#ephemeral.add(`${table}:${key}`);
    else this.#ephemeral.delete(`${table}:${key}`);
  }

  /** Puts (or with `next` undefined, deletes) one row of the view and its secondary indexes; returns the old row. */
  #applyRow(table: StoreTable, key: string, next: Row | undefined): Row | undefined {
    switch (table) {
      case 'nodes': {
        const prev = this.#nodes.get(key);
        if (next) this.#nodes.set(key, next as NodeRecord);
        else this.#nodes.delete(key);
        return prev;
      }
      case 'services': {
        const prev = this.#services.get(key);
        if (prev) this.#unindexService(prev);
        if (next) this.#indexService(next as ServiceRecord);
        return prev;
      }
      case 'checks': {
        const prev = this.#checks.get(key);
        if (prev) this.#removeCheck(prev);
        if (next) this.#setCheck(next as CheckRecord);
        return prev;
      }
    }
  }

  /**
   * The topics a row change moves, read against the view as it is once the row is applied (so a node's
   * services are the ones it has after the change).
   */
  #topicsOf(c: Change, out: Set<string>): void {
    const rows = [c.prev, c.next].filter((r) => r !== undefined);
    switch (c.table) {
      case 'nodes':
        for (const n of rows as NodeRecord[]) {
          // services (node-meta filters) and checks (health/state?node-meta) read node fields too
          out.add(Topic.nodes).add(Topic.node(n.node)).add(Topic.services).add(Topic.checks);
          // health/service entries embed the node: its watchers must see a node change too
          for (const s of this.servicesOnNode(n.node)) out.add(Topic.service(s.name));
        }
        return;
      case 'services':
        for (const s of rows as ServiceRecord[]) {
          // checks carry ServiceTags, so check reads (health/state) move with the service too
          out.add(Topic.services).add(Topic.service(s.name)).add(Topic.node(s.node)).add(Topic.checks);
        }
        return;
      case 'checks':
        for (const ch of rows as CheckRecord[]) {
          out.add(Topic.checks).add(Topic.node(ch.node));
          if (ch.serviceId) out.add(Topic.service(ch.serviceName));
          else for (const s of this.servicesOnNode(ch.node)) out.add(Topic.service(s.name));
        }
        return;
    }
  }

  #notify(topics: Set<string>): void {
    for (const t of topics) {
      const set = this.#waiters.get(t);
      if (!set) continue;
      for (const w of [...set]) w();
    }
  }

  #indexService(s: ServiceRecord): void {
    const key = recordKey(s.node, s.id);
    this.#services.set(key, s);
    addTo(this.#servicesByNode, s.node, key);
    const lower = s.name.toLowerCase();
    let set = this.#byName.get(lower);
    if (!set) {
      set = new Set();
      this.#byName.set(lower, set);
    }
    set.add(key);
  }

  #unindexService(s: ServiceRecord): void {
    const key = recordKey(s.node, s.id);
    this.#services.delete(key);
    removeFrom(this.#servicesByNode, s.node, key);
    const lower = s.name.toLowerCase();
    const set = this.#byName.get(lower);
    set?.delete(key);
    if (set && set.size === 0) this.#byName.delete(lower);
  }

  #setCheck(c: CheckRecord): void {
    const key = recordKey(c.node, c.checkId);
    const prev = this.#checks.get(key);
    if (prev) this.#removeCheck(prev);
    this.#checks.set(key, c);
    addTo(this.#checksByOwner, recordKey(c.node, c.serviceId), key);
    addTo(this.#checksByNode, c.node, key);
  }

  #removeCheck(c: CheckRecord): void {
    const key = recordKey(c.node, c.checkId);
    this.#checks.delete(key);
    removeFrom(this.#checksByOwner, recordKey(c.node, c.serviceId), key);
    removeFrom(this.#checksByNode, c.node, key);
  }

  /** The checks of one instance (a copy: safe to delete while iterating). */
  #ownedChecks(node: string, serviceId: string): CheckRecord[] {
    return [...(this.#checksByOwner.get(recordKey(node, serviceId)) ?? [])].map(
      (k) => this.#checks.get(k) as CheckRecord,
    );
  }

  #deleteService(tx: Tx, s: ServiceRecord): void {
    this.#change(tx, 'services', recordKey(s.node, s.id), undefined);
    for (const c of this.#ownedChecks(s.node, s.id)) this.#deleteCheck(tx, c);
  }

  #putCheck(tx: Tx, ci: CheckInput, svc?: ServiceRecord, node = this.local.name, agent = true): void {
    const key = recordKey(node, ci.checkId);
    const prev = this.#checks.get(key);
    // Re-registering an agent check keeps its status and output (Consul #868); catalog writes set them.
    const carry = agent && prev !== undefined;
    const rec: CheckRecord = {
      node,
      checkId: ci.checkId,
      name: ci.name,
      status: carry ? prev.status : (ci.status ?? 'critical'),
      notes: ci.notes,
      output: carry ? prev.output : (ci.output ?? ''),
      serviceId: svc?.id ?? '',
      serviceName: svc?.name ?? '',
      def: ci.def,
      agent,
      createIndex: prev?.createIndex ?? tx.index,
      modifyIndex: tx.index,
    };
    if (rec.status === 'critical')
      rec.criticalSince = prev?.status === 'critical' ? prev.criticalSince : this.clock.now();
    if (prev) tx.events.push({ type: 'check-removed', check: prev });
    this.#storeCheck(tx, rec);
    tx.events.push({ type: 'check-added', check: rec });
  }

  #storeCheck(tx: Tx, c: CheckRecord): void {
    const key = recordKey(c.node, c.checkId);
    this.#change(tx, 'checks', key, c, this.#ephemeral.has(`checks:${key}`));
  }

  #deleteCheck(tx: Tx, c: CheckRecord): void {
    this.#change(tx, 'checks', recordKey(c.node, c.checkId), undefined);
    tx.events.push({ type: 'check-removed', check: c });
  }
}

function addTo(index: Map<string, Set<string>>, key: string, value: string): void {
  let set = index.get(key);
  if (!set) {
    set = new Set();
    index.set(key, set);
  }
  set.add(value);
}

function removeFrom(index: Map<string, Set<string>>, key: string, value: string): void {
  const set = index.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) index.delete(key);
}

function unknownCheck(id: string) {
  return phareError(
    'PHARE_ERR_NOT_FOUND',
    `Unknown check ID ${JSON.stringify(id)}. Ensure that the check ID is passed, not the check name.`,
  );
}

function emptyDef() {
  return {
    type: '' as const,
    successBeforePassing: 0,
    failuresBeforeWarning: 0,
    failuresBeforeCritical: 0,
    outputMaxSize: 4096,
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function byNodeThenId(a: ServiceRecord, b: ServiceRecord): number {
  return cmp(a.node, b.node) || cmp(a.id, b.id);
}

/** A node's serfHealth check as Consul writes it (agent/structs/catalog.go). */
function serfCheck(node: string, alive: boolean, createIndex: number, modifyIndex: number): CheckRecord {
  return {
    node,
    checkId: SERF_CHECK_ID,
    name: 'Serf Health Status',
    status: alive ? 'passing' : 'critical',
    notes: '',
    output: alive ? 'Agent alive and reachable' : 'Agent not live or unreachable',
    serviceId: '',
    serviceName: '',
    def: emptyDef(),
    agent: false,
    createIndex,
    modifyIndex,
  };
}

/** Why a valid record does not belong at `key` (its key is built from its own fields), or undefined. */
function keyProblem(table: 'nodes' | 'services' | 'checks', key: string, v: Row): string | undefined {
  const own =
    table === 'nodes'
      ? (v as NodeRecord).node.toLowerCase()
      : recordKey(v.node, table === 'services' ? (v as ServiceRecord).id : (v as CheckRecord).checkId);
  return own === key ? undefined : `the record belongs at key ${JSON.stringify(own)}`;
}

/** `services:<key>` -> ['services', key]. */
function splitTableKey(tk: string): ['services' | 'checks', string] {
  const i = tk.indexOf(':');
  return [tk.slice(0, i) as 'services' | 'checks', tk.slice(i + 1)];
}

/** Why a `members` row is not a member record of its key (`{node, address, status?}`, node lower-cased = key). */
function memberProblem(key: string, value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not an object';
  const v = value as Record<string, unknown>;
  if (typeof v.node !== 'string' || v.node === '') return 'node: expected a non-empty string';
  if (typeof v.address !== 'string') return 'address: expected a string';
  if (v.status !== undefined && typeof v.status !== 'string') return 'status: expected a string';
  if (v.node.toLowerCase() !== key)
    return `node: ${JSON.stringify(v.node)} is not the row's key ${JSON.stringify(key)}`;
  return undefined;
}
