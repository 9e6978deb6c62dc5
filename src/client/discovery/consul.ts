/**
 * The `consul` resolver: blocking queries on `/v1/health/service/:name` against the Phare agent or a real
 * Consul. It asks for every instance (no `?passing`) so discovery knows "exists but unhealthy" from "gone".
 */
import type { CheckStatus, ServiceEntry } from '../../api/index.ts';
import type { ConsulClientOptions } from '../api/index.ts';
import { createConsulClient, watch } from '../api/index.ts';
import { type Instance, makeInstance, type Resolver } from './types.ts';

/** Options of {@link consulResolver}. */
export interface ConsulResolverOptions extends ConsulClientOptions {
  /** Blocking wait per round in ms. @default 60000 */
  waitMs?: number;
  /** First error backoff of the watch in ms. @default 250 */
  backoffBaseMs?: number;
  /** Backoff cap in ms. @default 5000 */
  backoffMaxMs?: number;
}

const ORDER: Record<CheckStatus, number> = { passing: 0, warning: 1, critical: 2 };

/** Turns a health entry into an {@link Instance}: the service address, else the node's (Consul's rule). */
export function instanceFromEntry(e: ServiceEntry): Instance {
  let status: CheckStatus = 'passing';
  for (const c of e.Checks) if (ORDER[c.Status] > ORDER[status]) status = c.Status;
  return makeInstance({
    id: e.Service.ID,
    service: e.Service.Service,
    address: e.Service.Address || e.Node.Address,
    port: e.Service.Port ?? 0,
    tags: e.Service.Tags ?? [],
    meta: e.Service.Meta ?? {},
    weights: { passing: e.Service.Weights?.Passing ?? 1, warning: e.Service.Weights?.Warning ?? 1 },
    status,
  });
}

/**
 * Creates the registry resolver.
 *
 * @example
 * const discovery = createDiscovery({ resolver: consulResolver({ address: '127.0.0.1:8500' }) });
 */
export function consulResolver(options: ConsulResolverOptions = {}): Resolver {
  const client = createConsulClient(options);
  return {
    kind: 'consul',
    async resolve(q, signal) {
      const r = await client.health.service(q.service, { tag: q.tag, signal });
      return { instances: r.value.map(instanceFromEntry), authoritative: true };
    },
    watch(q, listener) {
      const w = watch((b) => client.health.service(q.service, { tag: q.tag, ...b }), {
        waitMs: options.waitMs ?? 60_000,
        backoffBaseMs: options.backoffBaseMs ?? 250,
        backoffMaxMs: options.backoffMaxMs ?? 5_000,
        onChange: (entries, _index, answer) =>
          listener.update({
            instances: entries.map(instanceFromEntry),
            authoritative: true,
            ...(answer.indexTimeMs ? { changedAt: answer.indexTimeMs } : {}),
          }),
        onError: (err) => listener.error(err),
      });
      return { stop: () => w.stop() };
    },
    close: () => client.close(),
  };
}
