/**
 * Phare agents over a real 3-member etcd cluster (docs/cluster.md): what one agent is told, every agent
 * serves; a dead agent is seen by all; etcd member loss, quorum loss and compaction lose nothing acknowledged.
 * Each test uses its own key prefix, so tests share one etcd cluster and never see each other's nodes.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { pino } from 'pino';
import type { RunningAgent } from '../../src/agent/index.ts';
import {
  createEtcdStore,
  type EtcdStore,
  type StoreEvent,
  type StoreSpace,
} from '../../src/agent/store/index.ts';
import { createDiscovery } from '../../src/client/discovery/index.ts';
import { createServiceClient } from '../../src/client/http/index.ts';
import { registerService } from '../../src/client/registration/index.ts';
import { tempDir, waitFor } from '../helpers/agent.ts';
import { type Backend, startBackend, startCallLoad } from '../helpers/backends.ts';
import {
  clusterAgents,
  dnsA,
  getJson,
  put,
  spawnClusterAgent,
  startClusterAgent,
} from '../helpers/cluster.ts';
import { ETCD_SKIP, startEtcdCluster } from '../helpers/etcd.ts';

type Entry = {
  Service: { ID: string; Service: string };
  Checks: { CheckID: string; Status: string; Output: string }[];
};

if (ETCD_SKIP && process.env['CI'] !== 'true') {
  test('phare cluster over etcd', { skip: ETCD_SKIP }, () => {});
} else {
  const etcd = await startEtcdCluster({ size: 3 });
  const { three, track, prefix: freshPrefix } = clusterAgents(etcd, 'c');
  const register = (agent: RunningAgent, id: string, name = 'web', extra: Record<string, unknown> = {}) =>
    put(`${agent.httpUrl}/v1/agent/service/register`, { ID: id, Name: name, Port: 8080, ...extra });

  test('register on A; read on C; a blocking query on C wakes; indexes are etcd revisions on every agent', async () => {
    const { a, b, c } = await three();
    assert.equal(
      (await register(a, 'web-1', 'web', { Check: { TTL: '30s', Status: 'passing' } })).status,
      200,
    );
    // Acknowledged means committed and applied on A; C's watch delivers it within milliseconds.
    const onA = await getJson(`${a.httpUrl}/v1/health/service/web`);
    assert.equal((onA.body as Entry[]).length, 1);
    const onC = (await waitFor(async () => {
      const r = await getJson(`${c.httpUrl}/v1/health/service/web`);
      return (r.body as Entry[]).length === 1 ? r : undefined;
    }, 5000)) as Awaited<ReturnType<typeof getJson>>;
    assert.equal(onC.index, onA.index, 'the same revision on every agent');
    assert.equal(onC.knownLeader, 'true');
    const entry = (onC.body as Entry[])[0] as Entry;
    assert.equal(entry.Service.ID, 'web-1');
    assert.deepEqual(
      entry.Checks.map((ch) => [ch.CheckID, ch.Status]),
      [
        ['serfHealth', 'passing'],
        ['service:web-1', 'passing'],
      ],
    );
    // A blocking query on C for web is not woken by another service registered on B …
    const t0 = Date.now();
    const parked = getJson(`${c.httpUrl}/v1/health/service/web?index=${onC.index}&wait=5s`);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await register(b, 'db-1', 'db')).status, 200);
    await new Promise((r) => setTimeout(r, 300));
    // … but is by a change to web made on A.
    assert.equal((await put(`${a.httpUrl}/v1/agent/check/fail/service:web-1?note=down`)).status, 200);
    const woke = await parked;
    assert.ok(Date.now() - t0 < 4000, `woke after ${Date.now() - t0} ms`);
    assert.ok(woke.index > onC.index);
    assert.equal(
      (woke.body as Entry[])[0]?.Checks.find((ch) => ch.CheckID === 'service:web-1')?.Status,
      'critical',
    );
    const passing = await getJson(`${c.httpUrl}/v1/health/service/web?passing`);
    assert.deepEqual(passing.body, []);
    // every agent lists every node and every member as alive
    const nodes = (await getJson(`${b.httpUrl}/v1/catalog/nodes`)).body as { Node: string }[];
    assert.deepEqual(
      nodes.map((x) => x.Node),
      ['a', 'b', 'c'],
    );
    const members = (await getJson(`${b.httpUrl}/v1/agent/members`)).body as {
      Name: string;
      Status: number;
    }[];
    assert.deepEqual(
      members.map((m) => [m.Name, m.Status]),
      [
        ['a', 1],
        ['b', 1],
        ['c', 1],
      ],
    );
    // every agent registers the `consul` service on its node, as Consul servers do: each answers the API
    const consul = (await getJson(`${c.httpUrl}/v1/catalog/service/consul`)).body as {
      Node: string;
      ServicePort: number;
    }[];
    assert.deepEqual(
      consul.map((x) => [x.Node, x.ServicePort]),
      [
        ['a', 8300],
        ['b', 8300],
        ['c', 8300],
      ],
    );
    const leader = (await getJson(`${a.httpUrl}/v1/status/leader`)).body as string;
    const peers = (await getJson(`${a.httpUrl}/v1/status/peers`)).body as string[];
    assert.equal(peers.length, 3);
    assert.ok(peers.includes(leader), `leader ${leader} among peers ${peers}`);
  });

  test('the etcd key layout is the one docs/cluster.md documents (etcdctl get --prefix)', async () => {
    // Existing clusters hold their data in this layout: a change to it is a migration, never an accident.
    const prefix = freshPrefix();
    const a = track(await startClusterAgent(etcd, prefix, 'Edge-1', { 'dns-addr': '' }));
    const id = 'web/1%x';
    assert.equal((await register(a, id, 'web', { Check: { TTL: '30s', Status: 'passing' } })).status, 200);
    assert.equal((await put(`${a.httpUrl}/v1/kv/cfg/a b`, 'v')).text, 'true');
    const session = JSON.parse((await put(`${a.httpUrl}/v1/session/create`, { Name: 's' })).text) as {
      ID: string;
    };
    const keys = (await etcd.ctl('get', '--prefix', `${prefix}/`, '--keys-only'))
      .split('\n')
      .filter((k) => k !== '')
      .sort();
    // Table row keys are the store key (parts joined by '/', '%' and '/' inside a part escaped as %25 and
    // %2F) put through encodeURIComponent once more; node rows are keyed by the lower-cased node name.
    assert.deepEqual(
      keys,
      [
        `${prefix}/kv/v1/kv/cfg%2Fa%20b`,
        `${prefix}/kv/v1/sessions/${session.ID}`,
        `${prefix}/v1/checks/Edge-1%2Fservice%3Aweb%252F1%2525x`,
        `${prefix}/v1/election/reaper/edge-1`,
        `${prefix}/v1/head`,
        `${prefix}/v1/live/edge-1`,
        `${prefix}/v1/members/edge-1`,
        `${prefix}/v1/nodes/edge-1`,
        `${prefix}/v1/services/Edge-1%2Fconsul`,
        `${prefix}/v1/services/Edge-1%2Fweb%252F1%2525x`,
      ].sort(),
    );
    const value = JSON.parse(
      await etcd.ctl('get', `${prefix}/v1/services/Edge-1%2Fweb%252F1%2525x`, '--print-value-only'),
    ) as { node: string; id: string; name: string };
    assert.deepEqual([value.node, value.id, value.name], ['Edge-1', id, 'web']);
  });

  test('rows in etcd that no Phare agent wrote (bad JSON, bad shape, bad escapes, a record under another key) never crash an agent nor show', async () => {
    const prefix = freshPrefix();
    const a = track(await startClusterAgent(etcd, prefix, 'a', { 'dns-addr': '' }));
    assert.equal(
      (await register(a, 'web-1', 'web', { Check: { TTL: '30s', Status: 'passing' } })).status,
      200,
    );
    assert.equal((await register(a, 'web-2', 'web')).status, 200);
    const service = (node: string, id: string) =>
      JSON.stringify({
        node,
        id,
        name: 'web',
        kind: '',
        tags: [],
        address: '',
        port: 1,
        meta: {},
        weights: { Passing: 1, Warning: 1 },
        enableTagOverride: false,
        agent: false,
      });
    const hostile: [string, string][] = [
      [`${prefix}/v1/services/x%zz`, service('x', 'y')], // not URI-encoded
      [`${prefix}/v1/services/a%2Fbad`, '{"node":5}'], // not a service record
      [`${prefix}/v1/services/a%2Fghost`, service('elsewhere', 'other')], // a record under someone else's key
      [`${prefix}/v1/checks/a%2Fc`, 'not json'],
      [`${prefix}/v1/nodes/zz`, '[]'],
      // a good row overwritten with garbage: the stale record must go, not stay
      [`${prefix}/v1/services/a%2Fweb-2`, '{"id":"web-2"}'],
    ];
    for (const [k, v] of hostile) await etcd.ctl('put', k, v);
    // a write after them: once it shows, the watch has delivered every hostile row before it
    assert.equal((await register(a, 'web-3', 'web')).status, 200);
    const ids = async () =>
      ((await getJson(`${a.httpUrl}/v1/catalog/service/web`)).body as { ServiceID: string }[])
        .map((s) => s.ServiceID)
        .sort();
    assert.deepEqual(await ids(), ['web-1', 'web-3']);
    const health = (await getJson(`${a.httpUrl}/v1/health/service/web`)).body as Entry[];
    assert.deepEqual(health.map((e) => e.Service.ID).sort(), ['web-1', 'web-3']);
    const nodes = (await getJson(`${a.httpUrl}/v1/catalog/nodes`)).body as { Node: string }[];
    assert.deepEqual(
      nodes.map((n) => n.Node),
      ['a'],
    );
    assert.equal((await getJson(`${a.httpUrl}/v1/agent/services`)).status, 200);
  });

  test('hostile rows in the KV, session, ACL and membership key spaces never crash an agent', async () => {
    const prefix = freshPrefix();
    const a = track(await startClusterAgent(etcd, prefix, 'a', { 'dns-addr': '' }));
    const hostile: [string, string][] = [
      [`${prefix}/kv/v1/kv/bad%zz`, '{"key":"x"}'],
      [`${prefix}/kv/v1/kv/shape`, '{"key":5,"value":[]}'],
      [`${prefix}/kv/v1/kv/notjson`, 'not json'],
      [`${prefix}/kv/v1/sessions/6d5f1c2a-0000-4000-8000-000000000001`, '{"id":7}'],
      [`${prefix}/kv/v1/sessionttls/x`, '[]'],
      [`${prefix}/kv/v1/lockdelays/k`, '{"until":"soon"}'],
      [`${prefix}/acl/v1/acl/token%3Abad`, '{"kind":"token","policies":"all"}'],
      [`${prefix}/acl/v1/acl/policy%3Abad`, '{"kind":"policy","rules":5}'],
      [`${prefix}/acl/v1/acl/zz%zz`, 'null'],
      [`${prefix}/v1/members/ghost`, '{"status":42}'],
      [`${prefix}/v1/live/ghost`, '7'],
      [`${prefix}/v1/election/reaper/ghost`, 'not json'],
    ];
    for (const [k, v] of hostile) await etcd.ctl('put', k, v);
    // writes after them in both spaces: once they show, every hostile row before them was delivered
    assert.equal((await put(`${a.httpUrl}/v1/kv/after`, 'x')).status, 200);
    assert.equal((await register(a, 'web-1', 'web')).status, 200);
    await waitFor(
      async () => (await getJson(`${a.httpUrl}/v1/kv/after`)).status === 200,
      5000,
      'the KV write after the hostile rows',
    );
    for (const path of [
      '/v1/kv/?recurse',
      '/v1/session/list',
      '/v1/agent/members',
      '/v1/catalog/nodes',
      '/v1/catalog/service/web',
      '/v1/status/leader',
    ])
      assert.equal((await getJson(`${a.httpUrl}${path}`)).status, 200, path);
  });

  test('kill -9 agent B: serfHealth critical on A and C within TTL + 2 s; restart B: back, no duplicates', async () => {
    const prefix = freshPrefix();
    const a = await startClusterAgent(etcd, prefix, 'a');
    track(a);
    const c = await startClusterAgent(etcd, prefix, 'c', { 'dns-addr': '' });
    track(c);
    const dir = tempDir('phare-b-');
    let b = await spawnClusterAgent(etcd, prefix, 'b', dir.path);
    track({ close: async () => void b.child.kill('SIGKILL') });
    try {
      for (const id of ['api-1', 'api-2'])
        assert.equal(
          (
            await put(`${b.url}/v1/agent/service/register`, {
              ID: id,
              Name: 'api',
              Port: 9000,
              Check: { TTL: '60s', Status: 'passing' },
            })
          ).status,
          200,
        );
      const dnsPort = a.dnsAddress?.port as number;
      await waitFor(async () => (await dnsA(dnsPort, 'api.service.consul')).length > 0, 5000, 'api in DNS');
      b.child.kill('SIGKILL');
      await b.exited;
      const killedAt = Date.now();
      for (const agent of [a, c]) {
        await waitFor(
          async () => {
            const r = await getJson(`${agent.httpUrl}/v1/health/node/b`);
            const serf = (r.body as { CheckID: string; Status: string; Output: string }[]).find(
              (x) => x.CheckID === 'serfHealth',
            );
            return serf?.Status === 'critical' && serf.Output === 'Agent not live or unreachable';
          },
          5000,
          'serfHealth critical',
        );
      }
      const seenAfter = Date.now() - killedAt;
      assert.ok(seenAfter <= 2000 + 2000, `seen dead after ${seenAfter} ms (TTL 2 s)`);
      // its services stay in the catalog but leave ?passing and DNS
      assert.equal(((await getJson(`${c.httpUrl}/v1/catalog/service/api`)).body as unknown[]).length, 2);
      assert.deepEqual((await getJson(`${c.httpUrl}/v1/health/service/api?passing`)).body, []);
      assert.deepEqual(await dnsA(dnsPort, 'api.service.consul'), []);
      const members = (await getJson(`${a.httpUrl}/v1/agent/members`)).body as {
        Name: string;
        Status: number;
      }[];
      assert.equal(members.find((m) => m.Name === 'b')?.Status, 4, 'failed');
      // the dead agent's `consul` service leaves ?passing with it: clients that find agents through it skip B
      const liveAgents = (await getJson(`${c.httpUrl}/v1/health/service/consul?passing`)).body as {
        Node: { Node: string };
      }[];
      assert.deepEqual(liveAgents.map((x) => x.Node.Node).sort(), ['a', 'c']);
      // restart B on its data dir: its services come back passing, once each
      b = await spawnClusterAgent(etcd, prefix, 'b', dir.path);
      await waitFor(
        async () =>
          ((await getJson(`${c.httpUrl}/v1/health/service/api?passing`)).body as unknown[]).length === 2,
        5000,
        'api passing again',
      );
      const all = (await getJson(`${c.httpUrl}/v1/catalog/service/api`)).body as { ServiceID: string }[];
      assert.deepEqual(all.map((s) => s.ServiceID).sort(), ['api-1', 'api-2']);
      const own = (await getJson(`${b.url}/v1/agent/services`)).body as Record<string, unknown>;
      assert.deepEqual(Object.keys(own).sort(), ['api-1', 'api-2']);
      assert.deepEqual(await dnsA(dnsPort, 'api.service.consul'), ['127.0.0.1']);
    } finally {
      b.child.kill('SIGKILL');
      await b.exited;
      dir.remove();
    }
  });

  test('?consistent on C waits until C has every write acknowledged on A; ?stale and the default read the cache', async () => {
    const prefix = freshPrefix();
    const a = await startClusterAgent(etcd, prefix, 'a');
    track(a);
    // C's watch delivers every change 300 ms late (a slow link or a busy member), so its cache lags A
    const inner = createEtcdStore({ endpoints: etcd.endpoints, prefix, probeIntervalMs: 200 });
    const lagging: EtcdStore = Object.assign(Object.create(inner) as EtcdStore, {
      watch: (from: number, onEvent: (e: StoreEvent) => void, space?: StoreSpace) =>
        inner.watch(from, (e) => void setTimeout(() => onEvent(e), 300), space),
    });
    const c = await startClusterAgent(etcd, prefix, 'c', {}, { store: lagging });
    track(c);
    for (let i = 0; i < 5; i++) {
      assert.equal((await register(a, `k-${i}`, `k-${i}`)).status, 200);
      const cached = await getJson(`${c.httpUrl}/v1/catalog/service/k-${i}`);
      assert.deepEqual(cached.body, [], "the default read serves C's cache as it is (not there yet)");
      const r = await fetch(`${c.httpUrl}/v1/catalog/service/k-${i}?consistent`);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-consul-effective-consistency'), 'consistent');
      assert.equal(r.headers.get('x-consul-knownleader'), 'true');
      assert.equal(((await r.json()) as unknown[]).length, 1, `k-${i} on C after ?consistent`);
    }
    const stale = await fetch(`${c.httpUrl}/v1/catalog/service/k-0?stale`);
    assert.equal(stale.headers.get('x-consul-effective-consistency'), 'stale');
    assert.equal((await fetch(`${c.httpUrl}/v1/catalog/service/k-0?stale&consistent`)).status, 400);
  });

  test('?consistent right after a lease expiry waits until the view has seen it (serfHealth critical)', async () => {
    const prefix = freshPrefix();
    const a = await startClusterAgent(etcd, prefix, 'a');
    track(a);
    // C's watch delivers every change 300 ms late, so its cache still has A alive for 300 ms after the expiry
    const inner = createEtcdStore({ endpoints: etcd.endpoints, prefix, probeIntervalMs: 200 });
    const lagging: EtcdStore = Object.assign(Object.create(inner) as EtcdStore, {
      watch: (from: number, onEvent: (e: StoreEvent) => void, space?: StoreSpace) =>
        inner.watch(from, (e) => void setTimeout(() => onEvent(e), 300), space),
    });
    const c = await startClusterAgent(etcd, prefix, 'c', {}, { store: lagging });
    track(c);
    const serfOfA = async (query: string) => {
      const r = await getJson(`${c.httpUrl}/v1/health/node/a${query}`);
      return (r.body as { CheckID: string; Status: string }[]).find((x) => x.CheckID === 'serfHealth')
        ?.Status;
    };
    await waitFor(async () => (await serfOfA('')) === 'passing', 5000);
    // etcd ends A's lease itself (what an expiry does): its `live` key goes at a revision no Phare write made
    const live = await inner.client.get(inner.keyOf('live', 'a')).exec();
    const lease = live.kvs[0]?.lease;
    assert.ok(lease && lease !== '0', 'A holds its live key on a lease');
    await inner.client.leaseClient.leaseRevoke({ ID: lease });
    assert.equal(await serfOfA(''), 'passing', "the default read serves C's lagging cache as it is");
    assert.equal(await serfOfA('?consistent'), 'critical', '?consistent waited for the expiry');
  });

  test('steady HTTP checks cost no etcd write; a changed output reaches other agents within --check-update-interval', async () => {
    const prefix = freshPrefix();
    let tick = 0;
    const hits = new Map<string, number>();
    const backend = createServer((req, res) => {
      hits.set(req.url ?? '', (hits.get(req.url ?? '') ?? 0) + 1);
      res.end(req.url === '/tick' ? `tick ${++tick}` : 'ok');
    });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
    const base = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;
    try {
      const a = await startClusterAgent(etcd, prefix, 'a', { 'check-update-interval': '1s' });
      track(a);
      const b = await startClusterAgent(etcd, prefix, 'b');
      track(b);
      for (let i = 0; i < 10; i++)
        assert.equal(
          (await register(a, `s-${i}`, 'steady', { Check: { HTTP: `${base}/steady/${i}`, Interval: '1s' } }))
            .status,
          200,
        );
      await waitFor(
        async () =>
          ((await getJson(`${b.httpUrl}/v1/health/checks/steady?filter=Status=="passing"`)).body as unknown[])
            .length === 10,
        10_000,
        'ten steady checks passing on B',
      );
      // the revision of the last Phare write under the prefix (every transaction touches <prefix>/v1/head)
      const head = async () => {
        const out = JSON.parse(await etcd.ctl('get', `${prefix}/v1/head`, '-w', 'json')) as {
          kvs?: { mod_revision: number }[];
        };
        return out.kvs?.[0]?.mod_revision ?? 0;
      };
      const before = await head();
      const probesBefore = [...Array(10).keys()].map((i) => hits.get(`/steady/${i}`) ?? 0);
      // three more probes of every steady check (counted by the backend, not by sleeping)
      await waitFor(
        () => probesBefore.every((n, i) => (hits.get(`/steady/${i}`) ?? 0) >= n + 3),
        15_000,
        'three more probes of each steady check',
      );
      assert.equal(await head(), before, "steady checks moved etcd's revision");
      // an output that changes on every probe: A shows it at once, B once the deferred write lands
      assert.equal(
        (await register(a, 'tick-1', 'tick', { Check: { HTTP: `${base}/tick`, Interval: '1s' } })).status,
        200,
      );
      const outputOn = async (agent: RunningAgent) =>
        ((await getJson(`${agent.httpUrl}/v1/health/checks/tick`)).body as { Output: string }[])[0]?.Output ??
        '';
      const first = (await waitFor(
        async () => /tick \d+/.exec(await outputOn(b))?.[0],
        10_000,
        'the first tick output on B',
      )) as string;
      await waitFor(
        async () => {
          const later = /tick \d+/.exec(await outputOn(b))?.[0];
          return later !== undefined && later !== first;
        },
        10_000,
        'a later tick output reaches B (deferred write)',
      );
    } finally {
      backend.closeAllConnections();
      await new Promise((r) => backend.close(r));
    }
  });

  test('the SDK given three cluster agents: kill -9 of the one in use under load fails no call; discovery and registration move on', async () => {
    const prefix = freshPrefix();
    const dir = tempDir('phare-sdk-a-');
    const a = await spawnClusterAgent(etcd, prefix, 'a', dir.path);
    track({ close: async () => void a.child.kill('SIGKILL') });
    const b = await startClusterAgent(etcd, prefix, 'b', { 'dns-addr': '' });
    track(b);
    const c = await startClusterAgent(etcd, prefix, 'c', { 'dns-addr': '' });
    track(c);
    const logger = pino({ level: 'silent' });
    const backends: Backend[] = [];
    const order = async (via: RunningAgent, be: Backend) =>
      assert.equal(
        (await register(via, `orders-${be.port}`, 'orders', { Address: '127.0.0.1', Port: be.port })).status,
        200,
      );
    for (const name of ['o1', 'o2', 'o3']) {
      const be = await startBackend(name);
      backends.push(be);
      await order(b, be);
    }
    // a first: the SDK sticks to the first agent that answers, so the kill hits the agent in use
    const addresses = [a.url, b.httpUrl, c.httpUrl];
    const discovery = createDiscovery({
      consul: {
        env: { PHARE_HTTP_ADDR: addresses.map((u) => u.replace('http://', '')).join(',') },
        waitMs: 5000,
      },
      logger,
    });
    const http = createServiceClient({ discovery, logger });
    const reg = await registerService({
      name: 'payments',
      port: 7600,
      address: '127.0.0.1',
      consul: { address: addresses },
      watchWaitMs: 2000,
      logger,
    });
    const load = startCallLoad(http, 'orders');
    try {
      await waitFor(() => load.ok > 300, 20_000, 'load to warm up');
      a.child.kill('SIGKILL');
      await a.exited;
      const atKill = load.ok;
      // a change made through another agent reaches the callers: discovery now watches b or c
      const late = await startBackend('late');
      backends.push(late);
      await order(c, late);
      await waitFor(
        () => load.seenPorts.has(late.port),
        20_000,
        'the instance registered after the kill to take calls',
      );
      await waitFor(() => load.ok > atKill + 500, 20_000, 'load to continue after the kill');
      // a's payments instance is critical with a (serfHealth); the keeper registered it again through b or c
      await waitFor(
        async () =>
          ((await getJson(`${c.httpUrl}/v1/health/service/payments?passing`)).body as unknown[]).length === 1,
        20_000,
        'payments passing again, through a surviving agent',
      );
      await load.stop();
      assert.equal(load.errors.length, 0, `failed calls: ${load.errors.slice(0, 3).map(String).join('; ')}`);
    } finally {
      await load.stop();
      await reg.deregister().catch(() => {});
      await http.close();
      await discovery.close();
      await Promise.all(backends.map((x) => x.close()));
      dir.remove();
    }
  });
}
