import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRateLimiter } from './rate-limit.ts';

test('a bucket of answers per address, refilled over time; past it slip, drop, slip, drop', () => {
  let t = 0;
  const rrl = createRateLimiter({ perSecond: 10, burst: 3, now: () => t });
  assert.deepEqual(
    Array.from({ length: 7 }, () => rrl.take('10.0.0.1')),
    ['answer', 'answer', 'answer', 'slip', 'drop', 'slip', 'drop'],
  );
  assert.equal(rrl.take('10.0.0.2'), 'answer', 'another address is not affected');
  t += 100; // one token back at 10/s
  assert.equal(rrl.take('10.0.0.1'), 'answer');
  assert.equal(rrl.take('10.0.0.1'), 'slip');
  t += 10_000;
  assert.deepEqual(
    Array.from({ length: 4 }, () => rrl.take('10.0.0.1')),
    ['answer', 'answer', 'answer', 'slip'],
    'refilled to the burst, not beyond',
  );
});

test('a flood of source addresses cannot grow the table without bound', () => {
  let t = 0;
  const rrl = createRateLimiter({ perSecond: 1, maxClients: 100, now: () => t });
  for (let i = 0; i < 10_000; i++) rrl.take(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
  assert.ok(rrl.size() <= 100, `${rrl.size()}`);
  t += 5000;
  rrl.take('192.0.2.1');
  assert.ok(rrl.size() <= 100);
});
