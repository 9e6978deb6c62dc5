/**
 * `peakEwma`: latency-aware balancing (Finagle's and Linkerd's "peak EWMA"). Each instance keeps an
 * exponentially weighted moving average of its latency that jumps up at once to a slower answer ("peak")
 * and decays towards faster ones — and, read at pick time, towards 0 while no answer comes — with time
 * constant `decayMs`; a pick compares two random candidates by
 * `latency × (in flight + 1)` and takes the cheaper. An instance that slows down loses traffic within a few
 * answers, before outlier ejection (which needs failures) would notice anything; an instance never
 * measured costs nothing extra, so new instances get tried.
 */
import { phareError } from '../../api/index.ts';
import type { Balancer, BalancerContext, BalancerFactory, Endpoint } from './types.ts';

/** Options of {@link peakEwmaWith}. */
export interface PeakEwmaOptions {
  /** Time constant of the decay in ms: older answers weigh e^(-Δt/decayMs). @default 10000 */
  decayMs?: number;
  /** Latency penalty added for a failed try, in ms, so a failing-fast instance does not look fast. @default 1000 */
  failurePenaltyMs?: number;
}

/**
 * Peak EWMA with configurable decay.
 *
 * @example
 * createServiceClient({ discovery, balancer: peakEwmaWith({ decayMs: 5_000 }) });
 */
export function peakEwmaWith(options: PeakEwmaOptions = {}): BalancerFactory {
  const decayMs = options.decayMs ?? 10_000;
  const penalty = options.failurePenaltyMs ?? 1_000;
  if (!(decayMs > 0))
    throw phareError('PHARE_ERR_INVALID_ARGUMENT', `peakEwma.decayMs: expected > 0, got ${decayMs}`);
  if (!(penalty >= 0))
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `peakEwma.failurePenaltyMs: expected >= 0, got ${penalty}`,
    );
  return (context?: BalancerContext): Balancer => {
    const now = context?.now ?? Date.now;
    // Read as Finagle reads it: the estimate keeps decaying towards 0 while no answer comes, so an instance
    // that was slow once and then got no traffic is probed again later.
    const cost = (e: Endpoint, t: number) =>
      e.latencyMs * Math.exp(-Math.max(0, t - e.latencyAt) / decayMs) * (e.active + 1);
    return {
      name: 'peakEwma',
      pick(c) {
        const n = c.length;
        if (n === 1) return c[0];
        // Two distinct random candidates (P2C), the cheaper wins; an unmeasured one costs 0 and is tried.
        const i = Math.floor(Math.random() * n);
        let j = Math.floor(Math.random() * (n - 1));
        if (j >= i) j++;
        const a = c[i] as Endpoint;
        const b = c[j] as Endpoint;
        const t = now();
        return cost(b, t) < cost(a, t) ? b : a;
      },
      observe(e, latencyMs, ok) {
        const rtt = ok ? latencyMs : latencyMs + penalty;
        const t = now();
        if (e.latencyAt === 0 || rtt > e.latencyMs) {
          e.latencyMs = rtt; // the peak: a slower answer counts at once
        } else {
          const w = Math.exp(-Math.max(0, t - e.latencyAt) / decayMs);
          e.latencyMs = e.latencyMs * w + rtt * (1 - w);
        }
        e.latencyAt = t;
      },
    };
  };
}

/**
 * Peak EWMA with the defaults.
 *
 * @example
 * createServiceClient({ discovery, balancer: peakEwma, hedge: true });
 */
export const peakEwma: BalancerFactory = peakEwmaWith();
