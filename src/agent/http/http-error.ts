/**
 * The error a handler throws to answer with a status and a plain-text body (Consul's error style). Its own
 * module so that the request limits and the error mapping can both use it without importing each other.
 */
/** An error answered as `status` with a plain-text body. */
export class HttpError extends Error {
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.headers = headers;
  }
}
