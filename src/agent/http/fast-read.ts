/**
 * The read fast path. A GET the agent already answered from its body cache (a catalog, health or KV read
 * with no `?index` to wait on) is remembered by its raw URL; when the same URL comes again, the agent
 * answers it straight from Node's `request` event — the same checks, the same cached bytes, the same
 * headers — without building fastify's request and reply objects, routing, running the hook chain and the
 * async read. That path costs a cached read ~1.5× what node:http itself costs (BENCHMARKS.md), and polling
 * watchers (the SDK, consul-template, Prometheus' Consul SD, DNS-less clients) send the same few URLs all day.
 *
 * It answers only when nothing differs from what fastify would send; anything else is left to fastify, which
 * then answers (and remembers) it as before:
 * - a GET without a body, not while the agent shuts down;
 * - the guard's Host check and, with `--tls-verify-incoming`, the client-certificate check pass (read
 *   routes never change state, so the cross-origin check has nothing to refuse);
 * - the request's token resolves (an unknown or expired one is fastify's 403), and the read's own
 *   {@link FastRead.lookup} finds the body for that token at the data's current index: the body cache holds
 *   a body only for a reader that was authorized for it in this ACL generation (a token or policy change
 *   makes a new generation), and a KV key's read asks `key:read` again itself;
 * - `?consistent`, `?cached`, `?index` and the `?raw` KV form are never remembered (they wait, or answer with
 *   other headers); errors and 404s neither.
 *
 * test/integration/fast-read.test.ts compares every header and byte of both paths.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyRequest } from 'fastify';
import type { Authorizer } from '../acl/index.ts';
import type { Blocking } from './query.ts';

/** What a remembered read finds for a reader now. */
export interface FastAnswer {
  /** `X-Consul-Index` (before the never-0 rule). */
  index: number;
  body: Buffer;
  /** ACLs left items out (`X-Consul-Results-Filtered-By-ACLs` for a named token). */
  filtered: boolean;
  /** `X-Phare-Index-Time`, when known. */
  indexTime?: number | undefined;
}

/** A remembered read, by raw URL. */
export interface FastRead {
  /** The route's path, for the request metrics. */
  route: string;
  /** `?token=` of the URL (it wins over the headers, as in {@link tokenFrom}). */
  queryToken: string | undefined;
  /** `X-Consul-Effective-Consistency` (the URL's `?stale`). */
  consistency: 'leader' | 'stale';
  /** The answer for this reader at the current index, or undefined: let fastify answer. */
  lookup(authz: Authorizer): FastAnswer | undefined;
}

/** Remembered URLs; past it the memory starts over (a flood of distinct URLs only empties it). */
const FAST_MAX = 4096;

/** The remembered reads of one HTTP API. */
export class FastReads {
  readonly #byUrl = new Map<string, FastRead>();

  /**
   * Remembers the URL of a read that just answered 200 from the body cache's bytes — if it is a GET with
   * nothing to wait for (no `?index`, not `?consistent`); `lookup` finds its answer again.
   */
  remember(req: FastifyRequest, b: Blocking, lookup: FastRead['lookup']): void {
    if (req.method !== 'GET' || b.index !== 0 || b.consistency === 'consistent') return;
    const url = req.url;
    if (this.#byUrl.size >= FAST_MAX && !this.#byUrl.has(url)) this.#byUrl.clear();
    this.#byUrl.set(url, {
      route: req.routeOptions.url ?? '',
      queryToken: queryToken(req.query as Record<string, unknown>),
      consistency: b.consistency,
      lookup,
    });
  }

  get(url: string): FastRead | undefined {
    return this.#byUrl.get(url);
  }
}

/** `?token=` of a parsed query (the first, when repeated). */
export function queryToken(query: Record<string, unknown> | undefined): string | undefined {
  const q = query?.token;
  const v = Array.isArray(q) ? q[0] : q;
  return typeof v === 'string' ? v : undefined;
}

/**
 * The request's token in Consul's order (Consul docs, HTTP API overview (authentication)): `?token=`, then
 * `X-Consul-Token`, then `Authorization: Bearer <t>` (scheme case-insensitive); undefined: the anonymous token.
 */
export function tokenFrom(queryToken: string | undefined, headers: IncomingHttpHeaders): string | undefined {
  if (queryToken !== undefined && queryToken !== '') return queryToken;
  const h = headers['x-consul-token'];
  const header = Array.isArray(h) ? h[0] : h;
  if (header) return header;
  const auth = headers.authorization;
  if (auth) {
    const m = /^\s*bearer\s+(\S+)/i.exec(auth);
    if (m) return m[1];
  }
  return undefined;
}

/** What {@link createFastPath} needs from the HTTP API. */
export interface FastPathOptions {
  reads: FastReads;
  /** Null when the request may go on (the guard's Host check, then the client-certificate check). */
  refuse(req: IncomingMessage): string | null;
  resolve(token: string | undefined): Authorizer;
  /** The agent shuts down: fastify answers 503. */
  closing: AbortSignal;
  /** `X-Consul-Default-ACL-Policy`. */
  defaultPolicy: string;
  leaderState(): { knownLeader: boolean; lastContactMs: number };
  /** Counts an answered request (the agent's request metrics). */
  countRequest(method: string, route: string, status: number): void;
}

/**
 * The `request` handler in front of fastify's: true when it answered.
 *
 * @example
 * const fast = createFastPath({ reads, refuse, resolve, closing, defaultPolicy, leaderState, countRequest });
 * http.createServer((req, res) => fast(req, res) || fastifyHandler(req, res));
 */
export function createFastPath(o: FastPathOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { reads } = o;
  return (req, res) => {
    if (req.method !== 'GET') return false;
    const read = reads.get(req.url ?? '');
    if (read === undefined || o.closing.aborted) return false;
    const h = req.headers;
    if (h['content-length'] !== undefined || h['transfer-encoding'] !== undefined) return false;
    if (o.refuse(req) !== null) return false;
    let authz: Authorizer;
    try {
      authz = o.resolve(tokenFrom(read.queryToken, h));
    } catch {
      return false; // fastify answers the 403
    }
    const a = read.lookup(authz);
    if (a === undefined) return false;
    const leader = o.leaderState();
    // the names and order fastify's path sends (server.ts, blocking.ts queryMeta, kv.routes.ts)
    const headers: Record<string, string> = { 'x-consul-default-acl-policy': o.defaultPolicy };
    if (a.filtered && !authz.anonymous) headers['x-consul-results-filtered-by-acls'] = 'true';
    if (a.indexTime !== undefined) headers['x-phare-index-time'] = String(a.indexTime);
    headers['x-consul-index'] = String(Math.max(1, a.index));
    headers['x-consul-knownleader'] = String(leader.knownLeader);
    headers['x-consul-lastcontact'] = String(leader.lastContactMs);
    headers['x-consul-effective-consistency'] = read.consistency;
    headers['x-consul-query-backend'] = 'blocking-query';
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(a.body.length);
    res.writeHead(200, headers);
    res.end(a.body);
    o.countRequest('GET', read.route, 200);
    return true;
  };
}
