/**
 * Outside clients with ACL tokens, unchanged (issue 14): the npm `consul` client (token as `X-Consul-Token`
 * through its `defaults`) and Debian's python-consul 0.7.1 (token as `?token=`) against a default-deny
 * agent: allowed writes succeed, denied ones fail the way each client reports a 403, reads are filtered.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import Consul from 'consul';
import type { RunningAgent } from '../../src/agent/index.ts';
import { startAgentInProcess } from '../helpers/agent.ts';
import { dependencySkip } from '../helpers/requires.ts';

const exec = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const pythonSkip = dependencySkip(
  !existsSync(PYTHON)
    ? `${PYTHON} (apt-get install python3-consul)`
    : spawnSync(PYTHON, ['-c', 'import consul']).status !== 0
      ? `${PYTHON} cannot import consul (apt-get install python3-consul)`
      : undefined,
);

let agent: RunningAgent & { url: string };
let webToken: string;
let mgmt: string;

before(async () => {
  agent = await startAgentInProcess({ flags: { 'acl-enabled': true, 'acl-default-policy': 'deny' } });
  // bootstrap with the npm client itself, then make a policy and token over the HTTP API
  const c = new Consul({ host: '127.0.0.1', port: agent.httpAddress.port });
  mgmt = ((await c.acl.bootstrap()) as { SecretID: string }).SecretID;
  const put = async (path: string, body: unknown) => {
    const r = await fetch(`${agent.url}${path}`, {
      method: 'PUT',
      headers: { 'X-Consul-Token': mgmt },
      body: JSON.stringify(body),
    });
    assert.equal(r.status, 200);
    return (await r.json()) as Record<string, string>;
  };
  const pol = await put('/v1/acl/policy', {
    Name: 'web',
    Rules: `service_prefix "web-" { policy = "write" }
node_prefix "" { policy = "read" }
key_prefix "web/" { policy = "write" }
agent_prefix "" { policy = "read" }`,
  });
  webToken = (await put('/v1/acl/token', { Policies: [{ ID: pol.ID }] })).SecretID as string;
  const admin = new Consul({ host: '127.0.0.1', port: agent.httpAddress.port, defaults: { token: mgmt } });
  await admin.agent.service.register({ id: 'db-1', name: 'db-1', port: 5432 });
});
after(() => agent?.close());

describe('npm consul with a token', () => {
  test('registers web-1, is refused db-2 with a 403 naming the permission; reads are filtered', async () => {
    const c = new Consul({ host: '127.0.0.1', port: agent.httpAddress.port, defaults: { token: webToken } });
    await c.agent.service.register({ id: 'web-1', name: 'web-1', port: 80 });
    // node-consul keeps a plain-text body under 80 bytes as the message, else the status text; the body is
    // on err.response
    await assert.rejects(
      c.agent.service.register({ id: 'db-2', name: 'db-2', port: 1 }),
      (err: Error & { response?: { statusCode: number; body: unknown } }) =>
        err.response?.statusCode === 403 &&
        /lacks permission 'service:write' on "db-2"/.test(String(err.response.body)),
    );
    const services = (await c.catalog.service.list()) as Record<string, string[]>;
    assert.deepEqual(Object.keys(services), ['web-1']);
    await c.kv.set('web/config', 'v1');
    await assert.rejects(
      c.kv.set('db/config', 'v1'),
      (err: Error & { statusCode?: number }) => err.statusCode === 403,
    );
    const self = (await c.agent.self()) as { Config: { NodeName: string } };
    assert.equal(self.Config.NodeName, 'test-node');
    // without a token the client is anonymous: denied
    const anon = new Consul({ host: '127.0.0.1', port: agent.httpAddress.port });
    await assert.rejects(
      anon.agent.self(),
      (err: Error & { response?: { statusCode: number } }) => err.response?.statusCode === 403,
    );
  });
});

describe('python-consul 0.7.1 with a token', { skip: pythonSkip }, () => {
  test('register allowed and denied (ACLPermissionDenied), filtered catalog, KV with ?token=', async () => {
    const script = `
import json, sys, consul
c = consul.Consul(port=int(sys.argv[1]), token=sys.argv[2])
out = {}
out['web'] = c.agent.service.register('web-py', service_id='web-py', port=81)
try:
    c.agent.service.register('db-py', service_id='db-py', port=82)
    out['db'] = 'allowed'
except consul.ACLPermissionDenied as e:
    out['db'] = 'denied: ' + str(e)
idx, services = c.catalog.services()
out['services'] = sorted(services.keys())
out['kv'] = c.kv.put('web/py', 'x')
idx, v = c.kv.get('web/py')
out['kv_value'] = v['Value'].decode()
try:
    c.kv.put('db/py', 'x')
    out['kv_db'] = 'allowed'
except consul.ACLPermissionDenied:
    out['kv_db'] = 'denied'
print(json.dumps(out))
`;
    const { stdout } = await exec(PYTHON, ['-c', script, String(agent.httpAddress.port), webToken], {
      timeout: 30_000,
    });
    const out = JSON.parse(stdout) as Record<string, unknown>;
    assert.equal(out.web, true);
    assert.match(String(out.db), /^denied: .*lacks permission 'service:write' on "db-py"/);
    assert.deepEqual(out.services, ['web-1', 'web-py']);
    assert.equal(out.kv, true);
    assert.equal(out.kv_value, 'x');
    assert.equal(out.kv_db, 'denied');
  });
});
