/**
 * The HTTP transport of the typed registry client: where the agent is, the ACL token, one keep-alive undici
 * Pool, Consul's query-meta headers, and errors from the error table.
 */
import { Pool } from 'undici';
import { phareError } from '../../api/index.ts';

/** Options of {@link createConsulClient} (and every SDK factory that talks to the registry). */
export interface ConsulClientOptions {
  /**
   * The agent: `host:port` or `http(s)://host:port`.
   * @default PHARE_HTTP_ADDR, else CONSUL_HTTP_ADDR, else CONSUL_HOST/CONSUL_PORT, else "127.0.0.1:8500"
   */
  address?: string;
  /** ACL token sent as `X-Consul-Token`. @default PHARE_HTTP_TOKEN, else CONSUL_HTTP_TOKEN, else none */
  token?: string;
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

/** Options common to reads; `index` + `waitMs` make it a blocking query (consul-api.md §2.1). */
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
 * Where the agent is, in the documented order: options, `PHARE_HTTP_ADDR`, `CONSUL_HTTP_ADDR` (with
 * `CONSUL_HTTP_SSL=true` meaning https, as the Consul CLI reads it), `CONSUL_HOST`/`CONSUL_PORT` (the npm
 * `consul` client's variables), `127.0.0.1:8500`. Returns an origin such as `http://127.0.0.1:8500`.
 *
 * @example
 * resolveAgentAddress({}, { CONSUL_HTTP_ADDR: '10.0.0.5:8500' }); // "http://10.0.0.5:8500"
 */
export function resolveAgentAddress(
  options: { address?: string } = {},
  env: Record<string, string | undefined> = process.env,
): string {
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
  if (options.address) return pick(options.address, 'address');
  if (env.PHARE_HTTP_ADDR) return pick(env.PHARE_HTTP_ADDR, 'PHARE_HTTP_ADDR');
  if (env.CONSUL_HTTP_ADDR) return pick(env.CONSUL_HTTP_ADDR, 'CONSUL_HTTP_ADDR', ssl ? 'https' : 'http');
  if (env.CONSUL_HOST || env.CONSUL_PORT) {
    const host = env.CONSUL_HOST || '127.0.0.1';
    const port = env.CONSUL_PORT || '8500';
    return pick(
      `${host.includes(':') ? `[${host}]` : host}:${port}`,
      'CONSUL_HOST/CONSUL_PORT',
      ssl ? 'https' : 'http',
    );
  }
  return 'http://127.0.0.1:8500';
}

/** Low-level transport; the area objects are thin typed wrappers over {@link Transport.call}. */
export class Transport {
  readonly origin: string;
  readonly #pool: Pool;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;
  readonly datacenter: string | undefined;
  #closed = false;

  constructor(options: ConsulClientOptions = {}) {
    const env = options.env ?? process.env;
    this.origin = resolveAgentAddress(options, env);
    this.#token = options.token ?? env.PHARE_HTTP_TOKEN ?? env.CONSUL_HTTP_TOKEN ?? undefined;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    if (!Number.isFinite(this.#timeoutMs) || this.#timeoutMs <= 0) {
      throw phareError(
        'PHARE_ERR_INVALID_ARGUMENT',
        `timeoutMs: expected a positive number, got ${options.timeoutMs}`,
      );
    }
    this.datacenter = options.datacenter;
    // Blocking queries hold a connection each, so the pool is unbounded; our own timers replace undici's
    // header/body timeouts, which would cut a 5-minute blocking query short.
    this.#pool = new Pool(this.origin, { headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 30_000 });
  }

  /** Calls the agent; throws PHARE_ERR_AGENT_UNREACHABLE or PHARE_ERR_AGENT_RESPONSE (status = agent's). */
  async call<T>(path: string, options: CallOptions = {}): Promise<CallResult<T>> {
    if (this.#closed)
      throw phareError('PHARE_ERR_AGENT_UNREACHABLE', `registry client for ${this.origin} is closed`);
    const method = options.method ?? 'GET';
    const qs = encodeQuery(options.query);
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new Error(`timed out after ${timeoutMs}ms`)), timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout.signal]) : timeout.signal;
    const headers: Record<string, string> = {};
    if (this.#token) headers['x-consul-token'] = this.#token;
    let body: string | undefined;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] = 'application/json';
    }
    try {
      let res: Awaited<ReturnType<Pool['request']>>;
      try {
        res = await this.#pool.request({ path: path + qs, method, headers, body, signal });
      } catch (err) {
        if (options.signal?.aborted) throw options.signal.reason ?? err;
        throw phareError(
          'PHARE_ERR_AGENT_UNREACHABLE',
          `registry agent at ${this.origin} did not answer ${method} ${path}: ${(err as Error).message}; check that the agent runs and the address is right`,
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
  async read<T>(path: string, q: QueryOptions = {}, extra: CallOptions['query'] = {}): Promise<Indexed<T>> {
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
      // The agent adds up to wait/16 of jitter (consul-api.md §2.1); 5 s covers the network and the answer.
      timeoutMs = waitMs + waitMs / 16 + 5_000;
    }
    const r = await this.call<T>(path, { query, signal: q.signal, timeoutMs });
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
    await this.#pool.destroy().catch(() => {});
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
