/**
 * Wire types of the Consul HTTP API subset Phare speaks, shared by the agent and the client.
 * Field names and order are Consul's (Consul docs, Agent HTTP API).
 */

/**
 * The Consul version whose HTTP API Phare mirrors: reported by `agent/self`, `agent/version` and in the
 * node's `consul-version` meta, as a Consul agent reports its own.
 */
export const CONSUL_VERSION = '1.20.1';

/** A health status. `maintenance` only appears as an aggregated status. */
export type CheckStatus = 'passing' | 'warning' | 'critical';

/** `{Passing, Warning}` weights; Consul uses them for DNS SRV weights. */
export interface Weights {
  Passing: number;
  Warning: number;
}

/** A tagged service address (`lan_ipv4`, `wan`, …). */
export interface ServiceAddress {
  Address: string;
  Port: number;
}

/** Where an instance runs (Consul 1.16+ `Locality`); stored and returned, not used for routing. */
export interface Locality {
  Region?: string;
  Zone?: string;
}

/** `GET /v1/agent/services` values and `GET /v1/agent/service/:id`. */
export interface AgentService {
  Kind?: string;
  ID: string;
  Service: string;
  Tags: string[];
  Meta: Record<string, string>;
  Port: number;
  Address: string;
  SocketPath?: string;
  TaggedAddresses?: Record<string, ServiceAddress>;
  Weights: Weights;
  EnableTagOverride: boolean;
  ContentHash?: string;
  Proxy?: Record<string, unknown>;
  Connect?: Record<string, unknown>;
  Datacenter: string;
  Locality?: Locality;
}

/** A node as `catalog/nodes` and `health/service` return it. */
export interface Node {
  ID: string;
  Node: string;
  Address: string;
  Datacenter: string;
  TaggedAddresses: Record<string, string>;
  Meta: Record<string, string>;
  Locality?: Locality;
  CreateIndex: number;
  ModifyIndex: number;
}

/** A service instance inside `health/service` entries and `catalog/node`. */
export interface NodeService {
  Kind?: string;
  ID: string;
  Service: string;
  Tags: string[];
  Address: string;
  TaggedAddresses?: Record<string, ServiceAddress>;
  Meta: Record<string, string>;
  Port?: number;
  SocketPath?: string;
  Weights: Weights;
  EnableTagOverride: boolean;
  Proxy: Record<string, unknown>;
  Connect: Record<string, unknown>;
  PeerName: string;
  Locality?: Locality;
  CreateIndex: number;
  ModifyIndex: number;
}

/** `GET /v1/catalog/service/:name` items. */
export interface CatalogService {
  ID: string;
  Node: string;
  Address: string;
  Datacenter: string;
  TaggedAddresses: Record<string, string>;
  NodeMeta: Record<string, string>;
  ServiceKind: string;
  ServiceID: string;
  ServiceName: string;
  ServiceTags: string[];
  ServiceAddress: string;
  ServiceTaggedAddresses?: Record<string, ServiceAddress>;
  ServiceWeights: Weights;
  ServiceMeta: Record<string, string>;
  ServicePort: number;
  ServiceSocketPath: string;
  ServiceEnableTagOverride: boolean;
  ServiceProxy: Record<string, unknown>;
  ServiceConnect: Record<string, unknown>;
  ServiceLocality: Locality | null;
  CreateIndex: number;
  ModifyIndex: number;
}

/** The definition echo inside a health check (all fields optional, Consul's `HealthCheckDefinition`). */
export interface HealthCheckDefinition {
  HTTP?: string;
  TLSServerName?: string;
  TLSSkipVerify?: boolean;
  Header?: Record<string, string[]>;
  Method?: string;
  Body?: string;
  TCP?: string;
  TCPUseTLS?: boolean;
  UDP?: string;
  GRPC?: string;
  GRPCUseTLS?: boolean;
  OSService?: string;
  Interval?: string;
  Timeout?: string;
  DeregisterCriticalServiceAfter?: string;
  TTL?: string;
  [field: string]: unknown;
}

/** A health check (`health/*`, `agent/checks` values). */
export interface HealthCheck {
  Node: string;
  CheckID: string;
  Name: string;
  Status: CheckStatus;
  Notes: string;
  Output: string;
  ServiceID: string;
  ServiceName: string;
  ServiceTags: string[];
  Type: string;
  Interval: string;
  Timeout: string;
  ExposedPort: number;
  Definition: HealthCheckDefinition;
  CreateIndex: number;
  ModifyIndex: number;
}

/** `GET /v1/health/service/:name` items. */
export interface ServiceEntry {
  Node: Node;
  Service: NodeService;
  Checks: HealthCheck[];
}

/** A check as written in a registration body (Consul's `CheckType`/`AgentServiceCheck`). */
export interface CheckDefinitionBody {
  CheckID?: string;
  ID?: string;
  Name?: string;
  Notes?: string;
  Status?: CheckStatus;
  ServiceID?: string;
  HTTP?: string;
  Method?: string;
  Header?: Record<string, string[]>;
  Body?: string;
  TLSSkipVerify?: boolean;
  TLSServerName?: string;
  DisableRedirects?: boolean;
  TCP?: string;
  TTL?: string;
  Interval?: string;
  Timeout?: string;
  DeregisterCriticalServiceAfter?: string;
  SuccessBeforePassing?: number;
  FailuresBeforeWarning?: number;
  FailuresBeforeCritical?: number;
  OutputMaxSize?: number;
}

/** Body of `PUT /v1/agent/service/register`. */
export interface ServiceRegistrationBody {
  Name: string;
  ID?: string;
  Tags?: string[];
  Address?: string;
  Port?: number;
  Meta?: Record<string, string>;
  TaggedAddresses?: Record<string, ServiceAddress>;
  Weights?: Weights;
  EnableTagOverride?: boolean;
  Check?: CheckDefinitionBody;
  Checks?: CheckDefinitionBody[];
}
