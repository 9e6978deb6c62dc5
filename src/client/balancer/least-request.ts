/**
 * `leastRequest` (the default): power of two choices — pick two candidates at random and send to the one
 * with fewer requests in flight (Mitzenmacher; Envoy LEAST_REQUEST with choice_count 2; Finagle's P2C). It
 * is nearly as good as scanning all instances, costs O(1), and steers traffic away from a slow instance
 * because its requests pile up.
 */
import { phareError } from '../../api/index.ts';
import type { Balancer, BalancerFactory, Endpoint } from './types.ts';

/** Options of {@link leastRequestWith}. */
export interface LeastRequestOptions {
  /** Random candidates compared per pick. @default 2 */
  choiceCount?: number;
}

/**
 * Least request with configurable choice count.
 *
 * @example
 * createServiceClient({ discovery, balancer: leastRequestWith({ choiceCount: 3 }) });
 */
export function leastRequestWith(options: LeastRequestOptions = {}): BalancerFactory {
  const k = options.choiceCount ?? 2;
  if (!Number.isInteger(k) || k < 1)
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `leastRequest.choiceCount: expected an integer >= 1, got ${k}`,
    );
  return (): Balancer => ({
    name: 'leastRequest',
    pick(c) {
      const n = c.length;
      if (n === 1) return c[0];
      let best: Endpoint | undefined;
      if (n <= k) {
        // Few candidates: scan them all, starting at a random one so ties spread.
        const start = Math.floor(Math.random() * n);
        for (let i = 0; i < n; i++) {
          const e = c[(start + i) % n] as Endpoint;
          if (!best || e.active < best.active) best = e;
        }
        return best;
      }
      if (k === 2) {
        // Two distinct candidates: drawing with replacement would hand a slow instance both "choices" 1/n² of the time.
        const i = Math.floor(Math.random() * n);
        let j = Math.floor(Math.random() * (n - 1));
        if (j >= i) j++;
        const a = c[i] as Endpoint;
        const b = c[j] as Endpoint;
        return b.active < a.active ? b : a;
      }
      for (let i = 0; i < k; i++) {
        const e = c[Math.floor(Math.random() * n)] as Endpoint;
        if (!best || e.active < best.active) best = e;
      }
      return best;
    },
  });
}

/**
 * P2C least request, the default strategy.
 *
 * @example
 * createServiceClient({ discovery, balancer: leastRequest });
 */
export const leastRequest: BalancerFactory = leastRequestWith();
