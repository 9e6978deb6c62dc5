/**
 * The agent's HTTP API, endpoint by endpoint, against the Consul spec (Consul docs, HTTP API overview,
 * §9, §16): status codes and exact plain-text errors, key matching, check IDs and carry-over, query
 * parameters, query-meta headers, the index, and blocking semantics.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { client } from '../fixtures/http.ts';
import { startAgentInProcess } from '../helpers/agent.ts';

type Agent = Awaited<ReturnType<typeof startAgentInProcess>>;
let agent: Agent;
let api: ReturnType<typeof client>;
const NODE = 'test-node';

before(async () => {
  agent = await startAgentInProcess();
  api = client(agent.url);
});
after(async () => {
  await agent.close();
});

async function ok(method: 'PUT' | 'GET', path: string, body?: unknown): Promise<void> {
  const r = await api.call(method, path, body);
  assert.equal(r.status, 200, `${method} ${path} -> ${r.status} ${r.text}`);
}
const register = (body: unknown, query = '') => ok('PUT', `/v1/agent/service/register${query}`, body);
const deregister = (id: string) => ok('PUT', `/v1/agent/service/deregister/${encodeURIComponent(id)}`);
// biome-ignore lint/suspicious/noExplicitAny: JSON answers, read field by field
type Json = any;
async function getJson(path: string): Promise<Json> {
  const r = await api.get(path);
  assert.equal(r.status, 200, `GET ${path} -> ${r.status} ${r.text}`);
  return r.json();
}
async function agentState(): Promise<string> {
  const [s, c, cs] = await Promise.all([
    getJson('/v1/agent/services'),
    getJson('/v1/agent/checks'),
    getJson('/v1/catalog/services'),
  ]);
  return JSON.stringify({ s, c, cs });
}
const indexOf = (r: { headers: Record<string, unknown> }) => Number(r.headers['x-consul-index']);

describe('errors: status codes and plain-text bodies', () => {
  const cases: [string, string, unknown, number, string | RegExp][] = [
    ['PUT', '/v1/agent/service/register', { Port: 80 }, 400, 'Missing service name'],
    ['PUT', '/v1/agent/service/register', '{bad json', 400, /^Request decode failed: /],
    ['PUT', '/v1/agent/service/register', '', 400, 'Request decode failed: EOF'],
    [
      'PUT',
      '/v1/agent/service/register',
      { Name: 'x', Foo: 1 },
      400,
      'Request decode failed: json: unknown field "Foo"',
    ],
    [
      'PUT',
      '/v1/agent/service/register',
      { Name: 'x', Check: { TTL: '10s', Bar: 1 } },
      400,
      /^Request decode failed: json: unknown field "Bar"/,
    ],
    [
      'PUT',
      '/v1/agent/service/register',
      { Name: 'x', Port: '80' },
      400,
      /^Request decode failed: json: cannot unmarshal string into .*Port/,
    ],
    [
      'PUT',
      '/v1/agent/service/register',
      { Name: 'x', Tags: 'a' },
      400,
      /^Request decode failed: json: cannot unmarshal string into .*Tags/,
    ],
    [
      'PUT',
      '/v1/agent/service/register',
      { Name: 7 },
      400,
      /^Request decode failed: json: cannot unmarshal (number|int) into .*Name/,
    ],
    ['PUT', '/v1/agent/service/register', { Name: 'x', Port: 70000 }, 400, /Port.*70000|70000.*Port/],
    ['PUT', '/v1/agent/service/register', { Name: 'x', Port: -1 }, 400, /Port/],
    ['PUT', '/v1/agent/service/register', { Name: 'x', Address: '0.0.0.0' }, 400, 'Invalid service address'],
    ['PUT', '/v1/agent/service/register', { Name: 'x', Check: { Interval: '10s' } }, 400, /^Invalid check: /],
    [
      'PUT',
      '/v1/agent/service/register',
      { Name: 'x', Check: {} },
      400,
      /^Invalid check: TTL must be > 0 for TTL checks/,
    ],
    [
      'PUT',
      '/v1/agent/service/register',
      { Name: 'x', Check: { HTTP: 'http://127.0.0.1:1/', Interval: '0s' } },
      400,
      'Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks',
    ],
    [
      'PUT',
      '/v1/agent/service/register',
      { Name: 'x', Check: { TCP: '127.0.0.1:1' } },
      400,
      /^Invalid check: Interval must be > 0/,
    ],
    [
      'PUT',
      '/v1/agent/service/register',
      { Name: 'x', Check: { TTL: '0s' } },
      400,
      'Invalid check: TTL must be > 0 for TTL checks',
    ],
    [
      'PUT',
      '/v1/agent/service/register',
      { Name: 'x', Check: { TTL: '10s', Interval: '10s' } },
      400,
      'Invalid check: Interval and TTL cannot both be specified',
    ],
    [
      'PUT',
      '/v1/agent/service/register',
      { Name: 'x', Check: { TTL: 'xx' } },
      400,
      /^Request decode failed: .*time: invalid duration "xx"/,
    ],
    [
      'PUT',
      '/v1/agent/service/register',
      { Name: 'x', Check: { TTL: '10s', Status: 'ok' } },
      400,
      /^Status for checks must 'passing', 'warning', 'critical'/,
    ],
    [
      'PUT',
      '/v1/agent/service/register',
      { Name: 'x', Weights: { Passing: 0, Warning: 1 } },
      400,
      'Invalid Weights: Passing must be greater than 0',
    ],
    [
      'PUT',
      '/v1/agent/service/register',
      { Name: 'x', Meta: { 'bad key': 'v' } },
      400,
      /^Invalid Service Meta: .*Key contains invalid characters/,
    ],
    [
      'PUT',
      '/v1/agent/service/register',
      { Name: 'x', Meta: { 'consul-x': 'v' } },
      400,
      /^Invalid Service Meta: .*Key prefix 'consul-' is reserved/,
    ],
    [
      'PUT',
      '/v1/agent/service/register',
      { Name: 'x', TaggedAddresses: { lan_ipv4: { Address: 'nope', Port: 1 } } },
      500,
      'Service tagged address "lan_ipv4" must be a valid ipv4 address',
    ],
    [
      'PUT',
      '/v1/agent/service/deregister/nope',
      undefined,
      404,
      'Unknown service ID "nope". Ensure that the service ID is passed, not the service name.',
    ],
    [
      'PUT',
      '/v1/agent/check/deregister/nope',
      undefined,
      404,
      'Unknown check ID "nope". Ensure that the check ID is passed, not the check name.',
    ],
    [
      'PUT',
      '/v1/agent/check/pass/nope',
      undefined,
      404,
      'Unknown check ID "nope". Ensure that the check ID is passed, not the check name.',
    ],
    [
      'PUT',
      '/v1/agent/check/warn/nope',
      undefined,
      404,
      'Unknown check ID "nope". Ensure that the check ID is passed, not the check name.',
    ],
    [
      'PUT',
      '/v1/agent/check/fail/nope',
      undefined,
      404,
      'Unknown check ID "nope". Ensure that the check ID is passed, not the check name.',
    ],
    [
      'PUT',
      '/v1/agent/check/update/nope',
      { Status: 'passing' },
      404,
      'Unknown check ID "nope". Ensure that the check ID is passed, not the check name.',
    ],
    ['PUT', '/v1/agent/check/register', { TTL: '10s' }, 400, 'Missing check name'],
    [
      'PUT',
      '/v1/agent/check/register',
      { Name: 'c', TTL: '10s', ServiceID: 'nope' },
      404,
      'ServiceID "nope" does not exist',
    ],
    ['PUT', '/v1/agent/check/register', { Name: 'c', TTL: '10s', Status: 'ok' }, 400, 'Bad check status'],
    [
      'PUT',
      '/v1/agent/service/maintenance/nope?enable=true',
      undefined,
      404,
      'No service registered with ID "nope"',
    ],
    ['PUT', '/v1/agent/maintenance', undefined, 400, 'Missing value for enable'],
    ['PUT', '/v1/agent/maintenance?enable=maybe', undefined, 400, 'Invalid value for enable: "maybe"'],
    ['GET', '/v1/agent/service/nope', undefined, 404, 'unknown service ID: nope'],
    ['GET', '/v1/catalog/service/', undefined, 400, 'Missing service name'],
    ['GET', '/v1/health/service/', undefined, 400, 'Missing service name'],
    ['GET', '/v1/health/state/', undefined, 400, 'Missing check state'],
    ['GET', '/v1/catalog/services?dc=other', undefined, 500, 'No path to datacenter'],
    ['GET', '/v1/health/service/web?dc=other', undefined, 500, 'No path to datacenter'],
    ['GET', '/v1/catalog/nodes?dc=other', undefined, 500, 'No path to datacenter'],
    [
      'GET',
      '/v1/catalog/services?stale&consistent',
      undefined,
      400,
      'Cannot specify ?stale with ?consistent, conflicting semantics.',
    ],
    ['GET', '/v1/catalog/services?index=-1', undefined, 400, 'Invalid index'],
    ['GET', '/v1/catalog/services?index=abc', undefined, 400, 'Invalid index'],
    ['GET', '/v1/health/service/web?index=1&wait=xx', undefined, 400, 'Invalid wait time'],
    ['GET', '/v1/health/service/web?passing=maybe', undefined, 400, 'Invalid value for ?passing'],
    ['GET', '/v1/nope', undefined, 404, 'Invalid URL path: not a recognized HTTP API endpoint\n'],
    [
      'GET',
      '/v1/agent/nope/deeper',
      undefined,
      404,
      'Invalid URL path: not a recognized HTTP API endpoint\n',
    ],
    ['PUT', '/v1/catalog/register', { Address: '10.0.0.1' }, 500, 'Must provide node'],
    ['PUT', '/v1/catalog/deregister', {}, 500, 'Must provide node'],
  ];
  for (const [method, path, body, status, text] of cases) {
    test(`${method} ${path} ${body === undefined ? '' : JSON.stringify(body).slice(0, 80)} -> ${status}`, async () => {
      const before = await agentState();
      const r = await api.call(method, path, body);
      assert.equal(r.status, status, r.text);
      if (typeof text === 'string') assert.equal(r.text, text);
      else assert.match(r.text, text);
      assert.match(String(r.headers['content-type']), /^text\/plain/);
      assert.equal(await agentState(), before, 'a failed request changed state');
    });
  }

  test('body over 1 MiB -> 413, state unchanged', async () => {
    const big = Buffer.alloc(1024 * 1024 + 10, 'a');
    const r = await api.put('/v1/agent/service/register', big);
    assert.equal(r.status, 413);
    assert.match(r.text, /too large/i);
  });

  test('wrong method -> 405 with Allow; OPTIONS -> 200 with Allow', async () => {
    const r = await api.call('DELETE', '/v1/agent/services');
    assert.equal(r.status, 405);
    assert.equal(r.text, 'method DELETE not allowed');
    assert.equal(r.headers['allow'], 'OPTIONS,GET,HEAD');
    const g = await api.get('/v1/agent/service/register');
    assert.equal(g.status, 405);
    assert.equal(g.text, 'method GET not allowed');
    assert.equal(g.headers['allow'], 'OPTIONS,PUT');
    const o = await api.call('OPTIONS', '/v1/catalog/services');
    assert.equal(o.status, 200);
    assert.equal(o.text, '');
    assert.equal(o.headers['allow'], 'OPTIONS,GET,HEAD');
  });

  test('HEAD on a GET endpoint: the same status and headers as GET, no body', async () => {
    const g = await api.get('/v1/catalog/services');
    const h = await api.call('HEAD', '/v1/catalog/services');
    assert.equal(h.status, 200);
    assert.equal(h.text, '');
    assert.equal(h.headers['x-consul-index'], g.headers['x-consul-index']);
    assert.equal(h.headers['content-type'], g.headers['content-type']);
    const missing = await api.call('HEAD', '/v1/agent/service/nope');
    assert.equal(missing.status, 404);
    assert.equal((await api.call('HEAD', '/v1/agent/service/register')).status, 405);
  });

  test('pass on a non-TTL check -> 500 "does not have associated TTL"', async () => {
    await register({ Name: 'httpsvc', Check: { HTTP: 'http://127.0.0.1:1/', Interval: '10s' } });
    const r = await api.put('/v1/agent/check/pass/service:httpsvc');
    assert.equal(r.status, 500);
    assert.equal(r.text, 'CheckID "service:httpsvc" does not have associated TTL');
    const u = await api.put('/v1/agent/check/update/service:httpsvc', { Status: 'passing' });
    assert.equal(u.status, 500);
    const bad = await api.put('/v1/agent/check/update/service:httpsvc', { Status: 'ok' });
    assert.equal(bad.status, 400);
    assert.equal(bad.text, "Invalid check status: 'ok'");
    await deregister('httpsvc');
  });

  test('a bad multi-check registration applies nothing (service, earlier checks, index)', async () => {
    const before = await agentState();
    const i0 = indexOf(await api.get('/v1/catalog/services'));
    const r = await api.put('/v1/agent/service/register', {
      Name: 'partial',
      Checks: [{ TTL: '10s' }, { HTTP: 'http://127.0.0.1:1/', Interval: '1s' }, { TTL: '0s' }],
    });
    assert.equal(r.status, 400);
    assert.equal((await api.get('/v1/agent/service/partial')).status, 404);
    assert.equal(await agentState(), before);
    assert.equal(indexOf(await api.get('/v1/catalog/services')), i0);
    // and an update of an existing service that fails keeps the old definition
    await register({ Name: 'keep', Port: 1, Check: { TTL: '10s' } });
    const kept = await agentState();
    const r2 = await api.put('/v1/agent/service/register', {
      Name: 'keep',
      Port: 2,
      Checks: [{ TTL: '5s' }, { TTL: '-1s' }],
    });
    assert.equal(r2.status, 400);
    assert.equal(await agentState(), kept);
    await deregister('keep');
  });
});

describe('agent writes and reads', () => {
  test('agent writes answer an empty 200 (no body, no Content-Type)', async () => {
    const r = await api.put('/v1/agent/service/register', { Name: 'empty200' });
    assert.equal(r.status, 200);
    assert.equal(r.text, '');
    assert.equal(r.headers['content-type'], undefined);
    assert.equal(r.headers['x-consul-index'], undefined);
    await deregister('empty200');
  });

  test('keys match case-insensitively and snake_case aliases bind', async () => {
    await register({
      name: 'ci',
      ID: 'ci-1',
      PORT: 8080,
      tags: ['a'],
      enable_tag_override: true,
      enabletagoverride: true,
      meta: { k: 'v' },
      check: { ttl: '10s', deregister_critical_service_after: '90m', check_id: 'ci-check', notes: 'n' },
    });
    const s = await getJson('/v1/agent/service/ci-1');
    assert.equal(s.Service, 'ci');
    assert.equal(s.Port, 8080);
    assert.deepEqual(s.Tags, ['a']);
    assert.deepEqual(s.Meta, { k: 'v' });
    assert.equal(s.EnableTagOverride, true);
    assert.equal(s.Datacenter, 'dc1');
    const checks = await getJson('/v1/agent/checks');
    assert.equal(checks['ci-check'].Notes, 'n');
    assert.equal(checks['ci-check'].Type, 'ttl');
    assert.equal(checks['ci-check'].Definition.DeregisterCriticalServiceAfter, '1h30m0s');
    // durations may also be numbers of nanoseconds
    await register({ Name: 'ns', Check: { TTL: 15_000_000_000 } });
    assert.equal((await getJson('/v1/agent/checks'))['service:ns'].Definition.TTL, '15s');
    await deregister('ci-1');
    await deregister('ns');
  });

  test('AgentService shape: defaults, Tags [] and Meta {}, TaggedAddresses filled from an IP Address', async () => {
    await register({ Name: 'shape', Address: '10.1.2.3', Port: 9000 });
    const s = await getJson('/v1/agent/service/shape');
    assert.deepEqual(s.Tags, []);
    assert.deepEqual(s.Meta, {});
    assert.deepEqual(s.Weights, { Passing: 1, Warning: 1 });
    assert.deepEqual(s.TaggedAddresses, {
      lan_ipv4: { Address: '10.1.2.3', Port: 9000 },
      wan_ipv4: { Address: '10.1.2.3', Port: 9000 },
    });
    assert.equal(typeof s.ContentHash, 'string');
    const r = await api.get('/v1/agent/service/shape');
    assert.equal(r.headers['x-consul-contenthash'], s.ContentHash);
    await register({ Name: 'bare' });
    const b = (await getJson('/v1/agent/services')).bare;
    assert.equal(b.ID, 'bare');
    assert.equal(b.Port, 0);
    assert.equal(b.TaggedAddresses, undefined);
    await deregister('shape');
    await deregister('bare');
  });

  test('check IDs and names: service:<id>, service:<id>:1..n, explicit CheckID; initial critical unless Status', async () => {
    await register({ Name: 'one', Check: { TTL: '10s' } });
    await register({
      Name: 'many',
      ID: 'many-1',
      Checks: [{ TTL: '10s' }, { TTL: '10s', Status: 'passing' }, { TTL: '10s', Name: 'named' }],
    });
    await register({ Name: 'explicit', Checks: [{ TTL: '10s', CheckID: 'mine' }] });
    const c = await getJson('/v1/agent/checks');
    assert.equal(c['service:one'].Name, "Service 'one' check");
    assert.equal(c['service:one'].Status, 'critical');
    assert.equal(c['service:one'].ServiceID, 'one');
    assert.equal(c['service:one'].ServiceName, 'one');
    assert.equal(c['service:many-1:1'].Status, 'critical');
    assert.equal(c['service:many-1:2'].Status, 'passing');
    assert.equal(c['service:many-1:3'].Name, 'named');
    assert.equal(c['service:many-1'], undefined);
    assert.equal(c.mine.ServiceID, 'explicit');
    for (const id of ['one', 'many-1', 'explicit']) await deregister(id);
    const after = await getJson('/v1/agent/checks');
    for (const id of ['service:one', 'service:many-1:1', 'mine']) assert.equal(after[id], undefined);
  });

  test('re-registration keeps a check status and output; Status in the body is ignored for it', async () => {
    await register({ Name: 'carry', Port: 1, Check: { TTL: '30s' } });
    await ok('PUT', '/v1/agent/check/pass/service:carry?note=fine');
    await register({ Name: 'carry', Port: 2, Check: { TTL: '30s', Status: 'critical' } });
    const c = (await getJson('/v1/agent/checks'))['service:carry'];
    assert.equal(c.Status, 'passing');
    assert.equal(c.Output, 'fine');
    assert.equal((await getJson('/v1/agent/service/carry')).Port, 2);
    await deregister('carry');
  });

  test('?replace-existing-checks drops checks not in the new body; without it they stay', async () => {
    await register({
      Name: 'rep',
      Checks: [
        { TTL: '10s', CheckID: 'a' },
        { TTL: '10s', CheckID: 'b' },
      ],
    });
    await register({ Name: 'rep', Checks: [{ TTL: '10s', CheckID: 'a' }] });
    let c = await getJson('/v1/agent/checks?filter=ServiceID%20%3D%3D%20rep');
    assert.deepEqual(Object.keys(c).sort(), ['a', 'b']);
    await register({ Name: 'rep', Checks: [{ TTL: '10s', CheckID: 'a' }] }, '?replace-existing-checks');
    c = await getJson('/v1/agent/checks?filter=ServiceID%20%3D%3D%20rep');
    assert.deepEqual(Object.keys(c), ['a']);
    await deregister('rep');
  });

  test('TTL pass/warn/fail/update set status and output (note), GET accepted for python-consul 0.7.1', async () => {
    await ok('PUT', '/v1/agent/check/register', { Name: 'solo', TTL: '30s' });
    const read = async () => (await getJson('/v1/agent/checks')).solo;
    assert.equal((await read()).Status, 'critical');
    assert.equal((await read()).ServiceID, '');
    await ok('PUT', '/v1/agent/check/pass/solo?note=p');
    assert.deepEqual([(await read()).Status, (await read()).Output], ['passing', 'p']);
    await ok('GET', '/v1/agent/check/warn/solo?note=w');
    assert.deepEqual([(await read()).Status, (await read()).Output], ['warning', 'w']);
    await ok('PUT', '/v1/agent/check/fail/solo');
    assert.deepEqual([(await read()).Status, (await read()).Output], ['critical', '']);
    await ok('PUT', '/v1/agent/check/update/solo', { Status: 'passing', Output: 'upd' });
    assert.deepEqual([(await read()).Status, (await read()).Output], ['passing', 'upd']);
    await ok('GET', '/v1/agent/check/deregister/solo');
    assert.equal(await read(), undefined);
  });

  test('maintenance: service and node checks, default notes, idempotent, ?passing excludes', async () => {
    await register({ Name: 'mnt', Check: { TTL: '30s', Status: 'passing' } });
    await ok('PUT', '/v1/agent/service/maintenance/mnt?enable=true');
    await ok('PUT', '/v1/agent/service/maintenance/mnt?enable=true&reason=again');
    let c = await getJson('/v1/agent/checks');
    const m = c['_service_maintenance:mnt'];
    assert.equal(m.Name, 'Service Maintenance Mode');
    assert.equal(m.Status, 'critical');
    assert.equal(
      m.Notes,
      'Maintenance mode is enabled for this service, but no reason was provided. This is a default message.',
    );
    assert.equal(m.ServiceID, 'mnt');
    assert.equal(m.ServiceName, 'mnt');
    assert.deepEqual(await getJson('/v1/health/service/mnt?passing'), []);
    const h = await api.get('/v1/agent/health/service/id/mnt?format=text');
    assert.equal(h.status, 503);
    assert.equal(h.text, 'maintenance');
    await ok('PUT', '/v1/agent/service/maintenance/mnt?enable=false');
    assert.equal((await getJson('/v1/health/service/mnt?passing')).length, 1);

    await ok('PUT', '/v1/agent/maintenance?enable=true&reason=patching');
    c = await getJson('/v1/agent/checks');
    assert.equal(c._node_maintenance.Name, 'Node Maintenance Mode');
    assert.equal(c._node_maintenance.Notes, 'patching');
    assert.equal(c._node_maintenance.ServiceID, '');
    assert.deepEqual(await getJson('/v1/health/service/mnt?passing'), []);
    await ok('PUT', '/v1/agent/maintenance?enable=false');
    assert.equal((await getJson('/v1/health/service/mnt?passing')).length, 1);
    await deregister('mnt');
  });

  test('?enable takes the values of Go strconv.ParseBool (python-consul sends "True")', async () => {
    await register({ Name: 'pb' });
    for (const [v, on] of [
      ['True', true],
      ['False', false],
      ['TRUE', true],
      ['f', false],
      ['1', true],
      ['0', false],
    ] as const) {
      const r = await api.put(`/v1/agent/service/maintenance/pb?enable=${v}`);
      assert.equal(r.status, 200, `enable=${v}: ${r.status} ${r.text}`);
      assert.equal(
        (await getJson('/v1/agent/checks'))['_service_maintenance:pb'] !== undefined,
        on,
        `enable=${v}`,
      );
    }
    await deregister('pb');
  });

  test('agent/health/service/id and name: 200/429/503 and text form', async () => {
    await register({ Name: 'ah', ID: 'ah-1', Check: { TTL: '30s', Status: 'passing' } });
    let r = await api.get('/v1/agent/health/service/id/ah-1');
    assert.equal(r.status, 200);
    assert.equal(r.json<Json>().AggregatedStatus, 'passing');
    await ok('PUT', '/v1/agent/check/warn/service:ah-1');
    r = await api.get('/v1/agent/health/service/name/ah?format=text');
    assert.equal(r.status, 429);
    assert.equal(r.text, 'warning');
    await ok('PUT', '/v1/agent/check/fail/service:ah-1');
    r = await api.get('/v1/agent/health/service/id/ah-1?format=text');
    assert.equal(r.status, 503);
    assert.equal(r.text, 'critical');
    r = await api.get('/v1/agent/health/service/id/nope?format=text');
    assert.equal(r.status, 404);
    await deregister('ah-1');
  });

  test('agent/self and agent/members shape', async () => {
    const self = await getJson('/v1/agent/self');
    assert.equal(self.Config.Datacenter, 'dc1');
    assert.equal(self.Config.NodeName, NODE);
    assert.equal(self.Config.Server, true);
    assert.equal(typeof self.Config.NodeID, 'string');
    assert.equal(self.Member.Name, NODE);
    assert.equal(self.Member.Addr, '127.0.0.1');
    assert.equal(self.Stats.consul.leader_addr, '127.0.0.1:8300');
    const members = await getJson('/v1/agent/members');
    assert.equal(members.length, 1);
    assert.equal(members[0].Name, NODE);
    assert.equal(members[0].Status, 1);
    assert.equal(members[0].Tags.dc, 'dc1');
    assert.equal(await getJson('/v1/status/leader'), '127.0.0.1:8300');
    assert.deepEqual(await getJson('/v1/status/peers'), ['127.0.0.1:8300']);
    assert.deepEqual(await getJson('/v1/catalog/datacenters'), ['dc1']);
  });
});

describe('queries: passing, tag, filter, pretty, headers', () => {
  before(async () => {
    await register({
      Name: 'q',
      ID: 'q-1',
      Tags: ['a', 'b'],
      Port: 1,
      Meta: { v: '1' },
      Check: { TTL: '30s', Status: 'passing' },
    });
    await register({
      Name: 'q',
      ID: 'q-2',
      Tags: ['a'],
      Port: 2,
      Meta: { v: '2' },
      Check: { TTL: '30s', Status: 'warning' },
    });
    await register({
      Name: 'q',
      ID: 'q-3',
      Tags: ['b', 'c'],
      Port: 3,
      Meta: { v: '3' },
      Check: { TTL: '30s' },
    });
  });
  after(async () => {
    for (const id of ['q-1', 'q-2', 'q-3']) await deregister(id);
  });
  const ids = (entries: Json[]) => entries.map((e) => e.Service?.ID ?? e.ServiceID).sort();

  test('?passing drops warning and critical instances; ?passing=false keeps all', async () => {
    assert.deepEqual(ids(await getJson('/v1/health/service/q')), ['q-1', 'q-2', 'q-3']);
    assert.deepEqual(ids(await getJson('/v1/health/service/q?passing')), ['q-1']);
    assert.deepEqual(ids(await getJson('/v1/health/service/q?passing=1')), ['q-1']);
    assert.deepEqual(ids(await getJson('/v1/health/service/q?passing=false')), ['q-1', 'q-2', 'q-3']);
  });

  test('?tag is repeatable and ANDed, on catalog and health', async () => {
    assert.deepEqual(ids(await getJson('/v1/catalog/service/q?tag=a')), ['q-1', 'q-2']);
    assert.deepEqual(ids(await getJson('/v1/catalog/service/q?tag=a&tag=b')), ['q-1']);
    assert.deepEqual(ids(await getJson('/v1/health/service/q?tag=b&tag=c')), ['q-3']);
    assert.deepEqual(ids(await getJson('/v1/health/service/q?tag=a&tag=c')), []);
  });

  test('?filter on every filterable endpoint', async () => {
    const f = (e: string) => `filter=${encodeURIComponent(e)}`;
    assert.deepEqual(Object.keys(await getJson(`/v1/agent/services?${f('Service == q and Port == 2')}`)), [
      'q-2',
    ]);
    assert.deepEqual(
      Object.keys(await getJson(`/v1/agent/services?${f('Service == q and "b" in Tags')}`)).sort(),
      ['q-1', 'q-3'],
    );
    assert.deepEqual(
      Object.keys(await getJson(`/v1/agent/checks?${f('ServiceName == q and Status == critical')}`)),
      ['service:q-3'],
    );
    assert.deepEqual(ids(await getJson(`/v1/catalog/service/q?${f('ServiceMeta.v == "2"')}`)), ['q-2']);
    assert.deepEqual(ids(await getJson(`/v1/health/service/q?${f('Service.Port == 3')}`)), ['q-3']);
    assert.deepEqual(ids(await getJson(`/v1/health/service/q?${f('Checks.Status == warning')}`)), ['q-2']);
    assert.deepEqual(ids(await getJson(`/v1/health/service/q?${f('"c" not in Service.Tags')}`)), [
      'q-1',
      'q-2',
    ]);
    assert.deepEqual(
      (await getJson(`/v1/health/checks/q?${f('Status != passing')}`)).map((c: Json) => c.CheckID).sort(),
      ['service:q-2', 'service:q-3'],
    );
    assert.deepEqual(
      (await getJson(`/v1/health/node/${NODE}?${f('ServiceName == q and Status == passing')}`)).map(
        (c: Json) => c.CheckID,
      ),
      ['service:q-1'],
    );
    assert.deepEqual(
      (await getJson(`/v1/health/state/any?${f('ServiceID == "q-2"')}`)).map((c: Json) => c.CheckID),
      ['service:q-2'],
    );
    const svcs = await getJson(`/v1/catalog/services?${f('ServiceName == q')}`);
    assert.deepEqual(Object.keys(svcs), ['q']);
    assert.deepEqual([...svcs.q].sort(), ['a', 'b', 'c']);
    assert.deepEqual((await getJson(`/v1/catalog/nodes?${f(`Node == "${NODE}"`)}`)).length, 1);
    assert.deepEqual(await getJson(`/v1/catalog/nodes?${f('Node == other')}`), []);
    const node = await getJson(`/v1/catalog/node/${NODE}?${f('Service == q and Port == 1')}`);
    assert.deepEqual(Object.keys(node.Services), ['q-1']);
  });

  test('an unparsable ?filter is a 400 that says where (deliberate difference, §16)', async () => {
    for (const path of ['/v1/health/service/q', '/v1/agent/services', '/v1/catalog/services']) {
      const r = await api.get(`${path}?filter=${encodeURIComponent('Service ==')}`);
      assert.equal(r.status, 400, `${path}: ${r.text}`);
      assert.match(r.text, /^Failed to create boolean expression evaluator: \d+:\d+/);
    }
  });

  test('?pretty: 4-space indent and a trailing newline, same data', async () => {
    const compact = await api.get('/v1/health/service/q');
    const pretty = await api.get('/v1/health/service/q?pretty');
    assert.ok(pretty.text.endsWith('\n'));
    assert.match(pretty.text, /^\[\n {4}\{\n {8}"Node"/);
    assert.deepEqual(pretty.json(), compact.json());
    assert.ok(!compact.text.includes('\n'));
    const self = await api.get('/v1/agent/self?pretty');
    assert.match(self.text, /^\{\n {4}"Config"/);
  });

  test('?dc of our own datacenter is fine', async () => {
    assert.equal((await getJson('/v1/health/service/q?dc=dc1')).length, 3);
  });

  test('query-meta headers on catalog/health reads, none on agent-local reads; JSON content type', async () => {
    for (const path of [
      '/v1/catalog/services',
      '/v1/catalog/service/q',
      '/v1/catalog/service/never-registered',
      '/v1/catalog/nodes',
      `/v1/catalog/node/${NODE}`,
      '/v1/health/service/q',
      '/v1/health/checks/q',
      `/v1/health/node/${NODE}`,
      '/v1/health/state/any',
    ]) {
      const r = await api.get(path);
      assert.equal(r.status, 200, path);
      assert.match(String(r.headers['x-consul-index']), /^[1-9]\d*$/, `${path} X-Consul-Index`);
      assert.equal(r.headers['x-consul-knownleader'], 'true', path);
      assert.equal(r.headers['x-consul-lastcontact'], '0', path);
      assert.equal(r.headers['content-type'], 'application/json', path);
    }
    for (const path of ['/v1/agent/services', '/v1/agent/checks', '/v1/agent/self', '/v1/agent/members']) {
      const r = await api.get(path);
      assert.equal(r.status, 200, path);
      assert.equal(r.headers['x-consul-index'], undefined, path);
      assert.equal(r.headers['x-consul-knownleader'], undefined, path);
      assert.equal(r.headers['content-type'], 'application/json', path);
    }
    const stale = await api.get('/v1/catalog/services?stale');
    assert.equal(stale.headers['x-consul-effective-consistency'], 'stale');
  });
});

describe('catalog register and deregister', () => {
  test('an external node with a service and a check; deregister service, then node', async () => {
    const r = await api.put('/v1/catalog/register', {
      Node: 'ext-1',
      Address: '10.9.9.9',
      NodeMeta: { rack: 'r1' },
      Service: { Service: 'extsvc', ID: 'extsvc-1', Port: 7000, Tags: ['x'] },
      Check: {
        Node: 'ext-1',
        CheckID: 'ext-check',
        Name: 'ext check',
        Status: 'passing',
        ServiceID: 'extsvc-1',
      },
    });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'true');
    assert.equal(r.headers['content-type'], 'application/json');
    const nodes = (await getJson('/v1/catalog/nodes')).map((n: Json) => n.Node);
    assert.deepEqual(nodes, ['ext-1', NODE]);
    const svc = await getJson('/v1/catalog/service/extsvc');
    assert.equal(svc.length, 1);
    assert.equal(svc[0].Node, 'ext-1');
    assert.equal(svc[0].Address, '10.9.9.9');
    assert.deepEqual(svc[0].NodeMeta, { rack: 'r1' });
    const health = await getJson('/v1/health/service/extsvc?passing');
    assert.equal(health.length, 1);
    assert.deepEqual(
      health[0].Checks.map((c: Json) => c.CheckID),
      ['ext-check'],
    );
    // catalog-registered services are not the agent's
    assert.equal((await getJson('/v1/agent/services'))['extsvc-1'], undefined);
    assert.deepEqual(
      await getJson(`/v1/catalog/node/ext-1?filter=${encodeURIComponent('Port == 7000')}`).then((n) =>
        Object.keys(n.Services),
      ),
      ['extsvc-1'],
    );

    const d1 = await api.put('/v1/catalog/deregister', { Node: 'ext-1', ServiceID: 'extsvc-1' });
    assert.equal(d1.text, 'true');
    assert.deepEqual(await getJson('/v1/catalog/service/extsvc'), []);
    assert.deepEqual(await getJson('/v1/health/checks/extsvc'), []);
    assert.ok((await getJson('/v1/catalog/nodes')).some((n: Json) => n.Node === 'ext-1'));
    const d2 = await api.put('/v1/catalog/deregister', { Node: 'ext-1' });
    assert.equal(d2.text, 'true');
    assert.deepEqual(
      (await getJson('/v1/catalog/nodes')).map((n: Json) => n.Node),
      [NODE],
    );
    assert.equal(await getJson('/v1/catalog/node/ext-1'), null);
  });
});

describe('reads reflect node changes (no stale cached answers)', () => {
  test('catalog/services?node-meta and health/state?node-meta follow a node meta change', async () => {
    const reg = (rack: string) =>
      ok('PUT', '/v1/catalog/register', {
        Node: 'nm-node',
        Address: '10.0.0.2',
        NodeMeta: { rack },
        Service: { Service: 'nm', ID: 'nm-1' },
        Check: { CheckID: 'nm-check', Name: 'nm', Status: 'passing', ServiceID: 'nm-1' },
      });
    await reg('r1');
    assert.deepEqual(await getJson('/v1/catalog/services?node-meta=rack:r1'), { nm: [] });
    assert.equal((await getJson('/v1/health/state/any?node-meta=rack:r1')).length, 1);
    assert.equal((await getJson('/v1/catalog/nodes?node-meta=rack:r1')).length, 1);
    const i = indexOf(await api.get('/v1/catalog/services?node-meta=rack:r1'));
    // the node moves to another rack (node-only update)
    await ok('PUT', '/v1/catalog/register', {
      Node: 'nm-node',
      Address: '10.0.0.2',
      NodeMeta: { rack: 'r2' },
    });
    assert.deepEqual(await getJson('/v1/catalog/nodes?node-meta=rack:r1'), []);
    const after = await api.get('/v1/catalog/services?node-meta=rack:r1');
    assert.deepEqual(after.json(), {}, `stale answer at index ${indexOf(after)} (was ${i})`);
    assert.deepEqual(await getJson('/v1/health/state/any?node-meta=rack:r1'), []);
    assert.deepEqual(
      await getJson(`/v1/catalog/services?filter=${encodeURIComponent('NodeMeta.rack == r2')}`),
      { nm: [] },
    );
    await ok('PUT', '/v1/catalog/deregister', { Node: 'nm-node' });
  });
});

describe('index and blocking queries', () => {
  test('the index never goes backwards, per query and across deregistrations', async () => {
    const paths = [
      '/v1/catalog/services',
      '/v1/health/service/idx',
      '/v1/catalog/service/idx',
      '/v1/health/state/any',
      '/v1/catalog/nodes',
    ];
    const last = new Map<string, number>();
    const sample = async (what: string) => {
      for (const p of paths) {
        const i = indexOf(await api.get(p));
        assert.ok(i >= 1, `${p}: index ${i}`);
        assert.ok(i >= (last.get(p) ?? 0), `${p} went backwards after ${what}: ${last.get(p)} -> ${i}`);
        last.set(p, i);
      }
    };
    await sample('start');
    await register({ Name: 'idx', ID: 'idx-1', Check: { TTL: '30s' } });
    await sample('register');
    const afterReg = indexOf(await api.get('/v1/health/service/idx'));
    await ok('PUT', '/v1/agent/check/pass/service:idx-1');
    await sample('pass');
    assert.ok(
      indexOf(await api.get('/v1/health/service/idx')) > afterReg,
      'a status change bumps the service index',
    );
    await deregister('idx-1');
    await sample('deregister');
    await register({ Name: 'other-idx' });
    await sample('unrelated register');
    await deregister('other-idx');
    await sample('unrelated deregister');
  });

  test('a watch on service A is not woken by a change to B; it returns at its wait with the same index', async () => {
    await register({ Name: 'svc-a', Check: { TTL: '30s', Status: 'passing' } });
    const i = indexOf(await api.get('/v1/health/service/svc-a'));
    const t0 = Date.now();
    const pending = api.get(`/v1/health/service/svc-a?index=${i}&wait=1s`);
    await new Promise((r) => setTimeout(r, 150));
    await register({ Name: 'svc-b', Check: { TTL: '30s' } });
    await ok('PUT', '/v1/agent/check/pass/service:svc-b');
    await deregister('svc-b');
    const r = await pending;
    const elapsed = Date.now() - t0;
    assert.equal(r.status, 200);
    assert.equal(indexOf(r), i, 'same index at timeout');
    assert.ok(elapsed >= 1000, `returned after ${elapsed}ms, before its 1s wait: woken by another service`);
    assert.equal(r.json<Json[]>().length, 1);
  });

  test('a watch on service A is woken at once by a change to A (register, status, deregister)', async () => {
    for (const change of [
      () => register({ Name: 'svc-a', ID: 'svc-a-2' }),
      () => ok('PUT', '/v1/agent/check/fail/service:svc-a'),
      () => deregister('svc-a-2'),
    ]) {
      const i = indexOf(await api.get('/v1/health/service/svc-a'));
      const t0 = Date.now();
      const pending = api.get(`/v1/health/service/svc-a?index=${i}&wait=10s`);
      await new Promise((r) => setTimeout(r, 150));
      await change();
      const r = await pending;
      const elapsed = Date.now() - t0;
      assert.ok(indexOf(r) > i, `index ${i} -> ${indexOf(r)}`);
      assert.ok(elapsed < 5000, `woken only after ${elapsed}ms`);
    }
    // catalog/services wakes on a registration
    const i = indexOf(await api.get('/v1/catalog/services'));
    const pending = api.get(`/v1/catalog/services?index=${i}&wait=10s`);
    await new Promise((r) => setTimeout(r, 100));
    await register({ Name: 'wake-catalog' });
    const r = await pending;
    assert.ok(indexOf(r) > i);
    assert.ok('wake-catalog' in r.json<Json>());
    await deregister('wake-catalog');
    await deregister('svc-a');
  });

  test('wait is honoured with at most wait/16 jitter; index ahead of the current one blocks too', async () => {
    const i = indexOf(await api.get('/v1/health/service/quiet'));
    for (const idx of [i, i + 1000]) {
      const t0 = Date.now();
      const r = await api.get(`/v1/health/service/quiet?index=${idx}&wait=1s`);
      const elapsed = Date.now() - t0;
      assert.equal(r.status, 200);
      assert.ok(elapsed >= 990, `returned after ${elapsed}ms`);
      // 1s·17/16 = 1062.5 ms, plus generous slack for a loaded machine
      assert.ok(elapsed < 1062.5 + 1500, `returned after ${elapsed}ms (jitter must stay under wait/16)`);
    }
    // without ?index the answer is immediate even with ?wait
    const t0 = Date.now();
    await api.get('/v1/health/service/quiet?wait=5s');
    assert.ok(Date.now() - t0 < 4000);
  });
});
