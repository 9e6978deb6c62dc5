/**
 * `/v1/session/*` (developer.hashicorp.com/consul/api-docs/session; Consul `agent/session_endpoint.go`).
 * Errors Consul's servers raise (bad TTL, unknown node or check, bad Behavior) are 500s with Consul's text:
 * Patroni keys on `Invalid Session TTL` (then reads `Config.SessionTTLMin` from agent/self) and on
 * `invalid session`.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DurationError, formatDuration, parseDuration } from '../../api/index.ts';
import type { SessionRecord } from '../kv/index.ts';
import { SESSION_LIMITS, type SessionCreateInput, SessionError } from '../sessions/index.ts';
import { parkRead, serialize, setQueryMeta } from './blocking.ts';
import { AclFilter, authz, type Route, type RouteContext, tail } from './context.ts';
import { decodeBody, sessionCreateSchema } from './decode.ts';
import { HttpError } from './errors.ts';
import { checkDatacenter, flag, type QueryParams } from './query.ts';
import { sendJson } from './respond.ts';

const SERF_CHECK = 'serfHealth';

/** A session in Consul's shape: LockDelay in ns, TTL as written, empty check lists as null (Go nil). */
export function renderSession(s: SessionRecord): Record<string, unknown> {
  return {
    ID: s.id,
    Name: s.name,
    Node: s.node,
    LockDelay: Math.round(s.lockDelayMs * 1e6),
    Behavior: s.behavior,
    TTL: s.ttl,
    NodeChecks: s.nodeChecks.length > 0 ? s.nodeChecks : null,
    ServiceChecks:
      s.serviceChecks.length > 0 ? s.serviceChecks.map((c) => ({ ID: c.id, Namespace: c.namespace })) : null,
    CreateIndex: s.createIndex,
    ModifyIndex: s.modifyIndex,
  };
}

/** Consul's FixupLockDelay: a duration below 1000 ns is a number of seconds. Returns ms. */
function lockDelayMs(v: string | number | undefined): number {
  if (v === undefined) return SESSION_LIMITS.defaultLockDelayMs;
  let ns: number;
  if (typeof v === 'number') ns = v;
  else {
    try {
      ns = parseDuration(v) * 1e6;
    } catch (err) {
      throw new HttpError(
        400,
        `Request decode failed: ${err instanceof DurationError ? err.message : String(err)}`,
      );
    }
  }
  if (ns < 1000) ns *= 1e9;
  return ns / 1e6;
}

/** Decodes and checks a create body into the session manager's input (Consul's texts and defaults). */
export function sessionCreateInput(body: Buffer | undefined): SessionCreateInput {
  // An empty body takes every default (Consul decodes only when there is a body).
  const b = body && body.toString('utf8').trim() !== '' ? decodeBody(body, sessionCreateSchema) : {};
  const behavior = b.Behavior ?? '';
  if (behavior !== '' && behavior !== 'release' && behavior !== 'delete')
    throw new HttpError(500, `Invalid Behavior setting '${behavior}'`);
  // Sending `Checks` or `NodeChecks` at all, even [], replaces the default serfHealth (Consul FixupChecks).
  const explicit = b.Checks !== undefined || b.NodeChecks !== undefined;
  const nodeChecks = [
    ...new Set([...(explicit ? [] : [SERF_CHECK]), ...(b.NodeChecks ?? []), ...(b.Checks ?? [])]),
  ];
  const ttl = b.TTL ?? '';
  let ttlMs = 0;
  if (ttl !== '') {
    try {
      ttlMs = parseDuration(ttl);
    } catch (err) {
      throw new HttpError(500, `Session TTL '${ttl}' invalid: ${(err as Error).message}`);
    }
    if (ttlMs !== 0 && (ttlMs < SESSION_LIMITS.ttlMinMs || ttlMs > SESSION_LIMITS.ttlMaxMs)) {
      throw new HttpError(
        500,
        `Invalid Session TTL '${Math.round(ttlMs * 1e6)}', must be between [${formatDuration(SESSION_LIMITS.ttlMinMs)}=${formatDuration(SESSION_LIMITS.ttlMaxMs)}]`,
      );
    }
  }
  return {
    name: b.Name ?? '',
    node: b.Node,
    nodeChecks,
    serviceChecks: (b.ServiceChecks ?? []).map((c) => ({ id: c.ID, namespace: c.Namespace ?? '' })),
    lockDelayMs: lockDelayMs(b.LockDelay),
    behavior: behavior === '' ? 'release' : behavior,
    ttlMs,
    ttl,
  };
}

function sessionId(req: FastifyRequest): string {
  const id = tail(req);
  if (id === '') throw new HttpError(400, 'Missing session');
  return id;
}

/** A blocking read over the sessions table. */
async function sessionsRead(
  req: FastifyRequest,
  reply: FastifyReply,
  ctx: RouteContext,
  build: () => SessionRecord[],
): Promise<void> {
  const q = req.query as QueryParams;
  checkDatacenter(q, ctx.config.datacenter);
  const { kv } = ctx;
  const b = await parkRead(
    {
      current: () => kv.sessionsIndex,
      wait: (min, ms, signal) => kv.waitForChange('sessions', min, ms, signal),
    },
    ctx.closing,
    req,
    reply,
  );
  if (!b) return;
  if (b.consistency === 'consistent') await kv.catchUp();
  setQueryMeta(reply, kv.sessionsIndex, b.consistency, ctx.catalog.leaderState());
  // Consul's filterSessions: session:read on the session's node
  const acl = new AclFilter(authz(req, ctx));
  const visible = build().filter((s) => acl.may('session', s.node));
  acl.mark(reply);
  reply
    .header('Content-Type', 'application/json')
    .send(serialize(visible.map(renderSession), flag(q, 'pretty')));
}

/** The session route table. */
export const sessionRoutes: Route[] = [
  {
    path: '/v1/session/create',
    methods: ['PUT'],
    handler: async (req, reply, ctx) => {
      checkDatacenter(req.query as QueryParams, ctx.config.datacenter);
      const input = sessionCreateInput(req.body as Buffer | undefined);
      authz(req, ctx).require('session', input.node ?? ctx.catalog.local.name, 'write');
      try {
        sendJson(reply, { ID: await ctx.sessions.create(input) });
      } catch (err) {
        if (err instanceof SessionError) throw new HttpError(500, err.message);
        throw err;
      }
    },
  },
  {
    path: '/v1/session/renew/*',
    methods: ['PUT'],
    handler: async (req, reply, ctx) => {
      const id = sessionId(req);
      const held = ctx.sessions.info(id);
      if (held) authz(req, ctx).require('session', held.node, 'write');
      const s = await ctx.sessions.renew(id);
      if (!s) throw new HttpError(404, `Session id '${id}' not found`);
      sendJson(reply, [renderSession(s)]);
    },
  },
  {
    path: '/v1/session/destroy/*',
    methods: ['PUT'],
    handler: async (req, reply, ctx) => {
      const id = sessionId(req);
      const held = ctx.sessions.info(id);
      if (held) authz(req, ctx).require('session', held.node, 'write');
      await ctx.sessions.destroy(id);
      sendJson(reply, true);
    },
  },
  {
    path: '/v1/session/info/*',
    methods: ['GET'],
    handler: (req, reply, ctx) => {
      const id = sessionId(req);
      return sessionsRead(req, reply, ctx, () => {
        const s = ctx.sessions.info(id);
        return s ? [s] : [];
      });
    },
  },
  {
    path: '/v1/session/node/*',
    methods: ['GET'],
    handler: (req, reply, ctx) => {
      const node = tail(req);
      if (node === '') throw new HttpError(400, 'Missing node name');
      return sessionsRead(req, reply, ctx, () => ctx.sessions.onNode(node));
    },
  },
  {
    path: '/v1/session/list',
    methods: ['GET'],
    handler: (req, reply, ctx) => sessionsRead(req, reply, ctx, () => ctx.sessions.list()),
  },
];
