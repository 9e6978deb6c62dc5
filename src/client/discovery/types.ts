/** The resolver interface every discovery source implements (consul, dns, static, fallback). */
import type { CheckStatus } from '../../api/index.ts';

/** One instance of a service, the same shape whatever the source. */
export interface Instance {
  /** Unique within the service (Consul service ID, or `address:port`). */
  readonly id: string;
  readonly service: string;
  readonly address: string;
  readonly port: number;
  readonly tags: readonly string[];
  readonly meta: Readonly<Record<string, string>>;
  /** Consul `Weights` (DNS: the SRV weight; static: 1). */
  readonly weights: { readonly passing: number; readonly warning: number };
  /** Worst status of the instance's node and service checks; sources without health say "passing". */
  readonly status: CheckStatus;
  /** `http://address:port` (IPv6 in brackets), the base URL requests go to. */
  readonly url: string;
}

/** What a resolver is asked for. */
export interface ResolveQuery {
  service: string;
  /** Only instances carrying this tag (Consul `?tag=`, DNS `<tag>.<service>.service.consul`). */
  tag?: string;
}

/** One answer of a watching resolver. */
export interface ResolverUpdate {
  /** Every instance the source knows, healthy or not. */
  instances: Instance[];
  /**
   * True when the source states with authority that the set is what it is — a registry answering "no such
   * service" after a deregistration. False for answers that may be a glitch (a DNS NXDOMAIN, a file being
   * rewritten): discovery holds a sudden empty non-authoritative answer for a while (empty-push protection).
   */
  authoritative: boolean;
  /** When the source made this change (epoch ms), if it says (the Phare agent does); for the lag metric. */
  changedAt?: number;
}

/** Receives a watch's answers and failures. */
export interface ResolverListener {
  update(update: ResolverUpdate): void;
  /** The source failed this round; the watch keeps trying. */
  error(err: unknown): void;
}

/** A discovery source. One implementation per file; all pass one conformance suite. */
export interface Resolver {
  /** `consul`, `dns`, `static`, `fallback(consul,dns)`. */
  readonly kind: string;
  /** One lookup (no cache). */
  resolve(query: ResolveQuery, signal?: AbortSignal): Promise<ResolverUpdate>;
  /** Keeps `listener` informed until `stop()`; the first answer (or error) comes as soon as possible. */
  watch(query: ResolveQuery, listener: ResolverListener): { stop(): void };
  /** Releases connections and sockets. */
  close?(): Promise<void>;
}

/** `http://host:port` with IPv6 hosts in brackets. */
export function baseUrl(address: string, port: number, scheme = 'http'): string {
  return `${scheme}://${address.includes(':') ? `[${address}]` : address}:${port}`;
}

/** Builds a frozen {@link Instance}. */
export function makeInstance(fields: Omit<Instance, 'url'> & { url?: string }): Instance {
  return Object.freeze({ ...fields, url: fields.url ?? baseUrl(fields.address, fields.port) });
}
