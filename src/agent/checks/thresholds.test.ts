import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CheckStatus } from '../../api/index.ts';
import { StatusHandler } from './thresholds.ts';

/** Feeds statuses in order; returns what was reported after each ('-' = held back). */
function feed(h: StatusHandler, statuses: CheckStatus[]): string[] {
  return statuses.map((status) => h.observe({ status, output: status })?.status ?? '-');
}

test('without thresholds every result is reported', () => {
  const h = new StatusHandler({
    successBeforePassing: 0,
    failuresBeforeWarning: 0,
    failuresBeforeCritical: 0,
  });
  assert.deepEqual(feed(h, ['critical', 'passing', 'warning', 'critical']), [
    'critical',
    'passing',
    'warning',
    'critical',
  ]);
});

test('the first result is reported immediately: counters start at their thresholds', () => {
  const a = new StatusHandler({
    successBeforePassing: 3,
    failuresBeforeWarning: 2,
    failuresBeforeCritical: 3,
  });
  assert.deepEqual(feed(a, ['passing']), ['passing']);
  const b = new StatusHandler({
    successBeforePassing: 3,
    failuresBeforeWarning: 2,
    failuresBeforeCritical: 3,
  });
  assert.deepEqual(feed(b, ['critical']), ['critical']);
});

test('SuccessBeforePassing counts consecutive passing or warning results', () => {
  const h = new StatusHandler({
    successBeforePassing: 2,
    failuresBeforeWarning: 0,
    failuresBeforeCritical: 0,
  });
  assert.deepEqual(feed(h, ['passing', 'critical', 'passing', 'warning', 'passing', 'critical', 'warning']), [
    'passing',
    'critical',
    '-',
    'warning',
    'passing',
    'critical',
    '-',
  ]);
});

test('FailuresBeforeWarning reports warning before FailuresBeforeCritical reports critical', () => {
  const h = new StatusHandler({
    successBeforePassing: 0,
    failuresBeforeWarning: 1,
    failuresBeforeCritical: 3,
  });
  feed(h, ['passing']);
  assert.deepEqual(feed(h, ['critical', 'critical', 'critical', 'critical', 'passing', 'critical']), [
    'warning',
    'warning',
    'critical',
    'critical',
    'passing',
    'warning',
  ]);
  // the downgraded report keeps the probe's output
  const h2 = new StatusHandler({
    successBeforePassing: 0,
    failuresBeforeWarning: 1,
    failuresBeforeCritical: 3,
  });
  h2.observe({ status: 'passing', output: 'ok' });
  assert.deepEqual(h2.observe({ status: 'critical', output: 'refused' }), {
    status: 'warning',
    output: 'refused',
  });
});

test('failures below both thresholds are held back', () => {
  const h = new StatusHandler({
    successBeforePassing: 0,
    failuresBeforeWarning: 2,
    failuresBeforeCritical: 3,
  });
  feed(h, ['passing']);
  assert.deepEqual(feed(h, ['critical', 'critical', 'critical']), ['-', 'warning', 'critical']);
});

test('FailuresBeforeWarning 0 defaults to FailuresBeforeCritical, as in Consul', () => {
  const h = new StatusHandler({
    successBeforePassing: 0,
    failuresBeforeWarning: 0,
    failuresBeforeCritical: 2,
  });
  feed(h, ['passing']);
  assert.deepEqual(feed(h, ['critical', 'critical']), ['-', 'critical']);
});
