/**
 * The one conformance suite every Store backend passes (docs/architecture.md: strategies share one suite).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Store } from '../../src/agent/store/index.ts';

/** A backend under test: `open()` returns a store; `reopen()` (persistent backends) opens the same data again. */
export interface StoreFactory {
  open(): Store;
  /** Present for persistent backends: a fresh store over the same data. */
  reopen?: () => Store;
  cleanup?: () => void;
  /**
   * A shared store (etcd): the index is the store's revision, not the one passed to `write()`, so the
   * index checks become "starts empty, moves forward with every write".
   */
  revisionIndex?: boolean;
}

/**
 * Runs the conformance suite for one backend.
 *
 * @example
 * storeConformance('memory', () => ({ open: () => createMemoryStore() }));
 */
export function storeConformance(name: string, make: () => StoreFactory): void {
  const withStore = async (fn: (s: Store, f: StoreFactory) => Promise<void>) => {
    const f = make();
    const s = f.open();
    try {
      await fn(s, f);
    } finally {
      await s.close().catch(() => {});
      f.cleanup?.();
    }
  };

  test(`${name}: a new store is empty with index 0`, () =>
    withStore(async (s, f) => {
      const snap = await s.load();
      if (f.revisionIndex) {
        assert.deepEqual(
          { ...snap, index: 0 },
          { index: 0, nodes: [], services: [], checks: [], kv: [], sessions: [], acl: [] },
        );
        assert.ok(snap.index >= 0);
      } else
        assert.deepEqual(snap, {
          index: 0,
          nodes: [],
          services: [],
          checks: [],
          kv: [],
          sessions: [],
          acl: [],
        });
    }));

  test(`${name}: puts, overwrites and deletes are visible to load()`, () =>
    withStore(async (s, f) => {
      await s.write(
        [
          { type: 'put', table: 'services', key: 'n1\u0000a', value: { id: 'a', v: 1 } },
          { type: 'put', table: 'services', key: 'n1\u0000b', value: { id: 'b' } },
          { type: 'put', table: 'checks', key: 'n1\u0000c', value: { checkId: 'c', status: 'passing' } },
          { type: 'put', table: 'nodes', key: 'n2', value: { node: 'n2' } },
        ],
        3,
      );
      await s.write(
        [
          { type: 'put', table: 'services', key: 'n1\u0000a', value: { id: 'a', v: 2 } },
          { type: 'del', table: 'services', key: 'n1\u0000b' },
        ],
        4,
      );
      const snap = await s.load();
      if (!f.revisionIndex) assert.equal(snap.index, 4);
      assert.deepEqual(snap.services, [{ id: 'a', v: 2 }]);
      assert.deepEqual(snap.checks, [{ checkId: 'c', status: 'passing' }]);
      assert.deepEqual(snap.nodes, [{ node: 'n2' }]);
    }));

  test(`${name}: KV entries and sessions are tables like the catalog's (keys with '/', binary values)`, () =>
    withStore(async (s, f) => {
      // KV keys carry '/' and any byte; values are base64 in the record, so every backend stores JSON.
      const entry = (key: string, value: string | null) => ({ key, value, flags: '0', session: '' });
      await s.write(
        [
          { type: 'put', table: 'kv', key: 'service/pg/leader', value: entry('service/pg/leader', 'bjE=') },
          { type: 'put', table: 'kv', key: 'a b/%2F/ü', value: entry('a b/%2F/ü', null) },
          { type: 'put', table: 'kv', key: 'gone', value: entry('gone', '') },
          { type: 'put', table: 'sessions', key: 's-1', value: { id: 's-1', behavior: 'delete' } },
        ],
        5,
      );
      await s.write([{ type: 'del', table: 'kv', key: 'gone' }], 6);
      const snap = await s.load();
      if (!f.revisionIndex) assert.equal(snap.index, 6);
      const keys = (snap.kv as { key: string }[]).map((e) => e.key).sort();
      assert.deepEqual(keys, ['a b/%2F/ü', 'service/pg/leader']);
      assert.deepEqual(snap.sessions, [{ id: 's-1', behavior: 'delete' }]);
      assert.deepEqual([snap.nodes, snap.services, snap.checks], [[], [], []]);
    }));

  test(`${name}: ACL tokens, policies and roles are a table like the others, on every backend`, () =>
    withStore(async (s, f) => {
      // Keys hold ':' and the values the ACL module stores (src/agent/acl): only secret hashes, never secrets.
      const token = {
        kind: 'token',
        accessorId: 'a-1',
        secretHash: 'ab'.repeat(32),
        policies: ['p-1'],
        roles: ['r-1'],
      };
      const policy = { kind: 'policy', id: 'p-1', name: 'web', rules: 'service "web" { policy = "write" }' };
      const role = {
        kind: 'role',
        id: 'r-1',
        name: 'deployer',
        policies: ['p-1'],
        serviceIdentities: [{ ServiceName: 'api' }],
        nodeIdentities: [],
      };
      await s.write(
        [
          { type: 'put', table: 'acl', key: 'token:a-1', value: token },
          { type: 'put', table: 'acl', key: 'policy:p-1', value: policy },
          { type: 'put', table: 'acl', key: 'role:r-1', value: role },
          { type: 'put', table: 'acl', key: 'token:gone', value: { ...token, accessorId: 'gone' } },
        ],
        7,
      );
      await s.write([{ type: 'del', table: 'acl', key: 'token:gone' }], 8);
      const snap = await s.load();
      if (!f.revisionIndex) assert.equal(snap.index, 8);
      const byKind = (snap.acl as { kind: string }[]).sort((a, b) => a.kind.localeCompare(b.kind));
      assert.deepEqual(byKind, [policy, role, token]);
      assert.deepEqual([snap.nodes, snap.services, snap.checks], [[], [], []]);
    }));

  test(`${name}: deleting a missing key is not an error`, () =>
    withStore(async (s) => {
      await s.write([{ type: 'del', table: 'checks', key: 'nope' }], 1);
      assert.deepEqual((await s.load()).checks, []);
    }));

  test(`${name}: the index never goes backwards`, () =>
    withStore(async (s, f) => {
      if (f.revisionIndex) {
        const a = (await s.load()).index;
        await s.write([{ type: 'put', table: 'nodes', key: 'n', value: {} }], 1);
        const b = (await s.load()).index;
        await s.write([{ type: 'put', table: 'nodes', key: 'n', value: { v: 2 } }], 1);
        const c = (await s.load()).index;
        assert.ok(a < b && b < c, `revisions ${a} < ${b} < ${c}`);
        return;
      }
      await s.write([], 10);
      await s.write([], 7);
      assert.equal((await s.load()).index, 10);
    }));

  test(`${name}: many concurrent writes all land (group commit) and keep their order per key`, () =>
    withStore(async (s, f) => {
      const writes = [];
      for (let i = 0; i < 500; i++) {
        writes.push(s.write([{ type: 'put', table: 'services', key: `k${i % 50}`, value: { i } }], i + 1));
      }
      await Promise.all(writes);
      const snap = await s.load();
      if (!f.revisionIndex) assert.equal(snap.index, 500);
      assert.equal(snap.services.length, 50);
      // the last write to each key wins
      const values = (snap.services as { i: number }[]).map((v) => v.i).sort((a, b) => a - b);
      assert.deepEqual(
        values,
        Array.from({ length: 50 }, (_, j) => 450 + j),
      );
    }));

  test(`${name}: stored values are copies, not live references`, () =>
    withStore(async (s) => {
      const value = { id: 'a', tags: ['x'] };
      await s.write([{ type: 'put', table: 'services', key: 'a', value }], 1);
      value.tags.push('mutated');
      assert.deepEqual((await s.load()).services, [{ id: 'a', tags: ['x'] }]);
    }));

  test(`${name}: writes after close are rejected with PHARE_ERR_STORE_CLOSED`, () =>
    withStore(async (s) => {
      await s.close();
      await assert.rejects(s.write([{ type: 'put', table: 'nodes', key: 'x', value: {} }], 1), {
        code: 'PHARE_ERR_STORE_CLOSED',
      });
    }));

  test(`${name}: close() flushes writes that were still queued`, () =>
    withStore(async (s, f) => {
      const p = s.write([{ type: 'put', table: 'nodes', key: 'late', value: { node: 'late' } }], 2);
      await s.close();
      await p;
      if (f.reopen) {
        const again = f.reopen();
        try {
          assert.deepEqual((await again.load()).nodes, [{ node: 'late' }]);
        } finally {
          await again.close();
        }
      }
    }));

  test(`${name}: acknowledged writes survive reopening (persistent backends)`, async (t) => {
    const f = make();
    if (!f.reopen) {
      t.skip('in-memory backend: nothing survives the process by design');
      f.cleanup?.();
      return;
    }
    const s = f.open();
    await s.write(
      [{ type: 'put', table: 'checks', key: 'c1', value: { status: 'passing', output: 'ok' } }],
      9,
    );
    await s.close();
    const again = f.reopen();
    try {
      const snap = await again.load();
      if (!f.revisionIndex) assert.equal(snap.index, 9);
      assert.deepEqual(snap.checks, [{ status: 'passing', output: 'ok' }]);
    } finally {
      await again.close();
      f.cleanup?.();
    }
  });
}
