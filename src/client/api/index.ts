export type { AgentApi, AgentServiceHealth } from './agent.ts';
export type { CatalogApi, CatalogRegistration } from './catalog.ts';
export { type ConsulClient, createConsulClient } from './client.ts';
export type { HealthApi } from './health.ts';
export type { KvApi, KvPair, KvPutOptions } from './kv.ts';
export type { StatusApi } from './status.ts';
export {
  type CallOptions,
  type ClientTlsOptions,
  type ConsulClientOptions,
  type Indexed,
  type QueryOptions,
  resolveAgentAddress,
} from './transport.ts';
export { type Watch, type WatchFetch, type WatchOptions, watch } from './watch.ts';
