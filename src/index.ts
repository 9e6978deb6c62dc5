/**
 * `phare`: register, discover and call services by name. Small and explicit on purpose — a test snapshots
 * these exports.
 *
 * @example
 * import { createDiscovery, createServiceClient, registerService } from 'phare';
 */
// Checks the Node.js version before anything else loads (see node-check.ts).
import './node-check.ts';

export { PhareError, type PhareErrorCode } from './api/index.ts';
// Registry client
export {
  type ConsulClient,
  type ConsulClientOptions,
  createConsulClient,
  resolveAgentAddress,
  type Watch,
  type WatchOptions,
  watch,
} from './client/api/index.ts';
// Balancing
export {
  type Balancer,
  type BalancerFactory,
  type Endpoint,
  first,
  leastRequest,
  leastRequestWith,
  type OutlierOptions,
  type PeakEwmaOptions,
  peakEwma,
  peakEwmaWith,
  random,
  roundRobin,
  weighted,
} from './client/balancer/index.ts';
// Service HTTP client
export type { ClientClock } from './client/clock.ts';
// Discovery
export {
  consulResolver,
  createDiscovery,
  type Discovery,
  type DiscoveryChange,
  type DiscoveryOptions,
  type DiscoveryStaleness,
  dnsResolver,
  fallback,
  type Instance,
  type InstancesOptions,
  type Resolver,
  type ResolverUpdate,
  type ServiceSet,
  staticResolver,
} from './client/discovery/index.ts';
export {
  type BreakerOptions,
  createServiceClient,
  DEADLINE_HEADER,
  type HedgeOptions,
  type RetryBudgetOptions,
  type RetryOptions,
  type ServiceClient,
  type ServiceClientHooks,
  type ServiceClientOptions,
  type ServiceRequestOptions,
  type ServiceResponse,
} from './client/http/index.ts';
// Registration lifecycle
// (graceful shutdown is phare/health's createGracefulShutdown, with registration.deregister as a
// beforeShutdown step)
export {
  type RegisterServiceOptions,
  type Registration,
  registerService,
} from './client/registration/index.ts';
