/**
 * `/v1/acl/*` (developer.hashicorp.com/consul/api-docs/acl, …/acl/tokens, …/acl/policies): bootstrap, tokens
 * and policies. Reads need `acl:read`, writes `acl:write` (a management token has both; the default `allow`
 * policy grants neither, as in Consul); `token/self` needs only a token. With ACLs off every path answers
 * Consul's 401 `ACL support disabled`.
 *
 * Secrets are stored as SHA-256 only, so a token read answers `SecretID: "<hidden>"` (Consul's own redaction
 * text) — the SecretID is shown once, in the answer that created it (and to its holder, on token/self).
 */
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { phareError } from '../../api/index.ts';
import {
  type Acl,
  type PolicyRecord,
  REDACTED_SECRET,
  type TokenInput,
  type TokenRecord,
} from '../acl/index.ts';
import { queryMeta } from './blocking.ts';
import { authz, type Route, type RouteContext, tail, tokenOf } from './context.ts';
import { aclPolicySchema, aclTokenSchema, decodeBody } from './decode.ts';
import { HttpError } from './errors.ts';
import { one, type QueryParams } from './query.ts';
import { sendJson } from './respond.ts';

function enabled(ctx: RouteContext): Acl {
  if (!ctx.acl.enabled) throw phareError('PHARE_ERR_ACL_DISABLED', 'ACL support disabled');
  return ctx.acl;
}

function hashOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('base64');
}

/** A token in Consul's JSON shape (`omitempty` fields left out when empty, as Consul). */
export function renderToken(acl: Acl, t: TokenRecord, secretId = REDACTED_SECRET): Record<string, unknown> {
  const out: Record<string, unknown> = { AccessorID: t.accessorId, SecretID: secretId };
  out.Description = t.description;
  // a link to a deleted policy is dropped when shown (Consul resolves links lazily)
  const policies = t.policies.flatMap((id) => {
    const p = acl.policy(id);
    return p ? [{ ID: p.id, Name: p.name }] : [];
  });
  if (policies.length > 0) out.Policies = policies;
  if (t.serviceIdentities.length > 0) out.ServiceIdentities = t.serviceIdentities;
  if (t.nodeIdentities.length > 0) out.NodeIdentities = t.nodeIdentities;
  out.Local = t.local;
  out.CreateTime = t.createTime;
  out.Hash = hashOf([t.description, t.policies, t.serviceIdentities, t.nodeIdentities, t.local]);
  out.CreateIndex = t.createIndex;
  out.ModifyIndex = t.modifyIndex;
  return out;
}

function renderTokenStub(acl: Acl, t: TokenRecord): Record<string, unknown> {
  return { ...renderToken(acl, t), Legacy: false };
}

/** A policy in Consul's JSON shape; the list form (`stub`) has no Rules, as Consul's ACLPolicyListStub. */
export function renderPolicy(p: PolicyRecord, stub = false): Record<string, unknown> {
  const out: Record<string, unknown> = { ID: p.id, Name: p.name, Description: p.description };
  if (!stub) out.Rules = p.rules;
  if (p.datacenters.length > 0) out.Datacenters = p.datacenters;
  out.Hash = hashOf([p.name, p.description, p.rules, p.datacenters]);
  out.CreateIndex = p.createIndex;
  out.ModifyIndex = p.modifyIndex;
  return out;
}

function tokenInput(req: FastifyRequest): TokenInput {
  const b = decodeBody(req.body as Buffer | undefined, aclTokenSchema);
  if ((b.Roles ?? []).length > 0)
    throw new HttpError(400, 'Invalid Token: Roles are not supported by Phare; link Policies instead');
  if (b.ExpirationTTL !== undefined || (b.ExpirationTime ?? null) !== null)
    throw new HttpError(
      400,
      'Invalid Token: token expiry (ExpirationTTL, ExpirationTime) is not supported by Phare',
    );
  return {
    ...(b.AccessorID !== undefined ? { accessorId: b.AccessorID } : {}),
    ...(b.SecretID !== undefined ? { secretId: b.SecretID } : {}),
    description: b.Description ?? '',
    policies: (b.Policies ?? []).map((l) => ({
      ...(l.ID ? { id: l.ID } : {}),
      ...(l.Name ? { name: l.Name } : {}),
    })),
    serviceIdentities: (b.ServiceIdentities ?? []).map((s) => ({
      ServiceName: s.ServiceName,
      ...(s.Datacenters ? { Datacenters: s.Datacenters } : {}),
    })),
    nodeIdentities: (b.NodeIdentities ?? []).map((n) => ({ NodeName: n.NodeName, Datacenter: n.Datacenter })),
    local: b.Local ?? false,
  };
}

function policyInput(req: FastifyRequest) {
  const b = decodeBody(req.body as Buffer | undefined, aclPolicySchema);
  return {
    name: b.Name ?? '',
    description: b.Description ?? '',
    rules: b.Rules ?? '',
    datacenters: b.Datacenters ?? [],
  };
}

const notFound = () => phareError('PHARE_ERR_ACL_NOT_FOUND', 'ACL not found');
const policyNotFound = () => phareError('PHARE_ERR_NOT_FOUND', 'ACL policy not found');

/** The ACL route table. */
export const aclRoutes: Route[] = [
  {
    path: '/v1/acl/bootstrap',
    methods: ['PUT'],
    handler: async (_req, reply, ctx) => {
      const acl = enabled(ctx);
      const { token, secretId } = await acl.bootstrap();
      sendJson(reply, renderToken(acl, token, secretId));
    },
  },
  {
    path: '/v1/acl/token',
    methods: ['PUT'],
    handler: async (req, reply, ctx) => {
      const acl = enabled(ctx);
      authz(req, ctx).require('acl', '', 'write');
      const { token, secretId } = await acl.createToken(tokenInput(req));
      sendJson(reply, renderToken(acl, token, secretId));
    },
  },
  {
    path: '/v1/acl/token/self',
    methods: ['GET'],
    handler: (req, reply, ctx) => {
      const acl = enabled(ctx);
      const secret = tokenOf(req);
      // the caller holds the secret: it is shown back, as Consul does
      const t = acl.tokenBySecret(secret);
      sendJson(reply, renderToken(acl, t, secret ?? 'anonymous'));
    },
  },
  {
    path: '/v1/acl/token/*',
    methods: ['GET', 'PUT', 'DELETE'],
    writesOnGet: false,
    handler: async (req, reply, ctx) => {
      const acl = enabled(ctx);
      const id = tail(req);
      const a = authz(req, ctx);
      if (req.method === 'GET') {
        a.require('acl', '', 'read');
        const t = acl.token(id);
        if (!t) throw notFound();
        queryMeta(reply, acl.index);
        return sendJson(reply, renderToken(acl, t));
      }
      a.require('acl', '', 'write');
      if (req.method === 'PUT') {
        const t = await acl.updateToken(id, tokenInput(req));
        return sendJson(reply, renderToken(acl, t));
      }
      if (acl.token(id) && a.accessorId === id)
        throw new HttpError(403, "Deletion of the request's authorization token is not permitted");
      await acl.deleteToken(id);
      return sendJson(reply, true);
    },
  },
  {
    path: '/v1/acl/tokens',
    methods: ['GET'],
    handler: (req, reply, ctx) => {
      const acl = enabled(ctx);
      authz(req, ctx).require('acl', '', 'read');
      const policy = one(req.query as QueryParams, 'policy');
      const list = acl
        .tokens()
        .filter((t) => !policy || t.policies.includes(policy))
        .map((t) => renderTokenStub(acl, t));
      queryMeta(reply, acl.index);
      sendJson(reply, list);
    },
  },
  {
    path: '/v1/acl/policy',
    methods: ['PUT'],
    handler: async (req, reply, ctx) => {
      const acl = enabled(ctx);
      authz(req, ctx).require('acl', '', 'write');
      sendJson(reply, renderPolicy(await acl.createPolicy(policyInput(req))));
    },
  },
  {
    path: '/v1/acl/policy/name/*',
    methods: ['GET'],
    handler: (req, reply, ctx) => {
      const acl = enabled(ctx);
      authz(req, ctx).require('acl', '', 'read');
      const p = acl.policyByName(tail(req));
      if (!p) throw policyNotFound();
      queryMeta(reply, acl.index);
      sendJson(reply, renderPolicy(p));
    },
  },
  {
    path: '/v1/acl/policy/*',
    methods: ['GET', 'PUT', 'DELETE'],
    writesOnGet: false,
    handler: async (req, reply, ctx) => {
      const acl = enabled(ctx);
      const id = tail(req);
      const a = authz(req, ctx);
      if (req.method === 'GET') {
        a.require('acl', '', 'read');
        const p = acl.policy(id);
        if (!p) throw policyNotFound();
        queryMeta(reply, acl.index);
        return sendJson(reply, renderPolicy(p));
      }
      a.require('acl', '', 'write');
      if (req.method === 'PUT')
        return sendJson(reply, renderPolicy(await acl.updatePolicy(id, policyInput(req))));
      await acl.deletePolicy(id);
      return sendJson(reply, true);
    },
  },
  {
    path: '/v1/acl/policies',
    methods: ['GET'],
    handler: (req, reply, ctx) => {
      const acl = enabled(ctx);
      authz(req, ctx).require('acl', '', 'read');
      queryMeta(reply, acl.index);
      sendJson(
        reply,
        acl.policies().map((p) => renderPolicy(p, true)),
      );
    },
  },
];
