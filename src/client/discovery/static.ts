/**
 * The `static` resolver: a fixed map, or `PHARE_SERVICE_<NAME>_URL` variables (comma-separated URLs) — for
 * local development, tests and services that are not in a registry.
 */
import { phareError } from '../../api/index.ts';
import { type Instance, makeInstance, type Resolver, type ResolverListener } from './types.ts';

/** One static instance: a URL, or a URL with tags/weight. */
export type StaticEntry =
  | string
  | { url: string; tags?: string[]; weight?: number; meta?: Record<string, string> };

/** Options of {@link staticResolver}. */
export interface StaticResolverOptions {
  /** Service name -> URL(s). @default {} */
  services?: Record<string, StaticEntry | StaticEntry[]>;
  /** Where `PHARE_SERVICE_<NAME>_URL` is read (name upper-cased, other characters as `_`). @default process.env */
  env?: Record<string, string | undefined>;
}

/** The static resolver, with `set()` to change a service at runtime (watchers are told). */
export interface StaticResolver extends Resolver {
  set(service: string, entries: StaticEntry | StaticEntry[]): void;
}

/** `PHARE_SERVICE_USER_API_URL` for `user-api`. */
export function staticEnvName(service: string): string {
  return `PHARE_SERVICE_${service.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_URL`;
}

function toInstances(service: string, entries: StaticEntry[]): Instance[] {
  return entries.map((e) => {
    const spec = typeof e === 'string' ? { url: e } : e;
    let url: URL;
    try {
      url = new URL(spec.url);
    } catch {
      throw phareError(
        'PHARE_ERR_INVALID_CONFIG',
        `static service ${service}: ${JSON.stringify(spec.url)} is not a URL`,
      );
    }
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    const address = url.hostname.replace(/^\[|\]$/g, '');
    return makeInstance({
      id: `${address}:${port}`,
      service,
      address,
      port,
      tags: spec.tags ?? [],
      meta: spec.meta ?? {},
      weights: { passing: spec.weight ?? 1, warning: 1 },
      status: 'passing',
      url: url.origin,
    });
  });
}

/**
 * Creates a static resolver.
 *
 * @example
 * const resolver = staticResolver({ services: { users: ['http://10.0.0.1:8080', 'http://10.0.0.2:8080'] } });
 * // or PHARE_SERVICE_USERS_URL=http://10.0.0.1:8080,http://10.0.0.2:8080
 */
export function staticResolver(options: StaticResolverOptions = {}): StaticResolver {
  const env = options.env ?? process.env;
  const map = new Map<string, Instance[]>();
  for (const [name, v] of Object.entries(options.services ?? {}))
    map.set(name, toInstances(name, [v].flat()));
  const watchers = new Map<string, Set<ResolverListener>>();
  const lookup = (service: string, tag?: string): Instance[] => {
    let list = map.get(service);
    if (!list) {
      const raw = env[staticEnvName(service)];
      list = raw
        ? toInstances(
            service,
            raw
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean),
          )
        : [];
    }
    return tag ? list.filter((i) => i.tags.includes(tag)) : list;
  };
  return {
    kind: 'static',
    async resolve(q) {
      return { instances: lookup(q.service, q.tag), authoritative: true };
    },
    watch(q, listener) {
      const key = q.service;
      const wrapped: ResolverListener = {
        update: () => listener.update({ instances: lookup(q.service, q.tag), authoritative: true }),
        error: listener.error,
      };
      let set = watchers.get(key);
      if (!set) {
        set = new Set();
        watchers.set(key, set);
      }
      set.add(wrapped);
      queueMicrotask(() => {
        if (set.has(wrapped)) wrapped.update({ instances: [], authoritative: true });
      });
      return { stop: () => set.delete(wrapped) };
    },
    set(service, entries) {
      map.set(service, toInstances(service, [entries].flat()));
      for (const l of watchers.get(service) ?? []) l.update({ instances: [], authoritative: true });
    },
  };
}
