/**
 * Token expiry (Consul's ExpirationTime / ExpirationTTL) on fake time, on the memory and sqlite stores: an
 * expired token is `ACL not found` from its ExpirationTime on (the verified-secret map included), is left out of
 * reads, and is reaped from the store; the create checks answer Consul's texts.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../../../test/helpers/agent.ts';
import { FakeClock } from '../../../test/helpers/fake-clock.ts';
import { createMemoryStore, createSqliteStore, type Store } from '../store/index.ts';
import { Acl } from './acl.ts';

const settle = () => new Promise((r) => setTimeout(r, 20));

for (const kind of ['memory', 'sqlite'] as const) {
  test(`${kind}: an expired token is not found at once, left out of reads, and reaped from the store`, async () => {
    const dir = tempDir();
    const open = (): Store =>
      kind === 'memory' ? createMemoryStore() : createSqliteStore({ path: join(dir.path, 'phare.db') });
    const store = open();
    const clock = new FakeClock();
    const acl = await Acl.open({ store, enabled: true, defaultPolicy: 'deny', clock });
    try {
      const { token, secretId } = await acl.createToken({ description: 'ci', expirationTtlMs: 90_000 });
      assert.equal(token.expirationTime, new Date(clock.now() + 90_000).toISOString());
      const keep = await acl.createToken({ description: 'forever' });
      assert.equal(acl.resolve(secretId).accessorId, token.accessorId);
      clock.advance(89_999);
      assert.equal(acl.resolve(secretId).accessorId, token.accessorId, 'still valid (from the verified map)');
      clock.advance(1);
      await settle();
      assert.throws(() => acl.resolve(secretId), /ACL not found/);
      assert.throws(() => acl.tokenBySecret(secretId), /ACL not found/);
      assert.equal(acl.token(token.accessorId), undefined);
      assert.ok(!acl.tokens().some((t) => t.accessorId === token.accessorId));
      // reaped: the row is gone from the store; the other token stays
      const rows = (await store.load()).acl as { kind: string; accessorId?: string }[];
      assert.ok(!rows.some((r) => r.accessorId === token.accessorId), 'the expired token was reaped');
      assert.ok(rows.some((r) => r.accessorId === keep.token.accessorId));
      assert.equal(acl.resolve(keep.secretId).accessorId, keep.token.accessorId);
    } finally {
      await acl.close();
      await store.close();
      dir.remove();
    }
  });
}

test("expiry checks answer Consul's TokenSet texts; the expiry cannot change on update", async () => {
  const store = createMemoryStore();
  const clock = new FakeClock();
  const acl = await Acl.open({ store, enabled: true, clock });
  const at = (ms: number) => new Date(clock.now() + ms).toISOString();
  try {
    await assert.rejects(
      acl.createToken({ expirationTtlMs: 120_000, expirationTime: at(120_000) }),
      /: Token Expiration TTL and Expiration Time cannot both be set$/,
    );
    await assert.rejects(
      acl.createToken({ expirationTtlMs: -60_000 }),
      /Token Expiration TTL '-1m0s' should be > 0/,
    );
    await assert.rejects(
      acl.createToken({ expirationTime: at(-1000) }),
      /ExpirationTime cannot be before CreateTime/,
    );
    await assert.rejects(
      acl.createToken({ expirationTtlMs: 25 * 3_600_000 }),
      /ExpirationTime cannot be more than 24h0m0s in the future \(was 25h0m0s\)/,
    );
    await assert.rejects(
      acl.createToken({ expirationTtlMs: 30_000 }),
      /ExpirationTime cannot be less than 1m0s in the future \(was 30s\)/,
    );
    await assert.rejects(acl.createToken({ expirationTime: 'tomorrow' }), /is not an RFC 3339 time/);
    const { token } = await acl.createToken({ expirationTime: at(3_600_000) });
    await assert.rejects(
      acl.updateToken(token.accessorId, { expirationTime: at(7_200_000) }),
      new RegExp(`Cannot change expiration time of ${token.accessorId}`),
    );
    // the same expiry (or none given) is fine, and it is kept
    const same = await acl.updateToken(token.accessorId, {
      description: 'x',
      expirationTime: token.expirationTime as string,
    });
    assert.equal(same.expirationTime, token.expirationTime);
    const none = await acl.updateToken(token.accessorId, { description: 'y' });
    assert.equal(none.expirationTime, token.expirationTime);
  } finally {
    await acl.close();
    await store.close();
  }
});
