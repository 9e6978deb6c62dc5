/**
 * The fastify adapter: registers the route table, Consul's cross-cutting conventions (plain-text errors,
 * 404/405 texts, `Allow`, `X-Consul-Default-ACL-Policy`), body limit (limits.ts), and graceful close.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { join } from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { phareError } from '../../api/index.ts';
import type { Acl } from '../acl/index.ts';
import type { Catalog } from '../catalog/index.ts';
import type { AgentConfig, HostPort } from '../config/index.ts';
import { fdBudget } from '../fd-limit.ts';
import type { KvState } from '../kv/index.ts';
import type { AgentMetrics } from '../metrics.ts';
import type { Sessions } from '../sessions/index.ts';
import { registerFromBody } from './agent.routes.ts';
import { BodyCache, queryMeta } from './blocking.ts';
import { CONNECTION_LIMITS, type ConnectionStats, guardConnections } from './connections.ts';
import { AUTHZ, type ClusterView, type Method, type RouteContext } from './context.ts';
import { toHttpError } from './errors.ts';
import { createFastPath, FastReads, tokenFrom } from './fast-read.ts';
import { createFastWrite, kvPutRoute, registerRoute } from './fast-write.ts';
import { createRequestGuard } from './guard.ts';
import { KV_MAX_VALUE_BYTES, putKey } from './kv.routes.ts';
import { REQUEST_LIMITS } from './limits.ts';
import { routes } from './routes.ts';
import { checkClientCert, serverTlsOptions, type TlsMaterial } from './tls.ts';

const UI_TYPES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};

/** Reads the UI's files; an install without them (a trimmed build) serves no UI. */
function loadUi(): Map<string, { type: string; body: Buffer }> {
  const dir = join(import.meta.dirname, '..', '..', 'ui');
  const out = new Map<string, { type: string; body: Buffer }>();
  for (const [name, type] of Object.entries(UI_TYPES)) {
    try {
      out.set(name, { type, body: readFileSync(join(dir, name)) });
    } catch {
      // missing file: leave it out
    }
  }
  return out;
}

const ALL_METHODS: readonly Method[] = ['GET', 'PUT', 'POST', 'DELETE', 'HEAD', 'PATCH'];
const BODY_LIMIT = REQUEST_LIMITS.bodyBytes;
const NOT_FOUND = 'Invalid URL path: not a recognized HTTP API endpoint\n';

/** Options of {@link createHttpApi}. */
export interface HttpApiOptions {
  catalog: Catalog;
  /** KV entries and sessions. */
  kv: KvState;
  sessions: Sessions;
  acl: Acl;
  config: AgentConfig;
  logger: Logger;
  metrics: AgentMetrics;
  /** Restarts a TTL check's timer after pass/warn/fail/update. */
  onTtlUpdate?: (checkId: string) => void;
  /**
   * Cap on open HTTP connections; at the cap a new one displaces the least recently active idle one.
   * @default half the open-file limit left after a reserve of 64, between 16 and 4,096
   */
  maxConnections?: number;
  /** Serve HTTPS with this material (tls.ts); `verifyIncoming` asks for client certificates. */
  tls?: { material: TlsMaterial; verifyIncoming: boolean };
  /** @default a single agent that is its own leader */
  cluster?: ClusterView;
  /** Where the agent's DNS listens (known only after DNS starts, after HTTP), for `agent/self`. @default none */
  dnsAddress?: () => HostPort | null;
}

/** The HTTP API server. */
export interface HttpApi {
  readonly app: FastifyInstance;
  /** Open, evicted and refused connections. */
  connections(): ConnectionStats;
  /** Listens; resolves to the bound address (the real port when asked for port 0). */
  listen(addr: HostPort): Promise<HostPort>;
  /** HTTPS only: new connections use `material`; open ones keep theirs. */
  reloadTls(material: TlsMaterial): void;
  /** Stops accepting, answers parked blocking queries, waits for in-flight requests. */
  close(): Promise<void>;
}

/**
 * Builds the HTTP API.
 *
 * @example
 * const api = await createHttpApi({ catalog, kv, sessions, config, logger, metrics });
 * const { port } = await api.listen({ host: '127.0.0.1', port: 0 });
 */
export async function createHttpApi(options: HttpApiOptions): Promise<HttpApi> {
  const { catalog, config, logger, metrics } = options;
  const closing = new AbortController();
  const self = `${catalog.local.address}:8300`;
  const ctx: RouteContext = {
    cluster: options.cluster ?? {
      knownLeader: () => true,
      lastContactMs: () => 0,
      leader: () => self,
      peers: () => [self],
    },
    catalog,
    kv: options.kv,
    sessions: options.sessions,
    acl: options.acl,
    config,
    logger,
    cache: new BodyCache(),
    fast: new FastReads(),
    limits: {
      minCheckIntervalMs: config.minCheckIntervalMs,
      minDeregisterAfterMs: config.minDeregisterAfterMs,
    },
    onTtlUpdate: options.onTtlUpdate ?? (() => {}),
    dnsAddress: options.dnsAddress ?? (() => null),
    metricsText: () => metrics.text(),
    metricsJson: () => metrics.json(),
    startedAt: Date.now(),
    closing: closing.signal,
  };

  const { tls } = options;
  // Slow clients (issue 11 §6): the same server timeouts for HTTP and HTTPS.
  const serverTimeouts = {
    headersTimeout: CONNECTION_LIMITS.headersTimeoutMs,
    connectionsCheckingInterval: CONNECTION_LIMITS.checkIntervalMs,
  };
  // Host header and cross-origin checks before anything else (guard.ts; docs/security.md).
  const guard = createRequestGuard({
    node: config.node,
    domain: config.domain,
    allowedHosts: config.allowedHosts,
  });
  // Consul sends it on every answer, `allow` with ACLs off (Consul docs, HTTP API overview)
  const defaultPolicy = options.acl.enabled ? options.acl.defaultPolicy : 'allow';
  // What refuses any request before its route: the Host header, then a client certificate when required.
  const refuse = (req: IncomingMessage | FastifyRequest) =>
    guard.checkHost(req) ?? (tls?.verifyIncoming ? checkClientCert(req) : null);
  // Reads answered before are answered again in front of fastify (fast-read.ts); the rest goes to fastify.
  const fast = createFastPath({
    reads: ctx.fast,
    refuse,
    resolve: (token) => options.acl.resolve(token),
    closing: closing.signal,
    defaultPolicy,
    leaderState: () => catalog.leaderState(),
    countRequest: (method, route, status) => {
      metrics.httpRequest(method, route, status);
      metrics.httpFastRead();
    },
  });
  // Registrations and plain KV puts are taken in front of fastify too (fast-write.ts), by the routes' own code.
  const fastWrite = createFastWrite({
    refuse,
    resolve: (req) => options.acl.resolve(tokenFrom(undefined, req.headers)),
    routes: [
      registerRoute((body, authorizer, ip) => registerFromBody(ctx, body, authorizer, false, ip), BODY_LIMIT),
      kvPutRoute((key, body, authorizer) => putKey(ctx, key, body, {}, authorizer()), KV_MAX_VALUE_BYTES),
    ],
    closing: closing.signal,
    defaultPolicy,
    logger,
    countRequest: (method, route, status) => {
      metrics.httpRequest(method, route, status);
      metrics.httpFastWrite();
    },
  });
  const app = Fastify({
    // The server fastify would make (its lib/server.js: HTTP/1.1, these timeouts), with the fast paths in front.
    serverFactory: (handler) => {
      const onRequest = (req: IncomingMessage, res: ServerResponse) => {
        if (!fast(req, res) && !fastWrite(req, res)) handler(req, res);
      };
      const server = tls
        ? createHttpsServer(
            { ...serverTlsOptions(tls.material, tls.verifyIncoming), ...serverTimeouts },
            onRequest,
          )
        : createHttpServer(serverTimeouts, onRequest);
      // Slow clients (issue 11 §6): headers and the request itself must arrive in time; the *response* is
      // not bounded (Node's requestTimeout covers receiving the request only), so blocking queries may be
      // parked for up to 10m + jitter. No socket inactivity timeout for the same reason.
      server.keepAliveTimeout = CONNECTION_LIMITS.keepAliveTimeoutMs;
      server.requestTimeout = CONNECTION_LIMITS.requestTimeoutMs;
      server.setTimeout(0);
      return server;
    },
    logger: false,
    bodyLimit: BODY_LIMIT,
    exposeHeadRoutes: false,
    routerOptions: { maxParamLength: 4096 },
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  });

  // the request's authorizer, resolved on first use (context.ts authz)
  app.decorateRequest(AUTHZ as unknown as string, null);

  // Bodies are decoded by the routes (Consul's rules), so take every content type as raw bytes.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: BODY_LIMIT }, (_req, body, done) =>
    done(null, body),
  );

  /**
   * A 404 to a read outside the agent-local endpoints carries the query-meta headers, as Consul's reads
   * do (a missing KV key): python-consul reads X-Consul-Index on every answer it treats as data and
   * fails with KeyError without it. Unknown paths get them too (README, "deliberately differs").
   */
  const notFoundMeta = (req: FastifyRequest, reply: FastifyReply) => {
    if ((req.method === 'GET' || req.method === 'HEAD') && !req.url.startsWith('/v1/agent/'))
      queryMeta(reply, catalog.index, catalog.leaderState());
  };

  const byPath = new Map(routes.map((r) => [r.path, r]));
  const sendError = (reply: FastifyReply, err: unknown, route: string) => {
    const custom = byPath.get(route)?.bodyTooLarge;
    const e =
      custom && (err as { code?: string })?.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
        ? toHttpError(custom(Number(reply.request.headers['content-length'] ?? Number.NaN)))
        : toHttpError(err);
    if (e.status >= 500) logger.warn({ err, route }, 'request failed');
    if (e.status === 404) notFoundMeta(reply.request, reply);
    for (const [k, v] of Object.entries(e.headers)) reply.header(k, v);
    reply.code(e.status).header('Content-Type', 'text/plain; charset=utf-8').send(e.message);
  };

  for (const route of routes) {
    // HTTP/1.1: a GET resource answers HEAD with the same status and headers and no body (RFC 9110 §9.3.2),
    // so `curl -I` works; Node's http server drops the body of a HEAD answer.
    const methods: readonly Method[] =
      route.methods.includes('GET') && !route.methods.includes('HEAD')
        ? [...route.methods, 'HEAD']
        : route.methods;
    const allow = `OPTIONS,${methods.join(',')}`;
    app.route({
      method: [...ALL_METHODS, 'OPTIONS'],
      url: route.path,
      // the GET forms of deregister and check pass/warn/fail (python-consul 0.7.1) change state (guard.ts)
      config: {
        writesOnGet: route.writesOnGet ?? (route.methods.includes('GET') && route.methods.includes('PUT')),
      },
      ...(route.bodyLimit !== undefined ? { bodyLimit: route.bodyLimit } : {}),
      // Synchronous when the route answers synchronously (a KV read from the cache): no promise turns then.
      handler: (req: FastifyRequest, reply: FastifyReply): FastifyReply | Promise<FastifyReply> => {
        reply.header('x-consul-default-acl-policy', defaultPolicy);
        const done = () => {
          metrics.httpRequest(req.method, route.path, reply.statusCode);
          return reply;
        };
        if (req.method === 'OPTIONS') {
          reply.code(200).header('Allow', allow).send();
        } else if (!methods.includes(req.method as Method)) {
          reply.code(405).header('Allow', allow).header('Content-Type', 'text/plain; charset=utf-8');
          reply.send(`method ${req.method} not allowed`);
        } else {
          let result: unknown;
          try {
            result = route.handler(req, reply, ctx);
          } catch (err) {
            sendError(reply, err, route.path);
          }
          if (result instanceof Promise)
            return result.then(done, (err: unknown) => {
              sendError(reply, err, route.path);
              return done();
            });
        }
        return done();
      },
    });
  }

  // A callback hook, not an async one: every request passes here, and an async hook costs a promise
  // and a microtask turn per request for a check that never waits.
  app.addHook('onRequest', (req, reply, done) => {
    const writesOnGet = (req.routeOptions.config as { writesOnGet?: boolean }).writesOnGet === true;
    const refused = refuse(req) ?? guard.checkOrigin(req, writesOnGet);
    if (refused === null) {
      done();
      return;
    }
    logger.warn({ method: req.method, url: req.url.split('?')[0], host: req.headers.host }, refused);
    metrics.httpRequest(req.method, req.routeOptions.url ?? 'unmatched', 403);
    // answered here: fastify runs nothing further when a callback hook sends without calling done
    reply.code(403).header('Content-Type', 'text/plain; charset=utf-8').send(refused);
  });

  // The web UI: three static files read once at start, served from memory (src/ui).
  const ui = loadUi();
  app.route({
    method: ['GET', 'HEAD'],
    url: '/',
    handler: (_req, reply) => {
      if (ui.size > 0) return reply.redirect('/ui/', 301);
      reply
        .header('Content-Type', 'text/plain; charset=utf-8')
        .send('Phare agent: the Consul-compatible HTTP API is under /v1/. See the README for a tour.');
    },
  });
  app.route({ method: ['GET', 'HEAD'], url: '/ui', handler: (_req, reply) => reply.redirect('/ui/', 301) });
  app.route({
    method: ['GET', 'HEAD'],
    url: '/ui/*',
    handler: (req, reply) => {
      const name = (req.params as Record<string, string>)['*'] || 'index.html';
      const file = ui.get(name);
      if (!file) return reply.code(404).header('Content-Type', 'text/plain; charset=utf-8').send('Not found');
      reply
        .header('Content-Type', file.type)
        .header('Cache-Control', 'no-cache')
        .header('X-Content-Type-Options', 'nosniff')
        .header('Content-Security-Policy', "default-src 'self'; style-src 'self'; script-src 'self'")
        .send(file.body);
    },
  });

  app.setNotFoundHandler((req, reply) => {
    if (req.url.startsWith('/v1/')) notFoundMeta(req, reply);
    reply.code(404).header('Content-Type', 'text/plain; charset=utf-8').send(NOT_FOUND);
  });
  app.setErrorHandler((err, req, reply) => sendError(reply, err, req.routeOptions.url ?? req.url));

  await app.ready();
  const connections = guardConnections(app.server, {
    maxConnections: options.maxConnections ?? fdBudget(0.5, 16, 4096),
    logger,
  });

  return {
    app,
    connections,
    async listen(addr: HostPort): Promise<HostPort> {
      try {
        await app.listen({ host: addr.host, port: addr.port });
      } catch (err) {
        const code = (err as { code?: string }).code;
        const where = `${addr.host}:${addr.port}`;
        const flag = tls ? '--https-addr' : '--http-addr';
        if (code === 'EADDRINUSE') {
          throw phareError(
            'PHARE_ERR_INVALID_ARGUMENT',
            `${flag}: ${where} is already in use (another agent, or Consul?); choose another with ${flag}`,
            { cause: err },
          );
        }
        if (code === 'EADDRNOTAVAIL' || code === 'EACCES' || code === 'ENOTFOUND') {
          throw phareError('PHARE_ERR_INVALID_ARGUMENT', `${flag}: cannot listen on ${where} (${code})`, {
            cause: err,
          });
        }
        throw err;
      }
      const a = app.server.address();
      if (a === null || typeof a === 'string') throw new Error('HTTP server has no TCP address');
      return { host: a.address, port: a.port };
    },
    reloadTls(material: TlsMaterial): void {
      if (!tls) throw new Error('reloadTls: this API serves plain HTTP');
      (app.server as unknown as HttpsServer).setSecureContext(serverTlsOptions(material, tls.verifyIncoming));
    },
    async close(): Promise<void> {
      closing.abort();
      await app.close();
    },
  };
}
