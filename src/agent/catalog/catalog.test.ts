import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMemoryStore, type Store, type StoreOp } from '../store/index.ts';
import { Catalog, type CheckInput, type ServiceInput, Topic } from './index.ts';

const NODE = { name: 'n1', id: '00000000-0000-0000-0000-000000000001', address: '127.0.0.1' };

function svc(id: string, name = id, extra: Partial<ServiceInput> = {}): ServiceInput {
  return {
    id,
    name,
    kind: '',
    tags: [],
    address: '',
    port: 80,
    meta: {},
    weights: { Passing: 1, Warning: 1 },
    enableTagOverride: false,
    ...extra,
  };
}

function ttl(checkId: string, serviceId: string, status?: 'passing' | 'warning' | 'critical'): CheckInput {
  const c: CheckInput = {
    checkId,
    name: checkId,
    notes: '',
    serviceId,
    def: {
      type: 'ttl',
      ttlMs: 10_000,
      successBeforePassing: 0,
      failuresBeforeWarning: 0,
      failuresBeforeCritical: 0,
      outputMaxSize: 4096,
    },
  };
  if (status) c.status = status;
  return c;
}

const open = (store = createMemoryStore()) => Catalog.open({ store, node: NODE, datacenter: 'dc1' });

test('a fresh catalog has the agent node, serfHealth and the consul service', async () => {
  const c = await open();
  assert.deepEqual(
    c.nodes().map((n) => n.node),
    ['n1'],
  );
  assert.deepEqual(
    c.allChecks().map((x) => x.checkId),
    ['serfHealth'],
  );
  assert.deepEqual(
    c.instancesOf('consul').map((s) => s.port),
    [8300],
  );
  assert.deepEqual(c.agentServices(), []);
  assert.ok(c.index >= 1);
});

test('checks start critical unless a status is given; re-registration keeps status and output (Consul #868)', async () => {
  const c = await open();
  await c.registerService(svc('web-1', 'web'), [ttl('service:web-1', 'web-1')]);
  assert.equal(c.check('n1', 'service:web-1')?.status, 'critical');
  await c.updateCheck('n1', 'service:web-1', 'passing', 'all good', { announce: true });
  await c.registerService(svc('web-1', 'web', { port: 81 }), [ttl('service:web-1', 'web-1', 'critical')]);
  const ch = c.check('n1', 'service:web-1');
  assert.equal(ch?.status, 'passing');
  assert.equal(ch?.output, 'all good');
  assert.equal(c.agentService('web-1')?.port, 81);
});

test('replaceExistingChecks drops checks not in the new registration', async () => {
  const c = await open();
  await c.registerService(svc('a'), [ttl('c1', 'a'), ttl('c2', 'a')]);
  await c.registerService(svc('a'), [ttl('c2', 'a')]);
  assert.deepEqual(
    c.checksFor('n1', 'a').map((x) => x.checkId),
    ['c1', 'c2', 'serfHealth'],
  );
  await c.registerService(svc('a'), [ttl('c2', 'a')], { replaceExistingChecks: true });
  assert.deepEqual(
    c.checksFor('n1', 'a').map((x) => x.checkId),
    ['c2', 'serfHealth'],
  );
});

test('each service has its own topic index: a change to B does not move A', async () => {
  const c = await open();
  await c.registerService(svc('a'), []);
  const ia = c.indexOf([Topic.service('a')]);
  await c.registerService(svc('b'), []);
  assert.equal(c.indexOf([Topic.service('a')]), ia);
  assert.ok(c.indexOf([Topic.service('b')]) > ia);
  await c.registerService(svc('a', 'a', { tags: ['x'] }), []);
  assert.ok(c.indexOf([Topic.service('a')]) > ia);
});

test('a node-level check change moves the index of every service on that node', async () => {
  const c = await open();
  await c.registerService(svc('a'), []);
  const before = c.indexOf([Topic.service('a')]);
  await c.setNodeMaintenance(true, '');
  assert.ok(c.indexOf([Topic.service('a')]) > before);
  assert.equal(c.check('n1', '_node_maintenance')?.status, 'critical');
});

test('waitForChange wakes on the watched topic only, and times out otherwise', async () => {
  const c = await open();
  await c.registerService(svc('a'), []);
  const idx = c.indexOf([Topic.service('a')]);
  let woke = false;
  const w = c.waitForChange([Topic.service('a')], idx, 5_000).then(() => {
    woke = true;
  });
  await c.registerService(svc('b'), []);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(woke, false, 'a change to b must not wake a watcher of a');
  await c.updateCheck('n1', 'serfHealth', 'passing', 'x'); // no-op: same status, output only
  await c.registerService(svc('a', 'a', { port: 9 }), []);
  await w;
  assert.equal(woke, true);
  const t0 = Date.now();
  await c.waitForChange([Topic.service('a')], c.indexOf([Topic.service('a')]), 50);
  assert.ok(Date.now() - t0 >= 40);
});

test('an output-only update is not announced unless asked; a status change is', async () => {
  const c = await open();
  await c.registerService(svc('a'), [ttl('t', 'a')]);
  const i0 = c.index;
  await c.updateCheck('n1', 't', 'critical', 'new output');
  assert.equal(c.index, i0);
  assert.equal(c.check('n1', 't')?.output, 'new output');
  await c.updateCheck('n1', 't', 'critical', 'newer output', { announce: true });
  assert.equal(c.index, i0 + 1);
  await c.updateCheck('n1', 't', 'passing', 'ok');
  assert.equal(c.index, i0 + 2);
});

test('deregistering removes the service and its checks; unknown IDs are PHARE_ERR_NOT_FOUND', async () => {
  const c = await open();
  await c.registerService(svc('a'), [ttl('t', 'a')]);
  await c.deregisterService('a');
  assert.equal(c.check('n1', 't'), undefined);
  await assert.rejects(c.deregisterService('a'), { code: 'PHARE_ERR_NOT_FOUND' });
  await assert.rejects(c.deregisterCheck('zzz'), { code: 'PHARE_ERR_NOT_FOUND' });
  await assert.rejects(c.deregisterCheck('serfHealth'), { code: 'PHARE_ERR_NOT_FOUND' });
});

test('catalog register/deregister manage other nodes; deregistering a node removes its services', async () => {
  const c = await open();
  await c.catalogRegister({
    node: { id: '', node: 'ext', address: '10.0.0.9', taggedAddresses: {}, meta: { rack: 'r1' } },
    service: svc('db-1', 'db'),
    checks: [{ ...ttl('db-ok', 'db-1', 'passing'), def: { ...ttl('x', 'y').def, type: '' } }],
  });
  assert.equal(c.instancesOf('db').length, 1);
  assert.equal(c.check('ext', 'db-ok')?.status, 'passing');
  await c.catalogDeregister({ node: 'ext' });
  assert.equal(c.node('ext'), undefined);
  assert.equal(c.instancesOf('db').length, 0);
});

test('state and index survive a reopen of the same store; agent services follow a renamed node', async () => {
  const store = createMemoryStore();
  const c = await open(store);
  await c.registerService(svc('a'), [ttl('t', 'a')]);
  await c.updateCheck('n1', 't', 'passing', 'fine', { announce: true });
  const idx = c.index;
  await c.close();
  const again = await Catalog.open({ store, node: { ...NODE, name: 'renamed' }, datacenter: 'dc1' });
  assert.ok(again.index >= idx);
  assert.equal(again.agentService('a')?.node, 'renamed');
  assert.equal(again.check('renamed', 't')?.status, 'passing');
  assert.equal(again.check('renamed', 't')?.output, 'fine');
});

test('close() releases parked watchers and rejects later writes', async () => {
  const c = await open();
  const w = c.waitForChange([Topic.services], c.index, 60_000);
  await c.close();
  await w;
  await assert.rejects(c.registerService(svc('a'), []), { code: 'PHARE_ERR_STORE_CLOSED' });
});

test('after a reopen, each service keeps its own index: a change to one does not move another', async () => {
  const store = createMemoryStore();
  const c = await open(store);
  await c.registerService(svc('a'), []);
  await c.registerService(svc('b'), []);
  await c.close();
  const again = await open(store);
  const ia = again.indexOf([Topic.service('a')]);
  assert.ok(ia >= 1);
  await again.registerService(svc('b', 'b', { port: 99 }), []);
  assert.equal(again.indexOf([Topic.service('a')]), ia);
  assert.ok(again.indexOf([Topic.service('b')]) > ia);
});

test('indexTime tells when a recent index was handed out', async () => {
  const c = await open();
  const before = Date.now();
  await c.registerService(svc('a'), []);
  const t = c.indexTime(c.index);
  assert.ok(t !== undefined && t >= before && t <= Date.now());
  assert.equal(c.indexTime(c.index + 100), undefined);
});

/**
 * A real memory store whose commits the test holds and releases (or fails), to look at the catalog while a
 * commit is in flight — the moment a kill -9 or a full disk hits in the fault tests (test/faults/).
 */
function gatedStore() {
  const inner = createMemoryStore();
  const gates: { resolve: () => void; reject: (e: unknown) => void; ops: readonly StoreOp[] }[] = [];
  let arrived: () => void = () => {};
  const store: Store = {
    ...inner,
    write(ops, index) {
      return new Promise<void>((resolve, reject) => {
        gates.push({
          ops,
          resolve: () => inner.write(ops, index).then(resolve, reject),
          reject,
        });
        arrived();
      });
    },
  };
  return {
    store,
    /** Resolves with the next commit the catalog sends, held until released. */
    next: () =>
      new Promise<(typeof gates)[number]>((resolve) => {
        const take = () => {
          const g = gates.shift();
          if (g) resolve(g);
          else arrived = take;
        };
        take();
      }),
  };
}

test('a write is invisible, its index not handed out and watchers asleep until its commit is durable', async () => {
  const g = gatedStore();
  const c = await open(g.store);
  const before = c.index;
  let woke = false;
  const watch = c
    .waitForChange([Topic.service('web')], c.indexOf([Topic.service('web')]), 60_000)
    .then(() => {
      woke = true;
    });
  const write = c.registerService(svc('web'), [ttl('t', 'web')]);
  const commit = await g.next();
  // the batch is built and on its way to the store: nothing of it is visible yet
  assert.equal(c.agentService('web'), undefined);
  assert.equal(c.check('n1', 't'), undefined);
  assert.equal(c.index, before);
  await assert.rejects(c.updateCheck('n1', 't', 'passing', 'ok', { announce: true }), {
    code: 'PHARE_ERR_NOT_FOUND',
  });
  await new Promise((r) => setImmediate(r));
  assert.equal(woke, false);
  assert.ok(commit.ops.length >= 2);
  commit.resolve();
  await write;
  await watch;
  assert.equal(woke, true);
  assert.equal(c.agentService('web')?.name, 'web');
  assert.ok(c.index > before);
  await c.close();
});

test('a failed commit changes nothing: no service, no check, no event, index unchanged', async () => {
  const g = gatedStore();
  const c = await open(g.store);
  const events: string[] = [];
  c.subscribe((e) => events.push(e.type));
  const before = c.index;
  const write = c.registerService(svc('web'), [ttl('t', 'web')]);
  (await g.next()).reject(new Error('disk is full'));
  await assert.rejects(write, /disk is full/);
  assert.equal(c.agentService('web'), undefined);
  assert.equal(c.check('n1', 't'), undefined);
  assert.equal(c.index, before);
  assert.deepEqual(events, []);
  // the TTL pass of a client that did not notice finds no check (it must not create one)
  await assert.rejects(c.updateCheck('n1', 't', 'passing', '', { announce: true }), {
    code: 'PHARE_ERR_NOT_FOUND',
  });

  // a deregistration whose commit fails leaves the service there, and its retry works
  const reg = c.registerService(svc('web'), [ttl('t', 'web')]);
  (await g.next()).resolve();
  await reg;
  const dereg = c.deregisterService('web');
  (await g.next()).reject(new Error('disk is full'));
  await assert.rejects(dereg, /disk is full/);
  assert.ok(c.agentService('web'));
  assert.ok(c.check('n1', 't'));
  const retry = c.deregisterService('web');
  (await g.next()).resolve();
  await retry;
  assert.equal(c.agentService('web'), undefined);
  await c.close();
});

test('writes queued together are built on each other, committed once, and fail together', async () => {
  const g = gatedStore();
  const c = await open(g.store);
  const before = c.index;
  // register then check on it in the same turn: the second is built on the first (not yet committed)
  const a = c.registerService(svc('api'), []);
  const b = c.registerCheck({ ...ttl('api-ttl', 'api'), status: 'passing' });
  const bad = c.deregisterService('nope');
  const commit = await g.next();
  await assert.rejects(bad, { code: 'PHARE_ERR_NOT_FOUND' });
  commit.reject(new Error('I/O error'));
  await assert.rejects(a, /I\/O error/);
  await assert.rejects(b, /I\/O error/);
  assert.equal(c.agentService('api'), undefined);
  assert.equal(c.check('n1', 'api-ttl'), undefined);
  assert.equal(c.index, before);

  const a2 = c.registerService(svc('api'), []);
  const b2 = c.registerCheck({ ...ttl('api-ttl', 'api'), status: 'passing' });
  const commit2 = await g.next();
  assert.equal(c.index, before);
  commit2.resolve();
  await Promise.all([a2, b2]);
  assert.equal(c.index, before + 2);
  assert.equal(c.check('n1', 'api-ttl')?.serviceName, 'api');
  assert.equal(c.agentService('api')?.modifyIndex, before + 1);
  await c.close();
});
