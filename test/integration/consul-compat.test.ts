/**
 * Consul compatibility, round 2 (issue 10): the requests real clients send, byte for byte, and the answers
 * Consul gives. Bodies marked "Go client" are what `github.com/hashicorp/consul/api` (1.20) marshals —
 * its structs' field order, its non-omitempty zero values (`"Weights":{"Passing":0,"Warning":0}`,
 * `"TCPUseTLS":false`, `"UDP":""`, `"Meta":null`, `"Checks":null`) and its `"0s"` durations. Bodies
 * marked "Patroni" are what Patroni's python-consul calls send (`scope/name` service IDs, raw `/` in the
 * deregister path).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { resolveAgentConfig } from '../../src/agent/config/index.ts';
import { startAgent } from '../../src/agent/index.ts';
import { call, client } from '../fixtures/http.ts';
import { spawnAgent, startAgentInProcess, tempDir } from '../helpers/agent.ts';

type Agent = Awaited<ReturnType<typeof startAgentInProcess>>;
// biome-ignore lint/suspicious/noExplicitAny: JSON answers, read field by field
type Json = any;

let agent: Agent;
let api: ReturnType<typeof client>;

before(async () => {
  agent = await startAgentInProcess({ flags: { 'node-meta': ['rack:r1', 'env:prod'] } });
  api = client(agent.url);
});
after(async () => {
  await agent.close();
});

async function getJson(path: string): Promise<Json> {
  const r = await api.get(path);
  assert.equal(r.status, 200, `GET ${path} -> ${r.status} ${r.text}`);
  return r.json();
}
async function put(path: string, body?: unknown): Promise<string> {
  const r = await api.put(path, body);
  assert.equal(r.status, 200, `PUT ${path} -> ${r.status} ${r.text}`);
  return r.text;
}

/** `api.HealthCheckDefinition` as the Go client marshals it (MarshalJSON: durations first, as strings). */
function goDefinition(over: Record<string, unknown> = {}) {
  return {
    Interval: '0s',
    Timeout: '0s',
    DeregisterCriticalServiceAfter: '0s',
    HTTP: '',
    Header: null,
    Method: '',
    Body: '',
    TLSServerName: '',
    TLSSkipVerify: false,
    TCP: '',
    TCPUseTLS: false,
    UDP: '',
    GRPC: '',
    OSService: '',
    GRPCUseTLS: false,
    ...over,
  };
}

describe('Go client catalog/register and catalog/deregister', () => {
  // catalog.Register(&api.CatalogRegistration{Node, Address, NodeMeta, Service: &api.AgentService{…},
  // Check: &api.AgentCheck{…}}, nil)
  const registration = {
    ID: '',
    Node: 'ext-redis',
    Address: '10.1.2.3',
    TaggedAddresses: null,
    NodeMeta: { rack: 'r9' },
    Datacenter: '',
    Service: {
      ID: 'redis-1',
      Service: 'redis',
      Tags: ['primary'],
      Meta: null,
      Port: 6379,
      Address: '10.1.2.3',
      Weights: { Passing: 0, Warning: 0 },
      EnableTagOverride: false,
    },
    Check: {
      Node: 'ext-redis',
      CheckID: 'redis-alive',
      Name: 'Redis alive',
      Status: 'passing',
      Notes: '',
      Output: 'PONG',
      ServiceID: 'redis-1',
      ServiceName: '',
      Type: '',
      ExposedPort: 0,
      Definition: goDefinition({ Interval: '10s', Timeout: '2s', TCP: '10.1.2.3:6379' }),
    },
    Checks: null,
    SkipNodeUpdate: false,
  };

  test('accepted as Consul accepts it: unrun definition fields, Weights {0,0} stored as {1,1}', async () => {
    assert.equal(await put('/v1/catalog/register', registration), 'true');
    const [svc] = await getJson('/v1/catalog/service/redis');
    // Consul validates weights on the agent endpoint only; NodeService.ToServiceNode turns weights that
    // would not validate into {1,1}
    assert.deepEqual(svc.ServiceWeights, { Passing: 1, Warning: 1 });
    assert.equal(svc.NodeMeta.rack, 'r9');
    const [entry] = await getJson('/v1/health/service/redis');
    assert.deepEqual(entry.Service.Weights, { Passing: 1, Warning: 1 });
    const check = entry.Checks.find((c: Json) => c.CheckID === 'redis-alive');
    assert.equal(check.Status, 'passing');
    assert.equal(check.Output, 'PONG');
    assert.equal(check.Interval, '10s');
    assert.deepEqual(check.Definition, { TCP: '10.1.2.3:6379', Interval: '10s', Timeout: '2s' });
  });

  test('a catalog check of a kind Phare does not run (gRPC over TLS) is stored and returned', async () => {
    const body = {
      ...registration,
      Service: null,
      Check: {
        ...registration.Check,
        CheckID: 'redis-grpc',
        Name: 'gRPC',
        ServiceID: '',
        Type: 'grpc',
        Definition: goDefinition({ Interval: '5s', GRPC: '10.1.2.3:9000/health', GRPCUseTLS: true }),
      },
    };
    assert.equal(await put('/v1/catalog/register', body), 'true');
    const checks: Json[] = await getJson('/v1/health/node/ext-redis');
    const c = checks.find((x) => x.CheckID === 'redis-grpc');
    assert.equal(c.Type, 'grpc');
    assert.deepEqual(c.Definition, { Interval: '5s', GRPC: '10.1.2.3:9000/health', GRPCUseTLS: true });
  });

  test('Checks as a list of api.HealthCheck (ServiceTags null, CreateIndex 0) are accepted too', async () => {
    const hc = {
      Node: 'ext-redis',
      CheckID: 'redis-disk',
      Name: 'disk',
      Status: 'warning',
      Notes: '',
      Output: '',
      ServiceID: 'redis-1',
      ServiceName: 'redis',
      ServiceTags: null,
      Type: '',
      ExposedPort: 0,
      Definition: goDefinition(),
      CreateIndex: 0,
      ModifyIndex: 0,
    };
    assert.equal(await put('/v1/catalog/register', { ...registration, Check: null, Checks: [hc] }), 'true');
    const checks: Json[] = await getJson('/v1/health/checks/redis');
    assert.deepEqual(checks.map((c) => [c.CheckID, c.Status]).sort(), [
      ['redis-alive', 'passing'],
      ['redis-disk', 'warning'],
    ]);
  });

  test('a check naming another node is refused, as Consul does (500), and changes nothing', async () => {
    const before = await getJson('/v1/health/node/ext-redis');
    const r = await api.put('/v1/catalog/register', {
      ...registration,
      Check: { ...registration.Check, Node: 'someone-else' },
    });
    assert.equal(r.status, 500);
    assert.equal(r.text, 'check node "someone-else" does not match node "ext-redis"');
    assert.deepEqual(await getJson('/v1/health/node/ext-redis'), before);
  });

  test('catalog/deregister with the obsolete Address the Go client always sends', async () => {
    // catalog.Deregister(&api.CatalogDeregistration{Node, ServiceID}, nil)
    const body = { Node: 'ext-redis', Address: '', Datacenter: '', ServiceID: 'redis-1', CheckID: '' };
    assert.equal(await put('/v1/catalog/deregister', body), 'true');
    assert.deepEqual(await getJson('/v1/catalog/service/redis'), []);
    const node = { Node: 'ext-redis', Address: '10.1.2.3', Datacenter: '', ServiceID: '', CheckID: '' };
    assert.equal(await put('/v1/catalog/deregister', node), 'true');
    assert.equal(await getJson('/v1/catalog/node/ext-redis'), null);
  });
});

describe('Go client agent registration: Locality, SocketPath, Kind, Proxy, empty unrun fields', () => {
  test('agent/service/register keeps Locality and SocketPath and returns them everywhere', async () => {
    // agent.ServiceRegister(&api.AgentServiceRegistration{…, Locality: &api.Locality{…}, Check: &api.AgentServiceCheck{…}})
    const body = {
      ID: 'cache-1',
      Name: 'cache',
      Tags: ['v1'],
      SocketPath: '/run/cache.sock',
      Meta: { version: '1' },
      Check: { CheckID: 'cache-ttl', TTL: '30s', Status: 'passing' },
      Checks: null,
      Locality: { Region: 'eu-west-1', Zone: 'eu-west-1a' },
    };
    await put('/v1/agent/service/register', body);
    const locality = { Region: 'eu-west-1', Zone: 'eu-west-1a' };
    const s = await getJson('/v1/agent/service/cache-1');
    assert.equal(s.SocketPath, '/run/cache.sock');
    assert.deepEqual(s.Locality, locality);
    const [cs] = await getJson('/v1/catalog/service/cache');
    assert.equal(cs.ServiceSocketPath, '/run/cache.sock');
    assert.deepEqual(cs.ServiceLocality, locality);
    const [e] = await getJson('/v1/health/service/cache');
    assert.equal(e.Service.SocketPath, '/run/cache.sock');
    assert.deepEqual(e.Service.Locality, locality);
    // a service without them: Consul's zero values
    const [consul] = await getJson('/v1/catalog/service/consul');
    assert.equal(consul.ServiceSocketPath, '');
    assert.equal(consul.ServiceLocality, null);
  });

  test('catalog/register keeps node and service Locality', async () => {
    const body = {
      Node: 'ext-loc',
      Address: '10.9.9.9',
      Locality: { Region: 'us-east-1', Zone: 'us-east-1b' },
      Service: {
        ID: 'db-1',
        Service: 'db',
        Port: 5432,
        SocketPath: '/tmp/.s.PGSQL.5432',
        Weights: { Passing: 3, Warning: 1 },
        Locality: { Region: 'us-east-1' },
      },
    };
    assert.equal(await put('/v1/catalog/register', body), 'true');
    const [cs] = await getJson('/v1/catalog/service/db');
    assert.deepEqual(cs.ServiceLocality, { Region: 'us-east-1' });
    assert.equal(cs.ServiceSocketPath, '/tmp/.s.PGSQL.5432');
    assert.deepEqual(cs.ServiceWeights, { Passing: 3, Warning: 1 }, 'valid weights are kept');
    const node = await getJson('/v1/catalog/node/ext-loc');
    assert.deepEqual(node.Node.Locality, { Region: 'us-east-1', Zone: 'us-east-1b' });
  });

  test('a check carrying the unrun-kind fields empty (UDP "", GRPCUseTLS false) is a normal TTL check', async () => {
    // what older Go clients and hand-rolled ones send: every field present, most of them zero
    const body = {
      ID: 'ttl-zero',
      Name: 'ttl-zero',
      Check: {
        TTL: '10s',
        HTTP: '',
        TCP: '',
        UDP: '',
        GRPC: '',
        GRPCUseTLS: false,
        TCPUseTLS: false,
        H2PING: '',
        H2PingUseTLS: false,
        OSService: '',
        ScriptArgs: null,
        DockerContainerID: '',
        Shell: '',
        AliasNode: '',
        AliasService: '',
        Header: null,
      },
    };
    await put('/v1/agent/service/register', body);
    const checks = await getJson('/v1/agent/checks');
    assert.equal(checks['service:ttl-zero'].Type, 'ttl');
    await put('/v1/agent/service/deregister/ttl-zero');
  });

  test('missing fields decode as Go zero values: Weights {Passing: 3} is {3, 0}; {} is a 400 on the agent', async () => {
    await put('/v1/agent/service/register', {
      Name: 'zero',
      Weights: { Passing: 3 },
      TaggedAddresses: { lan: { Address: '10.0.0.1' } },
    });
    const s = await getJson('/v1/agent/service/zero');
    assert.deepEqual(s.Weights, { Passing: 3, Warning: 0 });
    assert.deepEqual(s.TaggedAddresses, { lan: { Address: '10.0.0.1', Port: 0 } });
    await put('/v1/agent/service/deregister/zero');
    const r = await api.put('/v1/agent/service/register', { Name: 'zero', Weights: {} });
    assert.equal(r.status, 400);
    assert.equal(r.text, 'Invalid Weights: Passing must be greater than 0');
  });

  test('a gRPC check on the agent is still a clear 400 (Phare runs HTTP, TCP and TTL checks)', async () => {
    const r = await api.put('/v1/agent/service/register', {
      Name: 'g',
      Check: { GRPC: '127.0.0.1:9000', Interval: '10s' },
    });
    assert.equal(r.status, 400);
    assert.equal(
      r.text,
      'Invalid check: GRPC checks are not supported by Phare; use an HTTP, TCP or TTL check',
    );
  });

  test('Kind and Proxy of a connect-proxy are stored and returned; Consul validates the proxy', async () => {
    const proxy = {
      Kind: 'connect-proxy',
      ID: 'web-sidecar-proxy',
      Name: 'web-sidecar-proxy',
      Port: 21000,
      Proxy: { DestinationServiceName: 'web', LocalServicePort: 8080 },
    };
    await put('/v1/agent/service/register', proxy);
    const s = await getJson('/v1/agent/service/web-sidecar-proxy');
    assert.equal(s.Kind, 'connect-proxy');
    assert.deepEqual(s.Proxy, {
      DestinationServiceName: 'web',
      LocalServicePort: 8080,
      MeshGateway: {},
      Expose: {},
    });
    const [cs] = await getJson('/v1/catalog/service/web-sidecar-proxy');
    assert.equal(cs.ServiceKind, 'connect-proxy');
    assert.equal(cs.ServiceProxy.DestinationServiceName, 'web');
    const r = await api.put('/v1/agent/service/register', { ...proxy, ID: 'p2', Proxy: {} });
    assert.equal(r.status, 400);
    assert.equal(
      r.text,
      'Validation failed: Proxy.DestinationServiceName must be non-empty for Connect proxy services',
    );
    await put('/v1/agent/service/deregister/web-sidecar-proxy');
    // Consul's other NodeService rules: gateways need a port; the catalog (no agent to pick one) too
    const gw = await api.put('/v1/agent/service/register', { Kind: 'mesh-gateway', Name: 'gw' });
    assert.equal(gw.status, 400);
    assert.equal(gw.text, 'Validation failed: Port must be non-zero for a mesh-gateway');
    const cat = await api.put('/v1/catalog/register', {
      Node: 'ext-proxy',
      Address: '10.0.0.7',
      Service: { Kind: 'connect-proxy', Service: 'p', Proxy: { DestinationServiceName: 'web' } },
    });
    assert.equal(cat.status, 500);
    assert.equal(cat.text, 'Port or SocketPath must be set for a connect-proxy');
    const bad = await api.put('/v1/agent/service/register', { Kind: 'sidecar', Name: 'x' });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /^Invalid service Kind "sidecar": expected one of connect-proxy, mesh-gateway/);
  });
});

describe('service IDs containing "/" (Patroni registers scope/name)', () => {
  test('register, read by %2F, see in health, deregister with a raw "/" and with %2F', async () => {
    // Patroni: agent.service.register(scope, service_id='scope/name', address, port, check, tags,
    // enable_tag_override=True) through python-consul
    const body = {
      name: 'pg-cluster',
      id: 'pg-cluster/node1',
      address: '127.0.0.1',
      port: 5432,
      tags: ['primary', 'master'],
      check: { http: 'http://127.0.0.1:1/primary', interval: '5s', DeregisterCriticalServiceAfter: '300s' },
      enabletagoverride: true,
    };
    await put('/v1/agent/service/register', body);
    await put('/v1/agent/service/register', { ...body, id: 'pg-cluster/node2', tags: ['replica'] });
    const s = await getJson('/v1/agent/service/pg-cluster%2Fnode1');
    assert.equal(s.ID, 'pg-cluster/node1');
    assert.equal(s.EnableTagOverride, true);
    const checks = await getJson('/v1/agent/checks');
    assert.equal(checks['service:pg-cluster/node1'].ServiceID, 'pg-cluster/node1');
    const health = await api.get('/v1/agent/health/service/id/pg-cluster%2Fnode1?format=text');
    assert.equal(health.text, 'critical');
    const entries: Json[] = await getJson('/v1/health/service/pg-cluster');
    assert.deepEqual(
      entries.map((e) => e.Service.ID),
      ['pg-cluster/node1', 'pg-cluster/node2'],
    );
    // Patroni quotes the ID with Python's quote(), which keeps "/": the path has it raw
    await put('/v1/agent/service/deregister/pg-cluster/node1');
    // the Go client escapes it (url.PathEscape): %2F
    await put('/v1/agent/service/deregister/pg-cluster%2Fnode2');
    assert.deepEqual(await getJson('/v1/health/service/pg-cluster'), []);
  });
});

describe('query-meta headers on 404s of reads (python-consul reads X-Consul-Index on every answer)', () => {
  test('an unknown read path and a missing key answer 404 with X-Consul-Index, KnownLeader, LastContact', async () => {
    for (const path of ['/v1/kv/no/such/key', '/v1/event/list', '/v1/nope']) {
      const r = await api.get(path);
      assert.equal(r.status, 404, path);
      assert.ok(Number(r.headers['x-consul-index']) >= 2, `${path}: ${JSON.stringify(r.headers)}`);
      assert.equal(r.headers['x-consul-knownleader'], 'true');
      assert.equal(r.headers['x-consul-lastcontact'], '0');
    }
  });

  test('agent-local 404s carry none, as in Consul; neither do writes', async () => {
    const r = await api.get('/v1/agent/service/nope');
    assert.equal(r.status, 404);
    assert.equal(r.headers['x-consul-index'], undefined);
    const w = await api.put('/v1/no/such/write', 'v');
    assert.equal(w.status, 404);
    assert.equal(w.headers['x-consul-index'], undefined);
  });
});

describe('node ID and node metadata', () => {
  test('--node-meta shows in the catalog, agent/self, ?node-meta= and NodeMeta filters; consul-version too', async () => {
    const node = (await getJson('/v1/catalog/nodes')).find((n: Json) => n.Node === 'test-node');
    assert.deepEqual(node.Meta, {
      'consul-network-segment': '',
      'consul-version': '1.20.1',
      rack: 'r1',
      env: 'prod',
    });
    const self = await getJson('/v1/agent/self');
    assert.deepEqual(self.Meta, node.Meta);
    assert.equal(self.Config.NodeID, node.ID);
    assert.match(node.ID, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const nodes = await getJson('/v1/catalog/nodes?node-meta=rack:r1');
    assert.ok(nodes.some((n: Json) => n.Node === 'test-node'));
    assert.deepEqual(await getJson('/v1/catalog/nodes?node-meta=rack:r2'), []);
    assert.deepEqual(Object.keys(await getJson('/v1/catalog/services?node-meta=env:prod')), [
      'cache',
      'consul',
    ]);
    const filtered = await getJson(
      `/v1/catalog/service/consul?filter=${encodeURIComponent('NodeMeta.rack == "r1"')}`,
    );
    assert.equal(filtered.length, 1);
    const [entry] = await getJson('/v1/health/service/consul?node-meta=env:prod');
    assert.equal(entry.Node.Meta.env, 'prod');
  });

  test('--node-id is used as given; PHARE_NODE_META is a comma list; bad values name the flag', () => {
    const id = '0B2F8C6E-5D1A-4C3E-9F0A-2B7D1E4C6A90';
    const cfg = resolveAgentConfig({
      flags: { dev: true, 'node-id': id },
      env: { PHARE_NODE_META: 'a:1, b:x:y' },
    });
    assert.equal(cfg.nodeId, id.toLowerCase());
    assert.deepEqual(cfg.nodeMeta, { a: '1', b: 'x:y' });
    // a config file takes a mapping (or a list of key:value)
    const dir = tempDir();
    try {
      const file = join(dir.path, 'agent.yaml');
      writeFileSync(file, 'dev: true\nnode-meta:\n  rack: r3\n  zone: "b"\n');
      assert.deepEqual(resolveAgentConfig({ configFile: file, env: {} }).nodeMeta, { rack: 'r3', zone: 'b' });
      writeFileSync(file, 'dev: true\nnodeMeta: ["rack:r4"]\n');
      assert.deepEqual(resolveAgentConfig({ configFile: file, env: {} }).nodeMeta, { rack: 'r4' });
    } finally {
      dir.remove();
    }
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ 'node-id': 'not-a-uuid' }, /^--node-id: "not-a-uuid" is not valid; expected a UUID/],
      [{ 'node-meta': ['novalue'] }, /^--node-meta: "novalue" is not valid; expected key:value/],
      [{ 'node-meta': ['bad key:v'] }, /^--node-meta: "bad key:v" is not valid; expected a key of letters/],
      [
        { 'node-meta': ['consul-x:v'] },
        /^--node-meta: "consul-x:v" is not valid; expected a key not starting with "consul-"/,
      ],
    ];
    for (const [flags, msg] of cases) {
      assert.throws(
        () => resolveAgentConfig({ flags: { dev: true, ...flags }, env: {} }),
        (err: Error & { code?: string }) =>
          err.code === 'PHARE_ERR_INVALID_ARGUMENT' && msg.test(err.message),
      );
    }
  });

  test('a persistent agent generates its node ID once and keeps it in <data-dir>/node-id', async () => {
    const dir = tempDir();
    try {
      const first = await startAgentInProcess({ dataDir: dir.path });
      const id = first.catalog.local.id;
      await first.close();
      const second = await startAgentInProcess({ dataDir: dir.path });
      assert.equal(second.catalog.local.id, id);
      const self = await (await call(second.url, 'GET', '/v1/agent/self')).json<Json>();
      assert.equal(self.Config.NodeID, id);
      await second.close();
    } finally {
      dir.remove();
    }
  });

  test('an empty or malformed node-id file is a clear start-up error, never NodeID ""', async () => {
    for (const [content, what] of [
      ['', /node-id: the file is empty; expected the node ID this agent was created with/],
      ['garbage\n', /node-id: "garbage" is not a UUID/],
    ] as const) {
      const dir = tempDir();
      try {
        writeFileSync(join(dir.path, 'node-id'), content);
        const config = resolveAgentConfig({
          flags: { 'data-dir': dir.path, 'http-addr': '127.0.0.1:0', 'dns-addr': '', 'log-level': 'silent' },
          env: {},
        });
        await assert.rejects(
          startAgent({ config }),
          (err: Error & { code?: string }) =>
            err.code === 'PHARE_ERR_INVALID_CONFIG' && what.test(err.message),
        );
      } finally {
        dir.remove();
      }
    }
  });
});

describe('status, metrics, index, ?cached', () => {
  test('status/leader and status/peers with another ?dc: 500 No path to datacenter', async () => {
    for (const path of ['/v1/status/leader?dc=other', '/v1/status/peers?dc=other']) {
      const r = await api.get(path);
      assert.equal(r.status, 500, path);
      assert.equal(r.text, 'No path to datacenter');
    }
    assert.equal(await getJson('/v1/status/leader?dc=dc1'), '127.0.0.1:8300');
  });

  test('agent/metrics JSON: label values are strings, counter Count is an integer (Go client decodes it)', async () => {
    await api.get('/v1/catalog/services');
    const m = await getJson('/v1/agent/metrics');
    const all: Json[] = [...m.Gauges, ...m.Counters, ...m.Samples];
    assert.ok(all.length > 10);
    for (const v of all) {
      for (const [k, l] of Object.entries(v.Labels)) assert.equal(typeof l, 'string', `${v.Name} ${k}`);
    }
    for (const c of [...m.Counters, ...m.Samples])
      assert.ok(Number.isInteger(c.Count), `${c.Name} Count ${c.Count}`);
    assert.ok(m.Samples.some((s: Json) => s.Name === 'phare.nodejs.gc.duration.seconds'));
    assert.ok(
      m.Counters.some((c: Json) => c.Name === 'phare.http.requests.total' && c.Labels.code === '200'),
    );
  });

  test('Prometheus names do not repeat words', async () => {
    const r = await api.get('/v1/agent/metrics?format=prometheus');
    assert.match(r.text, /^phare_process_cpu_seconds_total /m);
    assert.doesNotMatch(r.text, /process_process|nodejs_nodejs/);
  });

  test('a fresh agent answers index >= 2 on every read (node, serfHealth, consul each took one)', async () => {
    const fresh = await startAgentInProcess();
    try {
      const idx: Record<string, number> = {};
      for (const path of [
        '/v1/catalog/nodes',
        '/v1/catalog/services',
        '/v1/catalog/service/consul',
        '/v1/catalog/node/test-node',
        '/v1/health/service/none-yet',
        '/v1/health/state/any',
        '/v1/health/node/test-node',
      ]) {
        idx[path] = Number((await call(fresh.url, 'GET', path)).headers['x-consul-index']);
      }
      for (const [path, i] of Object.entries(idx)) assert.ok(i >= 2, `${path}: ${i}`);
      const [node] = await (await call(fresh.url, 'GET', '/v1/catalog/nodes')).json<Json[]>();
      const serf = (await (await call(fresh.url, 'GET', '/v1/health/state/any')).json<Json[]>())[0];
      const [consul] = await (await call(fresh.url, 'GET', '/v1/catalog/service/consul')).json<Json[]>();
      assert.ok(node.CreateIndex < serf.CreateIndex && serf.CreateIndex < consul.CreateIndex);
    } finally {
      await fresh.close();
    }
  });

  test('?cached answers X-Cache MISS, then HIT with Age; a change is a MISS again', async () => {
    await put('/v1/agent/service/register', { Name: 'cached-svc', ID: 'c1' });
    for (const base of [
      '/v1/health/service/cached-svc',
      '/v1/catalog/service/cached-svc',
      '/v1/catalog/services',
    ]) {
      const path = `${base}?cached&tag=x${Math.random()}`; // a query of its own: nothing cached yet
      const first = await api.get(path);
      assert.equal(first.headers['x-cache'], 'MISS', base);
      assert.equal(first.headers['age'], undefined);
      const second = await api.get(path);
      assert.equal(second.headers['x-cache'], 'HIT', base);
      assert.match(String(second.headers['age']), /^\d+$/);
      assert.equal(second.text, first.text);
      assert.equal(second.headers['x-consul-index'], first.headers['x-consul-index']);
    }
    const path = '/v1/health/service/cached-svc?cached';
    await api.get(path);
    await put('/v1/agent/service/register', { Name: 'cached-svc', ID: 'c2' });
    const after = await api.get(path);
    assert.equal(after.headers['x-cache'], 'MISS');
    assert.equal(after.json<Json[]>().length, 2);
    // Cache-Control: max-age=0 asks for a fresh answer
    await api.get(path);
    const fresh = await api.get(path, { 'Cache-Control': 'max-age=0' });
    assert.ok(['MISS', 'HIT'].includes(String(fresh.headers['x-cache'])));
    // without ?cached: no X-Cache; not on endpoints Consul does not cache either
    assert.equal((await api.get('/v1/health/service/cached-svc')).headers['x-cache'], undefined);
    assert.equal((await api.get('/v1/health/state/any?cached')).headers['x-cache'], undefined);
    const bad = await api.get('/v1/health/service/cached-svc?cached&consistent');
    assert.equal(bad.status, 400);
    assert.equal(bad.text, 'Cannot specify ?cached with ?consistent, conflicting semantics.');
  });
});

describe('shutdown ends every parked blocking read at once', () => {
  test('SIGTERM with a parked ?hash= read and a parked ?index= read: both answered, agent exits 0', async () => {
    // the real CLI, so --node-meta's repeatable flag goes through commander too
    const a = await spawnAgent([
      '--dev',
      '--http-addr',
      '127.0.0.1:0',
      '--dns-addr',
      '',
      '--node',
      'n1',
      '--node-meta',
      'rack:r7',
      '--node-meta',
      'tier:edge',
    ]);
    try {
      const self = (await call(a.url, 'GET', '/v1/agent/self')).json<Json>();
      assert.equal(self.Meta.rack, 'r7');
      assert.equal(self.Meta.tier, 'edge');
      assert.equal(
        (await call(a.url, 'PUT', '/v1/agent/service/register', { Name: 'hold', ID: 'h1' })).status,
        200,
      );
      const first = await call(a.url, 'GET', '/v1/agent/service/h1');
      const hash = first.json<Json>().ContentHash;
      const idx = (await call(a.url, 'GET', '/v1/health/service/hold')).headers['x-consul-index'];
      const byHash = call(a.url, 'GET', `/v1/agent/service/h1?hash=${hash}&wait=5m`, undefined, {
        timeoutMs: 60_000,
      });
      const byIndex = call(a.url, 'GET', `/v1/health/service/hold?index=${idx}&wait=5m`, undefined, {
        timeoutMs: 60_000,
      });
      // both parked: the agent's gauge counts them (hash reads park on the same catalog waiters)
      for (;;) {
        const m = await call(a.url, 'GET', '/v1/agent/metrics?format=prometheus');
        if (/^phare_blocking_queries 2$/m.test(m.text)) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      a.child.kill('SIGTERM');
      const [h, i] = await Promise.all([byHash, byIndex]);
      assert.equal(h.status, 200);
      assert.equal(h.json<Json>().ContentHash, hash);
      assert.equal(i.status, 200);
      assert.deepEqual(await a.exited, { code: 0, signal: null });
    } finally {
      a.child.kill('SIGKILL');
    }
  });
});
