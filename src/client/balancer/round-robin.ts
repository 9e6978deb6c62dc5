/** `roundRobin`: each candidate in turn — what most hand-written wrappers and DNS clients do. */
import type { Balancer, BalancerFactory } from './types.ts';

/**
 * Round robin over the candidates.
 *
 * @example
 * createServiceClient({ discovery, balancer: roundRobin });
 */
export const roundRobin: BalancerFactory = (): Balancer => {
  let next = 0;
  return {
    name: 'roundRobin',
    pick(c) {
      next = (next + 1) % 1_000_000_007;
      return c[next % c.length];
    },
  };
};
