/**
 * Service URLs in config: a plain `http(s)://host:port` URL, or `phare://<service>[/path]`, a name the
 * SDK resolves through discovery at call time (so config never pins an instance's address).
 */
import { z } from 'zod';

/** The scheme of a service name. */
export const PHARE_SCHEME = 'phare:';

/** A parsed `phare://` name. */
export interface PhareServiceRef {
  /** The service name, as registered. */
  service: string;
  /** Path (and query) to append to the resolved instance's base URL; "" when none. */
  path: string;
}

// Consul service names are DNS labels in practice (RFC 1123), which is what DNS discovery can serve.
const SERVICE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/**
 * True when `value` is a `phare://<service>` name rather than a plain URL.
 *
 * @example
 * isPhareUrl('phare://billing/v1'); // true
 * isPhareUrl('http://127.0.0.1:4000'); // false
 */
export function isPhareUrl(value: unknown): value is string {
  return parsePhareUrl(value) !== undefined;
}

/**
 * Parses `phare://<service>[/path]`; undefined for anything else (including a malformed name).
 *
 * @example
 * parsePhareUrl('phare://billing/v1/invoices?x=1'); // { service: 'billing', path: '/v1/invoices?x=1' }
 */
export function parsePhareUrl(value: unknown): PhareServiceRef | undefined {
  if (typeof value !== 'string' || !value.toLowerCase().startsWith('phare://')) return undefined;
  const rest = value.slice('phare://'.length);
  const cut = rest.search(/[/?#]/);
  const service = cut < 0 ? rest : rest.slice(0, cut);
  if (!SERVICE_NAME.test(service)) return undefined;
  return { service, path: cut < 0 ? '' : rest.slice(cut) };
}

/**
 * A zod schema for a service URL: `http(s)://…` or `phare://<service>[/path]`.
 *
 * @example
 * const schema = z.strictObject({ billing: z.strictObject({ url: serviceUrl() }) });
 */
export function serviceUrl() {
  return z.string().refine(
    (v) => {
      if (parsePhareUrl(v)) return true;
      try {
        const u = new URL(v);
        return u.protocol === 'http:' || u.protocol === 'https:';
      } catch {
        return false;
      }
    },
    { message: 'expected an http(s):// URL or phare://<service>' },
  );
}
