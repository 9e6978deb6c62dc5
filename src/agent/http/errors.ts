/**
 * HTTP errors: Consul answers errors as plain text with its own status codes (Consul docs, HTTP API overview (errors)).
 * Handlers throw HttpError (or a PhareError, whose status the table gives); the error handler in
 * server.ts writes the text.
 */
import { PhareError } from '../../api/index.ts';
import { HttpError } from './http-error.ts';
import { REQUEST_LIMITS } from './limits.ts';

export { HttpError } from './http-error.ts';

/** The status and text for any error that reaches a request. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof PhareError) return new HttpError(err.status, err.message);
  const e = err as { statusCode?: number; code?: string; message?: string };
  if (e?.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    const kib = REQUEST_LIMITS.bodyBytes / 1024;
    return new HttpError(
      413,
      `Request body too large: the limit is ${kib} KiB (${REQUEST_LIMITS.bodyBytes} bytes; docs/api/README.md#limits)`,
    );
  }
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new HttpError(e.statusCode, e.message ?? 'Bad request');
  }
  return new HttpError(500, `Internal error: ${e?.message ?? String(err)}`);
}
