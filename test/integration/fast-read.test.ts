/**
 * The read fast path (src/agent/http/fast-read.ts): a read answered before is answered again ahead of
 * fastify — with exactly the headers and bytes fastify sends, and never when fastify would answer
 * differently (another token, a token or policy change, a bad Host, a missing client certificate, a
 * blocking or consistent read, a change of the data).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { RunningAgent } from '../../src/agent/index.ts';
import { startAgentInProcess } from '../helpers/agent.ts';
import { makeTestCa } from '../helpers/certs.ts';
import { type Answer, exchange } from '../helpers/exchange.ts';

/** One GET on a fresh connection (test/helpers/exchange.ts). */
function get(
  url: string,
  headers: Record<string, string> = {},
  tls?: { ca: Buffer; cert?: Buffer; key?: Buffer },
): Promise<Answer> {
  return exchange(url, { headers, ...(tls ? { tls } : {}) });
}

async function send(base: string, method: string, path: string, body?: unknown, token?: string) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: token ? { 'X-Consul-Token': token } : {},
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${text}`);
  return text;
}

/** Reads answered ahead of the router so far (the agent's own metric). */
async function fastCount(base: string, token?: string): Promise<number> {
  const text = await send(base, 'GET', '/v1/agent/metrics?format=prometheus', undefined, token);
  const m = /^phare_http_fast_path_reads_total (\d+)$/m.exec(text);
  assert.ok(m, 'the metric is exported');
  return Number(m[1]);
}

/** GETs `url` twice: the first through fastify, the second ahead of it; both answers must be equal. */
async function twice(base: string, path: string, headers: Record<string, string> = {}, token?: string) {
  const first = await get(`${base}${path}`, headers);
  const before = await fastCount(base, token);
  const second = await get(`${base}${path}`, headers);
  const fast = (await fastCount(base, token)) - before;
  return { first, second, fast };
}

const register = (base: string, id: string, port: number, status = 'passing', token?: string) =>
  send(
    base,
    'PUT',
    '/v1/agent/service/register',
    { ID: id, Name: 'web', Port: port, Tags: ['v1'], Check: { TTL: '60s', Status: status } },
    token,
  );

describe('the read fast path answers as fastify does', () => {
  let agent: RunningAgent & { url: string };
  before(async () => {
    agent = await startAgentInProcess();
    await register(agent.url, 'web-1', 8001);
    await register(agent.url, 'web-2', 8002, 'critical');
    await send(agent.url, 'PUT', '/v1/kv/app/a', 'alpha');
    await send(agent.url, 'PUT', '/v1/kv/app/b/c?flags=42', 'gamma');
  });
  after(() => agent?.close());

  const paths = [
    '/v1/health/service/web',
    '/v1/health/service/web?passing',
    '/v1/health/service/web?passing=1&stale',
    '/v1/health/service/web?pretty',
    '/v1/health/service/web?tag=v1&filter=Service.Port%20%3D%3D%208002',
    '/v1/health/checks/web',
    '/v1/health/state/any',
    '/v1/health/node/test-node',
    '/v1/catalog/services',
    '/v1/catalog/service/web',
    '/v1/catalog/nodes',
    '/v1/catalog/node/test-node',
    '/v1/kv/app/a',
    '/v1/kv/app/b/c?pretty',
    '/v1/kv/app?recurse',
    '/v1/kv/?keys&separator=/',
    '/v1/kv/app/a?stale',
  ];
  for (const path of paths) {
    test(`GET ${path}: the same status, headers and bytes on both paths`, async () => {
      const { first, second, fast } = await twice(agent.url, path);
      assert.equal(first.status, 200, first.body);
      assert.equal(fast, 1, 'the second request was answered ahead of the router');
      assert.deepEqual(second, first);
    });
  }

  test('a change is seen at once: the remembered URL answers the new data at the new index', async () => {
    const path = '/v1/health/service/web?passing';
    const { first } = await twice(agent.url, path);
    await register(agent.url, 'web-3', 8003);
    const after1 = await get(`${agent.url}${path}`);
    assert.ok(Number(after1.headers['x-consul-index']) > Number(first.headers['x-consul-index']));
    assert.match(after1.body, /web-3/);
    const again = await twice(agent.url, path);
    assert.equal(again.fast, 1);
    assert.deepEqual(again.second, after1);
    // a KV change too, and a deleted key is fastify's 404 again
    const kvPath = '/v1/kv/app/a';
    await twice(agent.url, kvPath);
    await send(agent.url, 'PUT', kvPath, 'beta');
    const changed = await get(`${agent.url}${kvPath}`);
    assert.match(changed.body, new RegExp(Buffer.from('beta').toString('base64')));
    await send(agent.url, 'DELETE', kvPath);
    const gone = await get(`${agent.url}${kvPath}`);
    assert.equal(gone.status, 404);
    assert.ok(gone.headers['x-consul-index'], 'the 404 still carries X-Consul-Index');
  });

  test('blocking, consistent, cached and raw reads are never answered ahead of the router', async () => {
    const index = (await get(`${agent.url}/v1/health/service/web`)).headers['x-consul-index'];
    for (const path of [
      `/v1/health/service/web?index=1`,
      `/v1/health/service/web?index=${index}&wait=50ms`,
      '/v1/health/service/web?consistent',
      '/v1/health/service/web?cached',
      '/v1/kv/app/b/c?raw',
    ]) {
      const { first, second, fast } = await twice(agent.url, path);
      assert.equal(fast, 0, path);
      assert.equal(second.status, first.status, path);
    }
  });

  test('a Host header that does not name the agent is refused on a remembered URL too', async () => {
    const path = '/v1/catalog/services';
    await twice(agent.url, path);
    const before = await fastCount(agent.url);
    const r = await get(`${agent.url}${path}`, { Host: 'evil.example.com' });
    assert.equal(r.status, 403);
    assert.match(r.body, /does not name this agent/);
    assert.equal(await fastCount(agent.url), before);
  });
});

describe('the read fast path and ACL tokens', () => {
  const MGMT = '6a1e2f0c-2b7d-4c59-9a57-1f0f7b3c9d01';
  let agent: RunningAgent & { url: string };
  let reader: { SecretID: string; AccessorID: string };
  let policyId: string;

  before(async () => {
    agent = await startAgentInProcess({
      flags: { 'acl-enabled': true, 'acl-default-policy': 'deny', 'acl-initial-management-token': MGMT },
    });
    await register(agent.url, 'web-1', 8001, 'passing', MGMT);
    await send(agent.url, 'PUT', '/v1/agent/service/register', { ID: 'db-1', Name: 'db', Port: 5432 }, MGMT);
    await send(agent.url, 'PUT', '/v1/kv/shared/a', 'alpha', MGMT);
    await send(agent.url, 'PUT', '/v1/kv/shared/secret', 'psst', MGMT);
    const policy = JSON.parse(
      await send(
        agent.url,
        'PUT',
        '/v1/acl/policy',
        {
          Name: 'readers',
          Rules:
            'service "web" { policy = "read" }\nnode_prefix "" { policy = "read" }\n' +
            'key_prefix "shared/" { policy = "read" }\nkey "shared/secret" { policy = "deny" }\n' +
            'agent_prefix "" { policy = "read" }',
        },
        MGMT,
      ),
    ) as { ID: string };
    policyId = policy.ID;
    reader = JSON.parse(
      await send(agent.url, 'PUT', '/v1/acl/token', { Policies: [{ ID: policyId }] }, MGMT),
    ) as typeof reader;
  });
  after(() => agent?.close());

  test('each way of giving the token: same answer as fastify, filtered lists marked', async () => {
    for (const [path, headers] of [
      ['/v1/catalog/services', { 'X-Consul-Token': reader.SecretID }],
      ['/v1/catalog/services', { Authorization: `Bearer ${reader.SecretID}` }],
      [`/v1/catalog/services?token=${reader.SecretID}`, {}],
      ['/v1/health/service/web', { 'X-Consul-Token': reader.SecretID }],
      ['/v1/kv/shared/a', { 'X-Consul-Token': reader.SecretID }],
      ['/v1/kv/shared/?recurse', { 'X-Consul-Token': reader.SecretID }],
    ] as const) {
      const { first, second, fast } = await twice(agent.url, path, headers, MGMT);
      assert.equal(first.status, 200, `${path}: ${first.body}`);
      assert.equal(fast, 1, path);
      assert.deepEqual(second, first, path);
    }
    const services = await get(`${agent.url}/v1/catalog/services`, { 'X-Consul-Token': reader.SecretID });
    assert.deepEqual(Object.keys(JSON.parse(services.body)), ['web']);
    assert.equal(services.headers['x-consul-results-filtered-by-acls'], 'true');
    const recurse = await get(`${agent.url}/v1/kv/shared/?recurse`, { 'X-Consul-Token': reader.SecretID });
    assert.equal(recurse.headers['x-consul-results-filtered-by-acls'], 'true');
    assert.doesNotMatch(recurse.body, /secret/);
  });

  test('a remembered URL gives no other token what it was answered for', async () => {
    await twice(agent.url, '/v1/catalog/services', { 'X-Consul-Token': MGMT }, MGMT);
    // anonymous (deny): the management token's answer is not served to it
    const anon = await get(`${agent.url}/v1/catalog/services`);
    assert.equal(anon.status, 200);
    assert.deepEqual(JSON.parse(anon.body), {});
    // an unknown secret: fastify's 403, every time
    for (let i = 0; i < 2; i++) {
      const bad = await get(`${agent.url}/v1/kv/shared/a`, { 'X-Consul-Token': 'not-a-token' });
      assert.equal(bad.status, 403);
      assert.equal(bad.body, 'ACL not found');
    }
    // a key the token may not read, after the management token's read of it was remembered
    await twice(agent.url, '/v1/kv/shared/secret', { 'X-Consul-Token': MGMT }, MGMT);
    const denied = await get(`${agent.url}/v1/kv/shared/secret`, { 'X-Consul-Token': reader.SecretID });
    assert.equal(denied.status, 403);
    assert.match(denied.body, /^Permission denied: .* lacks permission 'key:read' on "shared\/secret"$/);
  });

  test('a policy change and a deleted token take effect at once on remembered URLs', async () => {
    const headers = { 'X-Consul-Token': reader.SecretID };
    const { fast } = await twice(agent.url, '/v1/kv/shared/a', headers, MGMT);
    assert.equal(fast, 1);
    await twice(agent.url, '/v1/health/service/web', headers, MGMT);
    await send(
      agent.url,
      'PUT',
      `/v1/acl/policy/${policyId}`,
      { Name: 'readers', Rules: 'node_prefix "" { policy = "read" }\nagent_prefix "" { policy = "read" }' },
      MGMT,
    );
    const kv = await get(`${agent.url}/v1/kv/shared/a`, headers);
    assert.equal(kv.status, 403, kv.body);
    const health = await get(`${agent.url}/v1/health/service/web`, headers);
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.body), []);
    await send(agent.url, 'DELETE', `/v1/acl/token/${reader.AccessorID}`, undefined, MGMT);
    const gone = await get(`${agent.url}/v1/health/service/web`, headers);
    assert.equal(gone.status, 403);
    assert.equal(gone.body, 'ACL not found');
  });
});

describe('the read fast path over HTTPS with --tls-verify-incoming', () => {
  const ca = makeTestCa('fast-read CA');
  const server = ca.leaf('agent', { san: 'IP:127.0.0.1,DNS:localhost' });
  const client = ca.leaf('client', { client: true });
  let agent: RunningAgent & { url: string };
  before(async () => {
    agent = await startAgentInProcess({
      flags: {
        'https-addr': '127.0.0.1:0',
        'tls-cert-file': server.certFile,
        'tls-key-file': server.keyFile,
        'tls-ca-file': ca.caFile,
        'tls-verify-incoming': true,
      },
    });
  });
  after(async () => {
    await agent?.close();
    ca.remove();
  });

  test('a remembered URL still needs a client certificate; with one, both paths answer alike', async () => {
    const url = `${agent.httpsUrl}/v1/catalog/services`;
    const caPem = readFileSync(ca.caFile);
    const withCert = { ca: caPem, cert: readFileSync(client.certFile), key: readFileSync(client.keyFile) };
    const before = await fastCount(agent.url);
    const first = await get(url, {}, withCert);
    const second = await get(url, {}, withCert);
    assert.equal(first.status, 200, first.body);
    assert.equal((await fastCount(agent.url)) - before, 1);
    assert.deepEqual(second, first);
    const bare = await get(url, {}, { ca: caPem });
    assert.equal(bare.status, 403);
    assert.match(bare.body, /^Client certificate required/);
  });
});
