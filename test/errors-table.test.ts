/** Keeps the error table, docs/errors.md and the exported types in step. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ERRORS, PhareError, phareError } from '../src/api/index.ts';

const doc = readFileSync(join(import.meta.dirname, '..', 'docs', 'errors.md'), 'utf8');

test('every code in the table is documented in docs/errors.md with its status', () => {
  for (const [code, { status }] of Object.entries(ERRORS)) {
    const row = doc.split('\n').find((l) => l.includes(`\`${code}\``));
    assert.ok(row, `${code} is missing from docs/errors.md`);
    assert.ok(row.includes(`| ${status} |`), `${code}: docs/errors.md should give status ${status}: ${row}`);
  }
});

test('docs/errors.md lists no code that the table lacks', () => {
  const documented = [...doc.matchAll(/`(PHARE_ERR_[A-Z_]+)`/g)].map((m) => m[1]);
  for (const code of documented) assert.ok(code && code in ERRORS, `${code} is documented but not in ERRORS`);
});

test('codes are unique, well formed, and the factory stamps code and status', () => {
  // An object literal silently keeps the last of two equal keys, so uniqueness is read off the source.
  const source = readFileSync(join(import.meta.dirname, '..', 'src', 'api', 'errors.ts'), 'utf8');
  const keys = [...source.matchAll(/^\s*(PHARE_ERR_[A-Z0-9_]+)\s*:/gm)].map((m) => m[1]);
  const repeated = keys.filter((k, i) => keys.indexOf(k) !== i);
  assert.deepEqual(repeated, [], 'codes defined twice in src/api/errors.ts');
  assert.equal(keys.length, Object.keys(ERRORS).length, 'every code of the table is read from the source');
  const rows = doc.split('\n').filter((l) => l.startsWith('|'));
  for (const code of Object.keys(ERRORS)) {
    assert.match(code, /^PHARE_ERR_[A-Z][A-Z_]*$/);
    const n = rows.filter((r) => r.includes(`\`${code}\``)).length;
    assert.equal(n, 1, `${code} has ${n} rows in docs/errors.md`);
  }
  const err = phareError('PHARE_ERR_NOT_FOUND', 'x: not here');
  assert.ok(err instanceof PhareError);
  assert.equal(err.code, 'PHARE_ERR_NOT_FOUND');
  assert.equal(err.status, 404);
  assert.equal(err.message, 'x: not here');
});
