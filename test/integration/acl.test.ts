/**
 * ACL tokens end to end (issue 14) against a real agent: default-deny with Consul's 403 texts, bootstrap,
 * tokens and policies over the HTTP API (HCL and JSON rules), prefix rules, filtered lists with
 * `X-Consul-Results-Filtered-By-ACLs`, KV and sessions, secrets hashed on disk and surviving a restart, and
 * DNS with and without a DNS token (`dig`, plus the warning the agent prints when default-deny empties DNS).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { resolveAgentConfig } from '../../src/agent/config/index.ts';
import { type RunningAgent, startAgent } from '../../src/agent/index.ts';
import { spawnAgent, startAgentInProcess, tempDir } from '../helpers/agent.ts';
import { dependencySkip } from '../helpers/requires.ts';

const exec = promisify(execFile);
const ANON = '00000000-0000-0000-0000-000000000002';

interface Res {
  status: number;
  text: string;
  headers: Headers;
  json(): unknown;
}

async function call(
  base: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Res> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers['X-Consul-Token'] = options.token;
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    ...(options.body !== undefined
      ? { body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) }
      : {}),
  });
  const text = await res.text();
  return { status: res.status, text, headers: res.headers, json: () => JSON.parse(text) };
}

const register = (base: string, id: string, name: string, token?: string) =>
  call(base, 'PUT', '/v1/agent/service/register', {
    body: { ID: id, Name: name, Port: 80, Address: '127.0.0.1' },
    ...(token ? { token } : {}),
  });

describe('acl: default deny over the HTTP API', () => {
  let agent: RunningAgent & { url: string };
  let mgmt: string;
  let webToken: string;
  let webAccessor: string;

  before(async () => {
    agent = await startAgentInProcess({ flags: { 'acl-enabled': true, 'acl-default-policy': 'deny' } });
  });
  after(() => agent?.close());

  test("anonymous register is refused with Consul's text; every answer names the default policy", async () => {
    const r = await register(agent.url, 'web-1', 'web-1');
    assert.equal(r.status, 403);
    assert.equal(
      r.text,
      `Permission denied: token with AccessorID '${ANON}' lacks permission 'service:write' on "web-1"`,
    );
    assert.equal(r.headers.get('x-consul-default-acl-policy'), 'deny');
    // a read of something it may not see is filtered, never an error; anonymous gets no filtered header
    const list = await call(agent.url, 'GET', '/v1/catalog/services');
    assert.equal(list.status, 200);
    assert.deepEqual(list.json(), {});
    assert.equal(list.headers.get('x-consul-results-filtered-by-acls'), null);
    // status endpoints check nothing (Consul)
    assert.equal((await call(agent.url, 'GET', '/v1/status/leader')).status, 200);
    assert.equal((await call(agent.url, 'GET', '/v1/agent/self')).status, 403);
  });

  test("bootstrap gives a management token once; the second answers Consul's text with the reset index", async () => {
    const r = await call(agent.url, 'PUT', '/v1/acl/bootstrap');
    assert.equal(r.status, 200, r.text);
    const t = r.json() as { SecretID: string; AccessorID: string; Policies: { ID: string; Name: string }[] };
    assert.match(t.SecretID, /^[0-9a-f-]{36}$/);
    assert.deepEqual(t.Policies, [{ ID: '00000000-0000-0000-0000-000000000001', Name: 'global-management' }]);
    mgmt = t.SecretID;
    const again = await call(agent.url, 'PUT', '/v1/acl/bootstrap');
    assert.equal(again.status, 403);
    assert.match(again.text, /^Permission denied: ACL bootstrap no longer allowed \(reset index: \d+\)$/);
    // the management token may do anything
    assert.equal((await register(agent.url, 'db-1', 'db-1', mgmt)).status, 200);
    assert.equal((await call(agent.url, 'GET', '/v1/agent/self', { token: mgmt })).status, 200);
  });

  test('a token with service_prefix "web-" write registers web-1, not db-2', async () => {
    const pol = await call(agent.url, 'PUT', '/v1/acl/policy', {
      token: mgmt,
      body: {
        Name: 'web-writers',
        Rules: 'service_prefix "web-" { policy = "write" }\nnode_prefix "" { policy = "read" }',
      },
    });
    assert.equal(pol.status, 200, pol.text);
    const tok = await call(agent.url, 'PUT', '/v1/acl/token', {
      token: mgmt,
      body: { Description: 'web deployer', Policies: [{ Name: 'web-writers' }] },
    });
    assert.equal(tok.status, 200, tok.text);
    const t = tok.json() as { SecretID: string; AccessorID: string };
    webToken = t.SecretID;
    webAccessor = t.AccessorID;
    assert.equal((await register(agent.url, 'web-1', 'web-1', webToken)).status, 200);
    const denied = await register(agent.url, 'db-2', 'db-2', webToken);
    assert.equal(denied.status, 403);
    assert.equal(
      denied.text,
      `Permission denied: token with AccessorID '${webAccessor}' lacks permission 'service:write' on "db-2"`,
    );
    // deregistering someone else's service is refused the same way
    const dereg = await call(agent.url, 'PUT', '/v1/agent/service/deregister/db-1', { token: webToken });
    assert.equal(dereg.status, 403);
    assert.ok(agent.catalog.agentService('db-1'), 'db-1 is still registered');
  });

  test('the token comes from X-Consul-Token, Authorization: Bearer or ?token=; an unknown one is "ACL not found"', async () => {
    const bearer = await call(agent.url, 'GET', '/v1/catalog/services', {
      headers: { Authorization: `Bearer ${webToken}` },
    });
    assert.deepEqual(Object.keys(bearer.json() as object), ['web-1']);
    const query = await call(agent.url, 'GET', `/v1/catalog/services?token=${webToken}`);
    assert.deepEqual(Object.keys(query.json() as object), ['web-1']);
    const unknown = await call(agent.url, 'GET', '/v1/catalog/services', {
      token: '6d5f1c2a-0000-4000-8000-000000000000',
    });
    assert.equal(unknown.status, 403);
    assert.equal(unknown.text, 'ACL not found');
  });

  test('token clone: a new token with the same rights, its own secret, and the description given', async () => {
    const clone = await call(agent.url, 'PUT', `/v1/acl/token/${webAccessor}/clone`, {
      token: mgmt,
      body: { Description: 'web deployer (CI)' },
    });
    assert.equal(clone.status, 200, clone.text);
    const c = clone.json() as {
      AccessorID: string;
      SecretID: string;
      Description: string;
      Policies: { Name: string }[];
    };
    assert.notEqual(c.AccessorID, webAccessor);
    assert.notEqual(c.SecretID, webToken);
    assert.equal(c.Description, 'web deployer (CI)');
    assert.deepEqual(
      c.Policies.map((p) => p.Name),
      ['web-writers'],
    );
    // the clone may do what the source may, and no more
    assert.equal((await register(agent.url, 'web-ci', 'web-ci', c.SecretID)).status, 200);
    assert.equal((await register(agent.url, 'db-ci', 'db-ci', c.SecretID)).status, 403);
    // no body: the source's description
    const plain = await call(agent.url, 'PUT', `/v1/acl/token/${webAccessor}/clone`, { token: mgmt });
    assert.equal(plain.status, 200, plain.text);
    assert.equal((plain.json() as { Description: string }).Description, 'web deployer');
    // Consul's answers: acl:write needed; a missing source is "ACL not found"
    const denied = await call(agent.url, 'PUT', `/v1/acl/token/${webAccessor}/clone`, { token: webToken });
    assert.equal(denied.status, 403);
    const missing = await call(agent.url, 'PUT', '/v1/acl/token/6d5f1c2a-0000-4000-8000-00000000abcd/clone', {
      token: mgmt,
    });
    assert.equal(missing.status, 403);
    assert.equal(missing.text, 'ACL not found');
    for (const t of [c.AccessorID, (plain.json() as { AccessorID: string }).AccessorID])
      assert.equal((await call(agent.url, 'DELETE', `/v1/acl/token/${t}`, { token: mgmt })).status, 200);
    await call(agent.url, 'PUT', '/v1/agent/service/deregister/web-ci', { token: mgmt });
  });

  test('lists show only what the token may read, with X-Consul-Results-Filtered-By-ACLs', async () => {
    const services = await call(agent.url, 'GET', '/v1/catalog/services', { token: webToken });
    assert.deepEqual(Object.keys(services.json() as object), ['web-1']);
    assert.equal(services.headers.get('x-consul-results-filtered-by-acls'), 'true');
    // the management token sees everything, unmarked (and the cached answer of the other token is not reused)
    const all = await call(agent.url, 'GET', '/v1/catalog/services', { token: mgmt });
    assert.deepEqual(Object.keys(all.json() as object).sort(), ['consul', 'db-1', 'web-1']);
    assert.equal(all.headers.get('x-consul-results-filtered-by-acls'), null);
    const agentServices = await call(agent.url, 'GET', '/v1/agent/services', { token: webToken });
    assert.deepEqual(Object.keys(agentServices.json() as object), ['web-1']);
    assert.equal(agentServices.headers.get('x-consul-results-filtered-by-acls'), 'true');
    const health = await call(agent.url, 'GET', '/v1/health/service/db-1', { token: webToken });
    assert.deepEqual(health.json(), []);
    assert.equal(health.headers.get('x-consul-results-filtered-by-acls'), 'true');
    const healthWeb = await call(agent.url, 'GET', '/v1/health/service/web-1', { token: webToken });
    assert.equal((healthWeb.json() as unknown[]).length, 1);
  });

  test('token reads hide the secret; token/self shows it to its holder; lists need acl:read', async () => {
    const read = await call(agent.url, 'GET', `/v1/acl/token/${webAccessor}`, { token: mgmt });
    assert.equal(read.status, 200, read.text);
    const t = read.json() as { SecretID: string; Description: string; Policies: { Name: string }[] };
    assert.equal(t.SecretID, '<hidden>');
    assert.equal(t.Description, 'web deployer');
    assert.deepEqual(
      t.Policies.map((p) => p.Name),
      ['web-writers'],
    );
    const self = await call(agent.url, 'GET', '/v1/acl/token/self', { token: webToken });
    assert.equal((self.json() as { SecretID: string }).SecretID, webToken);
    const list = await call(agent.url, 'GET', '/v1/acl/tokens', { token: webToken });
    assert.equal(list.status, 403);
    assert.equal(
      list.text,
      `Permission denied: token with AccessorID '${webAccessor}' lacks permission 'acl:read'`,
    );
    const all = await call(agent.url, 'GET', '/v1/acl/tokens', { token: mgmt });
    const accessors = (all.json() as { AccessorID: string; SecretID: string }[]).map((x) => x.AccessorID);
    assert.ok(accessors.includes(webAccessor) && accessors.includes(ANON));
    assert.ok((all.json() as { SecretID: string }[]).every((x) => x.SecretID === '<hidden>'));
    // Consul's 404 for an accessor it does not know (acl.ACLResourceNotExistError)
    const missing = await call(agent.url, 'GET', '/v1/acl/token/nope', { token: mgmt });
    assert.equal(missing.status, 404);
    assert.equal(missing.text, 'Requested token does not exist: ACL not found');
  });

  test("roles: CRUD in Consul's shapes and texts; a token has its roles' policies and identities, and a role change reaches it at once", async () => {
    const pol = await call(agent.url, 'PUT', '/v1/acl/policy', {
      token: mgmt,
      body: { Name: 'svc-web-write', Rules: 'service_prefix "web" { policy = "write" }' },
    });
    assert.equal(pol.status, 200, pol.text);
    const polId = (pol.json() as { ID: string }).ID;
    const made = await call(agent.url, 'PUT', '/v1/acl/role', {
      token: mgmt,
      body: { Name: 'web-deployer', Description: 'deploys web', Policies: [{ Name: 'svc-web-write' }] },
    });
    assert.equal(made.status, 200, made.text);
    const role = made.json() as Record<string, unknown> & { ID: string };
    assert.match(role.ID, /^[0-9a-f-]{36}$/);
    assert.deepEqual(
      [role.Name, role.Description, role.Policies],
      ['web-deployer', 'deploys web', [{ ID: polId, Name: 'svc-web-write' }]],
    );
    // Consul's RoleSet texts
    const bad = async (body: unknown) =>
      (await call(agent.url, 'PUT', '/v1/acl/role', { token: mgmt, body })).text;
    assert.equal(
      await bad({ Name: 'web-deployer' }),
      'Invalid Role: A Role with Name "web-deployer" already exists',
    );
    assert.equal(await bad({ Description: 'x' }), 'Invalid Role: no Name is set');
    assert.equal(
      await bad({ Name: 'no spaces' }),
      "Invalid Role: invalid Name. Only alphanumeric characters, '-' and '_' are allowed",
    );
    assert.equal(
      await bad({ Name: 'r2', Policies: [{ Name: 'nope' }] }),
      'Invalid Role: No such ACL policy with name "nope"',
    );
    const unknownField = await call(agent.url, 'PUT', '/v1/acl/role', {
      token: mgmt,
      body: { Name: 'r3', Rules: 'x' },
    });
    assert.deepEqual(
      [unknownField.status, unknownField.text],
      [400, 'Request decode failed: json: unknown field "Rules"'],
    );
    assert.equal(
      (await call(agent.url, 'PUT', '/v1/acl/role', { body: { Name: 'r4' } })).status,
      403,
      'needs acl:write',
    );

    const tok = await call(agent.url, 'PUT', '/v1/acl/token', {
      token: mgmt,
      body: { Roles: [{ Name: 'web-deployer' }] },
    });
    assert.equal(tok.status, 200, tok.text);
    const t = tok.json() as { SecretID: string; AccessorID: string; Roles: unknown };
    assert.deepEqual(t.Roles, [{ ID: role.ID, Name: 'web-deployer' }]);
    assert.equal(
      (await call(agent.url, 'PUT', '/v1/acl/token', { token: mgmt, body: { Roles: [{ ID: ANON }] } })).text,
      `Invalid Token: No such ACL role with ID "${ANON}"`,
    );
    assert.equal((await register(agent.url, 'web-r1', 'web-r1', t.SecretID)).status, 200);
    assert.equal((await register(agent.url, 'db-r1', 'db-r1', t.SecretID)).status, 403);
    // a service identity added to the role: the token may register that service at once
    const upd = await call(agent.url, 'PUT', `/v1/acl/role/${role.ID}`, {
      token: mgmt,
      body: {
        ID: role.ID,
        Name: 'web-deployer',
        Policies: [{ ID: polId }],
        ServiceIdentities: [{ ServiceName: 'db-r1' }],
      },
    });
    assert.equal(upd.status, 200, upd.text);
    assert.deepEqual((upd.json() as { ServiceIdentities: unknown }).ServiceIdentities, [
      { ServiceName: 'db-r1' },
    ]);
    assert.equal((await register(agent.url, 'db-r1', 'db-r1', t.SecretID)).status, 200);
    assert.equal(
      (
        await call(agent.url, 'PUT', `/v1/acl/role/${role.ID}`, {
          token: mgmt,
          body: { ID: ANON, Name: 'x' },
        })
      ).text,
      'Role ID in URL and payload do not match',
    );
    // reads: by ID, by name, the list (and ?policy=), tokens by ?role=
    const byId = (await call(agent.url, 'GET', `/v1/acl/role/${role.ID}`, { token: mgmt })).json() as {
      Name: string;
    };
    assert.equal(byId.Name, 'web-deployer');
    const byName = await call(agent.url, 'GET', '/v1/acl/role/name/web-deployer', { token: mgmt });
    assert.equal((byName.json() as { ID: string }).ID, role.ID);
    assert.ok(Number(byName.headers.get('x-consul-index')) > 0);
    const list = (await call(agent.url, 'GET', `/v1/acl/roles?policy=${polId}`, { token: mgmt })).json() as {
      ID: string;
    }[];
    assert.deepEqual(
      list.map((r) => r.ID),
      [role.ID],
    );
    const tokens = (
      await call(agent.url, 'GET', `/v1/acl/tokens?role=${role.ID}`, { token: mgmt })
    ).json() as {
      AccessorID: string;
    }[];
    assert.deepEqual(
      tokens.map((x) => x.AccessorID),
      [t.AccessorID],
    );
    const missing = await call(agent.url, 'GET', `/v1/acl/role/${ANON}`, { token: mgmt });
    assert.deepEqual([missing.status, missing.text], [404, 'Requested role does not exist: ACL not found']);
    // deleted: the token keeps the link, which grants nothing and is no longer shown
    assert.equal((await call(agent.url, 'DELETE', `/v1/acl/role/${role.ID}`, { token: mgmt })).text, 'true');
    assert.equal((await register(agent.url, 'web-r2', 'web-r2', t.SecretID)).status, 403);
    const after = (
      await call(agent.url, 'GET', `/v1/acl/token/${t.AccessorID}`, { token: mgmt })
    ).json() as object;
    assert.equal('Roles' in after, false);
    // the policy goes too (the next test lists every policy); a second delete is Consul's 404
    assert.equal((await call(agent.url, 'DELETE', `/v1/acl/policy/${polId}`, { token: mgmt })).text, 'true');
    const again = await call(agent.url, 'DELETE', `/v1/acl/policy/${polId}`, { token: mgmt });
    assert.deepEqual([again.status, again.text], [404, 'Cannot find policy to delete']);
  });

  test('token expiry in the body (ExpirationTTL, ExpirationTime); unsupported fields are a 400 naming them', async () => {
    const before = Date.now();
    const r = await call(agent.url, 'PUT', '/v1/acl/token', { token: mgmt, body: { ExpirationTTL: '10m' } });
    assert.equal(r.status, 200, r.text);
    const exp = Date.parse((r.json() as { ExpirationTime: string }).ExpirationTime);
    assert.ok(exp >= before + 600_000 && exp <= Date.now() + 600_000, 'CreateTime + 10m');
    const text = async (body: unknown) => {
      const x = await call(agent.url, 'PUT', '/v1/acl/token', { token: mgmt, body });
      return `${x.status} ${x.text}`;
    };
    assert.equal(
      await text({ ExpirationTTL: 'potatoes' }),
      '400 Token decoding failed: ExpirationTTL: time: invalid duration "potatoes"',
    );
    assert.equal(
      await text({ ExpirationTTL: '30s' }),
      '400 ExpirationTime cannot be less than 1m0s in the future (was 30s)',
    );
    assert.equal(await text({ Foo: 1 }), '400 Request decode failed: json: unknown field "Foo"');
    assert.equal(
      await text({ TemplatedPolicies: [{ TemplateName: 'builtin/dns' }] }),
      '400 Invalid Token: TemplatedPolicies are not supported by Phare; link Policies instead',
    );
    assert.equal(await text({ AuthMethod: 'k8s' }), '400 AuthMethod field is disallowed outside of login');
  });

  test('policies: JSON rules, by name, update takes effect at once, a bad rule is a 400 with the HCL error', async () => {
    const pol = await call(agent.url, 'PUT', '/v1/acl/policy', {
      token: mgmt,
      body: {
        Name: 'kv-app',
        Rules: JSON.stringify({
          key_prefix: { 'app/': { policy: 'write' } },
          key: { 'app/secret': { policy: 'deny' } },
        }),
      },
    });
    assert.equal(pol.status, 200, pol.text);
    const p = pol.json() as { ID: string };
    const byName = await call(agent.url, 'GET', '/v1/acl/policy/name/kv-app', { token: mgmt });
    assert.equal((byName.json() as { ID: string }).ID, p.ID);
    const tok = (
      await call(agent.url, 'PUT', '/v1/acl/token', { token: mgmt, body: { Policies: [{ ID: p.ID }] } })
    ).json() as { SecretID: string };
    assert.equal(
      (await call(agent.url, 'PUT', '/v1/kv/app/a', { token: tok.SecretID, body: 'x' })).text,
      'true',
    );
    assert.equal(
      (await call(agent.url, 'PUT', '/v1/kv/app/secret', { token: mgmt, body: 's' })).text,
      'true',
    );
    assert.equal(
      (await call(agent.url, 'PUT', '/v1/kv/other', { token: tok.SecretID, body: 'x' })).status,
      403,
    );
    // exact beats the longer prefix: app/secret is denied, and left out of a recurse (with the header)
    assert.equal((await call(agent.url, 'GET', '/v1/kv/app/secret', { token: tok.SecretID })).status, 403);
    const tree = await call(agent.url, 'GET', '/v1/kv/app/?recurse', { token: tok.SecretID });
    assert.deepEqual(
      (tree.json() as { Key: string }[]).map((e) => e.Key),
      ['app/a'],
    );
    assert.equal(tree.headers.get('x-consul-results-filtered-by-acls'), 'true');
    const keys = await call(agent.url, 'GET', '/v1/kv/?keys', { token: tok.SecretID });
    assert.deepEqual(keys.json(), ['app/a']);
    // a delete-tree over a denied key is refused whole
    assert.equal(
      (await call(agent.url, 'DELETE', '/v1/kv/app/?recurse', { token: tok.SecretID })).status,
      403,
    );
    assert.ok(agent.kv.get('app/secret'));
    // update: read-only now, effective for the next request
    const upd = await call(agent.url, 'PUT', `/v1/acl/policy/${p.ID}`, {
      token: mgmt,
      body: { Name: 'kv-app', Rules: 'key_prefix "app/" { policy = "read" }' },
    });
    assert.equal(upd.status, 200, upd.text);
    assert.equal(
      (await call(agent.url, 'PUT', '/v1/kv/app/a', { token: tok.SecretID, body: 'y' })).status,
      403,
    );
    const bad = await call(agent.url, 'PUT', '/v1/acl/policy', {
      token: mgmt,
      body: { Name: 'broken', Rules: 'service "x" { policy = ' },
    });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /^Invalid Policy: Failed to parse ACL rules: At 1:/);
    const badLevel = await call(agent.url, 'PUT', '/v1/acl/policy', {
      token: mgmt,
      body: { Name: 'broken', Rules: 'service "x" { policy = "admin" }' },
    });
    assert.equal(badLevel.status, 400);
    assert.match(badLevel.text, /policy: "admin": expected read, write, deny/);
    const dup = await call(agent.url, 'PUT', '/v1/acl/policy', { token: mgmt, body: { Name: 'kv-app' } });
    assert.equal(dup.status, 400);
    assert.match(dup.text, /already exists/);
    const list = (await call(agent.url, 'GET', '/v1/acl/policies', { token: mgmt })).json() as {
      Name: string;
      Rules?: string;
    }[];
    assert.deepEqual(list.map((x) => x.Name).sort(), ['global-management', 'kv-app', 'web-writers']);
    assert.ok(
      list.every((x) => x.Rules === undefined),
      'the list form has no Rules',
    );
  });

  test('sessions need session:write on their node; deleting a token revokes it at once', async () => {
    const pol = (
      await call(agent.url, 'PUT', '/v1/acl/policy', {
        token: mgmt,
        body: {
          Name: 'sess',
          Rules: 'session_prefix "" { policy = "write" }\nnode_prefix "" { policy = "read" }',
        },
      })
    ).json() as { ID: string };
    const tok = (
      await call(agent.url, 'PUT', '/v1/acl/token', { token: mgmt, body: { Policies: [{ ID: pol.ID }] } })
    ).json() as { SecretID: string; AccessorID: string };
    assert.equal((await call(agent.url, 'PUT', '/v1/session/create', { body: {} })).status, 403);
    const created = await call(agent.url, 'PUT', '/v1/session/create', { token: tok.SecretID, body: {} });
    assert.equal(created.status, 200, created.text);
    assert.equal((await call(agent.url, 'GET', '/v1/session/list')).text, '[]');
    assert.equal(
      ((await call(agent.url, 'GET', '/v1/session/list', { token: tok.SecretID })).json() as unknown[])
        .length,
      1,
    );
    const del = await call(agent.url, 'DELETE', `/v1/acl/token/${tok.AccessorID}`, { token: mgmt });
    assert.equal(del.text, 'true');
    assert.equal(
      (await call(agent.url, 'GET', '/v1/session/list', { token: tok.SecretID })).text,
      'ACL not found',
    );
  });

  test('txn: each operation is checked; a refusal rolls the whole transaction back with 409', async () => {
    const r = await call(agent.url, 'PUT', '/v1/txn', {
      token: webToken,
      body: [{ KV: { Verb: 'set', Key: 'x', Value: 'eA==' } }],
    });
    assert.equal(r.status, 409);
    const body = r.json() as { Errors: { OpIndex: number; What: string }[] };
    assert.equal(body.Errors[0]?.OpIndex, 0);
    assert.match(
      body.Errors[0]?.What ?? '',
      /^Permission denied: token with AccessorID '.*' lacks permission 'key:write' on "x"$/,
    );
    assert.equal(agent.kv.get('x'), undefined);
  });
});

describe('acl: off, allow, the initial management token, secrets on disk', () => {
  test('with ACLs off every /v1/acl path answers 401 "ACL support disabled" and tokens are ignored', async () => {
    const agent = await startAgentInProcess();
    try {
      const r = await call(agent.url, 'GET', '/v1/acl/tokens');
      assert.equal(r.status, 401);
      assert.equal(r.text, 'ACL support disabled');
      assert.equal((await register(agent.url, 'a', 'a', 'whatever')).status, 200);
      assert.equal(r.headers.get('x-consul-default-acl-policy'), 'allow');
    } finally {
      await agent.close();
    }
  });

  test('default allow: anonymous may register but not manage ACLs; a deny rule still denies', async () => {
    const agent = await startAgentInProcess({
      flags: { 'acl-enabled': true, 'acl-initial-management-token': '4b4e0b4c-6f0e-4d7d-9f5b-0a0e5d0c0a01' },
    });
    try {
      const mgmt = '4b4e0b4c-6f0e-4d7d-9f5b-0a0e5d0c0a01';
      assert.equal((await register(agent.url, 'a', 'a')).status, 200);
      assert.equal((await call(agent.url, 'GET', '/v1/acl/policies')).status, 403);
      // the initial management token is the bootstrap (as in Consul)
      assert.equal((await call(agent.url, 'PUT', '/v1/acl/bootstrap')).status, 403);
      const pol = (
        await call(agent.url, 'PUT', '/v1/acl/policy', {
          token: mgmt,
          body: { Name: 'no-db', Rules: 'service_prefix "db" { policy = "deny" }' },
        })
      ).json() as { ID: string };
      // give the anonymous token a policy (Consul's way to restrict anonymous under allow)
      const upd = await call(agent.url, 'PUT', `/v1/acl/token/${ANON}`, {
        token: mgmt,
        body: { Description: 'Anonymous Token', Policies: [{ ID: pol.ID }] },
      });
      assert.equal(upd.status, 200, upd.text);
      assert.equal((await register(agent.url, 'db-9', 'db-9')).status, 403);
      assert.equal((await register(agent.url, 'b', 'b')).status, 200);
    } finally {
      await agent.close();
    }
  });

  test('phare agent --acl-enabled (a switch) with the management token from the environment', async () => {
    const p = await spawnAgent(['--dev', '--http-addr', '127.0.0.1:0', '--dns-addr', '', '--acl-enabled'], {
      PHARE_ACL_DEFAULT_POLICY: 'deny',
      PHARE_ACL_INITIAL_MANAGEMENT_TOKEN: '2b6a1f3e-5c4d-4e8f-9a0b-1c2d3e4f5a6b',
    });
    try {
      assert.equal((await register(p.url, 'a', 'a')).status, 403);
      assert.equal((await register(p.url, 'a', 'a', '2b6a1f3e-5c4d-4e8f-9a0b-1c2d3e4f5a6b')).status, 200);
      assert.doesNotMatch(p.output(), /2b6a1f3e-5c4d-4e8f-9a0b-1c2d3e4f5a6b/, 'the secret is never printed');
    } finally {
      p.child.kill('SIGTERM');
      await p.exited;
    }
  });

  test('secrets are stored hashed (SHA-256), never in the data dir; tokens survive a restart', async () => {
    const dir = tempDir();
    const flags = { 'acl-enabled': true, 'acl-default-policy': 'deny' } as const;
    try {
      let agent = await startAgentInProcess({ dataDir: dir.path, flags });
      const boot = (await call(agent.url, 'PUT', '/v1/acl/bootstrap')).json() as { SecretID: string };
      const tok = (
        await call(agent.url, 'PUT', '/v1/acl/token', {
          token: boot.SecretID,
          body: { ServiceIdentities: [{ ServiceName: 'api' }] },
        })
      ).json() as { SecretID: string };
      await agent.close();
      const files = ['phare.db', 'phare.db-wal'].map((f) => join(dir.path, f)).filter((f) => existsSync(f));
      const bytes = Buffer.concat(files.map((f) => readFileSync(f)));
      assert.ok(bytes.length > 0);
      for (const secret of [boot.SecretID, tok.SecretID])
        assert.equal(bytes.includes(Buffer.from(secret)), false, 'a secret was written to disk');
      agent = await startAgentInProcess({ dataDir: dir.path, flags });
      try {
        // a service identity: write on its service, nothing else
        assert.equal((await register(agent.url, 'api-1', 'api', tok.SecretID)).status, 200);
        assert.equal((await register(agent.url, 'web-1', 'web', tok.SecretID)).status, 403);
        assert.equal((await call(agent.url, 'PUT', '/v1/acl/bootstrap')).status, 403);
      } finally {
        await agent.close();
      }
    } finally {
      dir.remove();
    }
  });
});

describe("acl: the agent's own tokens (PUT /v1/agent/token/<kind>)", () => {
  test('the default token answers requests that name none; kept across a restart as a hash with --acl-enable-token-persistence', async () => {
    const dir = tempDir();
    const mgmt = '7d0c3a1e-2b4f-4e6a-8c9d-0e1f2a3b4c5d';
    const flags = {
      'acl-enabled': true,
      'acl-default-policy': 'deny',
      'acl-initial-management-token': mgmt,
      'acl-enable-token-persistence': true,
    } as const;
    try {
      let agent = await startAgentInProcess({ dataDir: dir.path, flags });
      const pol = (
        await call(agent.url, 'PUT', '/v1/acl/policy', {
          token: mgmt,
          body: { Name: 'web-writer', Rules: 'service_prefix "web" { policy = "write" }' },
        })
      ).json() as { ID: string };
      const tok = (
        await call(agent.url, 'PUT', '/v1/acl/token', { token: mgmt, body: { Policies: [{ ID: pol.ID }] } })
      ).json() as { SecretID: string; AccessorID: string };
      assert.equal((await register(agent.url, 'web-1', 'web')).status, 403, 'anonymous before');
      // setting it needs agent:write on this agent's node: the web token has none
      const refused = await call(agent.url, 'PUT', '/v1/agent/token/default', {
        token: tok.SecretID,
        body: { Token: tok.SecretID },
      });
      assert.equal(refused.status, 403);
      assert.match(refused.text, /lacks permission 'agent:write'/);
      const set = await call(agent.url, 'PUT', '/v1/agent/token/default', {
        token: mgmt,
        body: { Token: tok.SecretID },
      });
      assert.equal(set.status, 200, set.text);
      assert.equal(set.text, '');
      // no token named: the default token's rights, and token/self shows it (its secret hidden)
      assert.equal((await register(agent.url, 'web-1', 'web')).status, 200);
      assert.equal((await register(agent.url, 'db-1', 'db')).status, 403);
      const self = (await call(agent.url, 'GET', '/v1/acl/token/self')).json() as Record<string, string>;
      assert.equal(self.AccessorID, tok.AccessorID);
      assert.equal(self.SecretID, '<hidden>');
      // an explicit token still wins; Consul's legacy alias acl_token names the same kind
      assert.equal((await register(agent.url, 'db-1', 'db', mgmt)).status, 200);
      assert.equal(
        (
          await call(agent.url, 'PUT', '/v1/agent/token/acl_agent_token', {
            token: mgmt,
            body: { Token: mgmt },
          })
        ).status,
        200,
      );
      // Consul's texts for names it does not know; kinds Phare has no use for say so
      const unknown = await call(agent.url, 'PUT', '/v1/agent/token/nope', {
        token: mgmt,
        body: { Token: 'x' },
      });
      assert.equal(unknown.status, 404);
      assert.equal(unknown.text, 'Token "nope" is unknown');
      const unused = await call(agent.url, 'PUT', '/v1/agent/token/replication', {
        token: mgmt,
        body: { Token: 'x' },
      });
      assert.equal(unused.status, 400);
      assert.match(unused.text, /Token "replication" is not used by Phare/);
      await agent.close();
      const file = readFileSync(join(dir.path, 'acl-tokens.json'), 'utf8');
      assert.equal(file.includes(tok.SecretID) || file.includes(mgmt), false, 'a secret was written to disk');
      assert.deepEqual(Object.keys(JSON.parse(file)).sort(), ['agent', 'default']);
      agent = await startAgentInProcess({ dataDir: dir.path, flags });
      try {
        assert.equal((await register(agent.url, 'web-2', 'web')).status, 200, 'default token kept');
        // clearing it ("" as Consul) brings the anonymous token back
        const clear = await call(agent.url, 'PUT', '/v1/agent/token/default', {
          token: mgmt,
          body: { Token: '' },
        });
        assert.equal(clear.status, 200);
        assert.equal((await register(agent.url, 'web-3', 'web')).status, 403);
      } finally {
        await agent.close();
      }
      // without persistence a restart forgets it
      agent = await startAgentInProcess({
        dataDir: dir.path,
        flags: { ...flags, 'acl-enable-token-persistence': false },
      });
      try {
        await call(agent.url, 'PUT', '/v1/agent/token/default', {
          token: mgmt,
          body: { Token: tok.SecretID },
        });
        assert.equal((await register(agent.url, 'web-4', 'web')).status, 200);
      } finally {
        await agent.close();
      }
      agent = await startAgentInProcess({
        dataDir: dir.path,
        flags: { ...flags, 'acl-enable-token-persistence': false },
      });
      try {
        assert.equal((await register(agent.url, 'web-5', 'web')).status, 403, 'not kept without persistence');
      } finally {
        await agent.close();
      }
    } finally {
      dir.remove();
    }
  });

  test('--acl-token-min/max-expiration-ttl set the range of a token ExpirationTTL; a bad range is refused at start', async () => {
    const MGMT = '0c8e7a52-3d1b-4f6e-9a2c-5b4d3e2f1a01';
    const agent = await startAgentInProcess({
      flags: {
        'acl-enabled': true,
        'acl-initial-management-token': MGMT,
        'acl-token-min-expiration-ttl': '10s',
        'acl-token-max-expiration-ttl': '48h',
      },
    });
    try {
      const text = async (body: unknown) => {
        const x = await call(agent.url, 'PUT', '/v1/acl/token', { token: MGMT, body });
        return `${x.status} ${x.status === 200 ? '' : x.text}`;
      };
      assert.equal(await text({ ExpirationTTL: '36h' }), '200 ', 'longer than the default 24h');
      assert.equal(await text({ ExpirationTTL: '30s' }), '200 ', 'shorter than the default 1m');
      assert.equal(
        await text({ ExpirationTTL: '5s' }),
        '400 ExpirationTime cannot be less than 10s in the future (was 5s)',
      );
      assert.equal(
        await text({ ExpirationTTL: '49h' }),
        '400 ExpirationTime cannot be more than 48h0m0s in the future (was 49h0m0s)',
      );
    } finally {
      await agent.close();
    }
    const resolve = (flags: Record<string, string>) => () =>
      resolveAgentConfig({ flags: { dev: true, ...flags }, env: {} });
    assert.throws(
      resolve({ 'acl-token-min-expiration-ttl': '0s' }),
      /--acl-token-min-expiration-ttl: .*a duration above 0s/,
    );
    assert.throws(
      resolve({ 'acl-token-min-expiration-ttl': '2h', 'acl-token-max-expiration-ttl': '1h' }),
      /--acl-token-max-expiration-ttl: .*at least --acl-token-min-expiration-ttl/,
    );
    assert.deepEqual(
      resolveAgentConfig({ flags: { dev: true }, env: { PHARE_ACL_TOKEN_MAX_EXPIRATION_TTL: '72h' } })
        .aclTokenExpiry,
      { minMs: 60_000, maxMs: 72 * 3_600_000 },
    );
  });

  test('--acl-enable-token-persistence with the memory store is refused at start, naming the flag', () => {
    assert.throws(
      () =>
        resolveAgentConfig({
          flags: { dev: true, 'acl-enabled': true, 'acl-enable-token-persistence': true },
        }),
      /--acl-enable-token-persistence: the memory store/,
    );
  });
});

const digSkip = dependencySkip(
  existsSync('/usr/bin/dig') ? undefined : '/usr/bin/dig (apt-get install bind9-dnsutils)',
);

async function dig(port: number, name: string): Promise<{ status: string; answers: string[] }> {
  const { stdout } = await exec('dig', ['@127.0.0.1', '-p', String(port), name, 'A', '+tries=1', '+time=2'], {
    timeout: 10_000,
  });
  const status = /status: (\w+)/.exec(stdout)?.[1] ?? '';
  const answers = stdout
    .split('\n')
    .filter((l) => l && !l.startsWith(';') && /\sIN\sA\s/.test(l))
    .map((l) => l.split(/\s+/).at(-1) as string);
  return { status, answers };
}

describe('acl: DNS answers with the DNS token', { skip: digSkip }, () => {
  test('default deny: anonymous DNS is empty and the agent says so at start; a DNS token with read answers', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const mgmt = '0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0';
    const dnsSecret = '1a2b3c4d-5e6f-4a0b-8c1d-2e3f4a5b6c7d';
    const start = (extra: Record<string, unknown>) =>
      startAgent({
        config: resolveAgentConfig({
          flags: {
            dev: true,
            'http-addr': '127.0.0.1:0',
            'dns-addr': '127.0.0.1:0',
            node: 'dns-node',
            'acl-enabled': true,
            'acl-default-policy': 'deny',
            'acl-initial-management-token': mgmt,
            ...extra,
          },
          env: {},
        }),
        logger: pino({ level: 'warn' }, sink),
      });
    const anon = await start({});
    try {
      const warning = lines.find((l) => l.includes('DNS answers with the anonymous token'));
      assert.ok(warning, `no DNS warning in: ${lines.join('')}`);
      assert.match(warning, /service_prefix \\"\\" \{ policy = \\"read\\" \}/);
      assert.equal((await register(anon.httpUrl, 'web-1', 'web', mgmt)).status, 200);
      const port = anon.dnsAddress?.port as number;
      const r = await dig(port, 'web.service.consul');
      assert.equal(r.status, 'NXDOMAIN');
      assert.equal((await dig(port, 'dns-node.node.consul')).status, 'NXDOMAIN');
      // set at runtime (consul acl set-agent-token dns …): answers at once; cleared, the default token
      // answers DNS in its place (Consul's order: dns, then default, then anonymous)
      const pol = (
        await call(anon.httpUrl, 'PUT', '/v1/acl/policy', {
          token: mgmt,
          body: {
            Name: 'dns-read',
            Rules: 'service_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }',
          },
        })
      ).json() as { ID: string };
      const reader = (
        await call(anon.httpUrl, 'PUT', '/v1/acl/token', {
          token: mgmt,
          body: { Policies: [{ ID: pol.ID }] },
        })
      ).json() as { SecretID: string };
      const setToken = async (kind: string, secret: string) =>
        (await call(anon.httpUrl, 'PUT', `/v1/agent/token/${kind}`, { token: mgmt, body: { Token: secret } }))
          .status;
      assert.equal(await setToken('dns', reader.SecretID), 200);
      assert.deepEqual((await dig(port, 'web.service.consul')).answers, ['127.0.0.1']);
      assert.equal(await setToken('dns', ''), 200);
      assert.equal((await dig(port, 'web.service.consul')).status, 'NXDOMAIN');
      assert.equal(await setToken('default', reader.SecretID), 200);
      assert.deepEqual((await dig(port, 'web.service.consul')).answers, ['127.0.0.1']);
    } finally {
      await anon.close();
    }
    lines.length = 0;
    const withToken = await start({ 'acl-dns-token': dnsSecret });
    try {
      assert.ok(
        lines.some((l) => l.includes('DNS answers with the --acl-dns-token')),
        'warned while the token is unknown',
      );
      assert.equal((await register(withToken.httpUrl, 'web-1', 'web', mgmt)).status, 200);
      const port = withToken.dnsAddress?.port as number;
      assert.equal((await dig(port, 'web.service.consul')).status, 'NXDOMAIN');
      // the DNS token is created later, with the configured secret: answers appear at once
      const pol = (
        await call(withToken.httpUrl, 'PUT', '/v1/acl/policy', {
          token: mgmt,
          body: {
            Name: 'dns',
            Rules: 'service_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }',
          },
        })
      ).json() as { ID: string };
      const tok = await call(withToken.httpUrl, 'PUT', '/v1/acl/token', {
        token: mgmt,
        body: { SecretID: dnsSecret, Description: 'DNS', Policies: [{ ID: pol.ID }] },
      });
      assert.equal(tok.status, 200, tok.text);
      const r = await dig(port, 'web.service.consul');
      assert.equal(r.status, 'NOERROR');
      assert.deepEqual(r.answers, ['127.0.0.1']);
    } finally {
      await withToken.close();
    }
  });
});
