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
import { DurationError, durationFromJson, phareError } from '../../api/index.ts';
import {
  type Acl,
  AGENT_TOKEN_NAMES,
  ANONYMOUS_ACCESSOR,
  type PolicyRecord,
  REDACTED_SECRET,
  type RoleInput,
  type RoleRecord,
  type TokenInput,
  type TokenRecord,
} from '../acl/index.ts';
import { queryMeta } from './blocking.ts';
import { authz, type Route, type RouteContext, tail, tokenOf } from './context.ts';
import { aclPolicySchema, aclRoleSchema, aclTokenSchema, agentTokenSchema, decodeBody } from './decode.ts';
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
  const roles = (t.roles ?? []).flatMap((id) => {
    const r = acl.role(id);
    return r ? [{ ID: r.id, Name: r.name }] : [];
  });
  if (roles.length > 0) out.Roles = roles;
  if (t.serviceIdentities.length > 0) out.ServiceIdentities = t.serviceIdentities;
  if (t.nodeIdentities.length > 0) out.NodeIdentities = t.nodeIdentities;
  out.Local = t.local;
  if (t.expirationTime) out.ExpirationTime = t.expirationTime;
  out.CreateTime = t.createTime;
  out.Hash = hashOf([
    t.description,
    t.policies,
    t.roles ?? [],
    t.serviceIdentities,
    t.nodeIdentities,
    t.local,
  ]);
  out.CreateIndex = t.createIndex;
  out.ModifyIndex = t.modifyIndex;
  return out;
}

function renderTokenStub(acl: Acl, t: TokenRecord): Record<string, unknown> {
  return { ...renderToken(acl, t), Legacy: false };
}

/** A role in Consul's JSON shape (`omitempty` links and identities left out when empty). */
export function renderRole(acl: Acl, r: RoleRecord): Record<string, unknown> {
  const out: Record<string, unknown> = { ID: r.id, Name: r.name, Description: r.description };
  const policies = r.policies.flatMap((id) => {
    const p = acl.policy(id);
    return p ? [{ ID: p.id, Name: p.name }] : [];
  });
  if (policies.length > 0) out.Policies = policies;
  if (r.serviceIdentities.length > 0) out.ServiceIdentities = r.serviceIdentities;
  if (r.nodeIdentities.length > 0) out.NodeIdentities = r.nodeIdentities;
  out.Hash = hashOf([r.name, r.description, r.policies, r.serviceIdentities, r.nodeIdentities]);
  out.CreateIndex = r.createIndex;
  out.ModifyIndex = r.modifyIndex;
  return out;
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
  // fields Consul has that Phare does not implement: refused by name rather than dropped, since a token
  // made without them would not have the rights its maker meant
  if (Array.isArray(b.TemplatedPolicies) && b.TemplatedPolicies.length > 0)
    throw new HttpError(
      400,
      'Invalid Token: TemplatedPolicies are not supported by Phare; link Policies instead',
    );
  if (typeof b.AuthMethod === 'string' && b.AuthMethod !== '')
    throw new HttpError(400, 'AuthMethod field is disallowed outside of login');
  let ttlMs = 0;
  if (b.ExpirationTTL !== undefined) {
    try {
      ttlMs = durationFromJson(b.ExpirationTTL);
    } catch (err) {
      if (err instanceof DurationError)
        throw new HttpError(400, `Token decoding failed: ExpirationTTL: ${err.message}`);
      throw err;
    }
  }
  return {
    ...(b.AccessorID !== undefined ? { accessorId: b.AccessorID } : {}),
    ...(b.SecretID !== undefined ? { secretId: b.SecretID } : {}),
    description: b.Description ?? '',
    policies: links(b.Policies),
    roles: links(b.Roles),
    ...identities(b),
    local: b.Local ?? false,
    ...(b.ExpirationTime ? { expirationTime: b.ExpirationTime } : {}),
    ...(ttlMs !== 0 ? { expirationTtlMs: ttlMs } : {}),
  };
}

/** The service and node identities of a token or role body. */
function identities(b: {
  ServiceIdentities?: { ServiceName: string; Datacenters?: string[] | null | undefined }[] | null | undefined;
  NodeIdentities?: { NodeName: string; Datacenter: string }[] | null | undefined;
}) {
  return {
    serviceIdentities: (b.ServiceIdentities ?? []).map((s) => ({
      ServiceName: s.ServiceName,
      ...(s.Datacenters ? { Datacenters: s.Datacenters } : {}),
    })),
    nodeIdentities: (b.NodeIdentities ?? []).map((n) => ({ NodeName: n.NodeName, Datacenter: n.Datacenter })),
  };
}

/** Consul's `[{ID}|{Name}]` links. */
function links(list: { ID?: string | undefined; Name?: string | undefined }[] | null | undefined) {
  return (list ?? []).map((l) => ({ ...(l.ID ? { id: l.ID } : {}), ...(l.Name ? { name: l.Name } : {}) }));
}

function roleInput(req: FastifyRequest, id: string): RoleInput {
  const b = decodeBody(req.body as Buffer | undefined, aclRoleSchema);
  if (Array.isArray(b.TemplatedPolicies) && b.TemplatedPolicies.length > 0)
    throw new HttpError(
      400,
      'Invalid Role: TemplatedPolicies are not supported by Phare; link Policies instead',
    );
  // Consul's ACLRoleWrite: an ID in the body must be the one in the URL (none when creating)
  if (b.ID && b.ID !== id) throw new HttpError(400, 'Role ID in URL and payload do not match');
  return {
    name: b.Name ?? '',
    description: b.Description ?? '',
    policies: links(b.Policies),
    ...identities(b),
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

// Consul's texts (acl.ACLResourceNotExistError and the delete handlers, agent/acl_endpoint.go): 404s that
// still contain `ACL not found`, the substring Consul's own clients match
/** The suffix of Consul's token clone path. */
const CLONE = '/clone';

const notExist = (what: 'token' | 'policy' | 'role') =>
  phareError('PHARE_ERR_NOT_FOUND', `Requested ${what} does not exist: ACL not found`);

/** Agent token kinds Consul has that a single-datacenter Phare agent has no use for (named in the 400). */
const UNUSED_AGENT_TOKENS = new Set([
  'agent_recovery',
  'agent_master',
  'acl_agent_master_token',
  'replication',
  'acl_replication_token',
  'config_file_service_registration',
]);

/** The ACL route table. */
export const aclRoutes: Route[] = [
  {
    // Consul's AgentToken handler: agent:write on this agent's node; `{"Token": …}`; answers 200, no body
    path: '/v1/agent/token/*',
    methods: ['PUT'],
    handler: async (req, reply, ctx) => {
      const acl = enabled(ctx);
      authz(req, ctx).require('agent', ctx.config.node, 'write');
      const body = decodeBody(req.body as Buffer | undefined, agentTokenSchema);
      const name = tail(req);
      const kind = AGENT_TOKEN_NAMES[name];
      if (kind === undefined) {
        if (UNUSED_AGENT_TOKENS.has(name))
          throw new HttpError(
            400,
            `Token ${JSON.stringify(name)} is not used by Phare (one datacenter, no replication, no recovery mode); the tokens it uses are default, agent and dns`,
          );
        throw new HttpError(404, `Token ${JSON.stringify(name)} is unknown`);
      }
      await acl.setAgentToken(kind, body.Token ?? '');
      reply.code(200).send();
    },
  },
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
      // no token named: the default token (hash only: its secret is not shown) or the anonymous one
      sendJson(
        reply,
        renderToken(acl, t, secret || (t.accessorId === ANONYMOUS_ACCESSOR ? 'anonymous' : REDACTED_SECRET)),
      );
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
        if (!t) throw notExist('token');
        queryMeta(reply, acl.index);
        return sendJson(reply, renderToken(acl, t));
      }
      a.require('acl', '', 'write');
      if (req.method === 'PUT' && id.endsWith(CLONE) && id.length > CLONE.length) {
        // `PUT /v1/acl/token/:AccessorID/clone`, body optional: `{"Description": …}` (Consul's ACLTokenClone)
        const body = req.body as Buffer | undefined;
        const description =
          body && body.toString().trim() !== '' ? (decodeBody(body, aclTokenSchema).Description ?? '') : '';
        const { token, secretId } = await acl.cloneToken(id.slice(0, -CLONE.length), description);
        return sendJson(reply, renderToken(acl, token, secretId));
      }
      if (req.method === 'PUT') {
        const t = await acl.updateToken(id, tokenInput(req));
        return sendJson(reply, renderToken(acl, t));
      }
      if (acl.token(id) && a.accessorId === id)
        throw new HttpError(403, "Deletion of the request's authorization token is not permitted");
      if (!(await acl.deleteToken(id)))
        throw phareError('PHARE_ERR_NOT_FOUND', 'Cannot find token to delete');
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
      const role = one(req.query as QueryParams, 'role');
      const list = acl
        .tokens()
        .filter((t) => !policy || t.policies.includes(policy))
        .filter((t) => !role || (t.roles ?? []).includes(role))
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
      if (!p) throw notExist('policy');
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
        if (!p) throw notExist('policy');
        queryMeta(reply, acl.index);
        return sendJson(reply, renderPolicy(p));
      }
      a.require('acl', '', 'write');
      if (req.method === 'PUT')
        return sendJson(reply, renderPolicy(await acl.updatePolicy(id, policyInput(req))));
      if (!(await acl.deletePolicy(id)))
        throw phareError('PHARE_ERR_NOT_FOUND', 'Cannot find policy to delete');
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
  {
    path: '/v1/acl/role',
    methods: ['PUT'],
    handler: async (req, reply, ctx) => {
      const acl = enabled(ctx);
      authz(req, ctx).require('acl', '', 'write');
      sendJson(reply, renderRole(acl, await acl.createRole(roleInput(req, ''))));
    },
  },
  {
    path: '/v1/acl/role/name/*',
    methods: ['GET'],
    handler: (req, reply, ctx) => {
      const acl = enabled(ctx);
      authz(req, ctx).require('acl', '', 'read');
      const name = tail(req);
      if (name === '') throw new HttpError(400, 'Missing role Name');
      const r = acl.roleByName(name);
      if (!r) throw notExist('role');
      queryMeta(reply, acl.index);
      sendJson(reply, renderRole(acl, r));
    },
  },
  {
    path: '/v1/acl/role/*',
    methods: ['GET', 'PUT', 'DELETE'],
    writesOnGet: false,
    handler: async (req, reply, ctx) => {
      const acl = enabled(ctx);
      const id = tail(req);
      const a = authz(req, ctx);
      if (id === '' && req.method !== 'PUT') throw new HttpError(400, 'Missing role ID');
      if (req.method === 'GET') {
        a.require('acl', '', 'read');
        const r = acl.role(id);
        if (!r) throw notExist('role');
        queryMeta(reply, acl.index);
        return sendJson(reply, renderRole(acl, r));
      }
      a.require('acl', '', 'write');
      if (req.method === 'PUT') {
        const input = roleInput(req, id);
        return sendJson(
          reply,
          renderRole(acl, id === '' ? await acl.createRole(input) : await acl.updateRole(id, input)),
        );
      }
      // Consul's RoleDelete answers true for a role that is not there
      await acl.deleteRole(id);
      return sendJson(reply, true);
    },
  },
  {
    path: '/v1/acl/roles',
    methods: ['GET'],
    handler: (req, reply, ctx) => {
      const acl = enabled(ctx);
      authz(req, ctx).require('acl', '', 'read');
      const policy = one(req.query as QueryParams, 'policy');
      queryMeta(reply, acl.index);
      sendJson(
        reply,
        acl
          .roles()
          .filter((r) => !policy || r.policies.includes(policy))
          .map((r) => renderRole(acl, r)),
      );
    },
  },
];
