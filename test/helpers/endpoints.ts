/** Instances and endpoints for SDK unit tests (127.0.0.1:<port>, passing, weight 1 unless told). */
import { type Endpoint, newEndpoint } from '../../src/client/balancer/types.ts';
import { type Instance, makeInstance } from '../../src/client/discovery/types.ts';

/**
 * @example
 * const i = testInstance(8080, { status: 'critical' });
 */
export function testInstance(
  port: number,
  o: { service?: string; weight?: number; status?: Instance['status'] } = {},
): Instance {
  return makeInstance({
    id: `i-${port}`,
    service: o.service ?? 's',
    address: '127.0.0.1',
    port,
    tags: [],
    meta: {},
    weights: { passing: o.weight ?? 1, warning: 1 },
    status: o.status ?? 'passing',
  });
}

/** A fresh endpoint for {@link testInstance}. */
export function testEndpoint(port: number, o: Parameters<typeof testInstance>[1] = {}): Endpoint {
  return newEndpoint(testInstance(port, o));
}
