import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Acl, Authorizer, Resource } from '../acl/index.ts';
import type { Catalog } from '../catalog/index.ts';
import type { AgentConfig, HostPort } from '../config/index.ts';
import type { KvState } from '../kv/index.ts';
import type { Sessions } from '../sessions/index.ts';
import type { BodyCache } from './blocking.ts';
import { type FastReads, queryToken, tokenFrom } from './fast-read.ts';
import type { ValidationLimits } from './validate.ts';

/**
 * What the HTTP API shows of the cluster: a single agent is its own leader; with `--store etcd` these come
 * from etcd (its leader and members) and from the agents' membership records.
 */
export interface ClusterView {
  /** `X-Consul-KnownLeader`. */
  knownLeader(): boolean;
  /** `X-Consul-LastContact` (ms). */
  lastContactMs(): number;
  /** `/v1/status/leader`: `host:port`, or '' without a leader (as Consul answers). */
  leader(): string;
  /** `/v1/status/peers`. */
  peers(): string[];
  /** `/v1/agent/members`; undefined lists this agent alone. */
  members?(): { node: string; address: string; status: 'alive' | 'failed' | 'left' }[];
}

/** What every route handler gets. */
export interface RouteContext {
  /** Leader and members (see {@link ClusterView}). */
  cluster: ClusterView;
  catalog: Catalog;
  /** KV entries and sessions (src/agent/kv). */
  kv: KvState;
  sessions: Sessions;
  /** ACL tokens and policies; every handler asks {@link authz} what the request's token may do. */
  acl: Acl;
  config: AgentConfig;
  logger: Logger;
  cache: BodyCache;
  /** Reads the fast path may answer again (fast-read.ts). */
  fast: FastReads;
  limits: ValidationLimits;
  /** Called after a TTL check got a pass/warn/fail/update, so its expiry timer restarts. */
  onTtlUpdate(checkId: string): void;
  /** Where the agent's DNS listens, or null (off, or not started yet). */
  dnsAddress(): HostPort | null;
  /** Prometheus text of the agent's metrics. */
  metricsText(): Promise<string>;
  /** Consul-style JSON metrics. */
  metricsJson(): Promise<unknown>;
  startedAt: number;
  /** Aborted when the server shuts down: parked blocking queries answer at once. */
  closing: AbortSignal;
}

/** HTTP methods the router knows; anything else on a known path is a 405. */
export type Method = 'GET' | 'PUT' | 'POST' | 'DELETE' | 'HEAD' | 'PATCH';

/** One row of the route table. */
export interface Route {
  path: string;
  methods: readonly Method[];
  handler: (req: FastifyRequest, reply: FastifyReply, ctx: RouteContext) => unknown;
  /**
   * Whether GET changes state (the GET forms python-consul 0.7.1 uses). @default true when the route takes
   * both GET and PUT; `/v1/kv` sets false: its GET only reads.
   */
  writesOnGet?: boolean;
  /** A body limit other than the API's (bytes); `PUT /v1/kv` takes Consul's kv_max_value_size. */
  bodyLimit?: number;
  /** The error a body over `bodyLimit` gets, given its Content-Length (Consul's own texts). */
  bodyTooLarge?: (contentLength: number) => Error;
}

/** The wildcard tail of a path (`/v1/agent/service/deregister/*`), URL-decoded. */
export function tail(req: FastifyRequest): string {
  return (req.params as Record<string, string>)['*'] ?? '';
}

/**
 * The request's token (Consul docs, HTTP API overview (authentication), in Consul's order): `?token=`, then `X-Consul-Token`, then
 * `Authorization: Bearer <t>` (scheme case-insensitive); none: the anonymous token.
 */
export function tokenOf(req: FastifyRequest): string | undefined {
  return tokenFrom(queryToken(req.query as Record<string, unknown> | undefined), req.headers);
}

/**
 * Where a request keeps its resolved authorizer. server.ts declares it with `decorateRequest` so every
 * request object has the slot from birth (one shape for V8, not a property added mid-request).
 */
export const AUTHZ = Symbol('phare.authz');

/**
 * What the request's token may do, resolved once per request and only when a handler asks — as Consul,
 * endpoints that check nothing (status) never fail on a bad token. An unknown secret throws 403 `ACL not found`.
 *
 * @example
 * authz(req, ctx).require('service', 'web', 'write');
 */
export function authz(req: FastifyRequest, ctx: RouteContext): Authorizer {
  const r = req as FastifyRequest & { [AUTHZ]?: Authorizer | null };
  r[AUTHZ] ??= ctx.acl.resolve(tokenOf(req));
  return r[AUTHZ];
}

/**
 * Read-side ACL filtering of one answer: items the token may not read are left out, and the answer says
 * so with `X-Consul-Results-Filtered-By-ACLs: true` (only for a named token, as Consul).
 */
export class AclFilter {
  /** Whether something was left out. */
  filtered = false;
  readonly authz: Authorizer;
  constructor(a: Authorizer) {
    this.authz = a;
  }
  /** May the token read `resource` `name`? Records a refusal. */
  may(resource: Resource, name: string): boolean {
    if (this.authz.allowAll) return true;
    const ok = this.authz.allows(resource, name, 'read');
    if (!ok) this.filtered = true;
    return ok;
  }
  service(name: string): boolean {
    return this.may('service', name);
  }
  node(name: string): boolean {
    return this.may('node', name);
  }
  /** Sets the header when something was filtered (a named token only). */
  mark(reply: FastifyReply, filtered = this.filtered): void {
    if (filtered && !this.authz.anonymous) reply.header('X-Consul-Results-Filtered-By-ACLs', 'true');
  }
}
