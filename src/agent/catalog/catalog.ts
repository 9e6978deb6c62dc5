/**
 * The catalog: the single owner of nodes, services and checks, and of the index that orders every change.
 *
 * Every write runs as one synchronous transaction in memory (so validation always sees the latest state),
 * bumps the global index once, records which *topics* it touched, and hands its ops to the store. The
 * write's promise resolves when the store says the batch is durable; watchers of the touched topics are
 * woken then. Topics give each read its own index, so a watch on service A is not woken by service B
 * (Consul GH-1244/#2216; consul-api.md §2.1).
 */
import type { CheckStatus } from '../../api/index.ts';
import { phareError } from '../../api/index.ts';
import { type Clock, systemClock } from '../clock.ts';
import type { Store, StoreOp, StoreTable } from '../store/index.ts';
import {
  type CheckInput,
  type CheckRecord,
  type NodeRecord,
  recordKey,
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
}

/** A change the health module listens to. */
export type CatalogEvent =
  | { type: 'check-added'; check: CheckRecord }
  | { type: 'check-removed'; check: CheckRecord }
  | { type: 'check-status'; check: CheckRecord };

/** Maintenance check IDs and texts, as Consul writes them (consul-api.md §3.3). */
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

/** A write transaction: collects store ops and touched topics. */
class Tx {
  readonly ops: StoreOp[] = [];
  readonly topics = new Set<string>();
  readonly events: CatalogEvent[] = [];
  readonly index: number;
  constructor(index: number) {
    this.index = index;
  }
  touch(...topics: string[]): void {
    for (const t of topics) this.topics.add(t);
  }
  put(table: StoreTable, key: string, value: unknown, ephemeral = false): void {
    if (!ephemeral) this.ops.push({ type: 'put', table, key, value });
  }
  del(table: StoreTable, key: string, ephemeral = false): void {
    if (!ephemeral) this.ops.push({ type: 'del', table, key });
  }
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
  /** Records that live only in memory (the agent's node, serfHealth, the `consul` service). */
  readonly #ephemeral = new Set<string>();
  #pending = new Set<Promise<unknown>>();

  private constructor(options: CatalogOptions) {
    this.#store = options.store;
    this.datacenter = options.datacenter;
    this.local = options.node;
    this.clock = options.clock ?? systemClock;
  }

  /** Loads the store and adds the agent's own node, its `serfHealth` check and the `consul` service. */
  static async open(options: CatalogOptions): Promise<Catalog> {
    const c = new Catalog(options);
    const snap = await options.store.load();
    c.#index = Math.max(1, snap.index);
    const localLower = c.local.name.toLowerCase();
    for (const n of snap.nodes as NodeRecord[]) {
      if (n.node.toLowerCase() !== localLower) c.#nodes.set(n.node.toLowerCase(), n);
    }
    for (const s of snap.services as ServiceRecord[]) {
      if (s.agent) s.node = c.local.name; // the agent owns these wherever its node name moved
      c.#indexService(s);
    }
    for (const ch of snap.checks as CheckRecord[]) {
      if (ch.agent) ch.node = c.local.name;
      c.#setCheck(ch);
    }
    // Topic indexes after a restart: every known service and node resumes at the stored index. Not at its
    // records' own modifyIndex: a deletion that moved a topic is not stored, and the index must never go
    // backwards. Watchers see one wake-up after a restart; after that each topic moves on its own.
    for (const t of [Topic.services, Topic.nodes, Topic.checks]) c.#topicIndex.set(t, c.#index);
    for (const sv of c.#services.values()) c.#topicIndex.set(Topic.service(sv.name), c.#index);
    for (const n of c.#nodes.values()) c.#topicIndex.set(Topic.node(n.node), c.#index);
    c.#topicIndex.set(Topic.node(c.local.name), c.#index);
    // The agent's own node and the records a Consul server always has. Not persisted: rebuilt each start.
    const idx = c.#index;
    c.#nodes.set(localLower, {
      id: c.local.id,
      node: c.local.name,
      address: c.local.address,
      taggedAddresses: {
        lan: c.local.address,
        lan_ipv4: c.local.address,
        wan: c.local.address,
        wan_ipv4: c.local.address,
      },
      meta: { 'consul-network-segment': '' },
      createIndex: idx,
      modifyIndex: idx,
    });
    const serfKey = recordKey(c.local.name, SERF_CHECK_ID);
    c.#setCheck({
      node: c.local.name,
      checkId: SERF_CHECK_ID,
      name: 'Serf Health Status',
      status: 'passing',
      notes: '',
      output: 'Agent alive and reachable',
      serviceId: '',
      serviceName: '',
      def: {
        type: '',
        successBeforePassing: 0,
        failuresBeforeWarning: 0,
        failuresBeforeCritical: 0,
        outputMaxSize: 4096,
      },
      agent: false,
      createIndex: idx,
      modifyIndex: idx,
    });
    c.#ephemeral.add(`checks:${serfKey}`);
    if (options.builtinConsulService !== false) {
      const key = recordKey(c.local.name, 'consul');
      if (!c.#services.has(key)) {
        c.#indexService({
          node: c.local.name,
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
          createIndex: idx,
          modifyIndex: idx,
        });
        c.#ephemeral.add(`services:${key}`);
      }
    }
    return c;
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
    options: { replaceExistingChecks?: boolean } = {},
  ): Promise<void> {
    return this.#write((tx) => {
      const node = this.local.name;
      const key = recordKey(node, input.id);
      const prev = this.#services.get(key);
      if (prev && !prev.agent) {
        // a catalog-registered entry with the same ID on our node: the agent takes it over
        this.#unindexService(prev);
      } else if (prev && prev.name.toLowerCase() !== input.name.toLowerCase()) {
        this.#unindexService(prev);
        tx.touch(Topic.service(prev.name));
      }
      const rec: ServiceRecord = {
        ...input,
        node,
        agent: true,
        createIndex: prev?.createIndex ?? tx.index,
        modifyIndex: tx.index,
      };
      this.#indexService(rec);
      tx.put('services', key, rec);
      // checks carry ServiceTags, so check reads (health/state) move with the service too
      tx.touch(Topic.services, Topic.service(rec.name), Topic.node(node), Topic.checks);
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
  deregisterService(id: string): Promise<void> {
    return this.#write((tx) => {
      const s = this.agentService(id);
      if (!s) {
        throw phareError(
          'PHARE_ERR_NOT_FOUND',
          `Unknown service ID ${JSON.stringify(id)}. Ensure that the service ID is passed, not the service name.`,
        );
      }
      this.#deleteService(tx, s);
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
   * change from a periodic runner stays in memory (Consul syncs output lazily, `check_update_interval`)
   * unless `announce` is set, as it is for the TTL endpoints.
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
      c.output = output;
      return Promise.resolve();
    }
    return this.#write((tx) => {
      const cur = this.check(node, checkId);
      if (!cur) throw unknownCheck(checkId);
      const changed = cur.status !== status;
      const next: CheckRecord = { ...cur, status, output, modifyIndex: tx.index };
      if (status === 'critical')
        next.criticalSince = changed ? this.clock.now() : (cur.criticalSince ?? this.clock.now());
      else delete next.criticalSince;
      this.#storeCheck(tx, next);
      if (changed) tx.events.push({ type: 'check-status', check: next });
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
        this.#nodes.set(lower, rec);
        tx.put('nodes', lower, rec);
        // services (node-meta filters) and checks (health/state?node-meta) read node fields too
        tx.touch(Topic.nodes, Topic.node(nodeName), Topic.services, Topic.checks);
        // health/service entries embed the node: its watchers must see a node change too
        for (const s of this.servicesOnNode(nodeName)) tx.touch(Topic.service(s.name));
      }
      let svc: ServiceRecord | undefined;
      if (req.service) {
        const key = recordKey(nodeName, req.service.id);
        const prev = this.#services.get(key);
        if (prev) this.#unindexService(prev);
        if (prev && prev.name.toLowerCase() !== req.service.name.toLowerCase())
          tx.touch(Topic.service(prev.name));
        svc = {
          ...req.service,
          node: nodeName,
          agent: prev?.agent ?? false,
          createIndex: prev?.createIndex ?? tx.index,
          modifyIndex: tx.index,
        };
        this.#indexService(svc);
        tx.put('services', key, svc);
        tx.touch(Topic.services, Topic.service(svc.name), Topic.node(nodeName), Topic.checks);
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
      if (!isLocal) {
        this.#nodes.delete(n.node.toLowerCase());
        tx.del('nodes', n.node.toLowerCase());
        tx.touch(Topic.nodes, Topic.node(n.node), Topic.services);
      }
    });
  }

  /** Waits for in-flight writes to become durable, then stops waking watchers (they are all released). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
    this.#closed = true;
    for (const set of this.#waiters.values()) for (const w of [...set]) w();
  }

  // ---------------------------------------------------------------- internals

  #write(fn: (tx: Tx) => void): Promise<void> {
    if (this.#closed)
      return Promise.reject(phareError('PHARE_ERR_STORE_CLOSED', 'catalog: the agent is shutting down'));
    const tx = new Tx(this.#index + 1);
    try {
      fn(tx);
    } catch (err) {
      return Promise.reject(err);
    }
    if (tx.topics.size === 0 && tx.ops.length === 0) return Promise.resolve();
    this.#index = tx.index;
    for (const t of tx.topics) this.#topicIndex.set(t, tx.index);
    this.#indexTime.set(tx.index, this.clock.now());
    // keep the times of recent indexes only: enough for any answer still in flight
    if (this.#indexTime.size > 4096) this.#indexTime.delete(this.#indexTime.keys().next().value as number);
    for (const e of tx.events) for (const l of this.#listeners) l(e);
    const p = tx.ops.length > 0 ? this.#store.write(tx.ops, tx.index) : Promise.resolve();
    const done = p.then(
      () => this.#notify(tx.topics),
      (err) => {
        this.#notify(tx.topics);
        throw err;
      },
    );
    this.#pending.add(done);
    const untrack = () => this.#pending.delete(done);
    done.then(untrack, untrack);
    return done;
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
    const key = recordKey(s.node, s.id);
    this.#unindexService(s);
    tx.del('services', key, this.#ephemeral.delete(`services:${key}`));
    tx.touch(Topic.services, Topic.service(s.name), Topic.node(s.node));
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
    this.#setCheck(c);
    tx.put('checks', key, c, this.#ephemeral.has(`checks:${key}`));
    tx.touch(Topic.checks, Topic.node(c.node));
    if (c.serviceId) tx.touch(Topic.service(c.serviceName));
    else for (const s of this.servicesOnNode(c.node)) tx.touch(Topic.service(s.name));
  }

  #deleteCheck(tx: Tx, c: CheckRecord): void {
    const key = recordKey(c.node, c.checkId);
    this.#removeCheck(c);
    tx.del('checks', key, this.#ephemeral.delete(`checks:${key}`));
    tx.touch(Topic.checks, Topic.node(c.node));
    if (c.serviceId) tx.touch(Topic.service(c.serviceName));
    else for (const s of this.servicesOnNode(c.node)) tx.touch(Topic.service(s.name));
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
