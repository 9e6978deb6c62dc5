/**
 * The agent's part in a Phare cluster over etcd (docs/cluster.md): its node lease, its membership record,
 * anti-entropy of what it owns, and — on one agent at a time — the reaper of dead agents.
 *
 * - **Lease**: one etcd lease per agent (TTL `--node-ttl`, default 10 s), renewed on one long-lived keepalive
 *   stream every TTL/3 (go-micro's fix for keepalive storms: one stream, not one KeepAliveOnce per key). Only
 *   the agent's `members/<node>` record and its election key hang on it; services and checks are durable. When
 *   the lease expires every agent's cache sees the member record vanish at the same revision and turns the
 *   node's serfHealth critical ("Agent not live or unreachable", Consul's text, agent/structs/catalog.go).
 * - **Anti-entropy** (Consul's agent/ae): the agent's own services and checks are authoritative. A full sync
 *   runs every `aeIntervalMs` (Consul: 1 min, plus jitter), after a lost lease is re-granted and when etcd
 *   regains quorum: it writes what differs and deletes what the agent no longer has under its node.
 * - **Reaper**: agents campaign with a key under `election/reaper/` on their lease; the one with the lowest
 *   create revision leads (the algorithm of etcd's Go `concurrency.Election`, without a second lease). The
 *   leader deregisters a dead agent's services past their DeregisterCriticalServiceAfter (Consul leaves those
 *   behind because only the owning agent reaps) and removes nodes gone longer than `--reconnect-timeout`.
 */
import type { Logger } from 'pino';
import type { Catalog, CheckRecord } from '../catalog/index.ts';
import type { Clock } from '../clock.ts';
import type { EtcdStore, SharedStoreOp } from '../store/index.ts';

/** Options of {@link joinCluster}. */
export interface ClusterOptions {
  store: EtcdStore;
  catalog: Catalog;
  logger: Logger;
  clock: Clock;
  /** Lease TTL. @default 10000 */
  nodeTtlMs?: number;
  /** Full anti-entropy sync period (jittered by up to 1/8). @default 60000 */
  aeIntervalMs?: number;
  /** How often the elected reaper looks at dead agents. @default 5000 */
  reapIntervalMs?: number;
  /** Remove a node whose agent has been away this long. @default 72h */
  reconnectTimeoutMs?: number;
  /** Floor of DeregisterCriticalServiceAfter (Consul: 1 min). @default 60000 */
  minDeregisterAfterMs?: number;
}

/** A member as `/v1/agent/members` lists it. */
export interface ClusterMember {
  node: string;
  address: string;
  status: 'alive' | 'failed' | 'left';
}

/** A joined cluster. */
export interface Cluster {
  /** Every node the cluster knows, with its agent's state. */
  members(): ClusterMember[];
  /** Whether this agent is the elected reaper now. */
  isReaper(): boolean;
  /** Runs a full anti-entropy sync now; resolves with the number of etcd ops it wrote. */
  syncNow(): Promise<number>;
  /** Marks the member `left`, revokes the lease and stops; idempotent. */
  leave(): Promise<void>;
  /** Stops timers and lets the lease expire (as a crash would, but without the process dying). */
  stop(): Promise<void>;
}

const ELECTION = 'reaper';

/**
 * Joins the cluster: grants the lease, writes the node and member records, starts anti-entropy and the reaper
 * campaign. The catalog must already be open on the same store (its watch feeds what this module reads).
 *
 * @example
 * const cluster = await joinCluster({ store, catalog, logger, clock: systemClock });
 * cluster.members(); // [{ node: 'a', address: '10.0.0.1', status: 'alive' }, …]
 */
export async function joinCluster(o: ClusterOptions): Promise<Cluster> {
  const { store, catalog, clock } = o;
  const log = o.logger.child({ component: 'cluster' });
  const ttlSec = Math.max(1, Math.round((o.nodeTtlMs ?? 10_000) / 1000));
  const aeIntervalMs = o.aeIntervalMs ?? 60_000;
  const reapIntervalMs = o.reapIntervalMs ?? 5000;
  const reconnectTimeoutMs = o.reconnectTimeoutMs ?? 72 * 3600_000;
  const minDeregisterAfterMs = o.minDeregisterAfterMs ?? 60_000;
  const local = catalog.local;
  const nodeKey = local.name.toLowerCase();
  let leaseId = '';
  let revoke: (() => Promise<void>) | undefined;
  let stopped = false;
  let regranting: Promise<void> | undefined;
  let aeTimer: ReturnType<Clock['setTimeout']> | undefined;
  let reapTimer: ReturnType<Clock['setTimeout']> | undefined;
  let leaderTimer: NodeJS.Timeout | undefined;
  let hadLeader = store.health().knownLeader;
  let syncing: Promise<number> | undefined;

  const memberValue = (status: ClusterMember['status']) => ({
    node: local.name,
    id: local.id,
    address: local.address,
    status,
    ttlSec,
  });

  /** Grants a lease and writes the records that hang on it, with the node record, in one transaction. */
  const grant = async () => {
    const l = await store.grantLease(ttlSec, (err) => {
      log.warn({ err: String(err) }, 'lease lost; re-granting and re-syncing');
      leaseId = '';
      void regrant();
    });
    leaseId = l.id;
    revoke = l.revoke;
    const rev = await store.commit([
      { type: 'put', table: 'nodes', key: nodeKey, value: catalog.localNodeRecord() },
      catalog.consulServiceOp(),
      { type: 'put', table: 'members', key: nodeKey, value: memberValue('alive') },
      { type: 'put', table: 'live', key: nodeKey, value: { node: local.name }, lease: l.id },
      {
        type: 'put',
        table: 'election',
        key: `${ELECTION}\u0000${nodeKey}`,
        value: { node: local.name },
        lease: l.id,
      },
    ]);
    await catalog.waitForIndex(rev);
  };

  const regrant = (): Promise<void> => {
    regranting ??= (async () => {
      for (let delay = 100; !stopped; delay = Math.min(delay * 2, 2000)) {
        try {
          await grant();
          await syncNow();
          return;
        } catch (err) {
          log.warn({ err: String(err) }, 'cannot re-grant the lease yet; retrying');
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    })().finally(() => {
      regranting = undefined;
    });
    return regranting;
  };

  /** Writes the differences between what this agent owns and what etcd has under its node. */
  const syncNow = (): Promise<number> => {
    syncing ??= (async () => {
      const ops = catalog.antiEntropyOps();
      // etcd limits a transaction to 128 ops (--max-txn-ops): sync in chunks; each chunk is consistent.
      for (let i = 0; i < ops.length; i += 100) await store.commit(ops.slice(i, i + 100));
      if (ops.length > 0) log.info({ ops: ops.length }, 'anti-entropy: synced local state to etcd');
      return ops.length;
    })().finally(() => {
      syncing = undefined;
    });
    return syncing;
  };

  const scheduleAe = () => {
    if (stopped) return;
    // Consul's jitter: a random part of the interval, so agents restarted together do not sync in step.
    const jitter = Math.floor(Math.random() * (aeIntervalMs / 8));
    aeTimer = clock.setTimeout(() => {
      syncNow()
        .catch((err) =>
          log.warn({ err: String(err) }, 'anti-entropy sync failed; retrying at the next interval'),
        )
        .finally(scheduleAe);
    }, aeIntervalMs + jitter);
  };

  const isReaper = () => {
    const rows = catalog.clusterRows('election').filter((r) => r.key.startsWith(`${ELECTION}\u0000`));
    if (rows.length === 0 || leaseId === '') return false;
    rows.sort((a, b) => a.createIndex - b.createIndex);
    return rows[0]?.key === `${ELECTION}\u0000${nodeKey}`;
  };

  const reap = async () => {
    if (!isReaper() || !store.health().knownLeader) return;
    const now = clock.now();
    const ops: SharedStoreOp[] = [];
    for (const m of catalog.memberStates()) {
      if (m.status === 'alive' || m.node.toLowerCase() === nodeKey) continue;
      const since = m.since ?? now;
      if (now - since > reconnectTimeoutMs) {
        log.info({ node: m.node }, 'reaper: removing a node gone longer than reconnect-timeout');
        ops.push(...catalog.nodeRemovalOps(m.node));
        continue;
      }
      if (m.status !== 'failed') continue;
      // A dead agent cannot reap its own services: enforce DeregisterCriticalServiceAfter for it. Its
      // checks are critical from the moment serfHealth failed (Consul counts a failed node's services critical).
      for (const sid of deadServicesToReap(catalog, m.node, since, now, minDeregisterAfterMs)) {
        log.info({ node: m.node, serviceId: sid }, "reaper: deregistering a dead agent's critical service");
        ops.push(...catalog.serviceRemovalOps(m.node, sid));
      }
    }
    for (let i = 0; i < ops.length; i += 100) await store.commit(ops.slice(i, i + 100));
  };

  const scheduleReap = () => {
    if (stopped) return;
    reapTimer = clock.setTimeout(() => {
      reap()
        .catch((err) => log.warn({ err: String(err) }, 'reaper pass failed'))
        .finally(scheduleReap);
    }, reapIntervalMs);
  };

  try {
    await grant();
    await syncNow();
  } catch (err) {
    // etcd without a leader right now: start anyway (reads serve the cache, as a Consul agent starts without
    // servers) and keep trying to join in the background.
    log.warn({ err: String(err) }, 'cannot join the cluster yet; retrying in the background');
    leaseId = '';
    void regrant();
  }
  scheduleAe();
  scheduleReap();
  // Quorum back: sync what changed locally meanwhile (check results written while etcd could not commit).
  leaderTimer = setInterval(() => {
    const now = store.health().knownLeader;
    if (now && !hadLeader) {
      log.info('etcd has a leader again; re-syncing');
      if (leaseId === '') void regrant();
      else void syncNow().catch((err) => log.warn({ err: String(err) }, 're-sync after quorum loss failed'));
    }
    hadLeader = now;
  }, 250);
  leaderTimer.unref();

  const stopTimers = () => {
    stopped = true;
    if (aeTimer !== undefined) clock.clearTimeout(aeTimer);
    if (reapTimer !== undefined) clock.clearTimeout(reapTimer);
    clearInterval(leaderTimer);
  };

  let leaving: Promise<void> | undefined;
  return {
    members: () =>
      catalog.memberStates().map((m) => ({ node: m.node, address: m.address, status: m.status })),
    isReaper,
    syncNow,
    leave() {
      leaving ??= (async () => {
        stopTimers();
        await syncing?.catch(() => {});
        try {
          // `left` outlives the lease: the member record is durable, only `live/<node>` hangs on the lease.
          await store.commit([
            { type: 'put', table: 'members', key: nodeKey, value: memberValue('left') },
            { type: 'del', table: 'live', key: nodeKey },
          ]);
        } catch (err) {
          log.warn({ err: String(err) }, 'could not record leaving; the lease will expire instead');
        }
        await revoke?.();
      })();
      return leaving;
    },
    async stop() {
      stopTimers();
    },
  };
}

/** A dead agent's service IDs whose DeregisterCriticalServiceAfter has passed, counting from its failure. */
function deadServicesToReap(
  catalog: Catalog,
  node: string,
  failedSince: number,
  now: number,
  floorMs: number,
): string[] {
  const out = new Set<string>();
  for (const c of catalog.checksOnNode(node) as CheckRecord[]) {
    const after = c.def.deregisterCriticalServiceAfterMs ?? 0;
    if (!c.agent || c.serviceId === '' || after <= 0) continue;
    if (!catalog.serviceOn(node, c.serviceId)) continue;
    const since =
      c.status === 'critical' && c.criticalSince !== undefined
        ? Math.min(c.criticalSince, failedSince)
        : failedSince;
    if (now - since > Math.max(after, floorMs)) out.add(c.serviceId);
  }
  return [...out];
}
