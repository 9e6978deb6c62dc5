/** Balancer strategies pick one endpoint from candidates; one strategy per file (cockatiel style). */
import type { Instance } from '../discovery/index.ts';

/** Per-instance state the client keeps across requests (kept when the instance stays in the set). */
export interface Endpoint {
  readonly instance: Instance;
  /** Requests in flight to this instance (leastRequest reads it). */
  active: number;
  /** Outlier detection: consecutive failures since the last success. */
  consecutiveFailures: number;
  /** Outlier detection: how many times ejected (the ejection time grows with it). */
  timesEjected: number;
  /** Ejected until this time (epoch ms); 0 when in service. */
  ejectedUntil: number;
  /** A `Retry-After` from this instance asks us to stay away until this time (epoch ms). */
  retryAfterUntil: number;
  /** Latency estimate in ms kept by latency-aware strategies (peakEwma); 0 before the first answer. */
  latencyMs: number;
  /** When `latencyMs` was last updated (epoch ms). */
  latencyAt: number;
  /** Per-instance data a client attaches (its connection pool, circuit breaker). */
  attachment?: unknown;
}

/** A load-balancing strategy. `pick` runs on every request: O(1) or O(n) over a handful, no allocation. */
export interface Balancer {
  readonly name: string;
  /**
   * One of `candidates` (never empty when called), or undefined to refuse. `warm` is the endpoint whose
   * connection became free last (it may not be a candidate): taking it reuses a connection undici has not
   * parked yet. A strategy may take it when that costs its own criterion nothing, or ignore it.
   */
  pick(candidates: readonly Endpoint[], warm?: Endpoint): Endpoint | undefined;
  /** Told of each try's outcome (latency-aware strategies learn from it); `ok` is false for a failure. */
  observe?(endpoint: Endpoint, latencyMs: number, ok: boolean): void;
}

/** What a factory is handed: the client's clock (strategies that weigh time use it). */
export interface BalancerContext {
  now(): number;
}

/** Makes a balancer; the client makes one per service so strategies may keep state (a round-robin cursor). */
export type BalancerFactory = (context?: BalancerContext) => Balancer;

/** A fresh endpoint for an instance. */
export function newEndpoint(instance: Instance): Endpoint {
  return {
    instance,
    active: 0,
    consecutiveFailures: 0,
    timesEjected: 0,
    ejectedUntil: 0,
    retryAfterUntil: 0,
    latencyMs: 0,
    latencyAt: 0,
  };
}
