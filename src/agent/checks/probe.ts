/**
 * The one interface every periodic check type implements (strategies are objects, not flags), plus the
 * helpers the probers share: defaults and Go-style error texts. Consul's check Output carries Go's error
 * strings (`dial tcp 127.0.0.1:1: connect: connection refused`); dashboards and people grep for them, so the
 * common cases are rendered the same way (Consul docs, Health checks).
 */
import { type CheckStatus, MAX_TIMER_DURATION_MS } from '../../api/index.ts';
import type { CheckDefinition } from '../catalog/index.ts';

/** What one probe found. */
export interface ProbeResult {
  status: CheckStatus;
  output: string;
}

/**
 * Runs one probe of a check definition. Implementations never throw: every failure is a `critical`
 * result whose output says why. `signal` aborts the probe (check removed, agent stopping); the result of
 * an aborted probe is discarded by the caller.
 *
 * @example
 * const prober: Prober = createTcpProber();
 * const { status, output } = await prober.run({ type: 'tcp', tcp: '127.0.0.1:5432', ...thresholds }, signal);
 */
export interface Prober {
  run(def: CheckDefinition, signal: AbortSignal): Promise<ProbeResult>;
  /** Releases pooled resources (sockets, dispatchers). */
  close?(): Promise<void>;
}

/** Consul's default probe timeout for HTTP and TCP checks (Consul docs, Check definition). */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** Consul's default and cap for the kept output (`check_output_max_size`). */
export const DEFAULT_OUTPUT_MAX_SIZE = 4096;

/** The probe timeout of a definition: `Timeout` if positive, else 10 s. */
export function timeoutOf(def: CheckDefinition): number {
  const ms = def.timeoutMs !== undefined && def.timeoutMs > 0 ? def.timeoutMs : DEFAULT_TIMEOUT_MS;
  // records loaded from an older data dir may predate the API's duration limit (issue 11 §8)
  return Math.min(ms, MAX_TIMER_DURATION_MS);
}

/** Reads `err.code`, looking through `cause` chains and AggregateErrors (happy-eyeballs dials). */
export function dialErrorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && !code.startsWith('UND_ERR_')) return code;
    const inner = (e as { errors?: unknown[] }).errors;
    if (Array.isArray(inner) && inner.length > 0) {
      const c = dialErrorCode(inner[0]);
      if (c) return c;
    }
    e = (e as { cause?: unknown }).cause;
  }
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Renders a socket error the way Go's net package words it, for the address that was dialled.
 *
 * @example
 * goDialError('127.0.0.1:1', Object.assign(new Error('x'), { code: 'ECONNREFUSED' }));
 * // 'dial tcp 127.0.0.1:1: connect: connection refused'
 */
export function goDialError(addr: string, err: unknown): string {
  const code = dialErrorCode(err);
  switch (code) {
    case 'ECONNREFUSED':
      return `dial tcp ${addr}: connect: connection refused`;
    case 'ETIMEDOUT':
      return `dial tcp ${addr}: i/o timeout`;
    case 'EHOSTUNREACH':
      return `dial tcp ${addr}: connect: no route to host`;
    case 'ENETUNREACH':
      return `dial tcp ${addr}: connect: network is unreachable`;
    case 'EADDRNOTAVAIL':
      return `dial tcp ${addr}: connect: cannot assign requested address`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `dial tcp: lookup ${hostOf(addr)}: no such host`;
    case 'ECONNRESET':
      return `read tcp ${addr}: read: connection reset by peer`;
    case 'EPIPE':
      return `write tcp ${addr}: write: broken pipe`;
    default:
      return (err instanceof Error ? err.message : String(err)).trim();
  }
}

/**
 * Splits `host:port` (IPv6 in brackets) like Go's `net.SplitHostPort`; undefined when malformed.
 *
 * @example
 * splitHostPort('[::1]:80'); // { host: '::1', port: 80 }
 */
export function splitHostPort(addr: string): { host: string; port: number } | undefined {
  const i = addr.lastIndexOf(':');
  if (i <= 0) return undefined;
  let host = addr.slice(0, i);
  const portText = addr.slice(i + 1);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  else if (host.includes(':')) return undefined; // bare IPv6 needs brackets, as in Go
  if (!/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port > 65535) return undefined;
  return { host, port };
}

function hostOf(addr: string): string {
  return splitHostPort(addr)?.host ?? addr;
}
