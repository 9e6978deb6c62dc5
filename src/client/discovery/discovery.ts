/**
 * The watched in-memory discovery cache. One watch per (service, tag) feeds a set the request path reads
 * synchronously: after the first answer, **no network I/O happens on the hot path**.
 *
 * - Last known good: when the source fails, the previous set keeps serving; the entry is marked stale, a
 *   `stale` event fires and the `phare_discovery_stale` gauge turns 1 until the source answers again.
 * - Empty-push protection (Apache Dubbo): a sudden empty, non-authoritative answer after a non-empty one —
 *   and a sudden "none passing" — is held for `emptyHoldMs` before it takes effect; an authoritative empty
 *   answer (the service was deregistered) applies at once.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { phareError } from '../../api/index.ts';
import { getOrCreateCounter, getOrCreateGauge, getOrCreateHistogram, sdkLogger } from '../shared.ts';
import { type ConsulResolverOptions, consulResolver } from './consul.ts';
import type { Instance, Resolver, ResolverUpdate } from './types.ts';

/** Options of {@link createDiscovery}. */
export interface DiscoveryOptions {
  /** Where instances come from. @default consulResolver(options.consul) */
  resolver?: Resolver;
  /** Registry client options for the default resolver. @default {} (address from the environment) */
  consul?: ConsulResolverOptions;
  /** How long a sudden empty (or none-passing) non-authoritative answer is held, in ms. @default 10000 */
  emptyHoldMs?: number;
  /** prom-client registry for `phare_discovery_*` metrics. @default none (no metrics) */
  metrics?: Registry;
  logger?: Logger;
}

/** Options of {@link Discovery.instances}. */
export interface InstancesOptions {
  /** Only instances with this tag. @default none */
  tag?: string;
  /** Only instances whose checks all pass (Consul `?passing`). @default true */
  passingOnly?: boolean;
}

/** The state of one watched (service, tag). Read by the HTTP client on every request. */
export interface ServiceSet {
  readonly service: string;
  readonly tag: string | undefined;
  /** Every known instance, any status. */
  readonly all: readonly Instance[];
  /** Instances whose checks all pass (what `passingOnly` returns). */
  readonly passing: readonly Instance[];
  /** Bumped on each change (balancers rebuild per-instance state when it moves). */
  readonly version: number;
  /** True while the source fails and the last known good set is being served. */
  readonly stale: boolean;
  /** The source's last error while stale. */
  readonly lastError: unknown;
}

/** `change` event payload. */
export interface DiscoveryChange {
  service: string;
  tag: string | undefined;
  instances: readonly Instance[];
  previous: readonly Instance[];
  added: readonly Instance[];
  removed: readonly Instance[];
}

/** `stale` / `fresh` event payload. */
export interface DiscoveryStaleness {
  service: string;
  tag: string | undefined;
  /** When the source started failing (epoch ms). */
  since: number;
  error?: unknown;
}

/** Events of {@link Discovery}. */
export interface DiscoveryEvents {
  change: [DiscoveryChange];
  stale: [DiscoveryStaleness];
  fresh: [DiscoveryStaleness];
}

/** The discovery cache. */
export interface Discovery extends EventEmitter<DiscoveryEvents> {
  readonly resolver: Resolver;
  /**
   * Instances of `service` (starts a watch on first use and waits for its first answer; later calls answer
   * from memory). Rejects with PHARE_ERR_SERVICE_NOT_FOUND when the source knows no instance at all, or
   * with the source's error when it failed before any answer.
   */
  instances(service: string, options?: InstancesOptions): Promise<Instance[]>;
  /** One instance's base URL (`http://host:port`), rotating round robin; PHARE_ERR_NO_HEALTHY_INSTANCE if none passes. */
  url(service: string, options?: InstancesOptions): Promise<string>;
  /** The watched set, waiting for the first answer if needed. */
  set(service: string, tag?: string): Promise<ServiceSet>;
  /** The watched set if it has an answer already — synchronous, for the hot path. */
  peek(service: string, tag?: string): ServiceSet | undefined;
  /** Stops all watches and closes the resolver. */
  close(): Promise<void>;
}

interface Entry {
  service: string;
  tag: string | undefined;
  set: ServiceSet | undefined;
  stop: () => void;
  waiters: { resolve: (s: ServiceSet) => void; reject: (e: unknown) => void }[];
  staleSince: number;
  holdTimer: NodeJS.Timeout | undefined;
  held: ResolverUpdate | undefined;
  rr: number;
}

/**
 * Creates a discovery cache over a resolver.
 *
 * @example
 * const discovery = createDiscovery(); // the Phare agent / Consul at PHARE_HTTP_ADDR or CONSUL_HTTP_ADDR
 * const [first] = await discovery.instances('users');
 * discovery.on('change', (c) => log.info({ service: c.service, n: c.instances.length }, 'instances changed'));
 */
export function createDiscovery(options: DiscoveryOptions = {}): Discovery {
  const resolver = options.resolver ?? consulResolver(options.consul);
  const holdMs = options.emptyHoldMs ?? 10_000;
  const log = sdkLogger('discovery', options.logger);
  const entries = new Map<string, Entry>();
  const emitter = new EventEmitter<DiscoveryEvents>();
  const metrics = options.metrics ? discoveryMetrics(options.metrics) : undefined;
  let closed = false;

  const apply = (e: Entry, u: ResolverUpdate) => {
    const prev = e.set;
    const all = u.instances;
    const passing = all.filter((i) => i.status === 'passing');
    e.set = {
      service: e.service,
      tag: e.tag,
      all,
      passing,
      version: (prev?.version ?? 0) + 1,
      stale: false,
      lastError: undefined,
    };
    metrics?.instances.set({ service: e.service }, passing.length);
    const waiters = e.waiters.splice(0);
    for (const w of waiters) w.resolve(e.set);
    if (prev) {
      const before = new Set(prev.all.map((i) => `${i.id}|${i.status}`));
      const after = new Set(all.map((i) => `${i.id}|${i.status}`));
      if (before.size !== after.size || [...after].some((k) => !before.has(k))) {
        const prevIds = new Set(prev.all.map((i) => i.id));
        const ids = new Set(all.map((i) => i.id));
        emitter.emit('change', {
          service: e.service,
          tag: e.tag,
          instances: all,
          previous: prev.all,
          added: all.filter((i) => !prevIds.has(i.id)),
          removed: prev.all.filter((i) => !ids.has(i.id)),
        });
      }
    }
  };

  const onUpdate = (e: Entry, u: ResolverUpdate) => {
    if (closed) return;
    metrics?.updates.inc({ service: e.service });
    // Time from the registry's change to this process seeing it (Phare agents stamp their answers).
    if (u.changedAt !== undefined && e.set !== undefined) {
      metrics?.updateLag.observe({ service: e.service }, Math.max(0, Date.now() - u.changedAt) / 1000);
    }
    // The first answer after an outage may come from an agent that restarted empty (--dev) before its
    // services registered again: treat it like a non-authoritative answer.
    if (e.staleSince && u.authoritative) u = { ...u, authoritative: false };
    if (e.staleSince) {
      const since = e.staleSince;
      e.staleSince = 0;
      metrics?.stale.set({ service: e.service }, 0);
      emitter.emit('fresh', { service: e.service, tag: e.tag, since });
    }
    const prev = e.set;
    const suddenEmpty =
      prev !== undefined &&
      !u.authoritative &&
      ((u.instances.length === 0 && prev.all.length > 0) ||
        (prev.passing.length > 0 && !u.instances.some((i) => i.status === 'passing')));
    if (suddenEmpty && holdMs > 0) {
      e.held = u;
      if (!e.holdTimer) {
        log.warn(
          { upstream: e.service, holdMs },
          'empty answer after a non-empty one; holding the previous set',
        );
        e.holdTimer = setTimeout(() => {
          e.holdTimer = undefined;
          const held = e.held;
          e.held = undefined;
          if (held && !closed) apply(e, held);
        }, holdMs);
        e.holdTimer.unref();
      }
      // Staleness is cleared above; the set itself stays as it was.
      if (prev.stale) e.set = { ...prev, stale: false, lastError: undefined };
      return;
    }
    if (e.holdTimer) {
      clearTimeout(e.holdTimer);
      e.holdTimer = undefined;
      e.held = undefined;
    }
    apply(e, u);
  };

  const onError = (e: Entry, err: unknown) => {
    if (closed) return;
    if (!e.set) {
      const waiters = e.waiters.splice(0);
      for (const w of waiters) w.reject(err);
      return;
    }
    if (!e.staleSince) {
      e.staleSince = Date.now();
      e.set = { ...e.set, stale: true, lastError: err };
      metrics?.stale.set({ service: e.service }, 1);
      log.warn({ upstream: e.service, err }, 'registry unreachable; serving the last known good instances');
      emitter.emit('stale', { service: e.service, tag: e.tag, since: e.staleSince, error: err });
    } else {
      e.set = { ...e.set, lastError: err };
    }
  };

  const entryFor = (service: string, tag: string | undefined): Entry => {
    if (closed) throw phareError('PHARE_ERR_INVALID_ARGUMENT', 'discovery: used after close()');
    if (typeof service !== 'string' || service === '') {
      throw phareError(
        'PHARE_ERR_INVALID_ARGUMENT',
        `discovery: service name must be a non-empty string, got ${JSON.stringify(service)}`,
      );
    }
    const key = tag ? `${service}\u0000${tag}` : service;
    let e = entries.get(key);
    if (!e) {
      const created: Entry = {
        service,
        tag,
        set: undefined,
        stop: () => {},
        waiters: [],
        staleSince: 0,
        holdTimer: undefined,
        held: undefined,
        rr: 0,
      };
      entries.set(key, created);
      const w = resolver.watch(
        { service, tag },
        { update: (u) => onUpdate(created, u), error: (err) => onError(created, err) },
      );
      created.stop = w.stop;
      e = created;
    }
    return e;
  };

  const setOf = (service: string, tag?: string): Promise<ServiceSet> => {
    const e = entryFor(service, tag);
    if (e.set) return Promise.resolve(e.set);
    return new Promise((resolve, reject) => e.waiters.push({ resolve, reject }));
  };

  const discovery = Object.assign(emitter, {
    resolver,
    set: setOf,
    peek(service: string, tag?: string) {
      const key = tag ? `${service}\u0000${tag}` : service;
      return entries.get(key)?.set;
    },
    async instances(service: string, o: InstancesOptions = {}) {
      const s = await setOf(service, o.tag);
      if (s.all.length === 0) {
        throw phareError(
          'PHARE_ERR_SERVICE_NOT_FOUND',
          `service "${service}"${o.tag ? ` (tag ${o.tag})` : ''}: no instance is registered with ${resolver.kind}`,
        );
      }
      return [...((o.passingOnly ?? true) ? s.passing : s.all)];
    },
    async url(service: string, o: InstancesOptions = {}) {
      const list = await discovery.instances(service, o);
      if (list.length === 0) {
        throw phareError(
          'PHARE_ERR_NO_HEALTHY_INSTANCE',
          `service "${service}": ${(await setOf(service, o.tag)).all.length} instance(s) registered, none passing`,
        );
      }
      const e = entryFor(service, o.tag);
      const pick = list[e.rr++ % list.length] as Instance;
      return pick.url;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const e of entries.values()) {
        e.stop();
        if (e.holdTimer) clearTimeout(e.holdTimer);
        for (const w of e.waiters.splice(0))
          w.reject(phareError('PHARE_ERR_INVALID_ARGUMENT', 'discovery closed'));
      }
      entries.clear();
      await resolver.close?.();
    },
  });
  return discovery as Discovery;
}

function discoveryMetrics(registry: Registry) {
  return {
    stale: getOrCreateGauge(
      registry,
      'phare_discovery_stale',
      '1 while the registry fails and the last known good set is served',
      ['service'],
    ),
    instances: getOrCreateGauge(
      registry,
      'phare_discovery_instances',
      'Passing instances in the local discovery cache',
      ['service'],
    ),
    updateLag: getOrCreateHistogram(
      registry,
      'phare_discovery_update_lag_seconds',
      'Time from a registry change to the local discovery cache seeing it',
      ['service'],
      [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    ),
    updates: getOrCreateCounter(
      registry,
      'phare_discovery_updates_total',
      'Answers received from the discovery source',
      ['service'],
    ),
  };
}
