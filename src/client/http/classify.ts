/** Which failures are worth another try, and on what (the retry policy's rules). */

/** HTTP methods safe to repeat (RFC 9110 §9.2.2). */
export const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Errors raised before the request reached the server: retrying is safe even for POST. */
const NOT_SENT = new Set([
  'ECONNREFUSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/** Transport failures after connecting (reset, closed mid-request). */
const TRANSPORT = new Set([
  'ECONNRESET',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  'ECONNABORTED',
  'ETIMEDOUT',
]);

/** The code of an error or of its cause chain. */
export function transportErrorCode(err: unknown): string | undefined {
  let e = err as { code?: unknown; cause?: unknown } | undefined;
  for (let i = 0; i < 4 && e; i++) {
    if (typeof e.code === 'string' && (NOT_SENT.has(e.code) || TRANSPORT.has(e.code))) return e.code;
    e = e.cause as typeof e;
  }
  return (err as { code?: string } | undefined)?.code;
}

/** True when the request certainly did not reach the service. */
export function notSent(err: unknown): boolean {
  return NOT_SENT.has(transportErrorCode(err) ?? '');
}

/** True for connection-level failures (refused, reset, closed). */
export function isTransportError(err: unknown): boolean {
  const code = transportErrorCode(err) ?? '';
  return NOT_SENT.has(code) || TRANSPORT.has(code);
}

/**
 * `Retry-After` in ms: delta-seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or bad.
 *
 * @example
 * retryAfterMs('2'); // 2000
 */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}
