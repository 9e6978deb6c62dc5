import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { FakeClock } from '../../../test/helpers/fake-clock.ts';
import { Catalog } from '../catalog/index.ts';
import { createSessions } from '../sessions/index.ts';
import { createMemoryStore, createSqliteStore, type Store, type StoreOp } from '../store/index.ts';
import { kvCas, kvDeleteTree, kvLock, kvSet } from './index.ts';
import { KvState } from './state.ts';

/** A real memory store whose writes the test holds back or fails (a misbehaving backend). */
function gatedStore() {
  const inner = createMemoryStore();
  const gates: { ops: readonly StoreOp[]; open: () => void; fail: (e: Error) => void }[] = [];
  const store: Store = {
    kind: 'gated',
    load: () => inner.load(),
    write: (ops, index) =>
      new Promise<void>((resolve, reject) => {
        gates.push({
          ops,
          open: () => inner.write(ops, index).then(resolve, reject),
          fail: (e) => reject(e),
        });
      }),
    close: () => inner.close(),
  };
  return { store, inner, gates };
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(cond(), 'condition never held');
};

const w = (key: string, value: string | null = null) => ({ key, value });

test('kv: a write is visible, and its index handed out, only once the store committed it', async () => {
  const { store, gates } = gatedStore();
  const kv = await KvState.open({ store });
  const before = kv.index;
  const p = kv.write((tx) => kvSet(tx, w('a', 'eA==')));
  await until(() => gates.length === 1);
  assert.equal(kv.get('a'), undefined, 'not visible before the commit');
  assert.equal(kv.index, before, 'no index handed out before the commit');
  gates[0]?.open();
  assert.equal(await p, true);
  assert.equal(kv.get('a')?.value, 'eA==');
  assert.equal(kv.index, before + 1);
  assert.equal(kv.get('a')?.modifyIndex, before + 1);
});

test('kv: a failed commit changes nothing, wakes no watcher, and the next write still works', async () => {
  const { store, gates, inner } = gatedStore();
  const kv = await KvState.open({ store });
  const start = kv.index;
  let woke = false;
  const parked = kv.waitForChange(
    { key: 'a', prefix: false },
    kv.indexOf({ key: 'a', prefix: false }),
    60_000,
  );
  parked.then(() => {
    woke = true;
  });
  const p = kv.write((tx) => kvSet(tx, w('a', 'eA==')));
  const q = kv.write((tx) => kvCas(tx, w('a', 'eQ=='), 0)); // same batch: sees 'a' as present
  await until(() => gates.length === 1);
  gates[0]?.fail(new Error('disk full'));
  await assert.rejects(p, /disk full/);
  await assert.rejects(q, /disk full/);
  assert.equal(kv.get('a'), undefined);
  assert.equal(kv.index, start);
  assert.deepEqual((await inner.load()).kv, []);
  await new Promise((r) => setImmediate(r));
  assert.equal(woke, false, 'a watcher is not woken by a write that never happened');
  // the failed batch left no trace: cas=0 succeeds now
  const r = kv.write((tx) => kvCas(tx, w('a', 'eg=='), 0));
  await until(() => gates.length === 2);
  gates[1]?.open();
  assert.equal(await r, true);
  assert.equal(kv.get('a')?.value, 'eg==');
  await parked;
  assert.equal(woke, true);
});

test('kv: writes queued behind a commit are evaluated in order and committed as one batch', async () => {
  const { store, gates } = gatedStore();
  const kv = await KvState.open({ store });
  const first = kv.write((tx) => kvSet(tx, w('k', 'MQ==')));
  await until(() => gates.length === 1);
  // two CAS racers on the same index: exactly one wins
  const idx = kv.index + 1;
  gates[0]?.open();
  await first;
  assert.equal(kv.get('k')?.modifyIndex, idx);
  const a = kv.write((tx) => kvCas(tx, w('k', 'YQ=='), idx));
  const b = kv.write((tx) => kvCas(tx, w('k', 'Yg=='), idx));
  await until(() => gates.length === 2);
  assert.equal(gates.length, 2, 'one commit for both');
  gates[1]?.open();
  assert.deepEqual([await a, await b], [true, false]);
  assert.equal(kv.get('k')?.value, 'YQ==');
});

test('kv: blocking reads wake only on changes under their key or prefix; deletions count (tombstones)', async () => {
  const kv = await KvState.open({ store: createMemoryStore() });
  await kv.write((tx) => {
    kvSet(tx, w('svc/pg/leader', 'bjE='));
    kvSet(tx, w('svc/pg/members/n1'));
    kvSet(tx, w('other'));
  });
  const leader = { key: 'svc/pg/leader', prefix: false };
  const members = { key: 'svc/pg/members/', prefix: true };
  let leaderWoke = false;
  let membersWoke = false;
  const pl = kv.waitForChange(leader, kv.indexOf(leader), 60_000).then(() => {
    leaderWoke = true;
  });
  const pm = kv.waitForChange(members, kv.indexOf(members), 60_000).then(() => {
    membersWoke = true;
  });
  await kv.write((tx) => kvSet(tx, w('other', 'Mg==')));
  await kv.write((tx) => kvSet(tx, w('svc/pg/leaderboard')));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual([leaderWoke, membersWoke], [false, false]);
  const before = kv.indexOf(members);
  await kv.write((tx) => kvDeleteTree(tx, 'svc/pg/members/'));
  await pm;
  assert.ok(kv.indexOf(members) > before, 'a deletion under the prefix moves its index');
  assert.equal(leaderWoke, false);
  await kv.write((tx) => tx.del('svc/pg/leader'));
  await pl;
  assert.ok(kv.indexOf(leader) > 0);
});

test('sessions: TTL lapse (at 2×TTL) deletes the locked key, blocks it for lock-delay, renew pushes it back', async () => {
  const clock = new FakeClock();
  const store = createMemoryStore();
  const catalog = await Catalog.open({
    store,
    node: { name: 'n1', id: 'id', address: '127.0.0.1' },
    datacenter: 'dc1',
    clock,
  });
  const kv = await KvState.open({ store, clock });
  const sessions = createSessions({ state: kv, catalog, logger: pino({ level: 'silent' }) });
  sessions.start();
  const sid = await sessions.create({
    name: 'pg-n1',
    nodeChecks: [],
    serviceChecks: [],
    lockDelayMs: 5_000,
    behavior: 'delete',
    ttlMs: 15_000,
    ttl: '15s',
  });
  assert.equal(await kv.write((tx) => kvLock(tx, w('leader', 'bjE='), sid)), true);
  assert.equal(kv.get('leader')?.session, sid);
  clock.advance(25_000);
  assert.ok(await sessions.renew(sid), 'renewed before 2×TTL');
  await clock.tick(29_000, 1_000);
  assert.ok(kv.session(sid), 'still alive 29 s after the renew');
  await clock.tick(2_000, 1_000);
  await until(() => kv.session(sid) === undefined);
  assert.equal(kv.get('leader'), undefined, 'Behavior delete removed the key');
  assert.ok(kv.lockDelayUntil('leader') > clock.now(), 'lock-delay blocks the key');
  assert.equal(await sessions.renew(sid), undefined);
  sessions.stop();
  await kv.close();
  await catalog.close();
});

test('sessions: a linked check turning critical releases the lock (Behavior release)', async () => {
  const store = createMemoryStore();
  const catalog = await Catalog.open({
    store,
    node: { name: 'n1', id: 'id', address: '127.0.0.1' },
    datacenter: 'dc1',
  });
  const kv = await KvState.open({ store });
  const sessions = createSessions({ state: kv, catalog, logger: pino({ level: 'silent' }) });
  sessions.start();
  await catalog.registerCheck({
    checkId: 'db',
    name: 'db',
    notes: '',
    serviceId: '',
    status: 'passing',
    def: {
      type: 'ttl',
      successBeforePassing: 0,
      failuresBeforeWarning: 0,
      failuresBeforeCritical: 0,
      outputMaxSize: 4096,
    },
  } as Parameters<Catalog['registerCheck']>[0]);
  const input = {
    name: 's',
    nodeChecks: ['serfHealth', 'db'],
    serviceChecks: [],
    lockDelayMs: 0,
    behavior: 'release' as const,
    ttlMs: 0,
    ttl: '',
  };
  const sid = await sessions.create(input);
  await kv.write((tx) => kvLock(tx, w('lock', 'eA=='), sid));
  await catalog.updateCheck('n1', 'db', 'critical', 'down');
  await until(() => kv.session(sid) === undefined);
  assert.equal(kv.get('lock')?.session, '', 'released, not deleted');
  assert.equal(kv.get('lock')?.value, 'eA==');
  await assert.rejects(sessions.create(input), /Check 'db' is in critical state/);
  await assert.rejects(
    sessions.create({ ...input, nodeChecks: ['nope'] }),
    /Missing check 'nope' registration/,
  );
  sessions.stop();
  await kv.close();
  await catalog.close();
});

test('kv: entries and sessions survive a restart on sqlite, and the catalog opens next to them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'phare-kv-'));
  try {
    const path = join(dir, 'phare.db');
    const first = createSqliteStore({ path });
    let kv = await KvState.open({ store: first });
    await kv.write((tx) => {
      kvSet(tx, { key: 'bin', value: Buffer.from([0, 255, 10]).toString('base64'), flags: '42' });
      tx.putSession({
        id: 's1',
        name: '',
        node: 'n1',
        nodeChecks: [],
        serviceChecks: [],
        lockDelayMs: 0,
        behavior: 'release',
        ttlMs: 0,
        ttl: '',
        createIndex: tx.index,
        modifyIndex: tx.index,
      });
    });
    const idx = kv.index;
    await kv.close();
    await first.close();
    const second = createSqliteStore({ path });
    kv = await KvState.open({ store: second });
    assert.deepEqual(Buffer.from(kv.get('bin')?.value ?? '', 'base64'), Buffer.from([0, 255, 10]));
    assert.equal(kv.get('bin')?.flags, '42');
    assert.equal(kv.session('s1')?.node, 'n1');
    assert.ok(kv.index >= idx, 'the index never goes backwards');
    // the catalog opens the same store: it checks its own rows, not the KV tables'
    const catalog = await Catalog.open({
      store: second,
      node: { name: 'n1', id: 'id', address: '127.0.0.1' },
      datacenter: 'dc1',
    });
    await catalog.close();
    await kv.close();
    await second.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
