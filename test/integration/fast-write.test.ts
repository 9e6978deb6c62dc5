/**
 * The write fast path (src/agent/http/fast-write.ts): `PUT /v1/agent/service/register` and a plain
 * `PUT /v1/kv/<key>` taken ahead of fastify answer with exactly the status, headers and bytes fastify sends —
 * for a write and for every way one fails — and never take a request fastify would treat otherwise (a
 * cross-origin browser request, a bad Host, a body over the limit, a query string, a chunked body, a key the
 * router decodes).
 *
 * Each case is sent twice on fresh connections: to `/v1/agent/service/register` (the fast path) and to
 * `/v1/agent/service/register?replace-existing-checks=false` (the same request to fastify: a query string is
 * never taken ahead), or to `/v1/kv/<key>` and `/v1/kv/<key>?flags=0`; the agent's own metric says which path
 * answered.
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

/**
 * The same PUT through the fast path and through fastify (`slow`: the same path with a query string that
 * changes nothing): both answers, and how many the fast path took.
 */
async function both(
  base: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
  token?: string,
  path = '/v1/agent/service/register',
  slow = '?replace-existing-checks=false',
) {
  const before = await fastWrites(base, token);
  const fast = await put(`${base}${path}`, body, headers);
  const taken = (await fastWrites(base, token)) - before;
  const slowAnswer = await put(`${base}${path}${slow}`, body, headers);
  const after = (await fastWrites(base, token)) - before;
  assert.equal(after, taken, 'a URL with a query string is never taken ahead of fastify');
  return { fast, slow: slowAnswer, taken };
}

/** {@link both} for `PUT /v1/kv/<key>`: fastify gets it with `?flags=0` (the default flags, said aloud). */
const bothKv = (
  base: string,
  key: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
  token?: string,
) => both(base, body, headers, token, `/v1/kv/${key}`, '?flags=0');

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

/** The management token of the ACL agents below. */
const MGMT = '7b2e3f1d-3c8e-4d60-8b68-2e1f8c4d0e12';

/** An agent with ACLs on (default deny) and a token whose one policy, `name`, has `rules`. */
async function aclAgent(
  name: string,
  rules: string,
): Promise<{ agent: RunningAgent & { url: string }; writer: { SecretID: string } }> {
  const agent = await startAgentInProcess({
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
  const policy = (await call('/v1/acl/policy', { Name: name, Rules: rules })) as { ID: string };
  const writer = (await call('/v1/acl/token', { Policies: [{ ID: policy.ID }] })) as { SecretID: string };
  return { agent, writer };
}

describe('the write fast path and ACL tokens', () => {
  let agent: RunningAgent & { url: string };
  let writer: { SecretID: string };

  before(async () => {
    ({ agent, writer } = await aclAgent('web-writer', 'service "web" { policy = "write" }'));
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

describe('the write fast path for KV puts', () => {
  let agent: RunningAgent & { url: string };
  let writer: { SecretID: string };
  const raw = async (key: string) => {
    const res = await fetch(`${agent.url}/v1/kv/${key}?raw`, { headers: { 'X-Consul-Token': MGMT } });
    return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()) };
  };

  before(async () => {
    ({ agent, writer } = await aclAgent('config-writer', 'key_prefix "config/" { policy = "write" }'));
  });
  after(() => agent?.close());

  test('a put: the same `true`, the bytes stored as sent, for every content type a value comes with', async () => {
    const auth = { 'X-Consul-Token': MGMT };
    const types = [
      undefined,
      'text/plain;charset=UTF-8',
      'application/json',
      'application/octet-stream',
      'application/x-www-form-urlencoded',
    ];
    for (const [i, type] of types.entries()) {
      const value = Buffer.from([0, 1, 2, 0xff, 0xfe, i, 0x7b]);
      const headers: Record<string, string> = type ? { ...auth, 'Content-Type': type } : auth;
      const { fast, slow, taken } = await bothKv(agent.url, `config/t${i}`, value, headers, MGMT);
      assert.equal(taken, 1, String(type));
      assert.equal(fast.status, 200, fast.body);
      assert.equal(fast.body, 'true');
      assert.deepEqual(fast, slow, String(type));
      assert.deepEqual((await raw(`config/t${i}`)).bytes, value);
    }
    // nested, long, and every character a plain key may have; each stored under the key as sent
    for (const key of ['config/a/b/c', `config/${'k'.repeat(300)}`, 'config/x_y~z-1.2/.v/w']) {
      const segments = key.split('/');
      const plain = segments.every((p) => !p.startsWith('.'));
      const { fast, slow, taken } = await bothKv(agent.url, key, 'v', auth, MGMT);
      assert.equal(taken, plain ? 1 : 0, key);
      assert.deepEqual(fast, slow, key);
      assert.equal((await raw(key)).bytes.toString(), 'v');
    }
  });

  test('tokens: allowed, denied, unknown and missing give the answers fastify gives, and write nothing else', async () => {
    const cases: [string, string, Record<string, string>, number][] = [
      ['a token that may write config/', 'config/ok', { 'X-Consul-Token': writer.SecretID }, 200],
      ['the same as a bearer token', 'config/bearer', { Authorization: `Bearer ${writer.SecretID}` }, 200],
      ['a key outside its prefix', 'secret/x', { 'X-Consul-Token': writer.SecretID }, 403],
      ['the anonymous token', 'config/anon', {}, 403],
      [
        'an unknown token',
        'config/unknown',
        { 'X-Consul-Token': '00000000-0000-4000-8000-000000000000' },
        403,
      ],
    ];
    for (const [what, key, headers, status] of cases) {
      const { fast, slow, taken } = await bothKv(agent.url, key, 'v', headers, MGMT);
      assert.equal(taken, 1, what);
      assert.equal(fast.status, status, `${what}: ${fast.body}`);
      assert.deepEqual(fast, slow, what);
      assert.equal((await raw(key)).status, status === 200 ? 200 : 404, what);
    }
  });

  test('what the router decodes or fastify weighs otherwise is left to it', async () => {
    const auth = { 'X-Consul-Token': MGMT };
    const cases: [string, string, Record<string, string>, string | Buffer][] = [
      ['a percent-encoded key', 'config/a%20b', auth, 'v'],
      ['a folder key (trailing slash)', 'config/folder/', auth, 'v'],
      ['an empty segment', 'config//x', auth, 'v'],
      ['a segment starting with a dot', 'config/.hidden', auth, 'v'],
      ['no key', '', auth, 'v'],
      ['a browser from another origin', 'config/o', { ...auth, Origin: 'http://evil.example' }, 'v'],
      ['a Host that is not the agent', 'config/h', { ...auth, Host: 'evil.example' }, 'v'],
      ['a value over 512 KiB', 'config/big', auth, Buffer.alloc(512 * 1024 + 1, 0x61)],
      ['another content type', 'config/ct', { ...auth, 'Content-Type': 'image/png' }, 'v'],
    ];
    for (const [what, key, headers, body] of cases) {
      const { fast, slow, taken } = await bothKv(agent.url, key, body, headers, MGMT);
      assert.equal(taken, 0, what);
      assert.deepEqual(fast, slow, what);
    }
    // the largest value the route takes is taken, and stored whole
    const max = Buffer.alloc(512 * 1024, 0x62);
    const { fast, taken } = await bothKv(agent.url, 'config/max', max, auth, MGMT);
    assert.equal(taken, 1);
    assert.equal(fast.body, 'true');
    assert.equal((await raw('config/max')).bytes.length, max.length);
  });
});
