/** `first`: always the first candidate (active/standby setups; ordered by the source). */
import type { Balancer, BalancerFactory } from './types.ts';

/**
 * The first candidate; the next one takes over when it is ejected or excluded by a retry.
 *
 * @example
 * createServiceClient({ discovery, balancer: first });
 */
export const first: BalancerFactory = (): Balancer => ({ name: 'first', pick: (c) => c[0] });
