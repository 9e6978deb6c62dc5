/**
 * Deadline propagation. A Phare client sends the time it still has for a request as `x-phare-deadline-ms`
 * (remaining milliseconds, relative, so clocks need not agree — the gRPC `grpc-timeout` idea). A server
 * should not work longer than that: nobody is waiting for the answer anymore.
 */

import { DEADLINE_HEADER } from '../api/index.ts';

/** The header carrying the caller's remaining time in milliseconds (its one home is `src/api`). */
export { DEADLINE_HEADER };

/** Anything with request headers: a `node:http` IncomingMessage, a Fetch `Request`, or a plain header map. */
export type RequestWithHeaders =
  | { headers: Headers }
  | { headers: Record<string, string | string[] | undefined> }
  | Request;

/**
 * The caller's remaining time in ms from `x-phare-deadline-ms`, or `undefined` when the header is absent or
 * not a non-negative number (a bad header is ignored rather than failing the request).
 *
 * @example
 * const left = remainingDeadline(req);
 * const signal = left === undefined ? undefined : AbortSignal.timeout(left);
 * const rows = await pool.query({ text: 'SELECT …', signal });
 */
export function remainingDeadline(req: RequestWithHeaders): number | undefined {
  const headers = req.headers as Headers | Record<string, string | string[] | undefined>;
  let raw: string | string[] | null | undefined;
  if (typeof (headers as Headers).get === 'function') raw = (headers as Headers).get(DEADLINE_HEADER);
  else raw = (headers as Record<string, string | string[] | undefined>)[DEADLINE_HEADER];
  if (Array.isArray(raw)) raw = raw[0];
  if (raw === undefined || raw === null || raw.trim() === '') return undefined;
  const ms = Number(raw);
  if (!Number.isFinite(ms) || ms < 0) return undefined;
  return Math.floor(ms);
}

/**
 * An AbortSignal that fires when the caller's deadline passes, or `undefined` without a deadline.
 *
 * @example
 * const res = await fetch(upstream, { signal: deadlineSignal(req) });
 */
export function deadlineSignal(req: RequestWithHeaders): AbortSignal | undefined {
  const ms = remainingDeadline(req);
  return ms === undefined ? undefined : AbortSignal.timeout(ms);
}
