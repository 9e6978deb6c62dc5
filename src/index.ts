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
// Service HTTP client
export type { ClientClock } from './client/index.ts';
// Registry client
// Balancing
// Discovery
// Registration lifecycle
// (graceful shutdown is phare/health's createGracefulShutdown, with registration.deregister as a
// beforeShutdown step)
export {
  type Balancer,
  type BalancerFactory,
  type BreakerOptions,
  type ClientTlsOptions,
  type ConsulClient,
  type ConsulClientOptions,
  consulResolver,
  createConsulClient,
  createDiscovery,
  createServiceClient,
  DEADLINE_HEADER,
  type Discovery,
  type DiscoveryChange,
  type DiscoveryOptions,
  type DiscoveryStaleness,
  dnsResolver,
  type Endpoint,
  fallback,
  first,
  type HedgeOptions,
  type HttpCheckSpec,
  type Instance,
  type InstancesOptions,
  leastRequest,
  leastRequestWith,
  type OutlierOptions,
  type PeakEwmaOptions,
  peakEwma,
  peakEwmaWith,
  type RegisterServiceOptions,
  type Registration,
  type Resolver,
  type ResolverUpdate,
  type RetryBudgetOptions,
  type RetryOptions,
  random,
  registerService,
  resolveAgentAddress,
  roundRobin,
  type ServiceClient,
  type ServiceClientHooks,
  type ServiceClientOptions,
  type ServiceRequestOptions,
  type ServiceResponse,
  type ServiceSet,
  staticResolver,
  type TcpCheckSpec,
  type TtlCheckSpec,
  type Watch,
  type WatchOptions,
  watch,
  weighted,
} from './client/index.ts';
