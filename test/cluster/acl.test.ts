/**
 * ACLs in a cluster (issue 14): two agents over one etcd share tokens, policies and roles — a token made on A works
 * on B at once (B's ACL state is a cache fed by the store's watch), a policy change on B applies on A, a
 * deleted token stops working everywhere, and two agents racing to bootstrap cannot both win.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitFor } from '../helpers/agent.ts';
import { clusterAgents, startClusterAgent } from '../helpers/cluster.ts';
import { ETCD_SKIP, startEtcdCluster } from '../helpers/etcd.ts';

async function call(base: string, method: string, path: string, token?: string, body?: unknown) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: token ? { 'X-Consul-Token': token } : {},
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) };
}

if (ETCD_SKIP && process.env['CI'] !== 'true') {
  test('cluster acl', { skip: ETCD_SKIP }, () => {});
} else {
  const etcd = await startEtcdCluster({ size: 1 });
  const { track } = clusterAgents(etcd, 'acl');
  const flags = { 'dns-addr': '', 'acl-enabled': true, 'acl-default-policy': 'deny' } as const;
  // both agents start at once: the store's create-if-absent lets only one bootstrap row exist
  const [a, b] = await Promise.all([
    startClusterAgent(etcd, '/acl', 'a', flags),
    startClusterAgent(etcd, '/acl', 'b', flags),
  ]);
  track(a);
  track(b);
  let mgmt = '';

  test("bootstrap races on two agents: exactly one wins; the loser gets Consul's text", async () => {
    const [ra, rb] = await Promise.all([
      call(a.url, 'PUT', '/v1/acl/bootstrap'),
      call(b.url, 'PUT', '/v1/acl/bootstrap'),
    ]);
    const statuses = [ra.status, rb.status].sort();
    assert.deepEqual(statuses, [200, 403], `${ra.text} / ${rb.text}`);
    const loser = ra.status === 403 ? ra : rb;
    assert.match(loser.text, /^Permission denied: ACL bootstrap no longer allowed \(reset index: \d+\)$/);
    mgmt = ((ra.status === 200 ? ra : rb).json() as { SecretID: string }).SecretID;
  });

  test('a token made on A works on B; a policy change on B applies on A; a deletion on A revokes on B', async () => {
    const c = a;
    const d = b;
    const anon = await call(d.url, 'GET', '/v1/acl/tokens');
    assert.equal(anon.status, 403, 'anonymous may not list tokens');
    // the bootstrap token, made on whichever agent won, works on both
    // each agent's ACL cache is fed by its own watch of the ACL space: the other one sees a write within ms
    const visible = (
      url: string,
      path: string,
      token: string,
      ok: (r: { status: number; text: string }) => boolean,
    ) =>
      waitFor(async () => {
        const r = await call(url, 'GET', path, token);
        return ok(r) ? r : undefined;
      });
    for (const x of [c, d]) await visible(x.url, '/v1/acl/tokens', mgmt, (r) => r.status === 200);
    const pol = (
      await call(c.url, 'PUT', '/v1/acl/policy', mgmt, {
        Name: 'web',
        Rules: 'service_prefix "web-" { policy = "write" }',
      })
    ).json() as { ID: string };
    const tok = (await call(c.url, 'PUT', '/v1/acl/token', mgmt, { Policies: [{ ID: pol.ID }] })).json() as {
      SecretID: string;
      AccessorID: string;
    };
    const reg = (base: string, name: string) =>
      call(base, 'PUT', '/v1/agent/service/register', tok.SecretID, { ID: name, Name: name, Port: 1 });
    await visible(d.url, '/v1/acl/token/self', tok.SecretID, (r) => r.status === 200);
    assert.equal((await reg(d.url, 'web-1')).status, 200, 'token made on C works on D');
    const denied = await reg(d.url, 'db-1');
    assert.equal(denied.status, 403);
    assert.equal(
      denied.text,
      `Permission denied: token with AccessorID '${tok.AccessorID}' lacks permission 'service:write' on "db-1"`,
    );
    // D changes the policy; C enforces the new rules
    const upd = await call(d.url, 'PUT', `/v1/acl/policy/${pol.ID}`, mgmt, {
      Name: 'web',
      Rules: 'service_prefix "" { policy = "write" }',
    });
    assert.equal(upd.status, 200, upd.text);
    await visible(c.url, `/v1/acl/policy/${pol.ID}`, mgmt, (r) => r.text.includes('service_prefix \\"\\"'));
    assert.equal((await reg(c.url, 'db-2')).status, 200, 'the policy updated on D applies on C');
    // C deletes the token; D refuses it
    assert.equal((await call(c.url, 'DELETE', `/v1/acl/token/${tok.AccessorID}`, mgmt)).text, 'true');
    await visible(d.url, '/v1/acl/token/self', tok.SecretID, (r) => r.status === 403);
    assert.equal((await reg(d.url, 'web-2')).text, 'ACL not found');
    // filtered reads on D with a read-only token
    const ro = (
      await call(d.url, 'PUT', '/v1/acl/policy', mgmt, {
        Name: 'ro',
        Rules: 'service "web-1" { policy = "read" }\nnode_prefix "" { policy = "read" }',
      })
    ).json() as { ID: string };
    const roTok = (await call(d.url, 'PUT', '/v1/acl/token', mgmt, { Policies: [{ ID: ro.ID }] })).json() as {
      SecretID: string;
    };
    await visible(c.url, '/v1/acl/token/self', roTok.SecretID, (r) => r.status === 200);
    const res = await fetch(`${c.url}/v1/catalog/services`, {
      headers: { 'X-Consul-Token': roTok.SecretID },
    });
    assert.deepEqual(Object.keys((await res.json()) as object), ['web-1']);
    assert.equal(res.headers.get('x-consul-results-filtered-by-acls'), 'true');
  });

  test('a role made on A gives a token made on B its policy; a role change on B applies on A', async () => {
    const pol = (
      await call(a.url, 'PUT', '/v1/acl/policy', mgmt, {
        Name: 'api',
        Rules: 'service "api" { policy = "write" }',
      })
    ).json() as { ID: string };
    const role = await call(a.url, 'PUT', '/v1/acl/role', mgmt, {
      Name: 'api-deployer',
      Policies: [{ ID: pol.ID }],
    });
    assert.equal(role.status, 200, role.text);
    const roleId = (role.json() as { ID: string }).ID;
    // B links the role by name once its watch has delivered it
    const tok = await waitFor(async () => {
      const r = await call(b.url, 'PUT', '/v1/acl/token', mgmt, { Roles: [{ Name: 'api-deployer' }] });
      if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
      return r.json() as { SecretID: string };
    });
    const reg = (base: string, name: string) =>
      call(base, 'PUT', '/v1/agent/service/register', tok.SecretID, { ID: name, Name: name, Port: 1 });
    await waitFor(async () => ((await reg(a.url, 'api')).status === 200 ? true : undefined));
    assert.equal((await reg(a.url, 'api-2')).status, 403);
    const upd = await call(b.url, 'PUT', `/v1/acl/role/${roleId}`, mgmt, {
      Name: 'api-deployer',
      ServiceIdentities: [{ ServiceName: 'api-2' }],
    });
    assert.equal(upd.status, 200, upd.text);
    await waitFor(async () => ((await reg(a.url, 'api-2')).status === 200 ? true : undefined));
    // the policy is no longer on the role: service "api" is refused on A
    assert.equal((await reg(a.url, 'api')).status, 403);
  });
}
