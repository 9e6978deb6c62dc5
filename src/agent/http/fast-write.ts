/**
 * The write fast path: `PUT /v1/agent/service/register` and a plain `PUT /v1/kv/<key>` taken from Node's
 * `request` event, ahead of fastify.
 *
 * Registration is the write every service makes at start and every registrator (Docker, Patroni, consul
 * clients) repeats; a KV put is what configuration tools and leader elections write. Under load fastify's
 * part of either — its request and reply objects, routing, the hook chain, the content-type parser's body
 * stream, the reply's send pipeline — was a fifth or more of what an agent spent on the write (CPU profiles of
 * the cluster and KV benchmarks, BENCHMARKS.md). Here the body is read straight from the request and the
 * route's own code ({@link registerFromBody}, {@link putKey}) decides, writes and fails as the route does; the
 * answer has the headers and bytes fastify sends (test/integration/fast-write.test.ts compares both paths for
 * answers and errors alike).
 *
 * It takes a request only when fastify would do nothing else with it; anything else goes to fastify:
 * - exactly a route's path with no query string (`?replace-existing-checks`, `?cas`, `?acquire`, `?flags`,
 *   `?token` go the long way), not while the agent shuts down (fastify answers 503); a KV key only when the
 *   router would hand it on as sent (nothing percent-encoded, no empty segment, none starting with a dot);
 * - a body of known length within the route's limit (`Content-Length`, no `Transfer-Encoding`), of a content
 *   type the route's parser takes as it is (none or JSON/text; for KV also the form and octet-stream types
 *   curl and HTTP libraries send raw bytes with);
 * - the guard's Host check and, with `--tls-verify-incoming`, the client-certificate check pass, and no
 *   `Origin`, `Sec-Fetch-Site` or `Referer` header (the cross-origin check has nothing to weigh: browsers
 *   send one of them, programs none).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Authorizer } from '../acl/index.ts';
import type { registerFromBody } from './agent.routes.ts';
import { toHttpError } from './errors.ts';
import type { putKey } from './kv.routes.ts';

/** One route the fast path takes. */
export interface FastWriteRoute {
  /** The route as fastify names it (the request metrics' label). */
  route: string;
  /** The route's body limit in bytes. */
  bodyLimit: number;
  /** Whether the route's parser takes a body of this content type as it is. */
  takes(contentType: string | undefined): boolean;
  /** The URL's parameter (a KV key, `''` for none) when this path takes the URL as sent, else undefined. */
  match(url: string): string | undefined;
  /** The route's own work; resolves with the JSON text to answer with, or undefined for an empty 200. */
  run(param: string, body: Buffer, authorizer: () => Authorizer, ip: string): Promise<string | undefined>;
}

/** What {@link createFastWrite} needs from the HTTP API. */
export interface FastWriteOptions {
  /** Null when the request may go on (the guard's Host check, then the client-certificate check). */
  refuse(req: IncomingMessage): string | null;
  /** The request's authorizer (token from `X-Consul-Token` or `Authorization: Bearer`); throws a 403. */
  resolve(req: IncomingMessage): Authorizer;
  /** The routes taken (see {@link registerRoute}, {@link kvPutRoute}). */
  routes: readonly FastWriteRoute[];
  /** The agent shuts down: fastify answers 503. */
  closing: AbortSignal;
  /** `X-Consul-Default-ACL-Policy`. */
  defaultPolicy: string;
  logger: Logger;
  /** Counts an answered request (the agent's request metrics). */
  countRequest(method: string, route: string, status: number): void;
}

/** A content type fastify's catch-all parser takes as it is, as these routes do. */
function plainType(t: string | undefined): boolean {
  if (t === undefined) return true;
  const v = t.trimStart().toLowerCase();
  return v.startsWith('application/json') || v.startsWith('text/plain');
}

/** The raw-bytes types of KV values: `curl -d`/`--data-binary`, and libraries that label bytes as such. */
function kvType(t: string | undefined): boolean {
  if (plainType(t)) return true;
  const v = (t as string).trimStart().toLowerCase();
  return v.startsWith('application/octet-stream') || v.startsWith('application/x-www-form-urlencoded');
}

const REGISTER = '/v1/agent/service/register';

/**
 * `PUT /v1/agent/service/register`, by the route's own {@link registerFromBody}.
 *
 * @example
 * registerRoute((body, authorizer, ip) => registerFromBody(ctx, body, authorizer, false, ip), BODY_LIMIT);
 */
export function registerRoute(
  register: (body: Buffer, authorizer: () => Authorizer, ip: string) => ReturnType<typeof registerFromBody>,
  bodyLimit: number,
): FastWriteRoute {
  return {
    route: REGISTER,
    bodyLimit,
    takes: plainType,
    match: (url) => (url === REGISTER ? '' : undefined),
    run: (_param, body, authorizer, ip) => register(body, authorizer, ip).then(() => undefined),
  };
}

const KV = '/v1/kv/';
/** Segments the router hands on as sent: unreserved characters only, none empty or starting with a dot. */
const PLAIN_KEY = /^[\w~-][\w.~-]*(?:\/[\w~-][\w.~-]*)*$/;

/**
 * A plain `PUT /v1/kv/<key>` (no query: no `?cas`, `?acquire`, `?release`, `?flags`), by the route's own
 * {@link putKey}.
 *
 * @example
 * kvPutRoute((key, body, authorizer) => putKey(ctx, key, body, {}, authorizer()), KV_MAX_VALUE_BYTES);
 */
export function kvPutRoute(
  put: (key: string, body: Buffer, authorizer: () => Authorizer) => ReturnType<typeof putKey>,
  bodyLimit: number,
): FastWriteRoute {
  return {
    route: '/v1/kv/*',
    bodyLimit,
    takes: kvType,
    match: (url) => {
      if (!url.startsWith(KV)) return undefined;
      const key = url.slice(KV.length);
      return PLAIN_KEY.test(key) ? key : undefined;
    },
    run: (key, body, authorizer) => put(key, body, authorizer).then((ok) => (ok ? 'true' : 'false')),
  };
}

/**
 * The `request` handler in front of fastify's (after the read fast path): true when it took the request.
 *
 * @example
 * const write = createFastWrite({ refuse, resolve, routes: [registerRoute(register, BODY_LIMIT)], closing, defaultPolicy, logger, countRequest });
 * http.createServer((req, res) => write(req, res) || fastifyHandler(req, res));
 */
export function createFastWrite(o: FastWriteOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const answer = (
    res: ServerResponse,
    route: string,
    status: number,
    headers: Record<string, string>,
    body: string,
  ) => {
    res.writeHead(status, headers);
    res.end(body);
    o.countRequest('PUT', route, status);
  };
  const fail = (res: ServerResponse, route: string, err: unknown) => {
    const e = toHttpError(err);
    if (e.status >= 500) o.logger.warn({ err, route }, 'request failed');
    // the names and order fastify's error path sends (server.ts sendError)
    const headers: Record<string, string> = { 'x-consul-default-acl-policy': o.defaultPolicy, ...e.headers };
    headers['content-type'] = 'text/plain; charset=utf-8';
    headers['content-length'] = String(Buffer.byteLength(e.message));
    answer(res, route, e.status, headers, e.message);
  };
  const empty = { 'x-consul-default-acl-policy': o.defaultPolicy, 'content-length': '0' };
  const json = (text: string) => ({
    'x-consul-default-acl-policy': o.defaultPolicy,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
  });
  /** The route that takes `url`, with the URL's parameter. */
  const routeOf = (url: string) => {
    for (const route of o.routes) {
      const param = route.match(url);
      if (param !== undefined) return { route, param };
    }
    return undefined;
  };
  return (req, res) => {
    if (req.method !== 'PUT' || o.closing.aborted) return false;
    const taken = routeOf(req.url ?? '');
    if (!taken) return false;
    const { route, param } = taken;
    const h = req.headers;
    const length = h['content-length'];
    if (length === undefined || h['transfer-encoding'] !== undefined) return false;
    const n = Number(length);
    if (!(n > 0 && n <= route.bodyLimit) || !route.takes(h['content-type'])) return false;
    if (h.origin !== undefined || h['sec-fetch-site'] !== undefined || h.referer !== undefined) return false;
    if (o.refuse(req) !== null) return false;
    const { route: name, run } = route;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      let authz: Authorizer | undefined;
      const authorizer = () => {
        authz ??= o.resolve(req);
        return authz;
      };
      let done: Promise<string | undefined>;
      try {
        done = run(param, body, authorizer, req.socket.remoteAddress ?? '');
      } catch (err) {
        fail(res, name, err);
        return;
      }
      done.then(
        (text) =>
          text === undefined ? answer(res, name, 200, empty, '') : answer(res, name, 200, json(text), text),
        (err: unknown) => fail(res, name, err),
      );
    });
    // a request whose client went away before its body ended: nothing was read, nothing is written
    req.on('error', () => {});
    return true;
  };
}
