/** `random`: a uniform random candidate (the classic "registry lookup + random pick" wrapper). */
import type { Balancer, BalancerFactory } from './types.ts';

/**
 * Uniform random choice.
 *
 * @example
 * createServiceClient({ discovery, balancer: random });
 */
export const random: BalancerFactory = (): Balancer => ({
  name: 'random',
  pick: (c) => c[Math.floor(Math.random() * c.length)],
});
