/** The SDK's small shared pieces: the outage reporter with a fake clock, and loggers without repeated keys. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { outageReporter, sdkLogger } from './shared.ts';

function capture(base?: Record<string, unknown>) {
  const lines: string[] = [];
  const logger = pino({ level: 'debug', ...(base ? { base } : {}) }, { write: (s: string) => lines.push(s) });
  return { lines, logger };
}

test('outage reporter: one warning, then at most one summary a minute, one line on recovery', () => {
  let now = 0;
  const { lines, logger } = capture();
  const o = outageReporter(logger, 'registration', 60_000, () => now);
  for (let i = 0; i < 150; i++) {
    o.failure(new Error('ECONNREFUSED'));
    now += 1_000; // one try a second for 150 s
  }
  const msgs = lines.map((l) => JSON.parse(l) as { msg: string; tries?: number; downForMs?: number });
  assert.deepEqual(
    msgs.map((m) => m.msg),
    [
      'registration: agent unreachable; retrying in the background',
      'registration: agent still unreachable',
      'registration: agent still unreachable',
    ],
  );
  assert.equal(msgs[1]?.tries, 60);
  assert.equal(msgs[1]?.downForMs, 60_000);
  assert.equal(o.failures, 150);
  o.recovered();
  o.recovered();
  assert.equal(lines.length, 4);
  assert.match(lines[3] as string, /agent reachable again.*|"tries":150/);
  assert.equal(o.failures, 0);
});

test('sdkLogger binds only keys the parent does not have; a parent component turns ours into a prefix', () => {
  const { lines, logger } = capture({ service: 'api' });
  sdkLogger('registration', logger, { service: 'api' }).info('one');
  sdkLogger('discovery', logger.child({ component: 'app' })).info('two');
  const [a, b] = lines as [string, string];
  assert.equal(a.match(/"service"/g)?.length, 1);
  assert.match(a, /"component":"registration"/);
  assert.equal(b.match(/"component"/g)?.length, 1);
  assert.match(b, /"component":"app".*"msg":"discovery: two"/);
});
