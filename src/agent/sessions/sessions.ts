/**
 * Sessions (developer.hashicorp.com/consul/api-docs/session, consul/docs/automate/session): a session ties
 * KV locks to a node, its checks and an optional TTL. It is invalidated — destroyed, its locks released or
 * deleted by its Behavior, each key then blocked for the session's lock-delay — when:
 *   - it is destroyed;
 *   - its TTL lapses without a renew: Consul invalidates at 2×TTL (the "grace" clients such as Patroni size
 *     their TTL on: Patroni sends ttl/2);
 *   - one of its node or service checks turns critical or is deregistered, or its node goes away.
 * Session records live in the KV state (one store transaction releases the locks with the session);
 * TTL timers live here, in memory, and are re-armed with a full 2×TTL when the agent starts (as a new
 * Consul leader does).
 *
 * **On a shared store (etcd cluster)** sessions are valid cluster-wide and there are no local timers: a TTL
 * session gets its own etcd lease of 2×TTL (its `sessionttls` marker hangs on it, written in the session's
 * create transaction) and a renew through any agent is one keepalive of that lease. The cluster's elected
 * reaper (the agent that also reaps dead agents, src/agent/cluster) invalidates every session that must go —
 * its lease expired, its node is gone, a linked check is critical or gone (a dead agent's serfHealth
 * included) — with a guarded write, so however many agents believe they lead for a moment, a session is
 * invalidated exactly once and its locks released or deleted by its Behavior in the same transaction.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Catalog, CatalogEvent } from '../catalog/index.ts';
import type { ClockTimer } from '../clock.ts';
import type { KvState, SessionBehavior, SessionRecord, SessionServiceCheck } from '../kv/index.ts';

/** Consul's bounds (structs.SessionTTLMin default, SessionTTLMax, MaxLockDelay). */
export const SESSION_LIMITS = {
  ttlMinMs: 10_000,
  ttlMaxMs: 24 * 3_600_000,
  defaultLockDelayMs: 15_000,
  /** Consul's SessionTTLMultiplier: a session expires 2×TTL after its last renew. */
  ttlMultiplier: 2,
} as const;

/** What `PUT /v1/session/create` asks for, decoded. */
export interface SessionCreateInput {
  name: string;
  /** @default the agent's node */
  node?: string;
  /** @default ['serfHealth'] */
  nodeChecks: string[];
  serviceChecks: SessionServiceCheck[];
  lockDelayMs: number;
  behavior: SessionBehavior;
  ttlMs: number;
  /** The TTL as written (`"15.0s"`), echoed back by reads. */
  ttl: string;
}

/** A session error with Consul's text (the HTTP layer answers 500, as Consul's RPC errors). */
export class SessionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SessionError';
  }
}

/** Options of {@link createSessions}. */
export interface SessionsOptions {
  state: KvState;
  catalog: Catalog;
  logger: Logger;
  /** Shared store: whether this agent is the cluster's elected reaper now. @default () => false */
  isReaper?: () => boolean;
  /** Shared store: how often the reaper looks at every session (it also looks on every KV change). @default 1000 */
  reapIntervalMs?: number;
}

/** The session manager. */
export interface Sessions {
  /** Creates a session; resolves with its ID once durable. Throws SessionError with Consul's text. */
  create(input: SessionCreateInput): Promise<string>;
  /** Restarts the TTL timer; undefined when the session does not exist (or its TTL already lapsed). */
  renew(id: string): Promise<SessionRecord | undefined>;
  /** Destroys a session (absent is fine). */
  destroy(id: string): Promise<void>;
  info(id: string): SessionRecord | undefined;
  list(): SessionRecord[];
  onNode(node: string): SessionRecord[];
  /** Arms TTL timers for loaded sessions and starts following check changes. */
  start(): void;
  stop(): void;
}

/**
 * Creates the session manager.
 *
 * @example
 * const sessions = createSessions({ state, catalog, logger });
 * sessions.start();
 * const id = await sessions.create({ name: 'pg-1', nodeChecks: [], serviceChecks: [], lockDelayMs: 1, behavior: 'delete', ttlMs: 15_000, ttl: '15s' });
 */
export function createSessions(options: SessionsOptions): Sessions {
  if (options.state.shared) return createSharedSessions(options);
  const { state, catalog, logger } = options;
  const clock = state.clock;
  const timers = new Map<string, ClockTimer>();
  let unsubscribe: (() => void) | undefined;
  let stopped = false;

  const invalidate = (id: string, why: string) => {
    disarm(id);
    if (stopped) return;
    state
      .write((tx) => tx.destroySession(id))
      .then((found) => {
        if (found) logger.info({ session: id, why }, 'session invalidated');
      })
      .catch((err) => {
        // The store refused the write (e.g. etcd without quorum): the session must still go, so try again.
        logger.warn({ err, session: id }, 'session invalidation failed; retrying in 1s');
        if (!stopped)
          timers.set(
            id,
            clock.setTimeout(() => invalidate(id, why), 1000),
          );
      });
  };

  const arm = (s: SessionRecord) => {
    disarm(s.id);
    if (s.ttlMs <= 0 || stopped) return;
    timers.set(
      s.id,
      clock.setTimeout(() => {
        timers.delete(s.id);
        invalidate(s.id, 'ttl');
      }, s.ttlMs * SESSION_LIMITS.ttlMultiplier),
    );
  };

  const disarm = (id: string) => {
    const t = timers.get(id);
    if (t !== undefined) clock.clearTimeout(t);
    timers.delete(id);
  };

  /** Sessions a check belongs to (node checks by ID on its node, service checks by ID). */
  const linked = (node: string, checkId: string, serviceId: string) =>
    state
      .sessions()
      .filter(
        (s) =>
          s.node.toLowerCase() === node.toLowerCase() &&
          (serviceId === ''
            ? s.nodeChecks.includes(checkId)
            : s.serviceChecks.some((c) => c.id === checkId) || s.nodeChecks.includes(checkId)),
      );

  const onCatalog = (e: CatalogEvent) => {
    const c = e.check;
    if (e.type === 'check-status' && c.status === 'critical') {
      for (const s of linked(c.node, c.checkId, c.serviceId)) invalidate(s.id, `check ${c.checkId} critical`);
    } else if (e.type === 'check-removed') {
      // A re-registration removes and re-adds the check in one write: judge once the write is done.
      setImmediate(() => {
        const now = catalog.check(c.node, c.checkId);
        const nodeGone = !catalog.node(c.node);
        for (const s of linked(c.node, c.checkId, c.serviceId)) {
          if (nodeGone) invalidate(s.id, `node ${c.node} deregistered`);
          else if (!now || now.status === 'critical') invalidate(s.id, `check ${c.checkId} removed`);
        }
      });
    }
  };

  return {
    async create(input) {
      const node = checkCreate(catalog, input);
      const id = randomUUID();
      const rec = await state.write((tx) => {
        const r = sessionRecord(id, node, input, tx.index);
        tx.putSession(r);
        return r;
      });
      arm(rec);
      return id;
    },
    async renew(id) {
      const s = state.session(id);
      if (!s) return undefined;
      arm(s);
      return s;
    },
    async destroy(id) {
      disarm(id);
      await state.write((tx) => tx.destroySession(id));
    },
    info: (id) => state.session(id),
    list: () => state.sessions(),
    onNode: (node) => state.sessions().filter((s) => s.node.toLowerCase() === node.toLowerCase()),
    start() {
      for (const s of state.sessions()) arm(s);
      unsubscribe = catalog.subscribe(onCatalog);
    },
    stop() {
      stopped = true;
      unsubscribe?.();
      for (const id of [...timers.keys()]) disarm(id);
    },
  };
}

/** Consul's SessionCreate checks (state store texts, answered as 500): returns the node's name as stored. */
function checkCreate(catalog: Catalog, input: SessionCreateInput): string {
  const nodeName = input.node && input.node !== '' ? input.node : catalog.local.name;
  const node = catalog.node(nodeName);
  if (!node) throw new SessionError('Missing node registration');
  for (const id of input.nodeChecks) {
    const c = catalog.check(node.node, id);
    if (!c) throw new SessionError(`Missing check '${id}' registration`);
    if (c.status === 'critical') throw new SessionError(`Check '${id}' is in critical state`);
  }
  for (const sc of input.serviceChecks) {
    const c = catalog.check(node.node, sc.id);
    if (!c || c.serviceId === '') throw new SessionError(`Missing check '${sc.id}' registration`);
    if (c.status === 'critical') throw new SessionError(`Check '${sc.id}' is in critical state`);
  }
  return node.node;
}

function sessionRecord(id: string, node: string, input: SessionCreateInput, index: number): SessionRecord {
  return {
    id,
    name: input.name,
    node,
    nodeChecks: [...input.nodeChecks],
    serviceChecks: input.serviceChecks.map((c) => ({ ...c })),
    lockDelayMs: input.lockDelayMs,
    behavior: input.behavior,
    ttlMs: input.ttlMs,
    ttl: input.ttl,
    createIndex: index,
    modifyIndex: index,
  };
}

/**
 * Why a session must be invalidated now, as the cluster sees it, or undefined. A missing node or check counts
 * only once the catalog cache has caught up with the session's creation (the two caches are fed by separate
 * watches), so a session is never reaped for a check the reaper has merely not seen yet.
 */
function invalidReason(catalog: Catalog, state: KvState, s: SessionRecord): string | undefined {
  if (s.ttlMs > 0 && state.sessionLease(s.id) === undefined) return 'ttl';
  const caughtUp = catalog.appliedIndex >= s.createIndex;
  const node = catalog.node(s.node);
  if (!node) return caughtUp ? `node ${s.node} deregistered` : undefined;
  for (const id of [...s.nodeChecks, ...s.serviceChecks.map((c) => c.id)]) {
    const c = catalog.check(node.node, id);
    if (!c) {
      if (caughtUp) return `check ${id} removed`;
    } else if (c.status === 'critical') return `check ${id} critical`;
  }
  return undefined;
}

/** Sessions over a shared store (see the module comment). */
function createSharedSessions(options: SessionsOptions): Sessions {
  const { state, catalog, logger } = options;
  const store = state.sharedStore as NonNullable<KvState['sharedStore']>;
  const isReaper = options.isReaper ?? (() => false);
  const reapIntervalMs = options.reapIntervalMs ?? 1000;
  const invalidating = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let soon = false;
  let unsubscribe: (() => void) | undefined;
  let stopped = false;
  let purging = false;

  const destroy = async (id: string): Promise<boolean> => {
    const lease = state.sessionLease(id);
    const found = await state.write((tx) => tx.destroySession(id));
    // The marker went with the session; its lease would only expire into nothing.
    if (lease) void store.revokeLease(lease);
    return found;
  };

  const reap = () => {
    soon = false;
    if (stopped || !isReaper()) return;
    for (const s of state.sessions()) {
      if (invalidating.has(s.id)) continue;
      const why = invalidReason(catalog, state, s);
      if (!why) continue;
      invalidating.add(s.id);
      destroy(s.id)
        .then((found) => {
          if (found) logger.info({ session: s.id, why }, 'session invalidated');
        })
        .catch((err) =>
          logger.warn({ err: String(err), session: s.id }, 'session invalidation failed; retrying'),
        )
        .finally(() => invalidating.delete(s.id));
    }
    const lapsed = state.lapsedLockDelays(state.clock.now());
    if (lapsed.length > 0 && !purging) {
      purging = true;
      state
        .write((tx) => {
          for (const k of lapsed.slice(0, 100)) if (tx.lockDelayUntil(k) <= tx.now) tx.clearLockDelay(k);
        })
        .catch((err) => logger.warn({ err: String(err) }, 'lock-delay purge failed; retrying'))
        .finally(() => {
          purging = false;
        });
    }
  };
  const reapSoon = () => {
    if (soon || stopped) return;
    soon = true;
    setImmediate(reap);
  };

  return {
    async create(input) {
      const node = checkCreate(catalog, input);
      const id = randomUUID();
      // Consul invalidates at 2×TTL after the last renew: the lease is that long, and every renew restarts it.
      const lease =
        input.ttlMs > 0
          ? await store.grantBareLease(Math.ceil((input.ttlMs * SESSION_LIMITS.ttlMultiplier) / 1000))
          : undefined;
      try {
        await state.write((tx) => {
          tx.putSession(sessionRecord(id, node, input, tx.index));
          if (lease) tx.setSessionLease(id, lease);
        });
      } catch (err) {
        if (lease) void store.revokeLease(lease);
        throw err;
      }
      return id;
    },
    async renew(id) {
      const s = state.session(id);
      if (!s) return undefined;
      if (s.ttlMs <= 0) return s;
      const lease = state.sessionLease(id);
      // No lease left: the TTL lapsed and the reaper is invalidating it (Consul answers 404 too).
      if (!lease || (await store.renewLease(lease)) === 0) return undefined;
      return state.session(id);
    },
    async destroy(id) {
      await destroy(id);
    },
    info: (id) => state.session(id),
    list: () => state.sessions(),
    onNode: (node) => state.sessions().filter((s) => s.node.toLowerCase() === node.toLowerCase()),
    start() {
      unsubscribe = state.onChange(reapSoon);
      timer = setInterval(reap, reapIntervalMs);
      timer.unref();
    },
    stop() {
      stopped = true;
      unsubscribe?.();
      clearInterval(timer);
    },
  };
}
