/**
 * The HTTP transport of the typed registry client: where the agent is, the ACL token, one keep-alive undici
 * Pool, Consul's query-meta headers, and errors from the error table.
 */
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';
import { phareError } from '../../api/index.ts';

/** TLS to an `https://` agent (the agent's `--https-addr`, or a Consul HTTPS port). */
export interface ClientTlsOptions {
  /** PEM CA bundle the agent's certificate must chain to. @default CONSUL_CACERT, else the system's CAs */
  caFile?: string;
  /** Client certificate (PEM), for an agent that verifies incoming certificates. @default CONSUL_CLIENT_CERT, else CONSUL_TLSCERT */
  certFile?: string;
  /** Key of `certFile` (PEM). @default CONSUL_CLIENT_KEY, else CONSUL_TLSKEY */
  keyFile?: string;
  /** Name the agent's certificate must carry (SNI and verification). @default CONSUL_TLS_SERVER_NAME, else the address's host */
  serverName?: string;
  /** Accept any certificate (tests only). @default false, or true with CONSUL_HTTP_SSL_VERIFY=false */
  insecureSkipVerify?: boolean;
}

/** Options of {@link createConsulClient} (and every SDK factory that talks to the registry). */
export interface ConsulClientOptions {
  /**
   * The agent: `host:port` or `http(s)://host:port` — or several (an array, or a comma-separated list, as
   * in `PHARE_HTTP_ADDR=a:8500,b:8500,c:8500`), failed over between: the client sticks to one that
   * answers, moves to the next when it stops answering, and sets an unreachable one aside for a while.
   * @default PHARE_HTTP_ADDR, else CONSUL_HTTP_ADDR, else CONSUL_HOST/CONSUL_PORT, else "127.0.0.1:8500"
   */
  address?: string | readonly string[];
  /**
   * ACL token sent as `X-Consul-Token`. @default the first set of PHARE_HTTP_TOKEN_FILE, PHARE_HTTP_TOKEN,
   * CONSUL_HTTP_TOKEN_FILE, CONSUL_HTTP_TOKEN (a file wins over its plain variable, as in Consul's CLI), else none
   */
  token?: string;
  /** TLS for `https://` agents; each field defaults from Consul's CLI variables (see {@link ClientTlsOptions}). */
  tls?: ClientTlsOptions;
  /** `?dc=` on catalog and health reads. @default the agent's datacenter */
  datacenter?: string;
  /** Timeout of non-blocking calls in ms. @default 10000 */
  timeoutMs?: number;
  /** Environment read for the defaults (tests pass their own). @default process.env */
  env?: Record<string, string | undefined>;
}

/** A read that carries Consul's `X-Consul-Index` (blocking-capable endpoints). */
export interface Indexed<T> {
  value: T;
  /** `X-Consul-Index`; 0 when the endpoint sent none. */
  index: number;
  /** `X-Consul-KnownLeader`. */
  knownLeader: boolean;
  /** `X-Consul-LastContact` in ms. */
  lastContactMs: number;
  /** Phare's `X-Phare-Index-Time`: when the agent made this index (epoch ms); absent from Consul. */
  indexTimeMs?: number;
}

/** Options common to reads; `index` + `waitMs` make it a blocking query (Consul docs, Blocking Queries). */
export interface QueryOptions {
  /** Wait until the result's index exceeds this. */
  index?: number;
  /** How long the agent may hold a blocking query. @default 300000 on the agent side when `index` is set */
  waitMs?: number;
  /** `?dc=`. */
  datacenter?: string;
  /** `?filter=` expression (go-bexpr). */
  filter?: string;
  /** `?stale`. */
  stale?: boolean;
  /** `?consistent`. */
  consistent?: boolean;
  /** Cancels the call. */
  signal?: AbortSignal;
}

/** One call to the agent. */
export interface CallOptions {
  method?: 'GET' | 'PUT' | 'POST' | 'DELETE';
  query?: Record<string, string | number | boolean | string[] | undefined>;
  body?: unknown;
  /** A body sent as these bytes, with no Content-Type (a KV value). */
  rawBody?: Uint8Array;
  signal?: AbortSignal;
  /** Overrides the client's timeout (blocking queries pass wait + wait/16 + margin). */
  timeoutMs?: number;
  /** Error statuses that still carry a body to decode (agent health endpoints answer 429/503). */
  acceptStatus?: number[];
}

/** A decoded answer. */
export interface CallResult<T> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  value: T;
}

/**
 * Where the agents are, in the documented order: options, `PHARE_HTTP_ADDR`, `CONSUL_HTTP_ADDR` (with
 * `CONSUL_HTTP_SSL=true` meaning https, as the Consul CLI reads it), `CONSUL_HOST`/`CONSUL_PORT` (the npm
 * `consul` client's variables), `127.0.0.1:8500`. Each may list several agents, comma-separated. Returns
 * origins such as `http://127.0.0.1:8500`, without duplicates.
 *
 * @example
 * resolveAgentAddresses({}, { PHARE_HTTP_ADDR: '10.0.0.5:8500,10.0.0.6:8500' });
 * // ["http://10.0.0.5:8500", "http://10.0.0.6:8500"]
 */
export function resolveAgentAddresses(
  options: { address?: string | readonly string[] } = {},
  env: Record<string, string | undefined> = process.env,
): string[] {
  const ssl = env.CONSUL_HTTP_SSL === 'true' || env.CONSUL_HTTP_SSL === '1';
  const pick = (raw: string, field: string, defaultScheme = 'http'): string => {
    const withScheme = /^[a-z]+:\/\//i.test(raw) ? raw : `${defaultScheme}://${raw}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      throw phareError(
        'PHARE_ERR_INVALID_CONFIG',
        `${field}: ${JSON.stringify(raw)} is not host:port or a URL`,
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw phareError(
        'PHARE_ERR_INVALID_CONFIG',
        `${field}: scheme must be http or https, got ${url.protocol}`,
      );
    }
    return url.origin;
  };
  const list = (raw: string | readonly string[], field: string, scheme?: string): string[] => {
    const parts = (typeof raw === 'string' ? raw.split(',') : raw).map((x) => x.trim()).filter(Boolean);
    if (parts.length === 0)
      throw phareError('PHARE_ERR_INVALID_CONFIG', `${field}: expected at least one host:port, got none`);
    return [...new Set(parts.map((x) => pick(x, field, scheme)))];
  };
  if (options.address !== undefined && options.address.length > 0) return list(options.address, 'address');
  if (env.PHARE_HTTP_ADDR) return list(env.PHARE_HTTP_ADDR, 'PHARE_HTTP_ADDR');
  if (env.CONSUL_HTTP_ADDR) return list(env.CONSUL_HTTP_ADDR, 'CONSUL_HTTP_ADDR', ssl ? 'https' : 'http');
  if (env.CONSUL_HOST || env.CONSUL_PORT) {
    const host = env.CONSUL_HOST || '127.0.0.1';
    const port = env.CONSUL_PORT || '8500';
    return list(
      `${host.includes(':') ? `[${host}]` : host}:${port}`,
      'CONSUL_HOST/CONSUL_PORT',
      ssl ? 'https' : 'http',
    );
  }
  return ['http://127.0.0.1:8500'];
}

/**
 * The first agent of {@link resolveAgentAddresses} (for callers that talk to one).
 *
 * @example
 * resolveAgentAddress({}, { CONSUL_HTTP_ADDR: '10.0.0.5:8500' }); // "http://10.0.0.5:8500"
 */
export function resolveAgentAddress(
  options: { address?: string | readonly string[] } = {},
  env: Record<string, string | undefined> = process.env,
): string {
  return resolveAgentAddresses(options, env)[0] as string;
}

/**
 * The ACL token, in the documented order: `options.token`, `PHARE_HTTP_TOKEN_FILE`, `PHARE_HTTP_TOKEN`,
 * `CONSUL_HTTP_TOKEN_FILE`, `CONSUL_HTTP_TOKEN`. A token file is read once, trimmed; one that cannot be
 * read is a PHARE_ERR_INVALID_CONFIG naming the variable (a silent anonymous fallback would hide it).
 *
 * @example
 * resolveToken({}, { CONSUL_HTTP_TOKEN_FILE: '/run/secrets/consul-token' });
 */
export function resolveToken(
  options: { token?: string } = {},
  env: Record<string, string | undefined> = process.env,
): string | undefined {
  if (options.token) return options.token;
  for (const prefix of ['PHARE', 'CONSUL']) {
    const file = env[`${prefix}_HTTP_TOKEN_FILE`];
    if (file) {
      const token = readConfigured(file, `${prefix}_HTTP_TOKEN_FILE`).toString('utf8').trim();
      if (token !== '') return token;
    }
    const plain = env[`${prefix}_HTTP_TOKEN`];
    if (plain) return plain;
  }
  return undefined;
}

/** Node TLS options of a client: CA, client certificate, server name. */
export interface ResolvedTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  servername?: string;
  rejectUnauthorized: boolean;
}

/**
 * TLS of the client from options and Consul's CLI variables: `CONSUL_CACERT`, `CONSUL_CLIENT_CERT` /
 * `CONSUL_CLIENT_KEY` (registrator's `CONSUL_TLSCERT` / `CONSUL_TLSKEY` too), `CONSUL_TLS_SERVER_NAME`,
 * `CONSUL_HTTP_SSL_VERIFY=false`. Files are read once; a missing one is PHARE_ERR_INVALID_CONFIG naming it.
 *
 * @example
 * resolveClientTls({}, { CONSUL_CACERT: '/etc/consul/ca.pem' }).ca; // the CA's bytes
 */
export function resolveClientTls(
  options: { tls?: ClientTlsOptions } = {},
  env: Record<string, string | undefined> = process.env,
): ResolvedTls {
  const o = options.tls ?? {};
  const pick = (value: string | undefined, field: string, ...vars: string[]) => {
    if (value) return { path: value, from: `tls.${field}` };
    for (const v of vars) if (env[v]) return { path: env[v] as string, from: v };
    return undefined;
  };
  const ca = pick(o.caFile, 'caFile', 'CONSUL_CACERT');
  const cert = pick(o.certFile, 'certFile', 'CONSUL_CLIENT_CERT', 'CONSUL_TLSCERT');
  const key = pick(o.keyFile, 'keyFile', 'CONSUL_CLIENT_KEY', 'CONSUL_TLSKEY');
  if (Boolean(cert) !== Boolean(key))
    throw phareError(
      'PHARE_ERR_INVALID_CONFIG',
      `${cert ? cert.from : (key as { from: string }).from}: a client certificate needs its key and the key its certificate (set both: CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY)`,
    );
  const verify = env.CONSUL_HTTP_SSL_VERIFY;
  const out: ResolvedTls = {
    rejectUnauthorized: !(o.insecureSkipVerify ?? (verify === 'false' || verify === '0')),
  };
  if (ca) out.ca = readConfigured(ca.path, ca.from);
  if (cert && key) {
    out.cert = readConfigured(cert.path, cert.from);
    out.key = readConfigured(key.path, key.from);
  }
  const servername = o.serverName ?? env.CONSUL_TLS_SERVER_NAME;
  if (servername) out.servername = servername;
  return out;
}

function readConfigured(path: string, from: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw phareError(
      'PHARE_ERR_INVALID_CONFIG',
      `${from}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      { cause: err },
    );
  }
}

/** One agent of a client's list, with the state failover needs. */
interface Agent {
  origin: string;
  pool: Pool | undefined;
  /** Set aside until this time (epoch ms) after failing; 0 when in good standing. */
  downUntil: number;
  /** Consecutive failures (the set-aside time grows with them). */
  failures: number;
}

/** How long an unreachable agent is set aside: 1 s, doubling per consecutive failure, at most 30 s. */
const SET_ASIDE_BASE_MS = 1_000;
const SET_ASIDE_MAX_MS = 30_000;

/** Low-level transport; the area objects are thin typed wrappers over {@link Transport.call}. */
export class Transport {
  /** Every agent, in the configured order. */
  readonly origins: readonly string[];
  readonly #agents: Agent[];
  /** The agent in use (sticky: kept while it answers). */
  #current = 0;
  readonly #token: string | undefined;
  readonly #tls: ResolvedTls | undefined;
  readonly #timeoutMs: number;
  readonly datacenter: string | undefined;
  #closed = false;

  constructor(options: ConsulClientOptions = {}) {
    const env = options.env ?? process.env;
    this.origins = resolveAgentAddresses(options, env);
    this.#agents = this.origins.map((origin) => ({ origin, pool: undefined, downUntil: 0, failures: 0 }));
    this.#token = resolveToken(options, env);
    // TLS material is read only when some agent is reached over https
    this.#tls = this.origins.some((o) => o.startsWith('https:')) ? resolveClientTls(options, env) : undefined;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    if (!Number.isFinite(this.#timeoutMs) || this.#timeoutMs <= 0) {
      throw phareError(
        'PHARE_ERR_INVALID_ARGUMENT',
        `timeoutMs: expected a positive number, got ${options.timeoutMs}`,
      );
    }
    this.datacenter = options.datacenter;
  }

  /** The agent in use now. */
  get origin(): string {
    return (this.#agents[this.#current] as Agent).origin;
  }

  #poolOf(a: Agent): Pool {
    // Blocking queries hold a connection each, so the pool is unbounded; our own timers replace undici's
    // header/body timeouts, which would cut a 5-minute blocking query short.
    a.pool ??= new Pool(a.origin, {
      headersTimeout: 0,
      bodyTimeout: 0,
      keepAliveTimeout: 30_000,
      ...(this.#tls && a.origin.startsWith('https:') ? { connect: { ...this.#tls } } : {}),
    });
    return a.pool;
  }

  /**
   * The agents to try for one call, in order: the current one, then the others after it that are not set
   * aside, then the set-aside ones (one of them may be back) — so a call fails only when none answers.
   */
  #order(now: number): Agent[] {
    const n = this.#agents.length;
    if (n === 1) return this.#agents;
    const good: Agent[] = [];
    const aside: Agent[] = [];
    for (let i = 0; i < n; i++) {
      const a = this.#agents[(this.#current + i) % n] as Agent;
      (a.downUntil > now ? aside : good).push(a);
    }
    aside.sort((x, y) => x.downUntil - y.downUntil);
    return good.concat(aside);
  }

  /**
   * Calls the agent in use; when it does not answer, the next one (every Consul API call this client makes
   * is safe to repeat — registrations, deregistrations and TTL updates are idempotent). A blocking query is
   * not repeated elsewhere: its index belongs to the agent that gave it, so the caller starts again with a
   * plain read (watch() does). Throws PHARE_ERR_AGENT_UNREACHABLE when no agent answered, or
   * PHARE_ERR_AGENT_RESPONSE (status = the agent's).
   */
  async call<T>(path: string, options: CallOptions = {}, blocking = false): Promise<CallResult<T>> {
    if (this.#closed)
      throw phareError('PHARE_ERR_AGENT_UNREACHABLE', `registry client for ${this.origin} is closed`);
    const order = this.#order(Date.now());
    let last: unknown;
    for (const agent of order) {
      try {
        const r = await this.#callOne<T>(agent, path, options);
        if (agent.failures > 0 || agent.downUntil > 0) {
          agent.failures = 0;
          agent.downUntil = 0;
        }
        // Stick to the agent that answered.
        this.#current = this.#agents.indexOf(agent);
        return r;
      } catch (err) {
        if ((err as { code?: string }).code !== 'PHARE_ERR_AGENT_UNREACHABLE' || options.signal?.aborted)
          throw err;
        last = err;
        agent.failures++;
        agent.downUntil =
          Date.now() + Math.min(SET_ASIDE_MAX_MS, SET_ASIDE_BASE_MS * 2 ** (agent.failures - 1));
        if (this.#agents.length > 1) {
          // Move on for the next call whatever happens to this one.
          const next = this.#order(Date.now())[0] as Agent;
          this.#current = this.#agents.indexOf(next);
        }
        if (blocking) break;
      }
    }
    throw last;
  }

  async #callOne<T>(agent: Agent, path: string, options: CallOptions): Promise<CallResult<T>> {
    const method = options.method ?? 'GET';
    const qs = encodeQuery(options.query);
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new Error(`timed out after ${timeoutMs}ms`)), timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout.signal]) : timeout.signal;
    const headers: Record<string, string> = {};
    if (this.#token) headers['x-consul-token'] = this.#token;
    let body: string | Uint8Array | undefined;
    if (options.rawBody !== undefined) body = options.rawBody;
    else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] = 'application/json';
    }
    try {
      let res: Awaited<ReturnType<Pool['request']>>;
      try {
        res = await this.#poolOf(agent).request({ path: path + qs, method, headers, body, signal });
      } catch (err) {
        if (options.signal?.aborted) throw options.signal.reason ?? err;
        throw phareError(
          'PHARE_ERR_AGENT_UNREACHABLE',
          `registry agent at ${agent.origin} did not answer ${method} ${path}: ${(err as Error).message}; check that the agent runs and the address is right`,
          { cause: err },
        );
      }
      const text = await res.body.text();
      if (res.statusCode >= 400 && !options.acceptStatus?.includes(res.statusCode)) {
        throw phareError(
          'PHARE_ERR_AGENT_RESPONSE',
          `registry agent answered ${method} ${path} with ${res.statusCode}: ${text.trim().slice(0, 300)}`,
          { status: res.statusCode },
        );
      }
      let value: unknown = text;
      const ctype = String(res.headers['content-type'] ?? '');
      if (text !== '' && (ctype.includes('json') || /^[[{"]|^(true|false|null)$/.test(text))) {
        try {
          value = JSON.parse(text);
        } catch {
          value = text;
        }
      }
      return { status: res.statusCode, headers: res.headers, value: value as T };
    } finally {
      clearTimeout(timer);
    }
  }

  /** A read with query meta (`X-Consul-Index` …). The client timeout exceeds the blocking wait. */
  async read<T>(
    path: string,
    q: QueryOptions = {},
    extra: CallOptions['query'] = {},
    acceptStatus?: number[],
  ): Promise<Indexed<T>> {
    const query: CallOptions['query'] = { ...extra };
    const dc = q.datacenter ?? this.datacenter;
    if (dc) query.dc = dc;
    if (q.filter) query.filter = q.filter;
    if (q.stale) query.stale = true;
    if (q.consistent) query.consistent = true;
    let timeoutMs: number | undefined;
    if (q.index !== undefined && q.index > 0) {
      query.index = q.index;
      const waitMs = q.waitMs ?? 300_000;
      query.wait = `${Math.max(1, Math.round(waitMs))}ms`;
      // The agent adds up to wait/16 of jitter (Consul docs, Blocking Queries); 5 s covers the network and the answer.
      timeoutMs = waitMs + waitMs / 16 + 5_000;
    }
    const r = await this.call<T>(
      path,
      { query, signal: q.signal, timeoutMs, ...(acceptStatus ? { acceptStatus } : {}) },
      timeoutMs !== undefined,
    );
    const out: Indexed<T> = {
      value: r.value,
      index: Number(r.headers['x-consul-index'] ?? 0) || 0,
      knownLeader: r.headers['x-consul-knownleader'] !== 'false',
      lastContactMs: Number(r.headers['x-consul-lastcontact'] ?? 0) || 0,
    };
    const made = Number(r.headers['x-phare-index-time']);
    if (made > 0) out.indexTimeMs = made;
    return out;
  }

  /** Closes the keep-alive pool (in-flight blocking queries are aborted). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#agents.map((a) => a.pool?.destroy().catch(() => {})));
  }
}

/** `?a=1&tag=x&tag=y&flag` — booleans are Consul presence flags (`?passing`). */
function encodeQuery(query: CallOptions['query']): string {
  if (!query) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === false) continue;
    if (v === true) parts.push(encodeURIComponent(k));
    else if (Array.isArray(v))
      for (const x of v) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(x)}`);
    else parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

/** Encodes one path segment (service names and IDs may hold characters that need escaping). */
export function seg(value: string): string {
  return encodeURIComponent(value);
}
