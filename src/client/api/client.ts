/** `createConsulClient()`: the typed registry client, one area per file. */
import { type AgentApi, agentApi } from './agent.ts';
import { type CatalogApi, catalogApi } from './catalog.ts';
import { type HealthApi, healthApi } from './health.ts';
import { type KvApi, kvApi } from './kv.ts';
import { type StatusApi, statusApi } from './status.ts';
import { type ConsulClientOptions, Transport } from './transport.ts';

/** The typed client of the Consul HTTP API subset Phare speaks; works against a real Consul as well. */
export interface ConsulClient {
  /** `http(s)://host:port` of the agent in use (with several, the one the client sticks to now). */
  readonly address: string;
  /** Every configured agent, in order. */
  readonly addresses: readonly string[];
  readonly agent: AgentApi;
  readonly catalog: CatalogApi;
  readonly health: HealthApi;
  readonly kv: KvApi;
  readonly status: StatusApi;
  /** Closes the keep-alive connections (aborts blocking queries). Idempotent. */
  close(): Promise<void>;
}

/**
 * Creates a registry client. The agent's address comes from options, else `PHARE_HTTP_ADDR`, else
 * `CONSUL_HTTP_ADDR`, else `CONSUL_HOST`/`CONSUL_PORT`, else `127.0.0.1:8500`; each may name several
 * agents (comma-separated), which the client fails over between.
 *
 * @example
 * const consul = createConsulClient({ address: '127.0.0.1:8500' });
 * const { value: entries, index } = await consul.health.service('web', { passing: true });
 * await consul.close();
 */
export function createConsulClient(options: ConsulClientOptions = {}): ConsulClient {
  const t = new Transport(options);
  return {
    get address() {
      return t.origin;
    },
    addresses: t.origins,
    agent: agentApi(t),
    catalog: catalogApi(t),
    health: healthApi(t),
    kv: kvApi(t),
    status: statusApi(t),
    close: () => t.close(),
  };
}
