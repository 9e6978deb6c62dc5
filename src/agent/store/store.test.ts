import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { storeConformance } from '../../../test/conformance/store.conformance.ts';
import { createMemoryStore, createSqliteStore } from './index.ts';

storeConformance('memory', () => ({ open: () => createMemoryStore() }));

storeConformance('sqlite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'phare-store-'));
  const path = join(dir, 'sub', 'phare.db');
  return {
    open: () => createSqliteStore({ path }),
    reopen: () => createSqliteStore({ path }),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
});

test('sqlite: an unopenable database fails with PHARE_ERR_STORE naming the path', () => {
  // a path through a regular file fails even for root
  assert.throws(
    () => createSqliteStore({ path: join('/dev/null', 'x', 'phare.db') }),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'PHARE_ERR_STORE');
      assert.match(err.message, /\/dev\/null\/x\/phare\.db/);
      return true;
    },
  );
});
