/**
 * The catalog's own records. Adapters (HTTP, DNS) render them into Consul's wire shapes; the store
 * persists them as JSON.
 */
import type { CheckStatus, Locality, ServiceAddress, Weights } from '../../api/index.ts';
import { storeKey } from '../store/index.ts';

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

export { worstStatus } from '../../api/index.ts';

/** Key of a record inside its node (`node/id`, each part escaped: unambiguous), used by the store and the maps. */
export function recordKey(node: string, id: string): string {
  return storeKey(node, id);
}

/**
 * Position of the first control character (C0 with NUL, DEL, C1) in `s`, or -1. Names and IDs must have
 * none: they become store keys, DNS labels and URL path segments (issue 11 §4).
 *
 * @example
 * controlCharacterAt('web\u0000x'); // 3
 */
export function controlCharacterAt(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x1f || (c >= 0x7f && c <= 0x9f)) return i;
  }
  return -1;
}

const STATUSES = new Set(['passing', 'warning', 'critical']);

/**
 * What is wrong with a stored record, or undefined when it has the shape the catalog needs. The store calls
 * it on every row it loads (`Store.load({ check })`) so a bad row stops the start-up with its file, table
 * and key named, instead of crashing a read later.
 *
 * @example
 * rowProblem('services', { id: 'web' }); // 'field "node": expected a non-empty string, got undefined'
 */
export function rowProblem(table: 'nodes' | 'services' | 'checks', value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not an object';
  const v = value as Record<string, unknown>;
  type Kind = 'name' | 'string' | 'number' | 'boolean' | 'object' | 'tags' | 'status';
  const fields: Record<string, Kind> =
    table === 'nodes'
      ? { node: 'name', id: 'string', address: 'string', taggedAddresses: 'object', meta: 'object' }
      : table === 'services'
        ? {
            node: 'name',
            id: 'name',
            name: 'name',
            kind: 'string',
            tags: 'tags',
            address: 'string',
            port: 'number',
            meta: 'object',
            weights: 'object',
            enableTagOverride: 'boolean',
            agent: 'boolean',
          }
        : {
            node: 'name',
            checkId: 'name',
            name: 'string',
            status: 'status',
            notes: 'string',
            output: 'string',
            serviceId: 'string',
            serviceName: 'string',
            def: 'object',
            agent: 'boolean',
          };
  const all: Record<string, Kind> = { ...fields, createIndex: 'number', modifyIndex: 'number' };
  for (const [f, kind] of Object.entries(all)) {
    const x = v[f];
    const got = JSON.stringify(x) ?? 'undefined';
    switch (kind) {
      case 'name':
        if (typeof x !== 'string' || x === '') return `field "${f}": expected a non-empty string, got ${got}`;
        if (controlCharacterAt(x) >= 0)
          return `field "${f}" ${got} holds a control character (refused since key schema 2); delete the row`;
        break;
      case 'string':
        if (typeof x !== 'string') return `field "${f}": expected a string, got ${got}`;
        break;
      case 'number':
        if (typeof x !== 'number' || !Number.isFinite(x))
          return `field "${f}": expected a number, got ${got}`;
        break;
      case 'boolean':
        if (typeof x !== 'boolean') return `field "${f}": expected true or false, got ${got}`;
        break;
      case 'object':
        if (typeof x !== 'object' || x === null || Array.isArray(x))
          return `field "${f}": expected an object, got ${got}`;
        break;
      case 'tags':
        if (!Array.isArray(x) || x.some((t) => typeof t !== 'string'))
          return `field "${f}": expected a list of strings, got ${got}`;
        break;
      case 'status':
        if (typeof x !== 'string' || !STATUSES.has(x))
          return `field "${f}": expected passing, warning or critical, got ${got}`;
        break;
    }
  }
  return undefined;
}
