/**
 * The catalog's own records. Adapters (HTTP, DNS) render them into Consul's wire shapes; the store
 * persists them as JSON.
 */
import type { CheckStatus, Locality, ServiceAddress, Weights } from '../../api/index.ts';

/** A node in the catalog (the agent's own, or one written through `catalog/register`). */
export interface NodeRecord {
  id: string;
  node: string;
  address: string;
  taggedAddresses: Record<string, string>;
  meta: Record<string, string>;
  locality?: Locality;
  createIndex: number;
  modifyIndex: number;
}

/** One service instance. */
export interface ServiceRecord {
  node: string;
  id: string;
  name: string;
  kind: string;
  tags: string[];
  address: string;
  port: number;
  /** Unix socket the instance listens on instead of Address:Port (Consul 1.10+). */
  socketPath?: string;
  meta: Record<string, string>;
  taggedAddresses?: Record<string, ServiceAddress>;
  weights: Weights;
  enableTagOverride: boolean;
  /** Consul 1.16+ Locality: stored and returned. */
  locality?: Locality;
  /** Connect proxy and Connect settings, kept as written and returned (Phare runs no service mesh). */
  proxy?: Record<string, unknown>;
  connect?: Record<string, unknown>;
  /** Registered through the agent API (owned by this agent) rather than `catalog/register`. */
  agent: boolean;
  createIndex: number;
  modifyIndex: number;
}

/** Kinds of check. `''` is a check nobody runs (maintenance, serfHealth, catalog-written checks). */
export type CheckType = 'http' | 'tcp' | 'ttl' | '';

/** How a check is run. Durations are milliseconds. */
export interface CheckDefinition {
  type: CheckType;
  http?: string;
  method?: string;
  header?: Record<string, string[]>;
  body?: string;
  tlsSkipVerify?: boolean;
  tlsServerName?: string;
  disableRedirects?: boolean;
  tcp?: string;
  ttlMs?: number;
  intervalMs?: number;
  timeoutMs?: number;
  deregisterCriticalServiceAfterMs?: number;
  successBeforePassing: number;
  failuresBeforeWarning: number;
  failuresBeforeCritical: number;
  outputMaxSize: number;
  /**
   * Definition fields of check kinds Phare does not run (gRPC, UDP, OSService, script, alias, TCP over TLS),
   * by their Consul wire names: stored as written on catalog checks and returned in `Definition`.
   */
  stored?: Record<string, unknown>;
  /** The `Type` a catalog registration wrote (Consul returns it as written). */
  declaredType?: string;
  /** `ExposedPort` as written (Consul's Connect expose feature). */
  exposedPort?: number;
}

/** One health check. */
export interface CheckRecord {
  node: string;
  checkId: string;
  name: string;
  status: CheckStatus;
  notes: string;
  output: string;
  serviceId: string;
  serviceName: string;
  def: CheckDefinition;
  /** Registered through the agent API (run by this agent). */
  agent: boolean;
  /** Epoch ms since when the check has been critical (for DeregisterCriticalServiceAfter). */
  criticalSince?: number;
  createIndex: number;
  modifyIndex: number;
}

/** What a service registration carries before the catalog stamps indexes on it. */
export type ServiceInput = Omit<ServiceRecord, 'createIndex' | 'modifyIndex' | 'node' | 'agent'>;

/** What a check registration carries before the catalog stamps indexes on it. */
export type CheckInput = Omit<
  CheckRecord,
  'createIndex' | 'modifyIndex' | 'node' | 'agent' | 'criticalSince' | 'serviceName' | 'output' | 'status'
> & { status?: CheckStatus; output?: string };

/** The worst of a set of statuses (critical > warning > passing). */
export function worstStatus(statuses: Iterable<CheckStatus>): CheckStatus {
  let worst: CheckStatus = 'passing';
  for (const s of statuses) {
    if (s === 'critical') return 'critical';
    if (s === 'warning') worst = 'warning';
  }
  return worst;
}

/** Key of a record inside its node (`node/id`), used by the store and the maps. */
export function recordKey(node: string, id: string): string {
  return `${node}\u0000${id}`;
}
