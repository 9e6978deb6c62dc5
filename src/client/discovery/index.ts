export { type ConsulResolverOptions, consulResolver, instanceFromEntry } from './consul.ts';
export {
  createDiscovery,
  type Discovery,
  type DiscoveryChange,
  type DiscoveryEvents,
  type DiscoveryOptions,
  type DiscoveryStaleness,
  type InstancesOptions,
  type ServiceSet,
} from './discovery.ts';
export { type DnsResolverOptions, dnsResolver } from './dns.ts';
export { fallback } from './fallback.ts';
export {
  type StaticEntry,
  type StaticResolver,
  type StaticResolverOptions,
  staticEnvName,
  staticResolver,
} from './static.ts';
export {
  baseUrl,
  type Instance,
  makeInstance,
  type ResolveQuery,
  type Resolver,
  type ResolverListener,
  type ResolverUpdate,
} from './types.ts';
