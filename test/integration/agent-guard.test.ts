/**
 * The request guard with raw requests (issue 14): Host headers that do not name the agent are refused
 * (DNS rebinding), browser-marked cross-origin writes are refused, and clients that send no browser marks
 * (python-consul 0.7.1's GET deregister, curl) go on working. A non-loopback bind warns what is open.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { exposureWarnings } from '../../src/agent/agent.ts';
import { resolveAgentConfig } from '../../src/agent/config/index.ts';
import { startTestAgent, type TestAgent } from '../../src/testing/index.ts';

let agent: TestAgent;
let port: number;

/** A raw request with exactly these headers (fetch would not let us set Host). */
function raw(
  method: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, setHost: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function register(id: string): Promise<void> {
  const res = await fetch(`${agent.url}/v1/agent/service/register`, {
    method: 'PUT',
    body: JSON.stringify({ Name: 'web', ID: id, Port: 80, Check: { CheckID: `${id}-ttl`, TTL: '600s' } }),
  });
  assert.equal(res.status, 200);
}

async function services(): Promise<string[]> {
  return Object.keys((await (await fetch(`${agent.url}/v1/agent/services`)).json()) as object).sort();
}

before(async () => {
  agent = await startTestAgent({
    node: 'node-a',
    flags: { 'allowed-hosts': 'consul.internal,.svc.example' },
  });
  port = Number(new URL(agent.url).port);
});
after(() => agent?.close());

test('Host headers naming the agent are answered; others get 403 (DNS rebinding)', async () => {
  for (const host of [
    `127.0.0.1:${port}`,
    '127.0.0.1',
    `[::1]:${port}`,
    `localhost:${port}`,
    'LocalHost',
    `app.localhost:${port}`,
    `node-a:${port}`,
    `node-a.node.consul:${port}`,
    `consul.internal:${port}`,
    'a.b.svc.example',
    // single-label names: Docker Compose / Kubernetes service names on their own networks
    `agent:${port}`,
    'consul',
  ]) {
    const res = await raw('GET', '/v1/agent/self', { Host: host });
    assert.equal(res.status, 200, `${host}: ${res.body}`);
  }
  for (const host of [
    `evil.example:${port}`,
    'node-a.evil.example',
    'svc.example',
    `localhost.evil:${port}`,
  ]) {
    const res = await raw('GET', '/v1/agent/self', { Host: host });
    assert.equal(res.status, 403, host);
    assert.match(res.body, /does not name this agent.*--allowed-hosts/);
  }
  // the UI too: a rebinding page must not read it either
  assert.equal((await raw('GET', '/ui/', { Host: 'evil.example' })).status, 403);
  // (an HTTP/1.1 request without Host is answered 400 by Node itself, before the guard)
  assert.equal((await raw('GET', '/v1/agent/self', {})).status, 400);
});

test('a rebinding write changes nothing', async () => {
  await register('rebound');
  const res = await raw('PUT', '/v1/agent/service/deregister/rebound', { Host: `attacker.example:${port}` });
  assert.equal(res.status, 403);
  assert.ok((await services()).includes('rebound'));
});

test('browser-marked cross-origin writes are refused, GET deregister included', async () => {
  await register('victim');
  const attempts: [string, string, Record<string, string>][] = [
    [
      'GET',
      '/v1/agent/service/deregister/victim',
      { 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'no-cors' },
    ],
    // another port on the same host is the same *site* but another origin
    [
      'GET',
      '/v1/agent/check/fail/victim-ttl',
      { 'Sec-Fetch-Site': 'same-site', 'Sec-Fetch-Mode': 'no-cors' },
    ],
    ['PUT', '/v1/agent/service/deregister/victim', { Origin: 'http://127.0.0.2:8080' }],
    ['POST', '/v1/agent/service/deregister/victim', { Origin: 'null' }],
    ['GET', '/v1/agent/check/fail/victim-ttl', { Referer: 'http://evil.example/page' }],
    ['PUT', '/v1/agent/check/fail/victim-ttl', { Origin: `https://127.0.0.1:${port}` }],
  ];
  for (const [method, path, headers] of attempts) {
    const res = await raw(method, path, { Host: `127.0.0.1:${port}`, ...headers });
    assert.equal(res.status, 403, `${method} ${path} ${JSON.stringify(headers)}: ${res.body}`);
    assert.match(
      res.body,
      /^Cross-origin request refused: .* changes state and a browser sent it from another origin/,
    );
  }
  const checks = (await (await fetch(`${agent.url}/v1/agent/checks`)).json()) as Record<
    string,
    { Status: string }
  >;
  assert.equal(checks['victim-ttl']?.Status, 'critical', 'unchanged: a new TTL check starts critical');
  assert.ok((await services()).includes('victim'));
  // reads from another origin go through (no CORS headers, so the page cannot read them anyway)
  const read = await raw('GET', '/v1/agent/services', {
    Host: `127.0.0.1:${port}`,
    'Sec-Fetch-Site': 'cross-site',
  });
  assert.equal(read.status, 200);
  assert.equal(read.body.includes('Access-Control'), false);
});

test('same-origin and user-typed writes go through; clients without browser marks too', async () => {
  const self = `http://127.0.0.1:${port}`;
  const host = { Host: `127.0.0.1:${port}` };
  assert.equal(
    (
      await raw('PUT', '/v1/agent/check/pass/victim-ttl', {
        ...host,
        'Sec-Fetch-Site': 'same-origin',
        Origin: self,
      })
    ).status,
    200,
  );
  assert.equal(
    (await raw('GET', '/v1/agent/check/warn/victim-ttl', { ...host, 'Sec-Fetch-Site': 'none' })).status,
    200,
  );
  assert.equal(
    (await raw('PUT', '/v1/agent/check/fail/victim-ttl', { ...host, Origin: self, Referer: `${self}/ui/` }))
      .status,
    200,
  );
  // python-consul 0.7.1: GET deregister with no browser headers
  assert.equal(
    (
      await raw('GET', '/v1/agent/service/deregister/victim', {
        ...host,
        'User-Agent': 'python-requests/2.31',
      })
    ).status,
    200,
  );
  assert.equal((await services()).includes('victim'), false);
});

test('a non-loopback bind warns what is open; loopback does not', () => {
  const open = resolveAgentConfig({
    flags: { 'http-addr': '0.0.0.0:8500', 'dns-addr': '10.0.0.5:8600' },
    env: {},
  });
  const lines = exposureWarnings(open);
  assert.equal(lines.length, 2);
  assert.match(
    lines[0] ?? '',
    /^HTTP API on 0\.0\.0\.0:8500 is reachable beyond this machine without ACLs or TLS: anyone who can connect can register and deregister/,
  );
  assert.match(lines[1] ?? '', /^DNS on 10\.0\.0\.5:8600 answers anyone/);
  for (const addr of ['127.0.0.1:8500', '[::1]:8500', '127.0.0.9:1']) {
    assert.deepEqual(
      exposureWarnings(resolveAgentConfig({ flags: { 'http-addr': addr, 'dns-addr': '' }, env: {} })),
      [],
    );
  }
});

test('--allowed-hosts: a bad name is refused naming the flag', () => {
  assert.throws(
    () => resolveAgentConfig({ flags: { 'allowed-hosts': 'ok.example,bad host' }, env: {} }),
    /--allowed-hosts: "bad host" is not valid; expected host names/,
  );
});
