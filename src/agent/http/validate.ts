/**
 * Semantic validation of decoded bodies, with Consul's texts where Consul has one (Consul docs, Agent Service API).
 * Everything is checked before anything is applied, so a bad request never leaves partial state.
 */
import { isIP } from 'node:net';
import {
  type CheckStatus,
  formatDuration,
  type Locality,
  MAX_TIMER_DURATION_MS,
  type ServiceAddress,
  type Weights,
} from '../../api/index.ts';
import {
  type CheckDefinition,
  type CheckInput,
  controlCharacterAt,
  type ServiceInput,
} from '../catalog/index.ts';
import type {
  CatalogCheckBody,
  CatalogRegisterBody,
  CheckBody,
  DefinitionBody,
  ServiceBody,
} from './decode.ts';
import { HttpError } from './errors.ts';

/** Limits that depend on agent config. */
export interface ValidationLimits {
  /** Interval floor; smaller positive intervals are raised to it, as Consul does. */
  minCheckIntervalMs: number;
  /** DeregisterCriticalServiceAfter floor. */
  minDeregisterAfterMs: number;
}

const STATUSES: readonly string[] = ['passing', 'warning', 'critical'];
/** Check kinds Phare does not run on the agent, by the field that selects them. */
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
/**
 * Definition fields Phare stores and returns but does not act on: the selectors above plus their TLS
 * switches. Consul's Go client marshals several of them always (`"UDP":""`, `"TCPUseTLS":false`), so an
 * empty value means "not set".
 */
const STORED_DEFINITION_FIELDS = [
  ...UNSUPPORTED_CHECK_FIELDS.filter((f) => f !== 'Args' && f !== 'Script'),
  'TCPUseTLS',
  'GRPCUseTLS',
  'H2PingUseTLS',
  'SessionName',
] as const;
/** Service kinds Consul knows (`api.ServiceKind`); `""` is a typical service. */
const KINDS: readonly string[] = [
  '',
  'connect-proxy',
  'mesh-gateway',
  'terminating-gateway',
  'ingress-gateway',
  'api-gateway',
];
const DEFAULT_TIMEOUT_MS = 10_000;
const OUTPUT_MAX = 4096;

const bad = (msg: string) => new HttpError(400, msg);

/** Whether a decoded field carries a value: Go's zero values (`""`, `false`, `[]`, null) do not. */
function isSet(v: unknown): boolean {
  if (v === undefined || v === null || v === '' || v === false) return false;
  if (Array.isArray(v)) return v.length > 0;
  return true;
}

/** The stored-not-run definition fields that carry a value, by wire name; undefined when none do. */
function storedFields(src: Record<string, unknown>): Record<string, unknown> | undefined {
  let out: Record<string, unknown> | undefined;
  for (const f of STORED_DEFINITION_FIELDS) {
    if (isSet(src[f])) {
      out ??= {};
      out[f] = src[f];
    }
  }
  return out;
}

/**
 * Names and IDs become store keys, DNS labels and URL path segments: a control character in one (issue 11
 * §4: a NUL once let node `n1\0x` + service `y` overwrite node `n1`'s service `x\0y`) is refused with a 400
 * naming the field. Consul has no such check; it does not need one, its keys are radix-tree paths.
 *
 * @example
 * noControlCharacters('web\u0000x', 'service Name'); // throws 400 Invalid service Name "web\u0000x": …
 */
export function noControlCharacters(value: string, field: string): void {
  const at = controlCharacterAt(value);
  if (at >= 0) {
    const code = `U+${value.charCodeAt(at).toString(16).toUpperCase().padStart(4, '0')}`;
    throw bad(
      `Invalid ${field} ${JSON.stringify(value)}: control characters are not allowed (found ${code} at position ${at})`,
    );
  }
}

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
    // Consul writes consul-network-segment and consul-version into a node's Meta itself
    const own = what === 'Node' && (k === 'consul-network-segment' || k === 'consul-version');
    if (k.startsWith('consul-') && !own) {
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
 * Weights with Consul's semantics: omitted means {1, 1}. The agent endpoint rejects bad weights
 * (agent_endpoint.go, "Invalid Weights"); catalog/register does not validate them, and Consul stores
 * {1, 1} instead of weights that would not validate (NodeService.ToServiceNode) — which is what the Go
 * client's always-present `"Weights":{"Passing":0,"Warning":0}` becomes.
 */
function serviceWeights(w: Weights | undefined, catalog: boolean): Weights {
  if (!w) return { Passing: 1, Warning: 1 };
  let problem: string | undefined;
  if (w.Passing < 1) problem = 'Passing must be greater than 0';
  else if (w.Warning < 0) problem = 'Warning must be greater or equal than 0';
  else if (w.Passing > 65535 || w.Warning > 65535) problem = 'DNS Weight must be between 0 and 65535';
  if (problem === undefined) return { Passing: w.Passing, Warning: w.Warning };
  if (catalog) return { Passing: 1, Warning: 1 };
  throw bad(`Invalid Weights: ${problem}`);
}

/**
 * Consul's NodeService.Validate (catalog) / ValidateForAgent (agent) for proxies, gateways and Connect
 * native services. The agent answers 400 "Validation failed: …"; catalog/register answers 500. A
 * connect-proxy registered on the agent may leave Port 0 (Consul's agent would pick one from its sidecar
 * range; Phare stores 0).
 */
function validateKind(
  kind: string,
  proxy: Record<string, unknown> | undefined,
  connect: Record<string, unknown> | undefined,
  port: number,
  socketPath: string,
  catalog: boolean,
): void {
  const fail = (m: string) => new HttpError(catalog ? 500 : 400, catalog ? m : `Validation failed: ${m}`);
  const p = proxy ?? {};
  const str = (k: string) => (typeof p[k] === 'string' ? (p[k] as string) : '');
  if (kind === 'connect-proxy') {
    if (catalog && port === 0 && socketPath === '')
      throw fail('Port or SocketPath must be set for a connect-proxy');
    if (str('DestinationServiceName').trim() === '')
      throw fail('Proxy.DestinationServiceName must be non-empty for Connect proxy services');
    if (str('DestinationServiceName') === '*')
      throw fail('Proxy.DestinationServiceName must not be a wildcard for Connect proxy services');
    if (connect?.['Native'] === true)
      throw fail('A Proxy cannot also be Connect Native, only typical services');
  }
  if (kind.endsWith('-gateway')) {
    if (port === 0 && kind !== 'ingress-gateway' && kind !== 'api-gateway')
      throw fail(`Port must be non-zero for a ${kind}`);
    for (const k of ['DestinationServiceName', 'DestinationServiceID', 'LocalServiceAddress']) {
      if (str(k) !== '') throw fail(`The Proxy.${k} configuration is invalid for a ${kind}`);
    }
  }
  if (connect?.['Native'] === true && port === 0 && socketPath === '')
    throw fail('Port or SocketPath must be set for a Connect native service.');
}

/**
 * A Locality with at least one field, or undefined (Consul omits an empty one).
 *
 * @example
 * localityOf({ Region: 'eu-west-1', Zone: '' }); // { Region: 'eu-west-1' }
 */
export function localityOf(
  l: { Region?: string | undefined; Zone?: string | undefined } | null | undefined,
): Locality | undefined {
  if (!l || (!l.Region && !l.Zone)) return undefined;
  const out: Locality = {};
  if (l.Region) out.Region = l.Region;
  if (l.Zone) out.Zone = l.Zone;
  return out;
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
  const catalog = options.catalog === true;
  const name = (body.Name ?? body.Service ?? '').trim();
  if (name === '') throw bad('Missing service name');
  noControlCharacters(name, 'service Name');
  // Any ID Consul takes, "/" included (Patroni registers "scope/name"): paths carry it URL-encoded (%2F).
  const id = body.ID ?? name;
  if (id.trim() === '') throw bad('Missing service ID');
  noControlCharacters(id, 'service ID');
  (body.Tags ?? []).forEach((t, i) => {
    noControlCharacters(t, `service Tags[${i}]`);
  });
  const address = body.Address ?? '';
  if (address === '0.0.0.0' || address === '::' || address === '[::]') throw bad('Invalid service address');
  const port = validatePort(body.Port ?? 0, 'service Port');
  const meta = body.Meta ?? {};
  validateMeta(meta, 'Service');
  const weights = serviceWeights(body.Weights ?? undefined, catalog);
  const kind = body.Kind ?? '';
  if (!KINDS.includes(kind)) {
    throw bad(
      `Invalid service Kind ${JSON.stringify(kind)}: expected one of ${KINDS.slice(1).join(', ')} or ""`,
    );
  }
  const socketPath = body.SocketPath ?? '';
  const proxy = body.Proxy ?? undefined;
  validateKind(kind, proxy, body.Connect ?? undefined, port, socketPath, catalog);

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
    kind,
    tags: body.Tags ?? [],
    address,
    port,
    meta,
    weights,
    enableTagOverride: body.EnableTagOverride ?? false,
  };
  if (tagged) service.taggedAddresses = tagged;
  if (socketPath !== '') service.socketPath = socketPath;
  const locality = localityOf(body.Locality);
  if (locality) service.locality = locality;
  if (proxy && Object.keys(proxy).length > 0) service.proxy = proxy;
  if (body.Connect && Object.keys(body.Connect).length > 0) service.connect = body.Connect;

  const bodies: CheckBody[] = [];
  // catalog/register's Service (a NodeService) has no checks of its own; its checks are the request's
  if (catalog) return { service, checks: [] };
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
  },
): CheckInput {
  noControlCharacters(ctx.checkId, 'check CheckID');
  noControlCharacters(ctx.serviceId, 'check ServiceID');
  for (const f of UNSUPPORTED_CHECK_FIELDS) {
    if (isSet(c[f])) {
      throw bad(`Invalid check: ${f} checks are not supported by Phare; use an HTTP, TCP or TTL check`);
    }
  }
  let status: CheckStatus | undefined;
  if (c.Status !== undefined && c.Status !== '') {
    if (!STATUSES.includes(c.Status)) throw bad(ctx.badStatus(c.Status));
    status = c.Status as CheckStatus;
  }
  const def = definitionFromBody(c, limits);
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
function checkDurations(
  c: Pick<CheckBody, 'TTL' | 'Interval' | 'Timeout' | 'DeregisterCriticalServiceAfter'>,
): void {
  for (const field of ['TTL', 'Interval', 'Timeout', 'DeregisterCriticalServiceAfter'] as const) {
    const v = c[field];
    if (v !== undefined && v > MAX_TIMER_DURATION_MS) {
      throw bad(
        `Invalid check: ${field} must be at most ${formatDuration(MAX_TIMER_DURATION_MS)} (24.8 days), got ${formatDuration(v)}`,
      );
    }
  }
}

function definitionFromBody(c: CheckBody, limits: ValidationLimits): CheckDefinition {
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
      if (c.Header && Object.keys(c.Header).length > 0) d.header = c.Header;
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
    const d: CheckDefinition = { type: 'tcp', tcp, intervalMs, timeoutMs, ...base };
    // TCPUseTLS is stored and returned; the probe is a plain TCP connect (README, "deliberately differs")
    if (c.TCPUseTLS) d.stored = { TCPUseTLS: true };
    return withReap(d);
  }
  if (c.TTL !== undefined) {
    if (c.TTL <= 0) throw bad('Invalid check: TTL must be > 0 for TTL checks');
    return withReap({ type: 'ttl', ttlMs: c.TTL, ...base });
  }
  throw bad('Invalid check: TTL must be > 0 for TTL checks (a check needs one of HTTP, TCP or TTL)');
}

function nonNegative(v: number | undefined, field: string): number {
  if (v === undefined) return 0;
  if (v < 0) throw bad(`Invalid check: ${field} must be >= 0, got ${v}`);
  return v;
}

/**
 * A catalog check (`structs.HealthCheck`): its definition is stored and returned, never run — Consul runs
 * no catalog-registered check either — so nothing in it is checked beyond its types.
 */
function catalogCheckFromBody(c: CatalogCheckBody, node: string): CheckInput & { serviceId: string } {
  const name = c.Name ?? '';
  if (name === '' && !c.CheckID) throw new HttpError(500, 'Must provide check name');
  noControlCharacters(c.CheckID || name, 'check CheckID');
  noControlCharacters(c.ServiceID ?? '', 'check ServiceID');
  if (c.Node && c.Node.toLowerCase() !== node.toLowerCase()) {
    throw new HttpError(
      500,
      `check node ${JSON.stringify(c.Node)} does not match node ${JSON.stringify(node)}`,
    );
  }
  let status: CheckStatus | undefined;
  if (c.Status !== undefined && c.Status !== '') {
    if (!STATUSES.includes(c.Status)) throw new HttpError(500, 'Bad check status');
    status = c.Status as CheckStatus;
  }
  const d: DefinitionBody = c.Definition ?? {};
  const pick = <T>(top: T | undefined, inner: T | undefined): T | undefined =>
    isSet(top) ? top : isSet(inner) ? inner : undefined;
  const def: CheckDefinition = {
    type: '',
    successBeforePassing: 0,
    failuresBeforeWarning: 0,
    failuresBeforeCritical: 0,
    outputMaxSize: Math.min(d.OutputMaxSize || OUTPUT_MAX, OUTPUT_MAX),
  };
  const http = pick(c.HTTP, d.HTTP);
  if (http) def.http = http;
  const method = pick(c.Method, d.Method);
  if (method) def.method = method;
  const header = pick(c.Header, d.Header);
  if (header && Object.keys(header).length > 0) def.header = header;
  const reqBody = pick(c.Body, d.Body);
  if (reqBody) def.body = reqBody;
  if (c.TLSSkipVerify || d.TLSSkipVerify) def.tlsSkipVerify = true;
  const sni = pick(c.TLSServerName, d.TLSServerName);
  if (sni) def.tlsServerName = sni;
  if (c.DisableRedirects || d.DisableRedirects) def.disableRedirects = true;
  const tcp = pick(c.TCP, d.TCP);
  if (tcp) def.tcp = tcp;
  const ms = (...vs: (number | undefined)[]) => vs.find((v) => v !== undefined && v > 0);
  const intervalMs = ms(c.Interval, d.IntervalDuration, d.Interval);
  if (intervalMs) def.intervalMs = intervalMs;
  const timeoutMs = ms(c.Timeout, d.TimeoutDuration, d.Timeout);
  if (timeoutMs) def.timeoutMs = timeoutMs;
  const ttlMs = ms(c.TTL, d.TTL);
  if (ttlMs) def.ttlMs = ttlMs;
  const reapMs = ms(
    c.DeregisterCriticalServiceAfter,
    d.DeregisterCriticalServiceAfterDuration,
    d.DeregisterCriticalServiceAfter,
  );
  if (reapMs) def.deregisterCriticalServiceAfterMs = reapMs;
  checkDurations({
    Interval: intervalMs,
    Timeout: timeoutMs,
    TTL: ttlMs,
    DeregisterCriticalServiceAfter: reapMs,
  });
  const stored = {
    ...storedFields(d as Record<string, unknown>),
    ...storedFields(c as Record<string, unknown>),
  };
  if (Object.keys(stored).length > 0) def.stored = stored;
  if (c.Type) def.declaredType = c.Type;
  if (c.ExposedPort) def.exposedPort = c.ExposedPort;
  const input: CheckInput & { serviceId: string } = {
    checkId: c.CheckID || c.ID || name,
    name: name || (c.CheckID as string),
    notes: c.Notes ?? '',
    serviceId: c.ServiceID ?? '',
    def,
  };
  if (status) input.status = status;
  if (c.Output !== undefined) input.output = c.Output;
  return input;
}

/** Validates a `catalog/register` body into catalog input. Consul answers these errors with 500 (RPC errors). */
export function catalogRegisterFromBody(body: CatalogRegisterBody, limits: ValidationLimits) {
  const node = (body.Node ?? '').trim();
  if (node === '') throw new HttpError(500, 'Must provide node');
  noControlCharacters(node, 'Node');
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
  const checks = checkBodies.map((c) => catalogCheckFromBody(c, node));
  const locality = localityOf(body.Locality);
  return {
    node: {
      id: body.ID ?? '',
      node,
      address,
      taggedAddresses: body.TaggedAddresses ?? (address ? { lan: address, wan: address } : {}),
      meta,
      ...(locality ? { locality } : {}),
    },
    service,
    checks,
  };
}
