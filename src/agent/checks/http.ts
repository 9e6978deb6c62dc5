/**
 * HTTP checks, as Consul runs them (Consul docs, Check definition): `Method` (GET) to `HTTP` with `Header` and
 * `Body`, keep-alives off, redirects followed unless `DisableRedirects`, a client timeout of `Timeout`
 * (10 s). 2xx ⇒ passing, 429 ⇒ warning, anything else ⇒ critical. Output is
 * `HTTP GET <url>: 200 OK Output: <body>` with at most `OutputMaxSize` bytes of body.
 *
 * Probes use node:http, not undici (which the SDK uses for its pools). Without keep-alive every probe is a
 * new connection, and undici gives each connection a parser that holds a WeakRef to itself: V8's minor GC
 * keeps WeakRef targets alive, so every probe's socket, parser, request and buffers (~11 KB) survived into
 * the old generation. At 1,000 probes/s (10,000 checks every 10 s) that promoted ~11 MB/s, and V8 let the
 * old generation grow to 250–300 MiB between full GCs (issue 11: RSS 474 MiB). node:http's per-probe
 * objects die young, and a probe costs ~40 % less CPU (no per-connection `InformationalError` stack trace).
 */
import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';

import type { CheckDefinition } from '../catalog/index.ts';
import {
  DEFAULT_OUTPUT_MAX_SIZE,
  dialErrorCode,
  goDialError,
  type ProbeResult,
  type Prober,
  timeoutOf,
} from './probe.ts';

/** Consul's default headers, added unless the check sets them (agent/checks/check.go). */
const DEFAULT_HEADERS = { 'user-agent': 'Consul Health Check', accept: 'text/plain, text/*, */*' } as const;

/** Go's http.Client follows at most 10 redirects, then fails with "stopped after 10 redirects". */
const MAX_REDIRECTS = 10;

/** Go's Transport accepts up to 10 MB of response headers; Node's default (16 KiB) would fail big ones. */
const MAX_HEADER_SIZE = 1 << 20;

/** Headers Go's client drops when a redirect leaves the original domain (net/http client.go). */
const SENSITIVE_HEADERS = new Set(['authorization', 'www-authenticate', 'cookie', 'cookie2']);

/** Why a probe was ended early. */
type Stop = 'deadline' | 'canceled';

/** What the last hop of a probe returned. */
interface Answer {
  code: number;
  body: string;
}

/**
 * Makes the HTTP check prober. It owns its connection agents (one per TLS setting, keep-alive off); call
 * `close()` on shutdown.
 *
 * @example
 * const http = createHttpProber();
 * const r = await http.run({ type: 'http', http: 'http://127.0.0.1:8080/health', ...rest }, signal);
 * // { status: 'passing', output: 'HTTP GET http://127.0.0.1:8080/health: 200 OK Output: ok' }
 * await http.close();
 */
export function createHttpProber(
  options: { ca?: Buffer | undefined } = {},
): Prober & { close(): Promise<void> } {
  // The agent's CA is trusted in addition to the system roots (Node's `ca` replaces them otherwise), so a
  // check of a public HTTPS site keeps working next to ones signed by the agent's CA.
  const ca = options.ca ? [...rootCertificates, options.ca.toString('utf8')] : undefined;
  // keepAlive false: Consul's check transport sets DisableKeepAlives so a probe always measures a fresh
  // connect, and a backend never sees thousands of idle sockets from us (`Connection: close` is sent).
  const plain = new http.Agent({ keepAlive: false });
  const tls = new Map<string, https.Agent>();

  function agentFor(u: URL, def: CheckDefinition): http.Agent {
    if (u.protocol === 'http:') return plain;
    const key = `${def.tlsSkipVerify ? 1 : 0}|${def.tlsServerName ?? ''}`;
    let a = tls.get(key);
    if (!a) {
      a = new https.Agent({
        keepAlive: false,
        rejectUnauthorized: !def.tlsSkipVerify,
        ...(ca ? { ca } : {}),
        ...(def.tlsServerName ? { servername: def.tlsServerName } : {}),
      });
      tls.set(key, a);
    }
    return a;
  }

  async function run(def: CheckDefinition, signal: AbortSignal): Promise<ProbeResult> {
    const url = def.http ?? '';
    const method = def.method || 'GET';
    const op = method.charAt(0).toUpperCase() + method.slice(1).toLowerCase(); // Go's url.Error Op
    const maxSize = def.outputMaxSize > 0 ? def.outputMaxSize : DEFAULT_OUTPUT_MAX_SIZE;
    // A probe's deadline is wall-clock time: it bounds real network I/O (Go's http.Client.Timeout covers
    // connect, headers, body and every redirect), unlike the schedule which follows the injected clock.
    const probe = new Probe(signal, timeoutOf(def));
    try {
      let target: URL;
      try {
        target = new URL(url);
      } catch {
        return { status: 'critical', output: `${op} ${JSON.stringify(url)}: invalid URL` };
      }
      let hopMethod = method;
      let body = def.body || undefined;
      let headers = headersOf(def);
      for (let hop = 0; ; hop++) {
        if (target.protocol !== 'http:' && target.protocol !== 'https:') {
          const scheme = target.protocol.slice(0, -1);
          return {
            status: 'critical',
            output: `${op} ${JSON.stringify(url)}: unsupported protocol scheme ${JSON.stringify(scheme)}`,
          };
        }
        let res: http.IncomingMessage;
        try {
          res = await probe.send(target, {
            method: hopMethod,
            headers,
            agent: agentFor(target, def),
            maxHeaderSize: MAX_HEADER_SIZE,
            body,
          });
        } catch (err) {
          return {
            status: 'critical',
            output: `${op} ${JSON.stringify(url)}: ${transportError(target, err, probe.stopped)}`,
          };
        }
        const code = res.statusCode ?? 0;
        const next = def.disableRedirects ? undefined : redirectOf(res, target);
        if (next === undefined) {
          const answer: Answer = { code, body: await readTail(res, maxSize) };
          return render(answer, method, url);
        }
        res.destroy(); // the connection is not reused: dropping the rest of a redirect's body costs nothing
        // Go's CheckRedirect refuses the request after the 10th redirect response
        if (hop + 1 >= MAX_REDIRECTS) {
          return { status: 'critical', output: `${op} ${JSON.stringify(url)}: stopped after 10 redirects` };
        }
        // Go (net/http redirectBehavior): 301/302/303 turn anything but GET/HEAD into a GET without a
        // body; 307/308 repeat the method and body.
        if (code === 301 || code === 302 || code === 303) {
          if (hopMethod !== 'GET' && hopMethod !== 'HEAD') hopMethod = 'GET';
          body = undefined;
        }
        headers = redirectHeaders(headers, target, next.url, next.relative);
        target = next.url;
      }
    } finally {
      probe.end();
    }
  }

  return {
    run,
    async close() {
      plain.destroy();
      for (const a of tls.values()) a.destroy();
      tls.clear();
    },
  };
}

/**
 * One probe's deadline and cancellation, shared by its hops: one timer and one abort listener, both
 * released by `end()` as soon as the probe is over (a timer alive for the full timeout would keep the
 * probe's objects reachable for seconds at 1,000 probes/s).
 */
class Probe {
  stopped: Stop | undefined;
  readonly #signal: AbortSignal;
  readonly #timer: NodeJS.Timeout;
  #req: http.ClientRequest | undefined;
  readonly #onAbort = () => this.#stop('canceled');

  constructor(signal: AbortSignal, timeoutMs: number) {
    this.#signal = signal;
    this.#timer = setTimeout(() => this.#stop('deadline'), timeoutMs);
    if (signal.aborted) this.stopped = 'canceled';
    else signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  #stop(why: Stop): void {
    this.stopped ??= why;
    this.#req?.destroy(Object.assign(new Error(why), { code: 'PHARE_PROBE_STOPPED' }));
  }

  /** Sends one request; resolves with its response head (the body is left to the caller). */
  send(
    target: URL,
    o: {
      method: string;
      headers: Record<string, string | string[]>;
      agent: http.Agent;
      maxHeaderSize: number;
      body: string | undefined;
    },
  ): Promise<http.IncomingMessage> {
    if (this.stopped) return Promise.reject(new Error(this.stopped));
    return new Promise((resolve, reject) => {
      const lib = target.protocol === 'https:' ? https : http;
      const req = lib.request(
        target,
        { method: o.method, headers: o.headers, agent: o.agent, maxHeaderSize: o.maxHeaderSize },
        resolve,
      );
      this.#req = req;
      req.once('error', reject);
      req.end(o.body);
    });
  }

  end(): void {
    clearTimeout(this.#timer);
    this.#signal.removeEventListener('abort', this.#onAbort);
    this.#req?.destroy();
    this.#req = undefined;
  }
}

function render(a: Answer, method: string, url: string): ProbeResult {
  const status = a.code >= 200 && a.code <= 299 ? 'passing' : a.code === 429 ? 'warning' : 'critical';
  const statusLine = `${a.code} ${http.STATUS_CODES[a.code] ?? ''}`.trimEnd();
  return { status, output: `HTTP ${method} ${url}: ${statusLine} Output: ${a.body}` };
}

/** Where a 3xx points (Go follows 301, 302, 303, 307 and 308 that carry a Location), or undefined. */
function redirectOf(res: http.IncomingMessage, from: URL): { url: URL; relative: boolean } | undefined {
  const code = res.statusCode ?? 0;
  if (code !== 301 && code !== 302 && code !== 303 && code !== 307 && code !== 308) return undefined;
  const location = res.headers.location;
  if (!location) return undefined;
  try {
    return { url: new URL(location, from), relative: !/^[a-z][a-z0-9+.-]*:|^\/\//i.test(location) };
  } catch {
    return undefined;
  }
}

/**
 * The headers of a redirected request, as Go builds them: the original ones, minus the sensitive ones when
 * the redirect leaves the domain (and is not a subdomain of it), and minus a custom Host unless the
 * Location was relative.
 */
function redirectHeaders(
  headers: Record<string, string | string[]>,
  from: URL,
  to: URL,
  relative: boolean,
): Record<string, string | string[]> {
  const sameDomain = to.hostname === from.hostname || to.hostname.endsWith(`.${from.hostname}`);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (lower === 'host' && !relative) continue;
    if (!sameDomain && SENSITIVE_HEADERS.has(lower)) continue;
    out[name] = value;
  }
  return out;
}

/** The check's headers plus Consul's defaults; `Host` becomes the request's Host. */
function headersOf(def: CheckDefinition): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const seen = new Set<string>();
  for (const [name, values] of Object.entries(def.header ?? {})) {
    if (!Array.isArray(values) || values.length === 0) continue;
    const lower = name.toLowerCase();
    seen.add(lower);
    // one Host value: Go uses the first one too (req.Host = values[0]).
    out[name] = lower === 'host' ? (values[0] as string) : values;
  }
  for (const [name, value] of Object.entries(DEFAULT_HEADERS)) if (!seen.has(name)) out[name] = value;
  return out;
}

/**
 * Keeps the **last** `max` bytes of the body, as Consul does: its HTTP check copies the whole body into a
 * circular buffer of OutputMaxSize bytes (agent/checks/check.go, `circbuf.NewBuffer` + `io.Copy`), so the
 * end of a long page — where an error usually is — survives, and the stored Output never exceeds 4 KiB by
 * default. Reading stops at the probe's deadline like Go's Client.Timeout (the probe destroys the
 * response). A body that fails midway keeps what arrived, as Go's check does (it logs the read error and
 * still reports the status code).
 */
function readTail(res: http.IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      const all = Buffer.concat(chunks, size);
      resolve((all.length > max ? all.subarray(all.length - max) : all).toString('utf8'));
    };
    res.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      // drop whole chunks that fell out of the window: memory stays about `max` whatever the body's size
      while (chunks.length > 1 && size - (chunks[0] as Buffer).length >= max)
        size -= (chunks.shift() as Buffer).length;
    });
    res.once('end', done);
    res.once('close', done); // aborted midway (reset, deadline): keep what arrived
    res.on('error', () => {}); // reported through 'close'
  });
}

function transportError(target: URL, err: unknown, stopped: Stop | undefined): string {
  if (stopped === 'deadline') {
    return 'context deadline exceeded (Client.Timeout exceeded while awaiting headers)';
  }
  if (stopped === 'canceled') return 'context canceled';
  const e = err as { code?: string; message?: string } | undefined;
  // the server closed the connection without an answer: Go's transport reports io.EOF
  if (e?.code === 'ECONNRESET' && e.message === 'socket hang up') return 'EOF';
  if (dialErrorCode(err) === 'HPE_HEADER_OVERFLOW') return 'net/http: HTTP/1.x transport connection broken';
  // URL.hostname keeps an IPv6 literal's brackets, as Go's host:port does
  return goDialError(
    `${target.hostname}:${target.port || (target.protocol === 'https:' ? '443' : '80')}`,
    err,
  );
}
