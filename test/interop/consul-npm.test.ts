/**
 * Interop: the npm `consul` client (2.0.1, silas/node-consul) against a real Phare agent, unchanged.
 * The story a Node service lives through: register with an HTTP check against a real backend, go critical
 * -> passing, filter by tag, drive a TTL check, maintenance mode, a blocking watch, deregister; plus the
 * read endpoints node-consul's own acceptance suite asserts on (Consul docs, HTTP API overview).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Consul from 'consul';
import { startAgentInProcess, waitFor } from '../helpers/agent.ts';
import { type Backend, startBackend } from './backend.ts';

type Agent = Awaited<ReturnType<typeof startAgentInProcess>>;
// node-consul's typings are loose (`any` results); describe only what these tests read.
interface Check {
  CheckID: string;
  Status: string;
  Output: string;
  Notes: string;
  ServiceID: string;
}
interface Entry {
  Node: { Node: string };
  Service: { ID: string; Service: string; Tags: string[] };
  Checks: Check[];
}

let agent: Agent;
let consul: Consul;
let backend: Backend;
const NODE = 'test-node';

before(async () => {
  agent = await startAgentInProcess();
  consul = new Consul({ host: '127.0.0.1', port: agent.httpAddress.port });
  backend = await startBackend(503);
});

after(async () => {
  consul.destroy();
  await backend.close();
  await agent.close();
});

const ids = (entries: Entry[]) => entries.map((e) => e.Service.ID).sort();

test('a fresh agent: status, datacenters, self, members, nodes, health.state(any)', async () => {
  assert.equal(await consul.status.leader(), '127.0.0.1:8300');
  assert.deepEqual(await consul.status.peers(), ['127.0.0.1:8300']);
  assert.deepEqual(await consul.catalog.datacenters(), ['dc1']);

  const self = await consul.agent.self();
  assert.equal(self.Config.Datacenter, 'dc1');
  assert.equal(self.Config.NodeName, NODE);
  assert.equal(self.Config.Server, true);
  assert.equal(self.Member.Name, NODE);
  assert.equal(self.Member.Addr, '127.0.0.1');
  assert.equal(self.Stats.consul.leader_addr, await consul.status.leader());

  const members = await consul.agent.members({});
  assert.equal(members.length, 1);
  assert.equal(members[0]?.Name, NODE);
  assert.equal(members[0]?.Status, 1);

  const nodes = await consul.catalog.nodes({});
  assert.deepEqual(
    nodes.map((n: { Node: string; Address: string }) => ({ Node: n.Node, Address: n.Address })),
    [{ Node: NODE, Address: '127.0.0.1' }],
  );
  // python-consul and node-consul both assert this on a fresh agent: exactly serfHealth, a node check
  const state = await consul.health.state('any');
  assert.equal(state.length, 1);
  assert.equal(state[0]?.CheckID, 'serfHealth');
  assert.equal(state[0]?.ServiceID, '');
  assert.deepEqual(await consul.catalog.services(), { consul: [] });
});

test('HTTP check against a real backend: critical, then passing, then critical again', async () => {
  await consul.agent.service.register({
    name: 'web',
    id: 'web-1',
    port: 8080,
    address: '127.0.0.1',
    tags: ['v1', 'blue'],
    meta: { version: '1.2' },
    check: { name: 'web http', http: backend.url, interval: '1s', timeout: '2s' },
  });
  const services = await consul.agent.service.list();
  assert.equal(services['web-1'].Service, 'web');
  assert.deepEqual(services['web-1'].Tags, ['v1', 'blue']);
  assert.deepEqual(services['web-1'].Weights, { Passing: 1, Warning: 1 });

  const all: Entry[] = await consul.health.service('web');
  assert.deepEqual(ids(all), ['web-1']);
  assert.deepEqual(
    all[0]?.Checks.map((c) => c.CheckID),
    ['serfHealth', 'service:web-1'],
  );
  // initial status is critical (Consul: unless the check says otherwise)
  assert.equal(all[0]?.Checks[1]?.Status, 'critical');
  assert.deepEqual(await consul.health.service({ service: 'web', passing: true }), []);

  backend.setStatus(200);
  const passing = await waitFor(
    async () => {
      const r: Entry[] = await consul.health.service({ service: 'web', passing: true });
      return r.length === 1 ? r : undefined;
    },
    15_000,
    'web-1 to pass its HTTP check (needs the health-check engine)',
  );
  const check = passing?.[0]?.Checks.find((c) => c.CheckID === 'service:web-1');
  assert.equal(check?.Status, 'passing');
  assert.match(check?.Output ?? '', /200 OK/);
  assert.ok(backend.hits() > 0);

  backend.setStatus(503);
  await waitFor(
    async () => (await consul.health.service({ service: 'web', passing: true })).length === 0,
    15_000,
    'web-1 to go critical again',
  );
});

test('tags: catalog.service.nodes with tag, health.service with tag and filter, catalog.services', async () => {
  await consul.agent.service.register({ name: 'web', id: 'web-2', port: 8081, tags: ['v2', 'blue'] });
  const v1 = await consul.catalog.service.nodes({ service: 'web', tag: 'v1' });
  assert.deepEqual(
    v1.map((s: { ServiceID: string }) => s.ServiceID),
    ['web-1'],
  );
  const blue = await consul.catalog.service.nodes({ service: 'web', tag: 'blue' });
  assert.deepEqual(
    blue.map((s: { ServiceID: string }) => s.ServiceID),
    ['web-1', 'web-2'],
  );
  assert.equal(blue[0].ServicePort, 8080);
  assert.equal(blue[0].ServiceAddress, '127.0.0.1');
  assert.deepEqual(blue[0].ServiceMeta, { version: '1.2' });
  assert.equal(blue[1].ServiceAddress, '');

  assert.deepEqual(ids(await consul.health.service({ service: 'web', tag: 'v2' })), ['web-2']);
  assert.deepEqual(ids(await consul.health.service({ service: 'web', filter: '"v1" in Service.Tags' })), [
    'web-1',
  ]);
  assert.deepEqual(ids(await consul.health.service({ service: 'web', filter: 'Service.Port == 8081' })), [
    'web-2',
  ]);
  assert.deepEqual(
    ids(await consul.health.service({ service: 'web', filter: 'Service.Meta.version == "1.2"' })),
    ['web-1'],
  );

  const catalog = await consul.catalog.services();
  assert.deepEqual(Object.keys(catalog).sort(), ['consul', 'web']);
  assert.deepEqual([...(catalog.web ?? [])].sort(), ['blue', 'v1', 'v2']);
  assert.deepEqual(catalog.consul, []);

  const node = await consul.catalog.node.services(NODE);
  assert.equal(node.Node.Node, NODE);
  assert.deepEqual(Object.keys(node.Services).sort(), ['consul', 'web-1', 'web-2']);
});

test('TTL check: register, pass/warn/fail with notes, status and output visible everywhere', async () => {
  await consul.agent.check.register({
    name: 'web-2 ttl',
    checkid: 'ttl-web-2',
    serviceid: 'web-2',
    ttl: '30s',
    timeout: '',
  });
  const read = async (): Promise<Check | undefined> => (await consul.agent.check.list())['ttl-web-2'];
  assert.equal((await read())?.Status, 'critical');
  assert.equal((await read())?.ServiceID, 'web-2');

  await consul.agent.check.pass({ id: 'ttl-web-2', note: 'all good' });
  assert.equal((await read())?.Status, 'passing');
  assert.equal((await read())?.Output, 'all good');
  // web-2 has only this check: it is now in ?passing
  assert.deepEqual(ids(await consul.health.service({ service: 'web', passing: true })), ['web-2']);

  await consul.agent.check.warn({ id: 'ttl-web-2', note: 'slow' });
  assert.equal((await read())?.Status, 'warning');
  assert.equal((await read())?.Output, 'slow');
  // ?passing drops warning too
  assert.deepEqual(await consul.health.service({ service: 'web', passing: true }), []);

  await consul.agent.check.fail({ id: 'ttl-web-2', note: 'down' });
  assert.equal((await read())?.Status, 'critical');

  const checks: Check[] = await consul.health.checks('web');
  assert.deepEqual(checks.map((c) => c.CheckID).sort(), ['service:web-1', 'ttl-web-2']);
  const nodeChecks: Check[] = await consul.health.node(NODE);
  assert.deepEqual(
    nodeChecks.map((c) => c.CheckID),
    ['serfHealth', 'service:web-1', 'ttl-web-2'],
  );
  const crit: Check[] = await consul.health.state('critical');
  assert.ok(crit.some((c) => c.CheckID === 'ttl-web-2'));

  // a pass on a non-TTL check is Consul's 500 with the text clients parse
  await assert.rejects(consul.agent.check.pass('service:web-1'), (err: Error & { statusCode?: number }) => {
    assert.equal(err.statusCode, 500);
    assert.match(err.message, /does not have associated TTL/);
    return true;
  });
  await consul.agent.check.pass('ttl-web-2');
});

test('maintenance mode: service and node', async () => {
  assert.deepEqual(ids(await consul.health.service({ service: 'web', passing: true })), ['web-2']);
  await consul.agent.service.maintenance({ id: 'web-2', enable: true, reason: 'deploying' });
  let checks = await consul.agent.check.list();
  const maint = checks['_service_maintenance:web-2'];
  assert.equal(maint?.Status, 'critical');
  assert.equal(maint?.Notes, 'deploying');
  assert.equal(maint?.ServiceID, 'web-2');
  assert.deepEqual(await consul.health.service({ service: 'web', passing: true }), []);
  await consul.agent.service.maintenance({ id: 'web-2', enable: false });
  checks = await consul.agent.check.list();
  assert.equal(checks['_service_maintenance:web-2'], undefined);
  assert.deepEqual(ids(await consul.health.service({ service: 'web', passing: true })), ['web-2']);

  await consul.agent.maintenance({ enable: true });
  checks = await consul.agent.check.list();
  assert.equal(checks._node_maintenance?.Status, 'critical');
  assert.match(checks._node_maintenance?.Notes ?? '', /Maintenance mode is enabled for this node/);
  assert.deepEqual(await consul.health.service({ service: 'web', passing: true }), []);
  await consul.agent.maintenance({ enable: false });
  assert.deepEqual(ids(await consul.health.service({ service: 'web', passing: true })), ['web-2']);
});

test('watch on health.service (passing) emits a change when another instance registers', async () => {
  await consul.agent.service.register({
    name: 'api',
    id: 'api-1',
    port: 9001,
    check: { name: 'c', ttl: '60s', status: 'passing', timeout: '' },
  });
  const watch = consul.watch({
    method: consul.health.service,
    options: { service: 'api', passing: 'true', wait: '10s' },
  });
  const changes: Entry[][] = [];
  const errors: unknown[] = [];
  watch.on('change', (data: Entry[]) => changes.push(data));
  watch.on('error', (err: unknown) => errors.push(err));
  try {
    await waitFor(() => changes.length >= 1, 10_000, 'the first watch result');
    assert.deepEqual(ids(changes[0] ?? []), ['api-1']);
    // let the watch park on its index, then change the service
    await new Promise((r) => setTimeout(r, 200));
    await consul.agent.service.register({
      name: 'api',
      id: 'api-2',
      port: 9002,
      check: { name: 'c', ttl: '60s', status: 'passing', timeout: '' },
    });
    await waitFor(() => changes.some((c) => c.length === 2), 5_000, 'the watch to see api-2');
    assert.deepEqual(ids(changes.at(-1) ?? []), ['api-1', 'api-2']);
    // a change to another service does not produce a change event here
    const before = changes.length;
    await consul.agent.service.register({ name: 'other', id: 'other-1' });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(changes.length, before);
    assert.deepEqual(errors, []);
  } finally {
    watch.end();
  }
});

test('deregister removes the service and its checks; unknown IDs are a 404', async () => {
  await consul.agent.service.deregister('web-1');
  await consul.agent.service.deregister({ id: 'web-2' });
  assert.deepEqual(await consul.health.service('web'), []);
  assert.deepEqual(await consul.catalog.service.nodes('web'), []);
  const checks = await consul.agent.check.list();
  assert.equal(checks['service:web-1'], undefined);
  assert.equal(checks['ttl-web-2'], undefined);
  await assert.rejects(consul.agent.service.deregister('web-1'), (err: Error & { statusCode?: number }) => {
    assert.equal(err.statusCode, 404);
    return true;
  });
  await consul.agent.check.register({ name: 'standalone', ttl: '10s', timeout: '' });
  await consul.agent.check.deregister('standalone');
  assert.equal((await consul.agent.check.list()).standalone, undefined);
});
