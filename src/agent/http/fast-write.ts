/**
 * The write fast path: `PUT /v1/agent/service/register` taken from Node's `request` event, ahead of fastify.
 *
 * Registration is the write every service makes at start and every registrator (Docker, Patroni, consul
 * clients) repeats; under load fastify's part of it — its request and reply objects, routing, the hook
 * chain, the content-type parser's body stream, the reply's send pipeline — was about a fifth of what an
 * agent spent on a registration it received (CPU profile of the cluster benchmark, BENCHMARKS.md). Here the
 * body is read straight from the request and the same {@link registerFromBody} decides, writes and fails as
 * the route does; the answer has the headers and bytes fastify sends (test/integration/fast-write.test.ts
 * compares both paths for answers and errors alike).
 *
 * It takes a request only when fastify would do nothing else with it; anything else goes to fastify:
 * - exactly that path with no query string (`?replace-existing-checks`, `?token` go the long way), not while
 *   the agent shuts down (fastify answers 503);
 * - a body of known length within the route's limit (`Content-Length`, no `Transfer-Encoding`), of no
 *   content type or a JSON/text one;
 * - the guard's Host check and, with `--tls-verify-incoming`, the client-certificate check pass, and no
 *   `Origin`, `Sec-Fetch-Site` or `Referer` header (the cross-origin check has nothing to weigh: browsers
 *   send one of them, programs none).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Authorizer } from '../acl/index.ts';
import { toHttpError } from './errors.ts';

/** What {@link createFastWrite} needs from the HTTP API. */
export interface FastWriteOptions {
  /** Null when the request may go on (the guard's Host check, then the client-certificate check). */
  refuse(req: IncomingMessage): string | null;
  /** The request's authorizer (token from `X-Consul-Token` or `Authorization: Bearer`); throws a 403. */
  resolve(req: IncomingMessage): Authorizer;
  /** The registration itself: the route's own work (agent.routes.ts registerFromBody). */
  register(body: Buffer, authorizer: () => Authorizer, ip: string): Promise<void>;
  /** The agent shuts down: fastify answers 503. */
  closing: AbortSignal;
  /** `X-Consul-Default-ACL-Policy`. */
  defaultPolicy: string;
  /** The route's body limit in bytes. */
  bodyLimit: number;
  logger: Logger;
  /** Counts an answered request (the agent's request metrics). */
  countRequest(method: string, route: string, status: number): void;
}

const PATH = '/v1/agent/service/register';

/** A content type fastify's catch-all parser takes as it is, as this path does. */
function plainType(t: string | undefined): boolean {
  if (t === undefined) return true;
  const v = t.trimStart().toLowerCase();
  return v.startsWith('application/json') || v.startsWith('text/plain');
}

/**
 * The `request` handler in front of fastify's (after the read fast path): true when it took the request.
 *
 * @example
 * const write = createFastWrite({ refuse, resolve, register, closing, defaultPolicy, bodyLimit, logger, countRequest });
 * http.createServer((req, res) => write(req, res) || fastifyHandler(req, res));
 */
export function createFastWrite(o: FastWriteOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const answer = (res: ServerResponse, status: number, headers: Record<string, string>, body: string) => {
    res.writeHead(status, headers);
    res.end(body);
    o.countRequest('PUT', PATH, status);
  };
  const fail = (res: ServerResponse, err: unknown) => {
    const e = toHttpError(err);
    if (e.status >= 500) o.logger.warn({ err, route: PATH }, 'request failed');
    // the names and order fastify's error path sends (server.ts sendError)
    const headers: Record<string, string> = { 'x-consul-default-acl-policy': o.defaultPolicy, ...e.headers };
    headers['content-type'] = 'text/plain; charset=utf-8';
    headers['content-length'] = String(Buffer.byteLength(e.message));
    answer(res, e.status, headers, e.message);
  };
  const ok = { 'x-consul-default-acl-policy': o.defaultPolicy, 'content-length': '0' };
  return (req, res) => {
    if (req.method !== 'PUT' || req.url !== PATH || o.closing.aborted) return false;
    const h = req.headers;
    const length = h['content-length'];
    if (length === undefined || h['transfer-encoding'] !== undefined) return false;
    const n = Number(length);
    if (!(n > 0 && n <= o.bodyLimit) || !plainType(h['content-type'])) return false;
    if (h.origin !== undefined || h['sec-fetch-site'] !== undefined || h.referer !== undefined) return false;
    if (o.refuse(req) !== null) return false;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      let authz: Authorizer | undefined;
      const authorizer = () => {
        authz ??= o.resolve(req);
        return authz;
      };
      let done: Promise<void>;
      try {
        done = o.register(body, authorizer, req.socket.remoteAddress ?? '');
      } catch (err) {
        fail(res, err);
        return;
      }
      done.then(
        () => answer(res, 200, ok, ''),
        (err: unknown) => fail(res, err),
      );
    });
    // a request whose client went away before its body ended: nothing was read, nothing is written
    req.on('error', () => {});
    return true;
  };
}
