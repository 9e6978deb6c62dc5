/**
 * The cluster store: catalog state in an etcd 3.4+ cluster, shared by every agent.
 *
 * Key layout (docs/cluster.md, pinned by test/cluster/cluster.test.ts): `<prefix>/v1/<table>/<key>`, where the
 * row key's `\u0000`-separated parts are each `encodeURIComponent`-ed and joined by `/`. Catalog rows carry one
 * part, the escaped store key `node/id` (src/agent/store/keys.ts), so its `/` is encoded too:
 * `/phare/v1/services/node-a%2Fweb-1`. Existing clusters hold data in this layout: changing it is a migration. Values are the records as JSON. Catalog records carry no lease: a dead
 * agent's services stay (Consul keeps them, marked by serfHealth); only the `members` record is tied to the
 * agent's lease, so its expiry is the "agent died" event every agent sees at the same revision.
 *
 * Writes are single etcd transactions (a service with its checks is one revision) and resolve with the
 * revision etcd committed them at: that revision is the X-Consul-Index every agent hands out. Readers never see
 * a write before etcd committed it: the catalog is a cache fed by {@link EtcdStore.watch}, one watch per agent
 * on the whole prefix, resumed at the last seen revision. When the watch's revision was compacted away, the
 * store re-lists the prefix and emits only what really changed (keys whose mod revision moved, and the keys
 * that vanished), so a compaction costs one range read and no spurious wake-ups (APISIX #13772's lesson).
 *
 * KV and sessions live in a second key space, `<prefix>/kv/v1/<table>/<key>` (tables `kv`, `sessions`,
 * `lockdelays`, `sessionttls`), with its own watch: a KV write never wakes the catalog's and the reverse.
 * Their writes are guarded ({@link SharedStore.commitIf}): the compare clauses of the etcd transaction check
 * that every row the write was built on is unchanged, so CAS and lock acquisition are decided by etcd, not by
 * one agent's cache, and two agents racing for one lock cannot both win.
 *
 * ACL tokens, policies and the bootstrap marker live in a third space, `<prefix>/acl/v1/acl/<key>`, watched
 * by the ACL state of every agent; the bootstrap is a guarded write (the marker must be absent).
 *
 * Quorum: a probe asks every member for its raft leader; without one, writes fail at once with
 * PHARE_ERR_NO_LEADER (Consul's 500 "No cluster leader") while reads keep serving the cache.
 */
import { createRequire } from 'node:module';
import type {
  ChannelCredentials,
  ClientDuplexStream,
  Client as GrpcClient,
  ServiceError,
} from '@grpc/grpc-js';
import type { Etcd3, IKeyValue } from 'etcd3';
import type { Logger } from 'pino';
import { phareError } from '../../api/index.ts';
import {
  decodeTxnResponse,
  decodeWatchResponse,
  encodeTxn,
  encodeWatchCreate,
  type WireCompare,
  type WireKv,
  type WireOp,
  type WireTxnResponse,
  type WireWatchResponse,
} from './etcd-wire.ts';
import type {
  ClusterTable,
  SharedStore,
  SharedStoreOp,
  StoreChange,
  StoreEvent,
  StoreGuard,
  StoreRow,
  StoreSnapshot,
  StoreSpace,
  StoreTable,
  StoreWatch,
} from './store.ts';
import { spaceOf } from './store.ts';

/**
 * etcd3 is required on first use, not imported statically: it brings gRPC, protobufjs and OpenTelemetry
 * (~150 modules, ~20 MiB of RSS) that an agent on the sqlite or memory store never uses, and every agent
 * loads this file through store/index.ts (BENCHMARKS.md, "Agent memory with 10,000 HTTP checks").
 */
function loadEtcd3(): typeof import('etcd3') {
  return createRequire(import.meta.url)('etcd3') as typeof import('etcd3');
}

/** grpc-js, for the two hot RPCs (etcd-wire.ts); required on first use for the same reason as etcd3. */
function loadGrpc(): typeof import('@grpc/grpc-js') {
  return createRequire(import.meta.url)('@grpc/grpc-js') as typeof import('@grpc/grpc-js');
}

/** Options of {@link createEtcdStore}. */
export interface EtcdStoreOptions {
  /** Client URLs of the etcd members, e.g. `['http://127.0.0.1:2379']`. */
  endpoints: readonly string[];
  /** Root of every key Phare writes; several Phare clusters can share one etcd under different prefixes. @default '/phare' */
  prefix?: string;
  /** How long a write may wait for etcd before it fails. @default 5000 */
  requestTimeoutMs?: number;
  /** How often every member is asked for its leader (KnownLeader, fail-fast writes). @default 1000 */
  probeIntervalMs?: number;
  /**
   * How long a write waits for a leader that was lost only just now (an election after a member died) before
   * it fails with "No cluster leader". Consul servers hold RPCs the same way (`rpc_hold_timeout`, 7 s); a
   * longer outage fails at once. @default 2000
   */
  leaderHoldMs?: number;
  /** @default a silent logger */
  logger?: Logger;
  /**
   * TLS to etcd (`https://` endpoints): the CA etcd's certificate must chain to (default: the system's
   * roots), and a client certificate with its key for an etcd run with `--client-cert-auth`. @default none
   */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
}

/** What the agent knows of the etcd cluster, for X-Consul-KnownLeader / LastContact and /v1/status. */
export interface EtcdHealth {
  knownLeader: boolean;
  /** ms since a member last confirmed a leader; 0 while it is confirmed. */
  lastContactMs: number;
  /** Client URL of the leader member, or '' when unknown. */
  leader: string;
  /** Client URLs of every member etcd lists. */
  peers: string[];
}

/** The etcd store: a {@link SharedStore} plus what the cluster module needs (leases, health). */
export interface EtcdStore extends SharedStore {
  readonly kind: 'etcd';
  readonly prefix: string;
  /** The etcd client (cluster module: leases). */
  readonly client: Etcd3;
  health(): EtcdHealth;
  /**
   * Grants a lease with `ttlSec` and keeps it alive on one stream (renewed every TTL/3). `onLost` is called
   * once if etcd reports it expired or it could not be renewed; grant a new one then.
   */
  grantLease(
    ttlSec: number,
    onLost: (err: Error) => void,
  ): Promise<{ id: string; release(): void; revoke(): Promise<void> }>;
  /** The etcd key of a table row (for tests and docs). */
  keyOf(table: Table, key: string): string;
  /** Forces a probe of the members now (tests, and after a failed write). */
  probe(): Promise<EtcdHealth>;
}

type Table = StoreTable | ClusterTable;
const TABLES: readonly Table[] = [
  'nodes',
  'services',
  'checks',
  'acl',
  'members',
  'live',
  'election',
  'kv',
  'sessions',
  'lockdelays',
  'sessionttls',
];
const TABLE_SET: ReadonlySet<string> = new Set(TABLES);

/**
 * Opens the etcd store. Nothing is contacted until `load()`.
 *
 * @example
 * const store = createEtcdStore({ endpoints: ['http://127.0.0.1:2379'], prefix: '/phare' });
 * const { index, rows } = await store.loadRows();
 * const w = store.watch(index, (e) => console.log(e.index, e.changes.length));
 */
export function createEtcdStore(options: EtcdStoreOptions): EtcdStore {
  if (!Array.isArray(options.endpoints) || options.endpoints.length === 0) {
    throw phareError('PHARE_ERR_INVALID_ARGUMENT', 'etcd.endpoints: expected at least one etcd client URL');
  }
  const prefix = normalizePrefix(options.prefix ?? '/phare');
  const roots: Record<StoreSpace, string> = {
    catalog: `${prefix}/v1/`,
    kv: `${prefix}/kv/v1/`,
    acl: `${prefix}/acl/v1/`,
  };
  const requestTimeoutMs = options.requestTimeoutMs ?? 5000;
  const probeIntervalMs = options.probeIntervalMs ?? 1000;
  const leaderHoldMs = options.leaderHoldMs ?? 2000;
  const log = options.logger;
  // etcd3 reads the scheme: an https:// endpoint gets a TLS channel (system roots unless `tls` says more)
  const hosts = [...options.endpoints];
  const credentials = options.tls
    ? {
        credentials: {
          rootCertificate: options.tls.ca as Buffer,
          ...(options.tls.key ? { privateKey: options.tls.key } : {}),
          ...(options.tls.cert ? { certChain: options.tls.cert } : {}),
        },
      }
    : {};
  const { Etcd3 } = loadEtcd3();
  const client = new Etcd3({
    hosts,
    ...credentials,
    dialTimeout: 2000,
    // Skip a failing member for a second, not etcd3's 5 s (see hostBreaker). Watches and transactions go
    // through `wire` (etcd-wire.ts), not this client.
    faultHandling: { host: () => hostBreaker(1000, 5) },
  });
  // One client per member only for the leader probe: the shared client's pool would hide which member answered.
  const probes = options.endpoints.map((url, i) => ({
    url,
    client: new Etcd3({
      hosts: hosts[i] as string,
      ...credentials,
      dialTimeout: 1000,
      faultHandling: { global: noRetry(), host: () => noRetry() },
    }),
  }));
  const wire = createWire(options.endpoints, options.tls);
  let closed = false;
  const state: EtcdHealth = {
    knownLeader: true,
    lastContactMs: 0,
    leader: '',
    peers: [...options.endpoints],
  };
  let lastContact = Date.now();
  /** When this agent saw the leader gone (the probe that found none): what a write's wait is counted from. */
  let lostAt = 0;
  let probeTimer: NodeJS.Timeout | undefined;
  const watches = new Set<StoreWatch>();
  const leases = new Set<{ stop(): void }>();
  const lastWrite = new Map<string, Promise<unknown>>();
  const inflight = new Set<Promise<unknown>>();

  // Each part is URI-encoded character by character, so a KV prefix's key is a prefix of its keys' keys.
  const headKey = `${roots.catalog}head`;
  const keyOf = (table: Table, key: string) =>
    `${roots[spaceOf(table)]}${table}/${key.split('\u0000').map(encodeURIComponent).join('/')}`;
  const spaces = Object.keys(roots) as StoreSpace[];
  const parseKey = (raw: string): { table: Table; key: string } | undefined => {
    let space: StoreSpace | undefined;
    for (const s of spaces) if (raw.startsWith(roots[s])) space = s;
    if (!space) return undefined;
    const rest = raw.slice(roots[space].length);
    const slash = rest.indexOf('/');
    if (slash < 0) return undefined;
    const table = rest.slice(0, slash) as Table;
    if (!TABLE_SET.has(table) || spaceOf(table) !== space) return undefined;
    const tail = rest.slice(slash + 1);
    // Nearly every key has nothing encoded and one part (catalog rows: the escaped store key, `/` as %2F
    // included, is one part); decode only what needs it.
    if (!tail.includes('%'))
      return { table, key: tail.includes('/') ? tail.replaceAll('/', '\u0000') : tail };
    try {
      // a catalog row's one part (`node%2Fid`) needs no split
      if (!tail.includes('/')) return { table, key: decodeURIComponent(tail) };
      return { table, key: tail.split('/').map(decodeURIComponent).join('\u0000') };
    } catch {
      // a malformed escape (`%zz`) was not written by Phare: a key no table holds, never a crash
      log?.warn({ key: raw }, 'etcd: skipping a key that is not URI-encoded');
      return undefined;
    }
  };
  // The row is built as a put change at once (a watched put is handed on as it is, not copied into one).
  const rowOf = (kv: WireKv): (StoreRow & { type: 'put' }) | undefined => {
    const k = parseKey(kv.key);
    if (!k) return undefined;
    let value: unknown;
    try {
      value = JSON.parse(kv.value);
    } catch {
      log?.warn({ key: kv.key }, 'etcd: skipping a key whose value is not JSON');
      return undefined;
    }
    return {
      type: 'put',
      table: k.table,
      key: k.key,
      value,
      createIndex: kv.createRevision,
      modifyIndex: kv.modRevision,
      lease: kv.lease !== '0' ? kv.lease : undefined,
    };
  };

  const probe = async (): Promise<EtcdHealth> => {
    const results = await Promise.all(
      probes.map(async (p) => {
        try {
          const s = await p.client.maintenance.status({
            deadline: Date.now() + Math.max(300, probeIntervalMs),
          });
          return { url: p.url, leader: s.leader, member: s.header.member_id };
        } catch {
          return undefined;
        }
      }),
    );
    const answered = results.filter((r) => r !== undefined);
    const withLeader = answered.find((r) => r.leader !== '0');
    if (withLeader) {
      state.knownLeader = true;
      lastContact = Date.now();
      const leaderUrl = answered.find((r) => r.member === withLeader.leader)?.url;
      state.leader = leaderUrl ?? state.leader;
    } else {
      if (state.knownLeader) {
        log?.warn('etcd: no member reports a leader; writes fail until quorum returns');
        lostAt = Date.now();
      }
      state.knownLeader = false;
      state.leader = '';
    }
    state.lastContactMs = state.knownLeader ? 0 : Date.now() - lastContact;
    return { ...state, peers: [...state.peers] };
  };
  const scheduleProbe = () => {
    if (closed) return;
    probeTimer = setTimeout(() => {
      probe().finally(scheduleProbe);
    }, probeIntervalMs);
    probeTimer.unref();
  };

  const rangeAll = async (space: StoreSpace = 'catalog'): Promise<{ index: number; rows: StoreRow[] }> => {
    const root = roots[space];
    try {
      const res = await client.kv.range(
        { key: Buffer.from(root), range_end: Buffer.from(prefixEnd(root)) },
        { deadline: Date.now() + requestTimeoutMs },
      );
      const rows: StoreRow[] = [];
      for (const kv of res.kvs) {
        const r = rowOf(wireKvOf(kv));
        if (r) rows.push(r);
      }
      return { index: Number(res.header.revision), rows };
    } catch (cause) {
      throw storeError('read', cause);
    }
  };

  // etcd3 opens a per-host circuit breaker after repeated failures ("Execution prevented because the circuit
  // breaker is open"): with members down that is the same unreachable-cluster case as a refused connection.
  const transient = (cause: unknown) =>
    /deadline|unavailable|timed out|no leader|leader changed|connect|ECONNREFUSED|stream removed|cancelled|circuit breaker is open/i.test(
      String((cause as Error)?.message ?? cause),
    );
  const storeError = (what: string, cause: unknown) => {
    const msg = String((cause as Error)?.message ?? cause);
    if (transient(cause) && !state.knownLeader) {
      return phareError('PHARE_ERR_NO_LEADER', 'No cluster leader', { cause });
    }
    return phareError('PHARE_ERR_STORE', `store: etcd ${what} failed: ${msg}`, { cause });
  };

  /**
   * True once a member reports a leader; waits only while the leader was seen lost less than leaderHoldMs ago.
   * Counted from when this agent saw it lost, not from its last contact: after the agent itself was paused
   * (a long GC, a stopped or migrated VM, SIGSTOP) the probe in flight fails on its own lapsed deadline and
   * the last contact is as old as the pause, though etcd never lost its leader — the next probe finds it, and
   * writes wait for that instead of failing "No cluster leader" at once (seen in the cluster benchmark).
   */
  const awaitLeader = async (): Promise<boolean> => {
    while (!state.knownLeader && !closed && Date.now() - lostAt < leaderHoldMs) {
      await new Promise((r) => setTimeout(r, Math.min(100, probeIntervalMs)));
      await probe();
    }
    return state.knownLeader;
  };

  const commit = async (ops: readonly SharedStoreOp[]): Promise<number> => (await run(ops, [])).index;

  const compareOf = (g: StoreGuard): WireCompare =>
    g.prefix
      ? {
          // no row under the prefix created or modified after the revision the write was built at
          key: keyOf(g.table, g.key),
          rangeEnd: prefixEnd(keyOf(g.table, g.key)),
          result: 'less',
          modRevision: g.modifyIndex + 1,
        }
      : {
          // a missing key compares as mod revision 0 (etcd applyCompare), so 0 means "still absent"
          key: keyOf(g.table, g.key),
          result: 'equal',
          modRevision: g.modifyIndex,
        };

  const run = async (
    ops: readonly SharedStoreOp[],
    guards: readonly StoreGuard[],
  ): Promise<{ ok: boolean; index: number }> => {
    if (closed) throw phareError('PHARE_ERR_STORE_CLOSED', 'store: write after close');
    // Without quorum fail fast, as Consul does ("No cluster leader"): waiting the full timeout would stall
    // every registering client while etcd cannot commit anyway. A leader lost a moment ago is an election.
    if (!state.knownLeader && !(await awaitLeader()))
      throw phareError('PHARE_ERR_NO_LEADER', 'No cluster leader');
    const success: WireOp[] = ops.map((op) =>
      op.type === 'put'
        ? {
            type: 'put',
            key: keyOf(op.table, op.key),
            value: JSON.stringify(op.value),
            ...(op.lease ? { lease: op.lease } : {}),
          }
        : op.prefix
          ? { type: 'del', key: keyOf(op.table, op.key), rangeEnd: prefixEnd(keyOf(op.table, op.key)) }
          : { type: 'del', key: keyOf(op.table, op.key) },
    );
    const compare = guards.map(compareOf);
    // Concurrent transactions may be applied by etcd in any order; two writes of one key (a check flapping)
    // must land in the order they were made, so a write waits for the earlier ones that share a key with it.
    const keys = success.map((o) => o.key);
    // Every transaction also touches `<prefix>/v1/head` (after `keys`: it orders nothing), so its mod
    // revision is the revision of the last Phare write: what a catalog `?consistent` read waits for (see
    // latestIndex). The catalog's watch skips it (no table), and it costs no extra revision.
    success.push({ type: 'put', key: headKey, value: '' });
    const request = encodeTxn(compare, success);
    const before = keys.map((k) => lastWrite.get(k)).filter((p) => p !== undefined);
    const attempt = (async () => {
      if (before.length > 0) await Promise.allSettled(before);
      const deadline = Date.now() + requestTimeoutMs;
      for (let attempt = 0; ; attempt++) {
        try {
          // A member without quorum holds a proposal until the deadline; bound each attempt by half the leader hold
          // so a lost quorum is noticed (probe below) and answered "No cluster leader" quickly, as Consul does.
          const attemptDeadline = Math.min(deadline, Date.now() + Math.max(500, leaderHoldMs / 2));
          const res = await wire.txn(request, attemptDeadline);
          return { ok: res.succeeded, index: res.revision };
        } catch (cause) {
          if (closed || !transient(cause)) throw storeError('write', cause);
          // The member we talked to died or lost the leader. Ask every member: with a leader elsewhere, send
          // the transaction again (unguarded, it only puts and deletes whole keys, so a repeat that lands twice
          // is the same state; guarded, a repeat after a first attempt that did land fails its guards and the
          // caller rebuilds the write on the new state); without one, fail as Consul does.
          await probe();
          // Retried until the deadline, not a fixed count: right after a member dies the others may be skipped
          // for a moment too (hostBreaker), and a leader exists, so the write will land.
          if (!(await awaitLeader()) || Date.now() > deadline) throw storeError('write', cause);
          await new Promise((r) => setTimeout(r, Math.min(250, 50 * (attempt + 1))));
        }
      }
    })();
    for (const k of keys) lastWrite.set(k, attempt);
    inflight.add(attempt);
    const forget = () => {
      inflight.delete(attempt);
      for (const k of keys) if (lastWrite.get(k) === attempt) lastWrite.delete(k);
    };
    attempt.then(forget, forget);
    return attempt;
  };

  const store: EtcdStore = {
    kind: 'etcd',
    shared: true,
    prefix,
    client,
    keyOf,
    probe,
    health: () => ({
      ...state,
      lastContactMs: state.knownLeader ? 0 : Date.now() - lastContact,
      peers: [...state.peers],
    }),

    async load(): Promise<StoreSnapshot> {
      const cat = await store.loadRows();
      const kvs = await rangeAll('kv');
      const acl = await rangeAll('acl');
      const index = Math.max(cat.index, kvs.index, acl.index);
      const rows = [...cat.rows, ...kvs.rows, ...acl.rows];
      const pick = (t: StoreTable) => rows.filter((r) => r.table === t).map((r) => r.value);
      return {
        index,
        nodes: pick('nodes'),
        services: pick('services'),
        checks: pick('checks'),
        kv: pick('kv'),
        sessions: pick('sessions'),
        acl: pick('acl'),
      };
    },

    async loadRows() {
      const out = await rangeAll();
      if (probeTimer === undefined && !closed) {
        await probe();
        void refreshPeers();
        scheduleProbe();
      }
      return out;
    },

    async latestIndex() {
      if (closed) throw phareError('PHARE_ERR_STORE_CLOSED', 'store: read after close');
      if (!state.knownLeader && !(await awaitLeader()))
        throw phareError('PHARE_ERR_NO_LEADER', 'No cluster leader');
      try {
        // A read-only transaction is linearizable (etcd's default, not `serializable`): served through raft's
        // ReadIndex, it sees every transaction committed before it was sent, on whichever member answers. The
        // head key gives the last Phare write; the `live` keys (only their names) show which leases expired
        // since — etcd deletes those keys itself, touching no head (one key per agent: a small range).
        const liveRoot = `${roots.catalog}live/`;
        const res = await wire.txn(
          encodeTxn(
            [],
            [
              { type: 'range', key: headKey },
              { type: 'range', key: liveRoot, rangeEnd: prefixEnd(liveRoot), keysOnly: true },
            ],
          ),
          Date.now() + Math.max(500, leaderHoldMs),
        );
        const head = res.ranges[0]?.[0];
        const live = new Set<string>();
        for (const kv of res.ranges[1] ?? []) {
          const k = parseKey(kv.key);
          if (k) live.add(k.key);
        }
        return { index: head ? head.modRevision : 0, revision: res.revision, live };
      } catch (cause) {
        await probe();
        throw storeError('read', cause);
      }
    },

    async write(ops: readonly SharedStoreOp[]): Promise<void> {
      if (ops.length > 0) await commit(ops);
    },

    commit,

    commitIf: (ops, guards) => run(ops, guards),

    loadSpace: (space) => rangeAll(space),

    async statSpace(space) {
      if (!state.knownLeader && !(await awaitLeader()))
        throw phareError('PHARE_ERR_NO_LEADER', 'No cluster leader');
      const root = roots[space];
      const deadline = Date.now() + requestTimeoutMs;
      for (let attempt = 0; ; attempt++) {
        try {
          // One linearizable range: the newest key by mod revision (keys only) and the count of the space.
          const res = await client.kv.range(
            {
              key: Buffer.from(root),
              range_end: prefixEnd(root),
              sort_order: 'Descend',
              sort_target: 'Mod',
              limit: 1,
              keys_only: true,
            },
            { deadline: Math.min(deadline, Date.now() + Math.max(500, leaderHoldMs / 2)) },
          );
          return {
            index: Number(res.header.revision),
            count: Number(res.count),
            maxModifyIndex: Number(res.kvs[0]?.mod_revision ?? 0),
          };
        } catch (cause) {
          // a read repeats safely: another member may answer (as a write is sent again, see run())
          if (closed || !transient(cause)) throw storeError('read', cause);
          await probe();
          // etcd3 may skip a just-restarted member for a moment (hostBreaker): retry until the deadline
          if (!(await awaitLeader()) || Date.now() > deadline) throw storeError('read', cause);
          await new Promise((r) => setTimeout(r, Math.min(250, 50 * (attempt + 1))));
        }
      }
    },

    async grantBareLease(ttlSec) {
      if (closed) throw phareError('PHARE_ERR_STORE_CLOSED', 'store: lease after close');
      if (!state.knownLeader && !(await awaitLeader()))
        throw phareError('PHARE_ERR_NO_LEADER', 'No cluster leader');
      try {
        const res = await client.leaseClient.leaseGrant(
          { TTL: ttlSec },
          { deadline: Date.now() + requestTimeoutMs },
        );
        return res.ID;
      } catch (cause) {
        throw storeError('lease grant', cause);
      }
    },

    async renewLease(id) {
      if (closed) throw phareError('PHARE_ERR_STORE_CLOSED', 'store: lease after close');
      if (!state.knownLeader && !(await awaitLeader()))
        throw phareError('PHARE_ERR_NO_LEADER', 'No cluster leader');
      // clientv3's KeepAliveOnce: one keepalive on its own stream, answered with the lease's remaining TTL.
      let stream: Awaited<ReturnType<typeof client.leaseClient.leaseKeepAlive>> | undefined;
      try {
        const s = await client.leaseClient.leaseKeepAlive();
        stream = s;
        const ttl = await new Promise<number>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error('lease keepalive: deadline exceeded')),
            requestTimeoutMs,
          );
          s.on('data', (r: { TTL: string }) => {
            clearTimeout(timer);
            resolve(Number(r.TTL));
          });
          s.on('error', (err: Error) => {
            clearTimeout(timer);
            reject(err);
          });
          s.write({ ID: id });
        });
        return Math.max(0, ttl);
      } catch (cause) {
        void probe();
        throw storeError('lease renew', cause);
      } finally {
        stream?.end();
      }
    },

    async revokeLease(id) {
      await bounded(
        client.leaseClient.leaseRevoke({ ID: id }, { deadline: Date.now() + 2000 }).catch(() => {}),
        2500,
      );
    },

    watch(fromIndex: number, onEvent: (e: StoreEvent) => void, space: StoreSpace = 'catalog'): StoreWatch {
      const root = roots[space];
      // What this watch has delivered: key -> mod revision, so a re-list after compaction emits only changes.
      const seen = new Map<string, number>();
      let revision = fromIndex;
      let call: ClientDuplexStream<Buffer, WireWatchResponse> | undefined;
      let stopped = false;
      let reloading = false;
      let backoffMs = 50;
      let retry: NodeJS.Timeout | undefined;

      const emit = (index: number, changes: StoreChange[]) => {
        if (index > revision) revision = index;
        if (changes.length > 0 || index > 0) onEvent({ index, changes });
      };

      /** Ends the current stream on our side (its own error event is then ignored). */
      const drop = () => {
        const c = call;
        call = undefined;
        c?.cancel();
      };

      const onData = (res: WireWatchResponse) => {
        backoffMs = 50;
        if (res.canceled) {
          drop();
          if (res.compactRevision > 0) {
            // our revision was compacted away: re-list (emitting only what changed) and resume after it
            log?.warn(
              { compactRevision: res.compactRevision },
              'etcd: watch revision compacted; re-listing the prefix',
            );
            void relist();
          } else {
            log?.warn({ reason: res.cancelReason }, 'etcd: watch cancelled by etcd; starting it again');
            later();
          }
          return;
        }
        // The answer to the create carries the cluster's revision before the history from our revision is
        // delivered: it says nothing about what this watch has seen.
        if (res.created) return;
        // Events of one transaction share a revision: deliver them as one batch, in revision order.
        let batch: StoreChange[] = [];
        let batchRev = 0;
        for (const ev of res.events) {
          const rev = ev.kv.modRevision;
          if (rev !== batchRev && batch.length > 0) {
            emit(batchRev, batch);
            batch = [];
          }
          batchRev = rev;
          const raw = ev.kv.key;
          if (ev.type === 'put') {
            const row = rowOf(ev.kv);
            if (!row) continue;
            seen.set(raw, rev);
            batch.push(row);
          } else {
            const k = parseKey(raw);
            seen.delete(raw);
            if (k) batch.push({ type: 'del', ...k, createIndex: 0, modifyIndex: rev });
          }
        }
        if (batch.length > 0) emit(batchRev, batch);
        // Progress: the cluster's revision moved (other prefixes, or a progress notify).
        if (res.revision > revision) emit(res.revision, []);
      };

      /** Starts the stream again after a backoff (50 ms doubling to 1 s), on the next member. */
      const later = () => {
        if (stopped || closed) return;
        clearTimeout(retry);
        retry = setTimeout(begin, backoffMs);
        backoffMs = Math.min(1000, backoffMs * 2);
      };

      const start = () => {
        if (stopped || closed) return;
        const w = wire.watch(encodeWatchCreate(root, prefixEnd(root), revision + 1));
        const c = w.call;
        call = c;
        c.on('data', onData);
        const lost = (err: unknown) => {
          if (call !== c) return;
          call = undefined;
          if (stopped || closed) return;
          // The member died or the stream broke: resume at the next revision, on another member. Nothing
          // is missed: etcd delivers the history from there (or cancels for compaction, above).
          w.failed();
          log?.warn({ err: String(err ?? 'stream ended') }, 'etcd: watch stream lost; resuming');
          later();
        };
        c.on('error', lost);
        c.on('end', () => lost(undefined));
      };

      /** Opens the stream (first start, after a backoff, after a re-list); one that cannot open re-lists. */
      const begin = () => {
        try {
          start();
        } catch (err) {
          log?.warn({ err: String(err) }, 'etcd: watch could not start; re-listing');
          void relist();
        }
      };

      const relist = async () => {
        if (reloading || stopped || closed) return;
        reloading = true;
        try {
          for (;;) {
            try {
              const { index, rows } = await rangeAll(space);
              const changes: StoreChange[] = [];
              const present = new Set<string>();
              for (const r of rows) {
                const raw = keyOf(r.table, r.key);
                present.add(raw);
                if (seen.get(raw) !== r.modifyIndex) {
                  seen.set(raw, r.modifyIndex);
                  changes.push({ type: 'put', ...r });
                }
              }
              for (const raw of [...seen.keys()]) {
                if (present.has(raw)) continue;
                seen.delete(raw);
                const k = parseKey(raw);
                if (k) changes.push({ type: 'del', ...k, createIndex: 0, modifyIndex: index });
              }
              emit(index, changes);
              break;
            } catch (err) {
              if (stopped || closed) return;
              log?.warn({ err: String(err) }, 'etcd: re-list failed; retrying');
              await new Promise((r) => setTimeout(r, 500));
            }
          }
        } finally {
          reloading = false;
        }
        begin();
      };

      const handle: StoreWatch = {
        get index() {
          return revision;
        },
        /** Records rows already delivered by a load, so a later re-list diff knows them. */
        prime(rows: readonly StoreRow[]) {
          for (const r of rows) seen.set(keyOf(r.table, r.key), r.modifyIndex);
        },
        async close() {
          stopped = true;
          watches.delete(handle);
          clearTimeout(retry);
          drop();
        },
      };
      watches.add(handle);
      begin();
      return handle;
    },

    async grantLease(ttlSec, onLost) {
      if (closed) throw phareError('PHARE_ERR_STORE_CLOSED', 'store: lease after close');
      let id: string;
      try {
        const res = await client.leaseClient.leaseGrant(
          { TTL: ttlSec },
          { deadline: Date.now() + requestTimeoutMs },
        );
        id = res.ID;
      } catch (cause) {
        throw storeError('lease grant', cause);
      }
      const keeper = keepAlive(id, ttlSec, onLost);
      leases.add(keeper);
      return {
        id,
        release: () => {
          keeper.stop();
          leases.delete(keeper);
        },
        async revoke() {
          keeper.stop();
          leases.delete(keeper);
          await bounded(
            client.leaseClient.leaseRevoke({ ID: id }, { deadline: Date.now() + 2000 }).catch(() => {}),
            2500,
          );
        },
      };
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      clearTimeout(probeTimer);
      await Promise.allSettled([...inflight]);
      for (const w of [...watches]) await w.close();
      for (const l of leases) l.stop();
      client.close();
      wire.close();
      for (const p of probes) p.client.close();
    },
  };

  /**
   * Keeps lease `id` alive on one keepalive stream, renewing every TTL/3 (clientv3's cadence), re-opening the
   * stream after an error. Our own loop rather than etcd3's Lease: that one reports a loss only after 2×TTL
   * (microsoft/etcd3 #155) and, when a stream fails twice at once, starts a second renewal loop it never
   * stops. Here the lease counts as lost once no renewal succeeded for a whole TTL (others may already see
   * the agent dead), or when etcd answers TTL 0 (expired); `onLost` is called once and the loop ends.
   */
  function keepAlive(id: string, ttlSec: number, onLost: (err: Error) => void): { stop(): void } {
    let stopped = false;
    let lastOk = Date.now();
    let current: { end(): void } | undefined;
    const lost = (why: string) => {
      if (stopped) return;
      stopped = true;
      current?.end();
      onLost(new Error(`etcd lease ${id}: ${why}`));
    };
    const loop = async () => {
      while (!stopped && !closed) {
        let timer: NodeJS.Timeout | undefined;
        try {
          const stream = await client.leaseClient.leaseKeepAlive();
          if (stopped || closed) {
            stream.end();
            return;
          }
          current = stream;
          await new Promise<void>((resolve) => {
            stream.on('data', (r: { TTL: string }) => {
              if (r.TTL === '0') {
                lost('expired');
                resolve();
                return;
              }
              lastOk = Date.now();
              // A renewal needs a leader: the fastest sign that quorum is back.
              if (!state.knownLeader) void probe();
            });
            stream.on('error', () => resolve());
            stream.on('end', () => resolve());
            const send = () => {
              if (stopped || closed) return resolve();
              if (Date.now() - lastOk > ttlSec * 1000) {
                lost(`not renewed for ${ttlSec} s`);
                return resolve();
              }
              try {
                stream.write({ ID: id });
              } catch {
                resolve();
              }
            };
            send();
            timer = setInterval(send, (ttlSec * 1000) / 3);
          });
          stream.end();
        } catch {
          // could not open the stream (member down): try again below
        } finally {
          clearInterval(timer);
          current = undefined;
        }
        if (!stopped && Date.now() - lastOk > ttlSec * 1000) lost(`not renewed for ${ttlSec} s`);
        if (!stopped && !closed) await new Promise((r) => setTimeout(r, 200));
      }
    };
    void loop();
    return {
      stop() {
        stopped = true;
        current?.end();
      },
    };
  }

  async function refreshPeers(): Promise<void> {
    try {
      const res = await client.cluster.memberList({}, { deadline: Date.now() + 2000 });
      const urls = res.members.flatMap((m) => m.clientURLs);
      if (urls.length > 0) state.peers = urls;
    } catch {
      // keep the configured endpoints
    }
  }

  return store;
}

/** `/phare/` -> `/phare`; always one leading slash. */
function normalizePrefix(p: string): string {
  const trimmed = p.replace(/\/+$/, '');
  if (trimmed === '') return '';
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}

/** The range end that covers every key starting with `p` (etcd's "prefix" range). */
function prefixEnd(p: string): Buffer {
  const b = Buffer.from(p);
  const end = Buffer.from(b);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** A cockatiel policy that runs the call once (the probe must say what one member answered). */
function noRetry() {
  // biome-ignore lint/suspicious/noExplicitAny: etcd3's IPolicy comes from its own cockatiel copy
  return { execute: (fn: (ctx: unknown) => unknown) => fn({ signal: new AbortController().signal }) } as any;
}

/**
 * etcd3's per-member policy, lenient: after `threshold` failures in a row the member is skipped (the pool tries
 * the next one) for `openMs`. etcd3's default skips a member for 5 s after 3 failures — and during an
 * election every member fails a few calls at once (deadlines while no leader), so under concurrent writes all
 * of them were skipped together for 5 s and every write failed with "circuit breaker is open".
 */
function hostBreaker(openMs: number, threshold: number) {
  let failures = 0;
  let openUntil = 0;
  const policy = {
    async execute<T>(fn: (ctx: { signal: AbortSignal }) => Promise<T> | T): Promise<T> {
      if (Date.now() < openUntil)
        throw new Error('etcd member skipped after repeated failures (circuit breaker is open)');
      try {
        const out = await fn({ signal: new AbortController().signal });
        failures = 0;
        return out;
      } catch (err) {
        if (++failures >= threshold) {
          failures = 0;
          openUntil = Date.now() + openMs;
        }
        throw err;
      }
    },
  };
  // biome-ignore lint/suspicious/noExplicitAny: etcd3's IPolicy comes from its own cockatiel copy
  return policy as any;
}

/** Waits for `p` at most `ms` (and never rejects): for etcd3 calls that can wait forever on a dead stream. */
function bounded(p: Promise<unknown>, ms = 1000): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    p.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      () => {
        clearTimeout(timer);
        resolve();
      },
    );
  });
}

const TXN = '/etcdserverpb.KV/Txn';
const WATCH = '/etcdserverpb.Watch/Watch';
const passThrough = (b: Buffer) => b;

/** The grpc-js side of {@link createEtcdStore}: one channel per member for `Txn` and `Watch`. */
interface Wire {
  /** One transaction on the current member; a failure that may be the member's moves on to the next one. */
  txn(request: Buffer, deadline: number): Promise<WireTxnResponse>;
  /** A watch stream on the current member; `failed()` moves on to the next one. */
  watch(create: Buffer): { call: ClientDuplexStream<Buffer, WireWatchResponse>; failed(): void };
  close(): void;
}

/**
 * One grpc-js channel per member, used one at a time: an agent stays on its member (a random one, so the
 * agents of a cluster spread) until a call to it fails the way a dead or cut-off member fails, then moves on.
 * Channels reconnect by themselves; keepalive pings notice a member that stopped answering on an open
 * connection (etcd accepts pings every 5 s or slower, `--grpc-keepalive-min-time`).
 */
function createWire(endpoints: readonly string[], tls: EtcdStoreOptions['tls']): Wire {
  const grpc = loadGrpc();
  const channelOptions = {
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
    // etcd bounds its own messages (--max-request-bytes); a watch answer may batch many of them
    'grpc.max_receive_message_length': -1,
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 1_000,
  };
  const clients: GrpcClient[] = endpoints.map((url) => {
    const m = /^(\w+):\/\/([^/]+)/.exec(url);
    const host = m ? (m[2] as string) : url;
    // as etcd3 does: TLS when the URL says https or when TLS material is given
    const credentials: ChannelCredentials =
      tls || m?.[1] === 'https'
        ? grpc.credentials.createSsl(tls?.ca ?? null, tls?.key ?? null, tls?.cert ?? null)
        : grpc.credentials.createInsecure();
    return new grpc.Client(host, credentials, channelOptions);
  });
  let current = Math.floor(Math.random() * clients.length);
  const moveOn = (c: GrpcClient) => {
    if (clients[current] === c) current = (current + 1) % clients.length;
  };
  // UNAVAILABLE (no connection, no leader, member stopping), DEADLINE_EXCEEDED, CANCELLED, UNKNOWN (a
  // stream reset): worth another member. A refusal (INVALID_ARGUMENT, too large, …) is the same everywhere.
  const memberTrouble = (err: ServiceError) =>
    err.code === 14 || err.code === 4 || err.code === 1 || err.code === 2;
  return {
    txn(request, deadline) {
      const c = clients[current] as GrpcClient;
      return new Promise<WireTxnResponse>((resolve, reject) => {
        c.makeUnaryRequest(TXN, passThrough, decodeTxnResponse, request, { deadline }, (err, res) => {
          if (err) {
            if (memberTrouble(err)) moveOn(c);
            reject(err);
          } else resolve(res as WireTxnResponse);
        });
      });
    },
    watch(create) {
      const c = clients[current] as GrpcClient;
      const call = c.makeBidiStreamRequest(WATCH, passThrough, decodeWatchResponse);
      call.write(create);
      return { call, failed: () => moveOn(c) };
    },
    close() {
      for (const c of clients) c.close();
    },
  };
}

/** etcd3's KeyValue (ranges still go through etcd3) in the wire codec's shape. */
function wireKvOf(kv: IKeyValue): WireKv {
  return {
    key: kv.key.toString(),
    value: kv.value.toString(),
    createRevision: Number(kv.create_revision),
    modRevision: Number(kv.mod_revision),
    lease: kv.lease ? String(kv.lease) : '0',
  };
}
