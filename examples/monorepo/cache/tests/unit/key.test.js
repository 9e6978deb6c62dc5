import assert from 'node:assert/strict';
import { test } from 'node:test';
import { noteKey } from '../../src/cache.js';

test('note keys are namespaced and ids checked', () => {
  assert.equal(noteKey(7), 'notes:7');
  assert.throws(() => noteKey(0), /id/);
});
