/**
 * The write fast path (src/agent/http/fast-write.ts): `PUT /v1/agent/service/register` taken ahead of
 * fastify answers with exactly the status, headers and bytes fastify sends — for a registration and for
 * every way one fails — and never takes a request fastify would treat otherwise (a cross-origin browser
 * request, a bad Host, a body over the limit, a query string, a chunked body).
 *
 * Each case is sent twice on fresh connections: to `/v1/agent/service/register` (the fast path) and to
 * `/v1/agent/service/register?replace-existing-checks=false` (the same request to fastify: a query string is
 * never taken ahead), and
 * the agent's own metric says which path answered.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { RunningAgent } from '../../src/agent/index.ts';
import { startAgentInProcess } from '../helpers/agent.ts';
import { type Answer, exchange } from '../helpers/exchange.ts';

/** One PUT on a fresh connection (test/helpers/exchange.ts). */
function put(url: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return exchange(url, { method: 'PUT', headers, body });
}

/** Registrations taken ahead of the router so far (the agent's own metric). */
async function fastWrites(base: string, token?: string): Promise<number> {
  const res = await fetch(`${base}/v1/agent/metrics?format=prometheus`, {
    headers: token ? { 'X-Consul-Token': token } : {},
  });
  const m = /^phare_http_fast_path_writes_total (\d+)$/m.exec(await res.text());
  assert.ok(m, 'the metric is exported');
  return Number(m[1]);
}

/** The same PUT through the fast path and through fastify: both answers, and how many the fast path took. */
async function both(
  base: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
  token?: string,
) {
  const before = await fastWrites(base, token);
  const fast = await put(`${base}/v1/agent/service/register`, body, headers);
  const taken = (await fastWrites(base, token)) - before;
  const slow = await put(`${base}/v1/agent/service/register?replace-existing-checks=false`, body, headers);
  const after = (await fastWrites(base, token)) - before;
  assert.equal(after, taken, 'a URL with a query string is never taken ahead of fastify');
  return { fast, slow, taken };
}

const json = (v: unknown) => JSON.stringify(v);

describe('the write fast path answers as fastify does', () => {
  let agent: RunningAgent & { url: string };
  before(async () => {
    agent = await startAgentInProcess();
  });
  after(() => agent?.close());

  test('a registration: same empty 200, the service and its check registered', async () => {
    const reg = {
      ID: 'web-1',
      Name: 'web',
      Port: 8080,
      Tags: ['v1'],
      Check: { TTL: '30s', Status: 'passing' },
    };
    const { fast, slow, taken } = await both(agent.url, json(reg), { 'Content-Type': 'application/json' });
    assert.equal(taken, 1);
    assert.equal(fast.status, 200, fast.body);
    assert.deepEqual(fast, slow);
    const svc = (await (await fetch(`${agent.url}/v1/agent/service/web-1`)).json()) as Record<
      string,
      unknown
    >;
    assert.equal(svc.Port, 8080);
    assert.deepEqual(svc.Tags, ['v1']);
    const checks = (await (await fetch(`${agent.url}/v1/agent/checks`)).json()) as Record<
      string,
      { Status: string }
    >;
    assert.equal(checks['service:web-1']?.Status, 'passing');
    // no content type, or text/plain (curl -d, undici with a string body): the same
    for (const headers of [{}, { 'Content-Type': 'text/plain;charset=UTF-8' }] as Record<string, string>[]) {
      const r = await both(agent.url, json({ ...reg, Port: 8081 }), headers);
      assert.equal(r.taken, 1);
      assert.deepEqual(r.fast, r.slow);
      assert.equal(r.fast.status, 200);
    }
  });

  test('every way a body fails: same status, headers and text, nothing registered', async () => {
    const bad: [string, string | Buffer][] = [
      ['not JSON', '{"ID": "x", '],
      ['blank', '   '],
      ['a field of the wrong type', json({ Name: 'api', Port: 'eighty' })],
      ['no name', json({ ID: 'nameless', Port: 1 })],
      ['a bad check', json({ Name: 'api', Check: { HTTP: 'http://127.0.0.1:1/', Interval: 'soon' } })],
      ['a __proto__ key', '{"Name":"api","__proto__":{"x":1}}'],
      ['an unknown field', json({ Name: 'api', Bogus: true })],
      ['not UTF-8', Buffer.from([0x7b, 0x22, 0x4e, 0x22, 0x3a, 0xff, 0xfe, 0x7d])],
      ['an array', '[1,2]'],
    ];
    const before = (await (await fetch(`${agent.url}/v1/agent/services`)).json()) as object;
    for (const [what, body] of bad) {
      const { fast, slow, taken } = await both(agent.url, body);
      assert.equal(taken, 1, what);
      assert.ok(fast.status >= 400 && fast.status < 500, `${what}: ${fast.status} ${fast.body}`);
      assert.deepEqual(fast, slow, what);
    }
    assert.deepEqual(await (await fetch(`${agent.url}/v1/agent/services`)).json(), before);
  });

  test('requests fastify treats otherwise are left to it', async () => {
    const reg = json({ ID: 'web-2', Name: 'web', Port: 8082 });
    const cases: [string, Record<string, string>, string | Buffer][] = [
      ['a browser from another origin', { Origin: 'http://evil.example' }, reg],
      ['a cross-site fetch', { 'Sec-Fetch-Site': 'cross-site' }, reg],
      ['a Referer', { Referer: 'http://evil.example/page' }, reg],
      ['a Host that is not the agent', { Host: 'evil.example' }, reg],
      ['a body over the limit', {}, Buffer.alloc(600 * 1024, 0x20)],
      ['another content type', { 'Content-Type': 'application/x-www-form-urlencoded' }, reg],
    ];
    for (const [what, headers, body] of cases) {
      const { fast, slow, taken } = await both(agent.url, body, headers);
      assert.equal(taken, 0, what);
      assert.deepEqual(fast, slow, what);
    }
    // a chunked body (no Content-Length) goes to fastify and registers as before
    const before = await fastWrites(agent.url);
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        new URL(`${agent.url}/v1/agent/service/register`),
        { method: 'PUT', agent: false },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.write(reg.slice(0, 10));
      req.end(reg.slice(10));
    });
    assert.equal(chunked, 200);
    assert.equal((await fastWrites(agent.url)) - before, 0);
  });
});

describe('the write fast path and ACL tokens', () => {
  const MGMT = '7b2e3f1d-3c8e-4d60-8b68-2e1f8c4d0e12';
  let agent: RunningAgent & { url: string };
  let writer: { SecretID: string };

  before(async () => {
    agent = await startAgentInProcess({
      flags: { 'acl-enabled': true, 'acl-default-policy': 'deny', 'acl-initial-management-token': MGMT },
    });
    const call = async (path: string, body: unknown) => {
      const res = await fetch(`${agent.url}${path}`, {
        method: 'PUT',
        headers: { 'X-Consul-Token': MGMT },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 200, await res.clone().text());
      return res.json();
    };
    const policy = (await call('/v1/acl/policy', {
      Name: 'web-writer',
      Rules: 'service "web" { policy = "write" }',
    })) as { ID: string };
    writer = (await call('/v1/acl/token', { Policies: [{ ID: policy.ID }] })) as typeof writer;
  });
  after(() => agent?.close());

  test('allowed, denied, unknown and missing tokens: the same answers as fastify', async () => {
    const web = json({ ID: 'web-1', Name: 'web', Port: 80 });
    const db = json({ ID: 'db-1', Name: 'db', Port: 5432 });
    const cases: [string, string, Record<string, string>, number][] = [
      ['a token that may write web', web, { 'X-Consul-Token': writer.SecretID }, 200],
      ['the same as a bearer token', web, { Authorization: `Bearer ${writer.SecretID}` }, 200],
      ['a token that may not write db', db, { 'X-Consul-Token': writer.SecretID }, 403],
      ['the anonymous token', web, {}, 403],
      ['an unknown token', web, { 'X-Consul-Token': '00000000-0000-4000-8000-000000000000' }, 403],
      // a bad body is a 400 whatever the token: decoded before the token is resolved
      [
        'a bad body with an unknown token',
        '{',
        { 'X-Consul-Token': '00000000-0000-4000-8000-000000000000' },
        400,
      ],
    ];
    for (const [what, body, headers, status] of cases) {
      const { fast, slow, taken } = await both(agent.url, body, headers, MGMT);
      assert.equal(taken, 1, what);
      assert.equal(fast.status, status, `${what}: ${fast.body}`);
      assert.deepEqual(fast, slow, what);
    }
    const services = await fetch(`${agent.url}/v1/agent/services`, { headers: { 'X-Consul-Token': MGMT } });
    assert.deepEqual(Object.keys((await services.json()) as object), ['web-1']);
  });
});
