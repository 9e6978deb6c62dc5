export { type Candidates, type HealthFilter, type OnAllUnhealthy, ServiceEndpoints } from './endpoints.ts';
export { first } from './first.ts';
export { type LeastRequestOptions, leastRequest, leastRequestWith } from './least-request.ts';
export { type FailureKind, OutlierDetector, type OutlierOptions } from './outlier.ts';
export { type PeakEwmaOptions, peakEwma, peakEwmaWith } from './peak-ewma.ts';
export { random } from './random.ts';
export { roundRobin } from './round-robin.ts';
export {
  type Balancer,
  type BalancerContext,
  type BalancerFactory,
  type Endpoint,
  newEndpoint,
} from './types.ts';
export { weighted } from './weighted.ts';
