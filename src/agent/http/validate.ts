/**
 * Semantic validation of decoded bodies, with Consul's texts where Consul has one (consul-api.md §3.1–§3.3).
 * Everything is checked before anything is applied, so a bad request never leaves partial state.
 */
import { isIP } from 'node:net';
import {
  type CheckStatus,
  formatDuration,
  MAX_TIMER_DURATION_MS,
  type ServiceAddress,
} from '../../api/index.ts';
import type { CheckDefinition, CheckInput, ServiceInput } from '../catalog/index.ts';
import type { CatalogRegisterBody, CheckBody, ServiceBody } from './decode.ts';
import { HttpError } from './errors.ts';

/** Limits that depend on agent config. */
export interface ValidationLimits {
  /** Interval floor; smaller positive intervals are raised to it, as Consul does. */
  minCheckIntervalMs: number;
  /** DeregisterCriticalServiceAfter floor. */
  minDeregisterAfterMs: number;
}

const STATUSES: readonly string[] = ['passing', 'warning', 'critical'];
const UNSUPPORTED_CHECK_FIELDS = [
  'GRPC',
  'UDP',
  'H2PING',
  'Args',
  'ScriptArgs',
  'Script',
  'Shell',
  'DockerContainerID',
  'OSService',
  'AliasNode',
  'AliasService',
] as const;
const DEFAULT_TIMEOUT_MS = 10_000;
const OUTPUT_MAX = 4096;

const bad = (msg: string) => new HttpError(400, msg);

/** Validates Consul metadata (service or node Meta). */
export function validateMeta(meta: Record<string, string>, what: 'Service' | 'Node'): void {
  const entries = Object.entries(meta);
  const prefix = what === 'Service' ? 'Invalid Service Meta' : 'Invalid Node Meta';
  if (entries.length > 64)
    throw bad(`${prefix}: ${what} metadata cannot contain more than 64 key/value pairs`);
  for (const [k, v] of entries) {
    const pair = `Couldn't load metadata pair ('${k}', '${v}')`;
    if (k === '') throw bad(`${prefix}: ${pair}: Key cannot be blank`);
    if (!/^[a-zA-Z0-9_-]+$/.test(k)) throw bad(`${prefix}: ${pair}: Key contains invalid characters`);
    if (k.length > 128) throw bad(`${prefix}: ${pair}: Key is too long (limit: 128 characters)`);
    if (k.startsWith('consul-') && !(what === 'Node' && k === 'consul-network-segment')) {
      throw bad(`${prefix}: ${pair}: Key prefix 'consul-' is reserved for internal use`);
    }
    if (v.length > 512) throw bad(`${prefix}: ${pair}: Value is too long (limit: 512 characters)`);
  }
}

function validatePort(port: number, field: string): number {
  if (port < 0 || port > 65535) throw bad(`Invalid ${field}: ${port} is outside 0-65535`);
  return port;
}

/**
 * Turns a decoded service definition into catalog input: defaults (ID = Name, Weights {1,1}), derived
 * TaggedAddresses, and its checks with Consul's IDs (`service:<id>`, or `service:<id>:<n>` for several).
 */
export function serviceFromBody(
  body: ServiceBody,
  limits: ValidationLimits,
  options: { catalog?: boolean } = {},
): { service: ServiceInput; checks: CheckInput[] } {
  const name = (body.Name ?? body.Service ?? '').trim();
  if (name === '') throw bad('Missing service name');
  const id = body.ID ?? name;
  if (id.trim() === '') throw bad('Missing service ID');
  if (/[/\\?#%]/.test(id) && !options.catalog) {
    // IDs are URL path segments in agent/service/deregister/:id; these characters make them unaddressable
    throw bad(`Invalid service ID ${JSON.stringify(id)}: it must not contain "/", "\\", "?", "#" or "%"`);
  }
  const address = body.Address ?? '';
  if (address === '0.0.0.0' || address === '::' || address === '[::]') throw bad('Invalid service address');
  const port = validatePort(body.Port ?? 0, 'service Port');
  const meta = body.Meta ?? {};
  validateMeta(meta, 'Service');
  const weights = body.Weights ?? { Passing: 1, Warning: 1 };
  if (weights.Passing < 1) throw bad('Invalid Weights: Passing must be greater than 0');
  if (weights.Warning < 0) throw bad('Invalid Weights: Warning must be greater or equal than 0');
  if (weights.Passing > 65535 || weights.Warning > 65535)
    throw bad('Invalid Weights: DNS Weight must be between 0 and 65535');
  const kind = body.Kind ?? '';
  if (kind !== '')
    throw bad(
      `Invalid service Kind ${JSON.stringify(kind)}: Phare registers typical services only (Kind "")`,
    );

  let tagged: Record<string, ServiceAddress> | undefined;
  if (body.TaggedAddresses && Object.keys(body.TaggedAddresses).length > 0) {
    tagged = {};
    for (const [k, v] of Object.entries(body.TaggedAddresses)) {
      validatePort(v.Port, `TaggedAddresses.${k}.Port`);
      if (k.endsWith('_ipv4') && isIP(v.Address) !== 4) {
        throw new HttpError(500, `Service tagged address ${JSON.stringify(k)} must be a valid ipv4 address`);
      }
      if (k.endsWith('_ipv6') && isIP(v.Address) !== 6) {
        throw new HttpError(500, `Service tagged address ${JSON.stringify(k)} must be a valid ipv6 address`);
      }
      tagged[k] = { Address: v.Address, Port: v.Port };
    }
  }
  // Consul fills lan/wan ipv4|ipv6 from an IP literal Address (agent.go addServiceInternal).
  const fam = isIP(address);
  if (fam !== 0) {
    tagged ??= {};
    const suffix = fam === 4 ? 'ipv4' : 'ipv6';
    tagged[`lan_${suffix}`] ??= { Address: address, Port: port };
    tagged[`wan_${suffix}`] ??= { Address: address, Port: port };
  }

  const service: ServiceInput = {
    id,
    name,
    kind: '',
    tags: body.Tags ?? [],
    address,
    port,
    meta,
    weights: { Passing: weights.Passing, Warning: weights.Warning },
    enableTagOverride: body.EnableTagOverride ?? false,
  };
  if (tagged) service.taggedAddresses = tagged;

  const bodies: CheckBody[] = [];
  if (body.Check) bodies.push(body.Check);
  if (body.Checks) bodies.push(...body.Checks);
  const checks: CheckInput[] = [];
  const seen = new Set<string>();
  bodies.forEach((c, i) => {
    const checkId = c.CheckID || c.ID || (bodies.length > 1 ? `service:${id}:${i + 1}` : `service:${id}`);
    if (seen.has(checkId)) throw bad(`Invalid check: duplicate CheckID ${JSON.stringify(checkId)}`);
    seen.add(checkId);
    checks.push(
      checkFromBody(c, limits, {
        checkId,
        name: c.Name || `Service '${name}' check`,
        serviceId: id,
        badStatus: (s) => `Status for checks must 'passing', 'warning', 'critical', got ${JSON.stringify(s)}`,
      }),
    );
  });
  return { service, checks };
}

/** Validates one check definition and resolves its type and defaults. */
export function checkFromBody(
  c: CheckBody,
  limits: ValidationLimits,
  ctx: {
    checkId: string;
    name: string;
    serviceId: string;
    badStatus: (s: string) => string;
    catalog?: boolean;
  },
): CheckInput {
  for (const f of UNSUPPORTED_CHECK_FIELDS) {
    if (c[f] !== undefined) {
      throw bad(`Invalid check: ${f} checks are not supported by Phare; use an HTTP, TCP or TTL check`);
    }
  }
  let status: CheckStatus | undefined;
  if (c.Status !== undefined && c.Status !== '') {
    if (!STATUSES.includes(c.Status)) throw bad(ctx.badStatus(c.Status));
    status = c.Status as CheckStatus;
  }
  const def = definitionFromBody(c, limits, ctx.catalog === true);
  const input: CheckInput = {
    checkId: ctx.checkId,
    name: ctx.name,
    notes: c.Notes ?? '',
    serviceId: ctx.serviceId,
    def,
  };
  if (status) input.status = status;
  if (c.Output !== undefined) input.output = c.Output;
  return input;
}

/** Timer-driven durations past Node's timer limit would fire at once (issue 11 §8): a 400 naming the field. */
function checkDurations(c: CheckBody): void {
  for (const field of ['TTL', 'Interval', 'Timeout', 'DeregisterCriticalServiceAfter'] as const) {
    const v = c[field];
    if (v !== undefined && v > MAX_TIMER_DURATION_MS) {
      throw bad(
        `Invalid check: ${field} must be at most ${formatDuration(MAX_TIMER_DURATION_MS)} (24.8 days), got ${formatDuration(v)}`,
      );
    }
  }
}

function definitionFromBody(c: CheckBody, limits: ValidationLimits, catalog: boolean): CheckDefinition {
  checkDurations(c);
  const kinds = [c.HTTP ? 'HTTP' : '', c.TCP ? 'TCP' : '', c.TTL !== undefined ? 'TTL' : ''].filter(Boolean);
  if (c.Interval !== undefined && c.TTL !== undefined)
    throw bad('Invalid check: Interval and TTL cannot both be specified');
  if (kinds.length > 1)
    throw bad(`Invalid check: only one of HTTP, TCP or TTL may be set, got ${kinds.join(' and ')}`);
  const successBeforePassing = nonNegative(c.SuccessBeforePassing, 'SuccessBeforePassing');
  const failuresBeforeCritical = nonNegative(c.FailuresBeforeCritical, 'FailuresBeforeCritical');
  const failuresBeforeWarning =
    c.FailuresBeforeWarning === undefined
      ? failuresBeforeCritical
      : nonNegative(c.FailuresBeforeWarning, 'FailuresBeforeWarning');
  if (failuresBeforeWarning > failuresBeforeCritical) {
    throw bad("Invalid check: FailuresBeforeWarning can't be higher than FailuresBeforeCritical");
  }
  if (c.OutputMaxSize !== undefined && c.OutputMaxSize < 0)
    throw bad('Invalid check: MaxOutputMaxSize must be positive');
  const outputMaxSize = Math.min(c.OutputMaxSize || OUTPUT_MAX, OUTPUT_MAX);
  const base = { successBeforePassing, failuresBeforeWarning, failuresBeforeCritical, outputMaxSize };
  let deregisterCriticalServiceAfterMs: number | undefined;
  if (c.DeregisterCriticalServiceAfter !== undefined && c.DeregisterCriticalServiceAfter > 0) {
    deregisterCriticalServiceAfterMs = Math.max(
      c.DeregisterCriticalServiceAfter,
      limits.minDeregisterAfterMs,
    );
  }
  const withReap = <T extends object>(d: T) =>
    deregisterCriticalServiceAfterMs === undefined ? d : { ...d, deregisterCriticalServiceAfterMs };

  if (c.Timeout !== undefined && c.Timeout < 0) throw bad('Invalid check: Timeout must be >= 0');
  const timeoutMs = c.Timeout && c.Timeout > 0 ? c.Timeout : DEFAULT_TIMEOUT_MS;

  if (c.HTTP || c.TCP) {
    if (c.Interval === undefined || c.Interval <= 0) {
      if (catalog) return withReap({ type: '' as const, ...base });
      throw bad('Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks');
    }
    // Consul raises intervals below its minimum (1 s) to the minimum and logs a warning; so do we.
    const intervalMs = Math.max(c.Interval, limits.minCheckIntervalMs);
    if (c.HTTP) {
      let url: URL;
      try {
        url = new URL(c.HTTP);
      } catch {
        throw bad(`Invalid check: HTTP must be an http:// or https:// URL, got ${JSON.stringify(c.HTTP)}`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw bad(`Invalid check: HTTP must be an http:// or https:// URL, got ${JSON.stringify(c.HTTP)}`);
      }
      const method = (c.Method || 'GET').toUpperCase();
      if (!/^[A-Z]+$/.test(method))
        throw bad(`Invalid check: Method ${JSON.stringify(c.Method)} is not an HTTP method`);
      const d: CheckDefinition = { type: 'http', http: c.HTTP, method, intervalMs, timeoutMs, ...base };
      if (c.Header) d.header = c.Header;
      if (c.Body !== undefined) d.body = c.Body;
      if (c.TLSSkipVerify) d.tlsSkipVerify = true;
      if (c.TLSServerName) d.tlsServerName = c.TLSServerName;
      if (c.DisableRedirects) d.disableRedirects = true;
      return withReap(d);
    }
    const tcp = c.TCP as string;
    const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(tcp);
    if (!m || Number(m[3]) > 65535)
      throw bad(`Invalid check: TCP must be host:port, got ${JSON.stringify(tcp)}`);
    return withReap({ type: 'tcp', tcp, intervalMs, timeoutMs, ...base });
  }
  if (c.TTL !== undefined) {
    if (c.TTL <= 0) throw bad('Invalid check: TTL must be > 0 for TTL checks');
    return withReap({ type: 'ttl', ttlMs: c.TTL, ...base });
  }
  if (catalog) return withReap({ type: '', ...base });
  throw bad('Invalid check: TTL must be > 0 for TTL checks (a check needs one of HTTP, TCP or TTL)');
}

function nonNegative(v: number | undefined, field: string): number {
  if (v === undefined) return 0;
  if (v < 0) throw bad(`Invalid check: ${field} must be >= 0, got ${v}`);
  return v;
}

/** Validates a `catalog/register` body into catalog input. Consul answers these errors with 500 (RPC errors). */
export function catalogRegisterFromBody(body: CatalogRegisterBody, limits: ValidationLimits) {
  const node = (body.Node ?? '').trim();
  if (node === '') throw new HttpError(500, 'Must provide node');
  const address = body.Address ?? '';
  if (address === '' && !body.SkipNodeUpdate)
    throw new HttpError(500, 'Must provide address if SkipNodeUpdate is not set');
  const meta = body.NodeMeta ?? {};
  validateMeta(meta, 'Node');
  let service: ServiceInput | undefined;
  if (body.Service) {
    service = serviceFromBody(body.Service, limits, { catalog: true }).service;
  }
  const checkBodies = [...(body.Check ? [body.Check] : []), ...(body.Checks ?? [])];
  const checks = checkBodies.map((c) => {
    const defn = c.Definition ?? {};
    const name = c.Name ?? '';
    if (name === '' && !c.CheckID) throw new HttpError(500, 'Must provide check name');
    const merged: CheckBody = {
      ...c,
      HTTP: c.HTTP ?? defn.HTTP,
      TCP: c.TCP ?? defn.TCP,
      Interval: c.Interval ?? defn.Interval,
      Timeout: c.Timeout ?? defn.Timeout,
      DeregisterCriticalServiceAfter: c.DeregisterCriticalServiceAfter ?? defn.DeregisterCriticalServiceAfter,
      Definition: undefined,
    };
    const input = checkFromBody(merged, limits, {
      checkId: c.CheckID || c.ID || name,
      name: name || (c.CheckID as string),
      serviceId: c.ServiceID ?? '',
      badStatus: () => 'Bad check status',
      catalog: true,
    });
    // Catalog checks are not run by this agent: keep what was said for display, run nothing.
    input.def = { ...input.def, type: '' };
    return { ...input, serviceId: c.ServiceID ?? '' };
  });
  return {
    node: {
      id: body.ID ?? '',
      node,
      address,
      taggedAddresses: body.TaggedAddresses ?? (address ? { lan: address, wan: address } : {}),
      meta,
    },
    service,
    checks,
  };
}
