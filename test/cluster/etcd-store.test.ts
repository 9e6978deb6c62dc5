/**
 * The etcd store against a real single-member etcd: the shared store conformance suite (the same one memory and
 * sqlite pass), then what only a shared store does: commit revisions, the prefix watch, compaction, leases.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { createEtcdStore, type EtcdStore, type StoreEvent } from '../../src/agent/store/index.ts';
import { storeConformance } from '../conformance/store.conformance.ts';
import { ETCD_SKIP, startEtcdCluster } from '../helpers/etcd.ts';

if (ETCD_SKIP && process.env['CI'] !== 'true') {
  test('etcd store', { skip: ETCD_SKIP }, () => {});
} else {
  const etcd = await startEtcdCluster({ size: 1 });
  after(() => etcd.close());
  let n = 0;
  const fresh = (prefix = `/t${++n}`) =>
    createEtcdStore({ endpoints: etcd.endpoints, prefix, probeIntervalMs: 200 });

  storeConformance('etcd', () => {
    const prefix = `/conf${++n}`;
    return { open: () => fresh(prefix), reopen: () => fresh(prefix), revisionIndex: true };
  });

  const collect = (s: EtcdStore, from: number) => {
    const events: StoreEvent[] = [];
    const waiters: (() => void)[] = [];
    const w = s.watch(from, (e) => {
      events.push(e);
      for (const f of waiters.splice(0)) f();
    });
    const until = async (pred: () => boolean, ms = 5000) => {
      const deadline = Date.now() + ms;
      while (!pred()) {
        if (Date.now() > deadline) throw new Error(`watch: timed out; got ${JSON.stringify(events)}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 50);
        });
      }
    };
    return { w, events, until, changes: () => events.flatMap((e) => e.changes) };
  };

  test('etcd: a commit is one revision; the watch delivers it as one batch in revision order', async () => {
    const s = fresh();
    try {
      const { index } = await s.loadRows();
      const c = collect(s, index);
      const r1 = await s.commit([
        { type: 'put', table: 'services', key: 'n1\u0000web', value: { id: 'web' } },
        { type: 'put', table: 'checks', key: 'n1\u0000service:web', value: { status: 'passing' } },
      ]);
      const r2 = await s.commit([{ type: 'del', table: 'checks', key: 'n1\u0000service:web' }]);
      assert.ok(r2 > r1 && r1 > index);
      await c.until(() => c.changes().length >= 3);
      const batches = c.events.filter((e) => e.changes.length > 0);
      assert.deepEqual(
        batches.map((b) => [b.index, b.changes.map((x) => `${x.type}:${x.table}:${x.key}`)]),
        [
          [r1, ['put:services:n1\u0000web', 'put:checks:n1\u0000service:web']],
          [r2, ['del:checks:n1\u0000service:web']],
        ],
      );
      const put = batches[0]?.changes[0];
      assert.ok(put?.type === 'put');
      assert.deepEqual(put.value, { id: 'web' });
      assert.equal(put.modifyIndex, r1);
      assert.equal(s.keyOf('services', 'n1\u0000web'), `/t${n}/v1/services/n1/web`);
      await c.w.close();
    } finally {
      await s.close();
    }
  });

  test('etcd: keys with "/" and "%" round-trip; another prefix is never seen', async () => {
    const s = fresh();
    const other = fresh(`/t${n}x`);
    try {
      await other.commit([{ type: 'put', table: 'nodes', key: 'x', value: {} }]);
      await s.commit([{ type: 'put', table: 'services', key: 'a/b%c\u0000d/e', value: { ok: 1 } }]);
      const { rows } = await s.loadRows();
      assert.deepEqual(
        rows.map((r) => [r.table, r.key]),
        [['services', 'a/b%c\u0000d/e']],
      );
    } finally {
      await s.close();
      await other.close();
    }
  });

  test('etcd: after compaction past the watch revision, the re-list emits only the real changes', async () => {
    const s = fresh();
    const writer = fresh(`/t${n}`);
    try {
      await s.commit([
        { type: 'put', table: 'services', key: 'keep', value: { v: 1 } },
        { type: 'put', table: 'services', key: 'change', value: { v: 1 } },
        { type: 'put', table: 'services', key: 'gone', value: { v: 1 } },
      ]);
      const { index, rows } = await s.loadRows();
      const c = collect(s, index);
      c.w.prime(rows);
      await c.until(() => c.w.index >= index);
      // Stop the watch's stream from seeing the writes: close it, write, compact, and resume a new watch at
      // the old revision — the same position a watch has after a long disconnection.
      await c.w.close();
      await writer.commit([{ type: 'put', table: 'services', key: 'change', value: { v: 2 } }]);
      await writer.commit([{ type: 'del', table: 'services', key: 'gone' }]);
      const rev = await writer.commit([{ type: 'put', table: 'services', key: 'new', value: { v: 1 } }]);
      await etcd.ctl('compact', String(rev));
      const c2 = collect(s, index);
      c2.w.prime(rows);
      await c2.until(() => c2.changes().length >= 3);
      const got = c2
        .changes()
        .map((x) => `${x.type}:${x.key}`)
        .sort();
      assert.deepEqual(got, ['del:gone', 'put:change', 'put:new']);
      // and the watch goes on after the re-list
      const r = await writer.commit([{ type: 'put', table: 'services', key: 'later', value: {} }]);
      await c2.until(() => c2.changes().some((x) => x.key === 'later'));
      assert.equal(c2.changes().find((x) => x.key === 'later')?.modifyIndex, r);
      await c2.w.close();
    } finally {
      await s.close();
      await writer.close();
    }
  });

  test('etcd: a leased key disappears when its lease is not renewed; the watch reports the deletion', async () => {
    const s = fresh();
    try {
      const { index } = await s.loadRows();
      const c = collect(s, index);
      const lease = await s.grantLease(1, () => {});
      await s.commit([{ type: 'put', table: 'members', key: 'n1', value: { node: 'n1' }, lease: lease.id }]);
      await c.until(() => c.changes().some((x) => x.type === 'put' && x.key === 'n1'));
      const put = c.changes().find((x) => x.type === 'put');
      assert.ok(put?.type === 'put' && put.lease === lease.id);
      // kept alive on one stream: still there after 2 TTLs
      await new Promise((r) => setTimeout(r, 2200));
      assert.ok(!c.changes().some((x) => x.type === 'del'));
      lease.release(); // stop renewing, as a killed agent does
      const t0 = Date.now();
      await c.until(() => c.changes().some((x) => x.type === 'del' && x.key === 'n1'), 6000);
      assert.ok(Date.now() - t0 < 4000, `expired after ${Date.now() - t0} ms`);
      await c.w.close();
    } finally {
      await s.close();
    }
  });

  test('etcd: a pause of the agent itself (past its probe deadline and the leader hold) is no lost leader: the next write commits', async () => {
    const s = fresh();
    try {
      await s.commit([{ type: 'put', table: 'nodes', key: 'p', value: {} }]);
      // a probe on the wire, then the event loop held 2.5 s (a long GC, a stopped VM): its deadline lapses
      // before its answer is read, and the last contact is older than the 2 s leader hold
      const inFlight = s.probe();
      const until = Date.now() + 2500;
      while (Date.now() < until) {
        // busy: nothing of this process runs
      }
      await inFlight;
      const rev = await s.commit([{ type: 'put', table: 'nodes', key: 'p', value: { after: 'pause' } }]);
      assert.ok(rev > 0);
      assert.equal(s.health().knownLeader, true);
    } finally {
      await s.close();
    }
  });

  test('etcd: bad options name the field', () => {
    assert.throws(() => createEtcdStore({ endpoints: [] }), /etcd\.endpoints/);
  });
}
