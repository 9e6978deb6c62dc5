import assert from 'node:assert/strict';
import { test } from 'node:test';
import { storeKey } from './keys.ts';

test('store keys are unambiguous: different (node, id) pairs never share a key', () => {
  const pairs: [string, string][] = [
    ['n1\u0000x', 'y'],
    ['n1', 'x\u0000y'],
    ['a/b', 'c'],
    ['a', 'b/c'],
    ['a%2Fb', 'c'],
    ['a%', '2Fb'],
    ['a', '%2Fb'],
    ['', 'a/b'],
    ['a/', 'b'],
  ];
  const keys = pairs.map(([n, id]) => storeKey(n, id));
  assert.equal(new Set(keys).size, pairs.length, keys.join(' | '));
  assert.equal(storeKey('n1', 'web-1'), 'n1/web-1');
  assert.equal(storeKey('n1', 'a/b%c'), 'n1/a%2Fb%25c');
});
