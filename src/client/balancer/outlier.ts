/**
 * Outlier ejection, Envoy's `OutlierDetection` semantics (envoyproxy.io, arch overview "Outlier detection"):
 * an instance that fails `consecutiveFailures` times in a row (5xx, timeouts; connect errors count against the
 * lower `consecutiveConnectFailures`) is ejected for `baseEjectionMs × times ejected` (capped), and never more
 * than `maxEjectionPercent` of the set is ejected at once, so a bad deploy cannot eject everything.
 */
import { phareError } from '../../api/index.ts';
import type { Endpoint } from './types.ts';

/** Options of {@link OutlierDetector}. */
export interface OutlierOptions {
  /** Consecutive 5xx/timeouts that eject. @default 5 */
  consecutiveFailures?: number;
  /** Consecutive connect errors (refused, reset before a response) that eject. @default 3 */
  consecutiveConnectFailures?: number;
  /** First ejection time in ms; the n-th ejection lasts n × this. @default 30000 */
  baseEjectionMs?: number;
  /** Longest ejection in ms. @default 300000 */
  maxEjectionMs?: number;
  /** Most of the set ejected at once, in percent (at least one instance may always be ejected). @default 50 */
  maxEjectionPercent?: number;
  /**
   * When ejection (or `Retry-After`) would leave fewer than this share of the healthy instances in service,
   * in percent, ejection is ignored and traffic spreads over every healthy instance (Envoy's panic
   * threshold), to avoid overloading the few left. Registry health is never ignored here (see the client's
   * `onAllUnhealthy`). 0 disables.
   * @default 50
   */
  panicThresholdPercent?: number;
  /** Clock. @default Date.now */
  now?: () => number;
}

/** What kind of failure a try ended with. */
export type FailureKind = 'connect' | 'timeout' | 'status';

/** Tracks failures per endpoint and decides ejections. */
export class OutlierDetector {
  readonly consecutiveFailures: number;
  readonly consecutiveConnectFailures: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  readonly maxEjectionPercent: number;
  readonly panicThresholdPercent: number;
  readonly now: () => number;

  constructor(options: OutlierOptions = {}) {
    this.consecutiveFailures = positiveInt('outlier.consecutiveFailures', options.consecutiveFailures ?? 5);
    this.consecutiveConnectFailures = positiveInt(
      'outlier.consecutiveConnectFailures',
      options.consecutiveConnectFailures ?? 3,
    );
    this.baseEjectionMs = nonNegative('outlier.baseEjectionMs', options.baseEjectionMs ?? 30_000);
    this.maxEjectionMs = nonNegative('outlier.maxEjectionMs', options.maxEjectionMs ?? 300_000);
    this.maxEjectionPercent = percent('outlier.maxEjectionPercent', options.maxEjectionPercent ?? 50);
    this.panicThresholdPercent = percent(
      'outlier.panicThresholdPercent',
      options.panicThresholdPercent ?? 50,
    );
    this.now = options.now ?? Date.now;
  }

  /** A success resets the streak. */
  success(e: Endpoint): void {
    e.consecutiveFailures = 0;
  }

  /**
   * Records a failure; returns true when it ejected the endpoint. `set` is every endpoint of the service,
   * used for the ejection cap.
   */
  failure(e: Endpoint, kind: FailureKind, set: readonly Endpoint[]): boolean {
    e.consecutiveFailures++;
    const now = this.now();
    if (e.ejectedUntil > now) return false;
    const threshold = kind === 'connect' ? this.consecutiveConnectFailures : this.consecutiveFailures;
    if (e.consecutiveFailures < threshold) return false;
    let ejected = 0;
    for (const x of set) if (x.ejectedUntil > now) ejected++;
    const cap = Math.max(1, Math.floor((set.length * this.maxEjectionPercent) / 100));
    if (this.maxEjectionPercent === 0 || ejected + 1 > cap) return false;
    e.timesEjected++;
    e.ejectedUntil = now + Math.min(this.maxEjectionMs, this.baseEjectionMs * e.timesEjected);
    e.consecutiveFailures = 0;
    return true;
  }
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1)
    throw phareError('PHARE_ERR_INVALID_ARGUMENT', `${name}: expected an integer >= 1, got ${v}`);
  return v;
}
function nonNegative(name: string, v: number): number {
  if (!Number.isFinite(v) || v < 0)
    throw phareError('PHARE_ERR_INVALID_ARGUMENT', `${name}: expected a number >= 0, got ${v}`);
  return v;
}
function percent(name: string, v: number): number {
  if (!Number.isFinite(v) || v < 0 || v > 100)
    throw phareError('PHARE_ERR_INVALID_ARGUMENT', `${name}: expected 0-100, got ${v}`);
  return v;
}
