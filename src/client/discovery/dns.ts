/**
 * The `dns` resolver: Docker/Kubernetes-style names (A/AAAA + a known port) or SRV records (Consul's
 * `<tag>.<service>.service.consul`, Kubernetes headless services) for addresses and ports. Uses node:dns's
 * `Resolver` so the servers are configurable (the Phare agent's DNS, CoreDNS, Docker's 127.0.0.11).
 *
 * Every address of a name becomes an instance, so balancing spreads over all of them (client-side round
 * robin rather than the first address the OS resolver returns). Answers are re-resolved when their TTL runs
 * out (RFC 1035 §3.2.1), clamped to [minTtlMs, maxTtlMs] so a TTL of 0 cannot turn into a query storm.
 */
import { Resolver as DnsClient } from 'node:dns/promises';
import { isIP } from 'node:net';
import { phareError } from '../../api/index.ts';
import { fullJitter, sleep } from '../shared.ts';
import { type Instance, makeInstance, type ResolveQuery, type Resolver } from './types.ts';

/** Options of {@link dnsResolver}. */
export interface DnsResolverOptions {
  /** DNS servers as `ip` or `ip:port` (`[ipv6]:port`). @default the system's servers */
  servers?: string[];
  /**
   * The name to ask for. @default Consul's: `<service>.service.<domain>`, `<tag>.<service>.service.<domain>`
   */
  name?: (query: ResolveQuery) => string;
  /** Consul DNS domain used by the default `name`. @default "consul" */
  domain?: string;
  /**
   * Port of every instance: set it for A/AAAA mode (Docker Compose service names). Without it the resolver
   * asks for SRV records, which carry the ports. @default SRV mode
   */
  port?: number;
  /** Address families asked for in A/AAAA mode and for SRV targets. @default [4, 6] */
  families?: (4 | 6)[];
  /** Lowest re-resolve interval in ms. @default 1000 */
  minTtlMs?: number;
  /** Highest re-resolve interval in ms. @default 30000 */
  maxTtlMs?: number;
  /** Per-query timeout in ms (node:dns `timeout`). @default 2000 */
  timeoutMs?: number;
  /** Tries per query (node:dns `tries`). @default 2 */
  tries?: number;
}

interface Answer {
  instances: Instance[];
  ttlMs: number;
  /** NXDOMAIN/NODATA (held by empty-push protection) rather than a failure. */
  empty: boolean;
}

const NO_DATA = new Set(['ENOTFOUND', 'ENODATA']);

/**
 * Creates a DNS resolver.
 *
 * @example
 * // Docker Compose: every replica of "users" on port 8080, via Docker's embedded DNS
 * dnsResolver({ servers: ['127.0.0.11'], name: (q) => q.service, port: 8080 });
 * // the Phare agent's (or Consul's) DNS interface, ports from SRV records
 * dnsResolver({ servers: ['127.0.0.1:8600'] });
 */
export function dnsResolver(options: DnsResolverOptions = {}): Resolver {
  const domain = options.domain ?? 'consul';
  const nameOf =
    options.name ??
    ((q: ResolveQuery) =>
      q.tag ? `${q.tag}.${q.service}.service.${domain}` : `${q.service}.service.${domain}`);
  const families = options.families ?? [4, 6];
  const minTtl = options.minTtlMs ?? 1_000;
  const maxTtl = options.maxTtlMs ?? 30_000;
  const client = new DnsClient({ timeout: options.timeoutMs ?? 2_000, tries: options.tries ?? 2 });
  if (options.servers?.length) client.setServers(options.servers);
  if (
    options.port !== undefined &&
    !(Number.isInteger(options.port) && options.port > 0 && options.port < 65536)
  ) {
    throw phareError('PHARE_ERR_INVALID_ARGUMENT', `dnsResolver.port: expected 1-65535, got ${options.port}`);
  }
  const clamp = (ms: number) => Math.min(maxTtl, Math.max(minTtl, ms));

  /** A/AAAA of `name`, with the lowest TTL seen; NXDOMAIN/NODATA gives an empty list. */
  const addresses = async (name: string): Promise<{ list: string[]; ttlMs: number }> => {
    if (isIP(name)) return { list: [name], ttlMs: maxTtl };
    const list: string[] = [];
    let ttl = Number.POSITIVE_INFINITY;
    let failure: unknown;
    await Promise.all(
      families.map(async (f) => {
        try {
          const rr =
            f === 4 ? await client.resolve4(name, { ttl: true }) : await client.resolve6(name, { ttl: true });
          for (const r of rr) {
            list.push(r.address);
            ttl = Math.min(ttl, r.ttl * 1000);
          }
        } catch (err) {
          if (!NO_DATA.has((err as NodeJS.ErrnoException).code ?? '')) failure = err;
        }
      }),
    );
    if (list.length === 0 && failure) throw failure;
    return { list, ttlMs: Number.isFinite(ttl) ? ttl : minTtl };
  };

  const lookup = async (q: ResolveQuery): Promise<Answer> => {
    const name = nameOf(q);
    if (options.port !== undefined) {
      const { list, ttlMs } = await addresses(name);
      const port = options.port;
      return {
        instances: list.map((address) => inst(q.service, address, port, 1)),
        ttlMs: clamp(ttlMs),
        empty: list.length === 0,
      };
    }
    let srv: Awaited<ReturnType<DnsClient['resolveSrv']>>;
    try {
      srv = await client.resolveSrv(name);
    } catch (err) {
      if (NO_DATA.has((err as NodeJS.ErrnoException).code ?? ''))
        return { instances: [], ttlMs: minTtl, empty: true };
      throw err;
    }
    // node:dns drops the SRV TTL and the additional section, so targets are resolved one by one (cached
    // per round); the lowest target TTL drives the refresh.
    let ttl = maxTtl;
    const out: Instance[] = [];
    const byTarget = new Map<string, Promise<{ list: string[]; ttlMs: number }>>();
    for (const r of srv) {
      let p = byTarget.get(r.name);
      if (!p) {
        p = addresses(r.name);
        byTarget.set(r.name, p);
      }
      const a = await p;
      ttl = Math.min(ttl, a.ttlMs);
      for (const address of a.list) out.push(inst(q.service, address, r.port, r.weight || 1));
    }
    return { instances: out, ttlMs: clamp(ttl), empty: out.length === 0 };
  };

  return {
    kind: 'dns',
    async resolve(q) {
      const a = await lookup(q);
      return { instances: a.instances, authoritative: false };
    },
    watch(q, listener) {
      const stop = new AbortController();
      void (async () => {
        let failures = 0;
        while (!stop.signal.aborted) {
          let wait: number;
          try {
            const a = await lookup(q);
            if (stop.signal.aborted) break;
            failures = 0;
            listener.update({ instances: a.instances, authoritative: false });
            wait = a.ttlMs;
          } catch (err) {
            if (stop.signal.aborted) break;
            failures++;
            listener.error(err);
            wait = Math.max(minTtl / 2, fullJitter(failures, minTtl, maxTtl));
          }
          await sleep(wait, stop.signal).catch(() => {});
        }
      })();
      return { stop: () => stop.abort() };
    },
    async close() {
      client.cancel();
    },
  };
}

function inst(service: string, address: string, port: number, weight: number): Instance {
  return makeInstance({
    id: `${address}:${port}`,
    service,
    address,
    port,
    tags: [],
    meta: {},
    weights: { passing: weight, warning: 1 },
    status: 'passing',
  });
}
