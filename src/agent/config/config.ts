/**
 * Agent configuration: defaults < `--dev` layer < config file < `PHARE_*` environment < flags.
 * Every value is validated with the name of the flag it came from; the resolved config is frozen.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { parseDuration, phareError } from '../../api/index.ts';
import { FLAGS, type FlagName, LOG_LEVELS } from './flags.ts';

/** A `host:port` pair. */
export interface HostPort {
  host: string;
  port: number;
}

/** The resolved, frozen agent configuration. Durations are milliseconds. */
export interface AgentConfig {
  /** In-memory store and short check intervals. */
  readonly dev: boolean;
  /** Where the sqlite store lives. @default "./.phare/data" */
  readonly dataDir: string;
  /** `--store`: `memory` in dev mode, else `sqlite`; `etcd` joins a cluster. */
  readonly store: 'memory' | 'sqlite' | 'etcd';
  /** `--etcd-endpoints` (with `store: 'etcd'`). @default [] */
  readonly etcdEndpoints: readonly string[];
  /** `--etcd-prefix`. @default "/phare" */
  readonly etcdPrefix: string;
  /** `--etcd-ca-file`, `--etcd-cert-file`, `--etcd-key-file`: TLS to etcd. @default null */
  readonly etcdCaFile: string | null;
  readonly etcdCertFile: string | null;
  readonly etcdKeyFile: string | null;
  /** `--node-ttl`: TTL of the agent's etcd lease, whole seconds. @default 10s */
  readonly nodeTtlMs: number;
  /** `--reconnect-timeout`: a node whose agent stays away this long is removed (Consul's default). @default 72h */
  readonly reconnectTimeoutMs: number;
  /**
   * `--check-update-interval` (Consul's `check_update_interval`): a check result that changes only the output
   * is written to the store at most this often; 0 writes it at once. @default 5m
   */
  readonly checkUpdateIntervalMs: number;
  /** @default 127.0.0.1:8500 */
  readonly httpAddr: HostPort;
  /** DNS interface (UDP+TCP); `null` when turned off with `--dns-addr ""`. @default 127.0.0.1:8600 */
  readonly dnsAddr: HostPort | null;
  /** DNS domain. @default "consul" */
  readonly domain: string;
  /** Upstream DNS servers for names outside the domain. @default [] */
  readonly recursors: readonly HostPort[];
  /** DNS TTL in seconds per service name (exact, `prefix*` or `*`). @default {} (0 s) */
  readonly dnsServiceTtlSec: Readonly<Record<string, number>>;
  /** DNS TTL of node records in seconds. @default 0 */
  readonly dnsNodeTtlSec: number;
  /** DNS serves only instances whose checks all pass (default: warning still served). @default false */
  readonly dnsOnlyPassing: boolean;
  /**
   * UDP DNS answers per second per client address; 0 turns the limit off; null: the server's default
   * (100 when bound beyond loopback, off on loopback). @default null
   */
  readonly dnsRateLimit: number | null;
  /** Node name. @default the host name */
  readonly node: string;
  /**
   * Node ID (a lower-case UUID), when given by `--node-id`. @default undefined: a persistent agent
   * generates one once and keeps it in `<dataDir>/node-id` (see {@link resolveNodeId}); `--dev` makes a
   * new one each start, as Consul does.
   */
  readonly nodeId: string | undefined;
  /** Node metadata from `--node-meta key:value` (repeatable). @default {} */
  readonly nodeMeta: Readonly<Record<string, string>>;
  /** @default "dc1" */
  readonly datacenter: string;
  /** Address other nodes and DNS answers use for this node. @default the HTTP bind host, or 127.0.0.1 */
  readonly advertiseAddr: string;
  /** HTTPS API address; null: no HTTPS listener. @default null */
  readonly httpsAddr: HostPort | null;
  /** TLS files of the HTTPS API (both set when `httpsAddr` is). @default null */
  readonly tlsCertFile: string | null;
  readonly tlsKeyFile: string | null;
  /** CA bundle: client certificates, and trusted by HTTPS health checks. @default null */
  readonly tlsCaFile: string | null;
  /** The HTTPS API requires client certificates of `tlsCaFile`; the UI stays reachable. @default false */
  readonly tlsVerifyIncoming: boolean;
  /**
   * Host names the HTTP API answers to besides IP literals, localhost and the node name (DNS-rebinding
   * protection; a leading "." allows every subdomain). @default []
   */
  readonly allowedHosts: readonly string[];
  /** `--acl-enabled`: tokens are enforced on the HTTP API and DNS. @default false */
  readonly aclEnabled: boolean;
  /** `--acl-default-policy`: what a token may do where no rule of it says. @default "allow" */
  readonly aclDefaultPolicy: 'allow' | 'deny';
  /** `--acl-initial-management-token` (a secret: never logged). @default null */
  readonly aclInitialManagementToken: string | null;
  /** `--acl-dns-token`: the token DNS answers with (a secret). @default null (anonymous) */
  readonly aclDnsToken: string | null;
  /**
   * `--acl-enable-token-persistence`: agent tokens set through the API are kept in
   * `<dataDir>/acl-tokens.json` (hashes only) and win over configured ones at start. @default false
   */
  readonly aclEnableTokenPersistence: boolean;
  /**
   * `--acl-token-min-expiration-ttl` / `--acl-token-max-expiration-ttl` (Consul's `acl.token_min_expiration_ttl`
   * and `token_max_expiration_ttl`): the range of a new token's ExpirationTTL / ExpirationTime. @default 1m and 24h
   */
  readonly aclTokenExpiry: { readonly minMs: number; readonly maxMs: number };
  /** @default "info" ("warn" under test runners is up to the caller) */
  readonly logLevel: (typeof LOG_LEVELS)[number];
  /** `--log-json`: JSON lines on a terminal too (without it a terminal gets pino-pretty's lines). @default false */
  readonly logJson: boolean;
  /**
   * Docker engine socket whose opted-in containers the agent registers (`--docker`), or null.
   * @default null (`--docker` alone: /var/run/docker.sock)
   */
  readonly dockerSocket: string | null;
  /** How often the reaper looks for services critical past DeregisterCriticalServiceAfter. @default 30s (dev 1s) */
  readonly reapIntervalMs: number;
  /** Lower bound of DeregisterCriticalServiceAfter. @default 1m (dev 1s) */
  readonly minDeregisterAfterMs: number;
  /** Lower bound of check intervals. @default 1s (dev 100ms) */
  readonly minCheckIntervalMs: number;
}

/** Raw, unvalidated values by their flag name (as strings from argv/env, or any type from a file). */
export type RawAgentConfig = Partial<Record<FlagName, unknown>>;

/**
 * Resolves the agent configuration from its layers. Throws PHARE_ERR_INVALID_ARGUMENT naming the flag
 * and the bad value, or PHARE_ERR_INVALID_CONFIG naming the file.
 *
 * @example
 * const cfg = resolveAgentConfig({ flags: { dev: true, 'http-addr': '127.0.0.1:0' }, env: process.env });
 */
export function resolveAgentConfig(input: {
  flags?: RawAgentConfig;
  env?: NodeJS.ProcessEnv;
  configFile?: string;
}): AgentConfig {
  const env = input.env ?? {};
  const layers: RawAgentConfig = {};
  const configFile = input.configFile ?? env['PHARE_CONFIG'];
  // Where each value came from (a flag needs no entry: errors already name it as --flag).
  const origin: Partial<Record<FlagName, string>> = {};
  if (configFile) {
    const fromFile = readConfigFile(configFile);
    Object.assign(layers, fromFile);
    for (const k of Object.keys(fromFile)) origin[k as FlagName] = `${configFile}: ${k}`;
  }
  for (const [flag, spec] of Object.entries(FLAGS) as [FlagName, { env: string }][]) {
    const v = env[spec.env];
    if (v !== undefined) {
      layers[flag] = v;
      origin[flag] = spec.env;
    }
  }
  for (const [k, v] of Object.entries(input.flags ?? {}))
    if (v !== undefined) {
      layers[k as FlagName] = v;
      delete origin[k as FlagName];
    }
  let resolved: AgentConfig;
  try {
    const dev = bool('dev', layers.dev ?? false);
    const httpAddr = hostPort('http-addr', layers['http-addr'] ?? '127.0.0.1:8500');
    const dnsRaw = layers['dns-addr'] ?? '127.0.0.1:8600';
    const dnsAddr = dnsRaw === '' ? null : hostPort('dns-addr', dnsRaw);
    const recursorRaw = layers.recursor ?? [];
    const recursorList = list(recursorRaw);
    const recursors = recursorList.map((r) => hostPort('recursor', r.includes(':') ? r : `${r}:53`));
    const httpsRaw = layers['https-addr'] ?? '';
    const httpsAddr = httpsRaw === '' ? null : hostPort('https-addr', httpsRaw);
    const file = (flag: FlagName) => {
      const v = layers[flag];
      return v === undefined || v === '' ? null : String(v);
    };
    const tlsCertFile = file('tls-cert-file');
    const tlsKeyFile = file('tls-key-file');
    const tlsCaFile = file('tls-ca-file');
    const tlsVerifyIncoming = bool('tls-verify-incoming', layers['tls-verify-incoming'] ?? false);
    if (httpsAddr && (!tlsCertFile || !tlsKeyFile)) {
      throw phareError(
        'PHARE_ERR_INVALID_ARGUMENT',
        '--https-addr: needs --tls-cert-file and --tls-key-file',
      );
    }
    if (tlsVerifyIncoming && !tlsCaFile) {
      throw phareError(
        'PHARE_ERR_INVALID_ARGUMENT',
        '--tls-verify-incoming: needs --tls-ca-file (the CA whose client certificates are accepted)',
      );
    }
    if (tlsVerifyIncoming && !httpsAddr) {
      throw phareError('PHARE_ERR_INVALID_ARGUMENT', '--tls-verify-incoming: needs --https-addr');
    }
    const allowedHosts = list(layers['allowed-hosts'] ?? []);
    for (const h of allowedHosts) {
      if (!/^(\*?\.)?[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(h)) {
        throw bad(
          'allowed-hosts',
          h,
          'host names such as consul.internal or .example.com, separated by commas',
        );
      }
    }
    const aclEnabled = bool('acl-enabled', layers['acl-enabled'] ?? false);
    const aclDefaultPolicy = String(layers['acl-default-policy'] ?? 'allow');
    if (aclDefaultPolicy !== 'allow' && aclDefaultPolicy !== 'deny')
      throw bad('acl-default-policy', aclDefaultPolicy, 'allow or deny');
    const aclInitialManagementToken = file('acl-initial-management-token');
    const aclDnsToken = file('acl-dns-token');
    const aclEnableTokenPersistence = bool(
      'acl-enable-token-persistence',
      layers['acl-enable-token-persistence'] ?? false,
    );
    const dnsServiceTtlSec = ttlMap('dns-service-ttl', layers['dns-service-ttl'] ?? {});
    const dnsNodeTtlSec = seconds('dns-node-ttl', layers['dns-node-ttl'] ?? 0);
    const dnsOnlyPassing = bool('dns-only-passing', layers['dns-only-passing'] ?? false);
    const rateRaw = layers['dns-rate-limit'];
    const dnsRateLimit =
      rateRaw === undefined || rateRaw === ''
        ? null
        : seconds('dns-rate-limit', rateRaw, 'a whole number of answers per second (0 = off)');
    const node = name('node', layers.node ?? (hostname() || 'phare'));
    const nodeIdRaw = layers['node-id'];
    const nodeId =
      nodeIdRaw === undefined || nodeIdRaw === ''
        ? undefined
        : uuid('node-id', nodeIdRaw, 'a UUID such as 0b2f8c6e-5d1a-4c3e-9f0a-2b7d1e4c6a90');
    const nodeMeta = metaPairs('node-meta', layers['node-meta'] ?? []);
    const datacenter = name('datacenter', layers.datacenter ?? 'dc1');
    const domain = name('domain', String(layers.domain ?? 'consul').replace(/\.$/, '')).toLowerCase();
    const logJson = bool('log-json', layers['log-json'] ?? false);
    const logLevel = String(layers['log-level'] ?? 'info');
    if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
      throw bad('log-level', logLevel, `one of ${LOG_LEVELS.join(', ')}`);
    }
    const wildcard = httpAddr.host === '0.0.0.0' || httpAddr.host === '::' || httpAddr.host === '';
    const advertiseAddr = String(
      layers['advertise-addr'] ?? (wildcard || !isIP(httpAddr.host) ? '127.0.0.1' : httpAddr.host),
    );
    if (!isIP(advertiseAddr)) throw bad('advertise-addr', advertiseAddr, 'an IPv4 or IPv6 address');
    const dockerSocket = docker(layers.docker);
    const dataDir = String(layers['data-dir'] ?? './.phare/data');
    if (dataDir.trim() === '') throw bad('data-dir', dataDir, 'a directory path');
    const store = String(layers.store ?? (dev ? 'memory' : 'sqlite'));
    if (store !== 'memory' && store !== 'sqlite' && store !== 'etcd')
      throw bad('store', store, 'one of memory, sqlite, etcd');
    if (aclEnableTokenPersistence && store === 'memory')
      throw phareError(
        'PHARE_ERR_INVALID_ARGUMENT',
        '--acl-enable-token-persistence: the memory store (--dev) keeps nothing across restarts; use --store sqlite or etcd (the tokens go in --data-dir)',
      );
    const endpointsRaw = layers['etcd-endpoints'] ?? [];
    const etcdEndpoints = (Array.isArray(endpointsRaw) ? endpointsRaw : String(endpointsRaw).split(','))
      .map((s) => String(s).trim())
      .filter((s) => s !== '')
      .map((e) => {
        if (!/^https?:\/\/[^/\s]+:\d{1,5}\/?$/.test(e))
          throw bad('etcd-endpoints', e, 'etcd client URLs such as http://127.0.0.1:2379');
        return e.replace(/\/$/, '');
      });
    if (store === 'etcd' && etcdEndpoints.length === 0)
      throw bad('etcd-endpoints', endpointsRaw, 'at least one etcd client URL with --store etcd');
    const etcdPrefix = String(layers['etcd-prefix'] ?? '/phare');
    if (!/^\/[A-Za-z0-9_./-]*$/.test(etcdPrefix))
      throw bad('etcd-prefix', etcdPrefix, 'a key path such as /phare (letters, digits, "/", "-", "_", ".")');
    const etcdCaFile = file('etcd-ca-file');
    const etcdCertFile = file('etcd-cert-file');
    const etcdKeyFile = file('etcd-key-file');
    if (Boolean(etcdCertFile) !== Boolean(etcdKeyFile))
      throw phareError(
        'PHARE_ERR_INVALID_ARGUMENT',
        etcdCertFile ? '--etcd-cert-file: needs --etcd-key-file' : '--etcd-key-file: needs --etcd-cert-file',
      );
    if ((etcdCaFile || etcdCertFile) && etcdEndpoints.some((e) => e.startsWith('http://')))
      throw bad(
        'etcd-endpoints',
        endpointsRaw,
        'https:// URLs when --etcd-ca-file or --etcd-cert-file is set',
      );
    const nodeTtlMs = durationFlag('node-ttl', layers['node-ttl'] ?? '10s');
    if (nodeTtlMs < 1000 || nodeTtlMs % 1000 !== 0)
      throw bad('node-ttl', layers['node-ttl'], 'whole seconds, at least 1s (an etcd lease TTL)');
    const reconnectTimeoutMs = durationFlag('reconnect-timeout', layers['reconnect-timeout'] ?? '72h');
    if (reconnectTimeoutMs < nodeTtlMs)
      throw bad('reconnect-timeout', layers['reconnect-timeout'], `a duration of at least --node-ttl`);

    const aclTokenExpiry = {
      minMs: durationFlag('acl-token-min-expiration-ttl', layers['acl-token-min-expiration-ttl'] ?? '1m'),
      maxMs: durationFlag('acl-token-max-expiration-ttl', layers['acl-token-max-expiration-ttl'] ?? '24h'),
    };
    if (aclTokenExpiry.minMs <= 0)
      throw bad(
        'acl-token-min-expiration-ttl',
        layers['acl-token-min-expiration-ttl'],
        'a duration above 0s',
      );
    if (aclTokenExpiry.maxMs < aclTokenExpiry.minMs)
      throw bad(
        'acl-token-max-expiration-ttl',
        layers['acl-token-max-expiration-ttl'],
        'a duration of at least --acl-token-min-expiration-ttl',
      );

    const checkUpdateIntervalMs = durationFlag(
      'check-update-interval',
      layers['check-update-interval'] ?? '5m',
    );

    resolved = Object.freeze({
      dev,
      dataDir,
      store,
      etcdEndpoints: Object.freeze(etcdEndpoints),
      etcdPrefix,
      etcdCaFile,
      etcdCertFile,
      etcdKeyFile,
      nodeTtlMs,
      reconnectTimeoutMs,
      checkUpdateIntervalMs,
      httpAddr: Object.freeze(httpAddr),
      dnsAddr: dnsAddr ? Object.freeze(dnsAddr) : null,
      domain,
      recursors: Object.freeze(recursors.map((r) => Object.freeze(r))),
      dnsServiceTtlSec: Object.freeze(dnsServiceTtlSec),
      dnsNodeTtlSec,
      dnsOnlyPassing,
      dnsRateLimit,
      node,
      nodeId,
      nodeMeta: Object.freeze(nodeMeta),
      datacenter,
      advertiseAddr,
      httpsAddr: httpsAddr ? Object.freeze(httpsAddr) : null,
      tlsCertFile,
      tlsKeyFile,
      tlsCaFile,
      tlsVerifyIncoming,
      allowedHosts: Object.freeze(allowedHosts),
      aclEnabled,
      aclDefaultPolicy,
      aclInitialManagementToken,
      aclDnsToken,
      aclEnableTokenPersistence,
      aclTokenExpiry: Object.freeze(aclTokenExpiry),
      logLevel: logLevel as AgentConfig['logLevel'],
      logJson,
      dockerSocket,
      reapIntervalMs: dev ? 1000 : 30_000,
      minDeregisterAfterMs: dev ? 1000 : 60_000,
      minCheckIntervalMs: dev ? 100 : 1000,
    } satisfies AgentConfig);
  } catch (err) {
    throw named(err, origin);
  }
  origins.set(resolved, origin);
  return resolved;
}

/** Where each value of a resolved config came from, for errors raised later (a port in use at listen). */
const origins = new WeakMap<AgentConfig, Partial<Record<FlagName, string>>>();

/**
 * An error about a setting of `config` (`--dns-addr: 127.0.0.1:8600 is already in use…`), raised after the
 * config was resolved, re-worded under the name the user set (`PHARE_DNS_ADDR: …`), as resolve does.
 *
 * @example
 * await dns.listen(config.dnsAddr).catch((err) => { throw namedBySource(err, config); });
 */
export function namedBySource(err: unknown, config: AgentConfig): unknown {
  return named(err, origins.get(config) ?? {});
}

/**
 * An error raised as `--flag: …` re-raised under the name the user actually set: the environment variable
 * (`PHARE_HTTP_ADDR: "zz" is not valid…`) or the config file's key, so the message points at what to fix.
 */
function named(err: unknown, origin: Partial<Record<FlagName, string>>): unknown {
  if (!(err instanceof Error) || (err as { code?: string }).code !== 'PHARE_ERR_INVALID_ARGUMENT') return err;
  const m = /^--([a-z-]+): /.exec(err.message);
  const source = m ? origin[m[1] as FlagName] : undefined;
  if (!m || !source) return err;
  return phareError('PHARE_ERR_INVALID_ARGUMENT', `${source}: ${err.message.slice(m[0].length)}`, {
    cause: err,
  });
}

function readConfigFile(path: string): RawAgentConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw phareError(
      'PHARE_ERR_INVALID_CONFIG',
      `--config: cannot read ${path}: ${(cause as Error).message}`,
      { cause },
    );
  }
  let doc: unknown;
  try {
    // required on use: only a --config file needs the YAML parser
    const { parse: parseYaml } = createRequire(import.meta.url)('yaml') as typeof import('yaml');
    doc = parseYaml(text);
  } catch (cause) {
    throw phareError(
      'PHARE_ERR_INVALID_CONFIG',
      `${path}: not valid YAML/JSON: ${(cause as Error).message}`,
      { cause },
    );
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw phareError('PHARE_ERR_INVALID_CONFIG', `${path}: expected a mapping of option names to values`);
  }
  const out: RawAgentConfig = {};
  for (const [k, v] of Object.entries(doc)) {
    // accept the flag spelling (http-addr), camelCase (httpAddr) and snake_case (http_addr)
    const flag = k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`).replace(/_/g, '-');
    if (!(flag in FLAGS)) {
      throw phareError(
        'PHARE_ERR_INVALID_CONFIG',
        `${path}: unknown option ${JSON.stringify(k)}; expected one of ${Object.keys(FLAGS).join(', ')}`,
      );
    }
    out[flag as FlagName] = v;
  }
  return out;
}

function bad(flag: string, value: unknown, expected: string) {
  return phareError(
    'PHARE_ERR_INVALID_ARGUMENT',
    `--${flag}: ${JSON.stringify(value)} is not valid; expected ${expected}`,
  );
}

/** A comma list (flag, env) or a YAML list (config file), trimmed, empty items dropped. */
function list(v: unknown): string[] {
  return (Array.isArray(v) ? v : String(v).split(',')).map((s) => String(s).trim()).filter((s) => s !== '');
}

/** `--docker`: off, on (the default socket) or a `unix://` endpoint, as DOCKER_HOST spells it. */
function docker(v: unknown): string | null {
  if (v === undefined || v === false || v === null) return null;
  if (v === true) return '/var/run/docker.sock';
  const s = String(v).trim();
  if (['', '0', 'false', 'no', 'off'].includes(s.toLowerCase())) return null;
  if (['1', 'true', 'yes', 'on'].includes(s.toLowerCase())) return '/var/run/docker.sock';
  const m = /^unix:\/\/(\/.+)$/.exec(s);
  if (!m?.[1]) throw bad('docker', v, 'a unix socket endpoint such as unix:///var/run/docker.sock');
  return m[1];
}

function bool(flag: string, v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  const s = String(v).toLowerCase();
  if (['1', 'true', 'yes', 'on', ''].includes(s)) return true;
  if (['0', 'false', 'no', 'off'].includes(s)) return false;
  throw bad(flag, v, 'true or false');
}

function seconds(flag: string, v: unknown, expected = 'a whole number of seconds'): number {
  const n = typeof v === 'number' ? v : /^\d+$/.test(String(v)) ? Number(v) : Number.NaN;
  if (!Number.isInteger(n) || n < 0 || n > 2_147_483_647) throw bad(flag, v, expected);
  return n;
}

/** `web=5,api*=10,*=1` (flag/env) or a mapping (config file) of service name patterns to TTL seconds. */
function ttlMap(flag: string, v: unknown): Record<string, number> {
  const entries: [string, unknown][] =
    typeof v === 'object' && v !== null && !Array.isArray(v)
      ? Object.entries(v)
      : String(v)
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '')
          .map((s) => {
            const i = s.indexOf('=');
            if (i <= 0)
              throw bad(flag, v, 'name=seconds pairs separated by commas, e.g. "web=5,api*=10,*=1"');
            return [s.slice(0, i).trim(), s.slice(i + 1).trim()];
          });
  const out: Record<string, number> = {};
  for (const [k, n] of entries) out[k] = seconds(flag, n);
  return out;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A UUID (Consul's `node_id`: 36 hex digits and dashes), lower-cased. */
function uuid(flag: string, v: unknown, expected: string): string {
  const s = String(v).trim();
  if (!UUID_RE.test(s)) throw bad(flag, v, expected);
  return s.toLowerCase();
}

/**
 * `--node-meta key:value`, repeatable (flag), a comma list (env) or a mapping/list (config file), with
 * Consul's rules for node metadata: at most 64 pairs, keys of letters, digits, "_" and "-" up to 128
 * characters and not starting with "consul-" (reserved), values up to 512 characters.
 */
function metaPairs(flag: string, v: unknown): Record<string, string> {
  let pairs: [string, unknown][];
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) pairs = Object.entries(v);
  else {
    const items = Array.isArray(v) ? v.map(String) : String(v).split(',');
    pairs = items
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .map((s) => {
        const i = s.indexOf(':');
        if (i <= 0) throw bad(flag, s, 'key:value, e.g. --node-meta rack:r1');
        return [s.slice(0, i), s.slice(i + 1)];
      });
  }
  const out: Record<string, string> = {};
  for (const [k, raw] of pairs) {
    const val = String(raw);
    if (!/^[a-zA-Z0-9_-]{1,128}$/.test(k))
      throw bad(flag, `${k}:${val}`, 'a key of letters, digits, "_" or "-" (at most 128)');
    if (k.startsWith('consul-'))
      throw bad(flag, `${k}:${val}`, 'a key not starting with "consul-" (reserved)');
    if (val.length > 512) throw bad(flag, `${k}:${val}`, 'a value of at most 512 characters');
    out[k] = val;
  }
  if (Object.keys(out).length > 64) throw bad(flag, v, 'at most 64 key:value pairs');
  return out;
}

/**
 * The node ID of this agent: `--node-id` if given; in `--dev` a new random one; otherwise the one kept in
 * `<dataDir>/node-id`, generated and written (atomically) on first start, as Consul keeps its node ID.
 * A node-id file that is empty or not a UUID is a start-up error naming the file, never a node ID "".
 *
 * @example
 * const id = resolveNodeId(resolveAgentConfig({ flags: { 'data-dir': '/var/lib/phare' } }));
 */
export function resolveNodeId(config: AgentConfig): string {
  if (config.nodeId) return config.nodeId;
  if (config.store === 'memory') return randomUUID();
  const file = join(config.dataDir, 'node-id');
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw phareError(
        'PHARE_ERR_INVALID_CONFIG',
        `${file}: cannot read the node ID: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }
  if (text !== undefined) {
    const id = text.trim();
    if (!UUID_RE.test(id)) {
      throw phareError(
        'PHARE_ERR_INVALID_CONFIG',
        `${file}: ${id === '' ? 'the file is empty' : `${JSON.stringify(id.slice(0, 80))} is not a UUID`}; ` +
          'expected the node ID this agent was created with (restore it, or delete the file to get a new node ID)',
      );
    }
    return id.toLowerCase();
  }
  const id = randomUUID();
  mkdirSync(config.dataDir, { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, id, { flush: true });
  renameSync(tmp, file);
  return id;
}

function name(flag: string, v: unknown): string {
  const s = String(v);
  if (!/^[A-Za-z0-9]([A-Za-z0-9_.-]{0,62})$/.test(s)) {
    throw bad(flag, v, 'letters, digits, "-", "_" or "." (at most 63, starting with a letter or digit)');
  }
  return s;
}

/** Whether a bind host only reaches this machine (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host) || /^::ffff:127\./.test(host);
}

/** Parses `host:port`, `[v6]:port` or `:port`. */
export function hostPort(flag: string, v: unknown): HostPort {
  const s = String(v).trim();
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(s);
  if (!m) throw bad(flag, v, 'host:port, e.g. 127.0.0.1:8500');
  const host = m[1] ?? (m[2] || '127.0.0.1');
  const port = Number(m[3]);
  if (port > 65535) throw bad(flag, v, 'a port from 0 to 65535');
  if (m[1] !== undefined && isIP(host) !== 6) throw bad(flag, v, 'an IPv6 address inside [ ]');
  return { host, port };
}

/** Parses a duration flag value ("10s") into ms, naming the flag on error. */
export function durationFlag(flag: string, v: unknown): number {
  try {
    const ms = parseDuration(String(v));
    if (ms < 0) throw new Error('negative');
    return ms;
  } catch {
    throw bad(flag, v, 'a duration such as 10s or 500ms');
  }
}
