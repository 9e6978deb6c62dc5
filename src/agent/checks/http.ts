/**
 * HTTP checks, as Consul runs them (Consul docs, Check definition): `Method` (GET) to `HTTP` with `Header` and
 * `Body`, keep-alives off, redirects followed unless `DisableRedirects`, a client timeout of `Timeout`
 * (10 s). 2xx ⇒ passing, 429 ⇒ warning, anything else ⇒ critical. Output is
 * `HTTP GET <url>: 200 OK Output: <body>` with at most `OutputMaxSize` bytes of body.
 */
import { STATUS_CODES } from 'node:http';
import { rootCertificates } from 'node:tls';
import type { Agent, Dispatcher } from 'undici';

// undici is loaded with the first HTTP check, not at agent start: it is the largest import on the cold path.
let undici: typeof import('undici') | undefined;

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

/** Go's http.Client follows at most 10 redirects. */
const MAX_REDIRECTS = 10;

/**
 * Makes the HTTP check prober. It owns its undici dispatchers (one per TLS setting); call `close()` on
 * shutdown.
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
  const dispatchers = new Map<string, { base: Agent; follow: Dispatcher; direct: Dispatcher }>();

  function dispatcherFor(u: typeof import('undici'), def: CheckDefinition): Dispatcher {
    const key = `${def.tlsSkipVerify ? 1 : 0}|${def.tlsServerName ?? ''}`;
    let d = dispatchers.get(key);
    if (!d) {
      // pipelining 0 turns keep-alive off: Consul's check transport sets DisableKeepAlives so a probe
      // always measures a fresh connect, and a backend never sees thousands of idle sockets from us.
      const base = new u.Agent({
        pipelining: 0,
        connect: {
          rejectUnauthorized: !def.tlsSkipVerify,
          ...(ca ? { ca } : {}),
          ...(def.tlsServerName ? { servername: def.tlsServerName } : {}),
        },
      });
      d = {
        base,
        direct: base,
        follow: base.compose(u.interceptors.redirect({ maxRedirections: MAX_REDIRECTS })),
      };
      dispatchers.set(key, d);
    }
    return def.disableRedirects ? d.direct : d.follow;
  }

  async function run(def: CheckDefinition, signal: AbortSignal): Promise<ProbeResult> {
    const url = def.http ?? '';
    const method = def.method || 'GET';
    const op = method.charAt(0).toUpperCase() + method.slice(1).toLowerCase(); // Go's url.Error Op
    const timeoutMs = timeoutOf(def);
    // A probe's deadline is wall-clock time: it bounds real network I/O (Go's http.Client.Timeout covers
    // connect, headers and body), unlike the schedule which follows the injected clock. A timer cleared
    // when the probe ends, not AbortSignal.timeout/any: those live until the timeout fires, so at 1,000
    // probes/s they kept ~5 s of probes alive, promoted to the old generation (issue 11: RSS).
    const ac = new AbortController();
    const deadline = { hit: false };
    const timer = setTimeout(() => {
      deadline.hit = true;
      ac.abort();
    }, timeoutMs);
    const onAbort = () => ac.abort(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    const maxSize = def.outputMaxSize > 0 ? def.outputMaxSize : DEFAULT_OUTPUT_MAX_SIZE;
    try {
      let res: Dispatcher.ResponseData;
      try {
        undici ??= await import('undici');
        res = await undici.request(url, {
          method: method as Dispatcher.HttpMethod,
          headers: headersOf(def),
          body: def.body ? def.body : undefined,
          dispatcher: dispatcherFor(undici, def),
          signal: ac.signal,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        });
      } catch (err) {
        return {
          status: 'critical',
          output: `${op} ${JSON.stringify(url)}: ${transportError(url, err, deadline.hit)}`,
        };
      }
      const body = await readTail(res.body, maxSize);
      const code = res.statusCode;
      const status = code >= 200 && code <= 299 ? 'passing' : code === 429 ? 'warning' : 'critical';
      const statusLine = `${code} ${STATUS_CODES[code] ?? ''}`.trimEnd();
      return { status, output: `HTTP ${method} ${url}: ${statusLine} Output: ${body}` };
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  return {
    run,
    async close() {
      const all = [...dispatchers.values()];
      dispatchers.clear();
      await Promise.allSettled(all.map((d) => d.base.destroy()));
    },
  };
}

/** The check's headers plus Consul's defaults; `Host` becomes the request's Host. */
function headersOf(def: CheckDefinition): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const seen = new Set<string>();
  for (const [name, values] of Object.entries(def.header ?? {})) {
    if (!Array.isArray(values) || values.length === 0) continue;
    const lower = name.toLowerCase();
    seen.add(lower);
    // undici takes a single Host value; Go uses the first one too (req.Host = values[0]).
    out[name] = lower === 'host' ? (values[0] as string) : values;
  }
  for (const [name, value] of Object.entries(DEFAULT_HEADERS)) if (!seen.has(name)) out[name] = value;
  return out;
}

/**
 * Keeps the **last** `max` bytes of the body, as Consul does: its HTTP check copies the whole body into a
 * circular buffer of OutputMaxSize bytes (agent/checks/check.go, `circbuf.NewBuffer` + `io.Copy`), so the
 * end of a long page — where an error usually is — survives, and the stored Output never exceeds 4 KiB by
 * default. Reading stops at the probe's deadline like Go's Client.Timeout. A body that fails midway keeps
 * what arrived, as Go's check does (it logs the read error and still reports the status code).
 */
async function readTail(body: Dispatcher.ResponseData['body'], max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
      // drop whole chunks that fell out of the window: memory stays about `max` whatever the body's size
      while (chunks.length > 1 && size - (chunks[0] as Buffer).length >= max)
        size -= (chunks.shift() as Buffer).length;
    }
  } catch {
    // keep the partial body
  } finally {
    body.destroy();
  }
  const all = Buffer.concat(chunks, size);
  return (all.length > max ? all.subarray(all.length - max) : all).toString('utf8');
}

function transportError(url: string, err: unknown, deadlineHit: boolean): string {
  const code = dialErrorCode(err);
  if (deadlineHit || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return 'context deadline exceeded (Client.Timeout exceeded while awaiting headers)';
  }
  if ((err as Error | undefined)?.name === 'AbortError') return 'context canceled';
  if (code === 'UND_ERR_SOCKET') return 'EOF'; // the server closed the connection without an answer
  let addr = url;
  try {
    const u = new URL(url);
    addr = `${u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '80')}`;
  } catch {
    // not a URL: undici's own message says so
  }
  return goDialError(addr, err);
}
