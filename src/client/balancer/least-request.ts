/**
 * `leastRequest` (the default): power of two choices — pick two candidates at random and send to the one
 * with fewer requests in flight (Mitzenmacher; Envoy LEAST_REQUEST with choice_count 2; Finagle's P2C). It
 * is nearly as good as scanning all instances, costs O(1), and steers traffic away from a slow instance
 * because its requests pile up.
 *
 * The `warm` endpoint (the one whose connection became free last) is one more choice, taken only when it
 * has **strictly fewer** requests in flight than the random choices' winner — a better pick by the same
 * criterion, so the in-flight balance is as tight as P2C's or tighter, and on a tie (a lone sequential
 * caller: everything at 0) the random choice stands, so traffic keeps spreading over every instance. What
 * it saves (BENCHMARKS.md, SDK round 2 stop 13): a connection freed in this event-loop turn is still awake
 * in undici; one idle past the turn has been unref'd with a keep-alive timer armed, and reusing it costs a
 * ref, a timer cleared and, after the answer, both again.
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
    pick(c, warm) {
      const best = choose(c);
      return warm !== undefined && warm !== best && warm.active < (best as Endpoint).active && isIn(c, warm)
        ? warm
        : best;
    },
  });
  function choose(c: readonly Endpoint[]): Endpoint | undefined {
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
  }
}

/** Longest candidate list searched for the warm endpoint (a linear scan; beyond it the hint is ignored). */
const WARM_SCAN = 64;

function isIn(c: readonly Endpoint[], e: Endpoint): boolean {
  if (c.length > WARM_SCAN) return false;
  for (let i = 0; i < c.length; i++) if (c[i] === e) return true;
  return false;
}

/**
 * P2C least request, the default strategy.
 *
 * @example
 * createServiceClient({ discovery, balancer: leastRequest });
 */
export const leastRequest: BalancerFactory = leastRequestWith();
