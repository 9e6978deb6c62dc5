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

/** The fields {@link rowProblem} checks, per table, by kind. */
const ROW_FIELDS = {
  nodes: { node: 'name', id: 'string', address: 'string', taggedAddresses: 'object', meta: 'object' },
  services: {
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
  },
  checks: {
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
  },
} as const satisfies Record<
  'nodes' | 'services' | 'checks',
  Record<string, 'name' | 'string' | 'number' | 'boolean' | 'object' | 'tags' | 'status'>
>;

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
  const fields: Record<string, Kind> = ROW_FIELDS[table];
  for (const f in fields) {
    const problem = fieldProblem(f, fields[f] as Kind, v[f]);
    if (problem !== undefined) return problem;
  }
  return (
    fieldProblem('createIndex', 'number', v['createIndex']) ??
    fieldProblem('modifyIndex', 'number', v['modifyIndex'])
  );
}

/**
 * What is wrong with one field, or undefined. Runs for every row a shared store's watch delivers, so the
 * happy path only tests types; the value is rendered (JSON.stringify) only for the message of a bad one.
 */
function fieldProblem(
  f: string,
  kind: 'name' | 'string' | 'number' | 'boolean' | 'object' | 'tags' | 'status',
  x: unknown,
): string | undefined {
  const got = () => JSON.stringify(x) ?? 'undefined';
  switch (kind) {
    case 'name':
      if (typeof x !== 'string' || x === '') return `field "${f}": expected a non-empty string, got ${got()}`;
      if (controlCharacterAt(x) >= 0)
        return `field "${f}" ${got()} holds a control character (refused since key schema 2); delete the row`;
      return undefined;
    case 'string':
      return typeof x === 'string' ? undefined : `field "${f}": expected a string, got ${got()}`;
    case 'number':
      return typeof x === 'number' && Number.isFinite(x)
        ? undefined
        : `field "${f}": expected a number, got ${got()}`;
    case 'boolean':
      return typeof x === 'boolean' ? undefined : `field "${f}": expected true or false, got ${got()}`;
    case 'object':
      return typeof x === 'object' && x !== null && !Array.isArray(x)
        ? undefined
        : `field "${f}": expected an object, got ${got()}`;
    case 'tags':
      if (Array.isArray(x)) {
        let ok = true;
        for (const t of x) if (typeof t !== 'string') ok = false;
        if (ok) return undefined;
      }
      return `field "${f}": expected a list of strings, got ${got()}`;
    case 'status':
      return typeof x === 'string' && STATUSES.has(x)
        ? undefined
        : `field "${f}": expected passing, warning or critical, got ${got()}`;
  }
}
