import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validTitle } from '../../src/notes.js';

test('a title is trimmed and must not be empty', () => {
  assert.equal(validTitle('  groceries '), 'groceries');
  assert.throws(() => validTitle('   '), /title/);
});
