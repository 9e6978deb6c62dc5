/**
 * `weighted`: random choice proportional to Consul `Weights` — `Passing` for passing instances, `Warning` for
 * warning ones (what Consul's DNS does with SRV weights; Consul's documentation, agent service definition).
 */
import type { Balancer, BalancerFactory } from './types.ts';

/**
 * Weighted random by Consul Weights (an instance with weight 0 gets no traffic unless all are 0).
 *
 * @example
 * // register with Weights: { Passing: 3, Warning: 1 } for a bigger machine
 * createServiceClient({ discovery, balancer: weighted });
 */
export const weighted: BalancerFactory = (): Balancer => ({
  name: 'weighted',
  pick(c) {
    let total = 0;
    for (const e of c) total += weightOf(e.instance);
    if (total <= 0) return c[Math.floor(Math.random() * c.length)];
    let r = Math.random() * total;
    for (const e of c) {
      r -= weightOf(e.instance);
      if (r < 0) return e;
    }
    return c[c.length - 1];
  },
});

function weightOf(i: { status: string; weights: { passing: number; warning: number } }): number {
  const w = i.status === 'warning' ? i.weights.warning : i.status === 'passing' ? i.weights.passing : 0;
  return Number.isFinite(w) && w > 0 ? w : 0;
}
