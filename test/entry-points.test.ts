/**
 * The public API is small and explicit: this test snapshots each entry point's runtime exports, so adding
 * or removing one is a deliberate change (update the list here and the docs). The checkout's sources are
 * read (the `phare-source` condition); test/package checks the built package. `phare` itself is
 * snapshotted in test/integration/sdk-api.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createConsulClient, registerService } from '../src/index.ts';
import { startTestAgent } from '../src/testing/index.ts';

const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as {
  exports: Record<string, { 'phare-source': string; default: string }>;
};

const EXPECTED: Record<string, string[]> = {
  './agent': ['FLAGS', 'resolveAgentConfig', 'startAgent'],
  './health': [
    'DEADLINE_HEADER',
    'LIFECYCLE_CHECK',
    'createGracefulShutdown',
    'createHealth',
    'deadlineSignal',
    'eventLoopDelayCheck',
    'expressHealth',
    'fastifyHealth',
    'healthListener',
    'honoHealth',
    'httpCheck',
    'httpStatusOf',
    'memoryCheck',
    'postgresCheck',
    'redisCheck',
    'remainingDeadline',
    'tcpCheck',
  ],
  './testing': ['startTestAgent'],
};

for (const [entry, names] of Object.entries(EXPECTED)) {
  test(`entry point phare${entry.slice(1)} exports exactly its documented names`, async () => {
    const target = pkg.exports[entry]?.['phare-source'];
    assert.ok(target, `package.json exports ${entry}`);
    const mod = (await import(join(import.meta.dirname, '..', target))) as Record<string, unknown>;
    assert.deepEqual(Object.keys(mod).sort(), [...names].sort());
  });
}

test('phare/config exports loadConfig and friends', async () => {
  const mod = (await import(
    join(import.meta.dirname, '..', pkg.exports['./config']?.['phare-source'] ?? '')
  )) as Record<string, unknown>;
  assert.equal(typeof mod['loadConfig'], 'function');
});

test('phare/testing: a test agent serves the SDK and stops with `await using`', async () => {
  let url: string;
  {
    await using agent = await startTestAgent({ dns: true });
    url = agent.url;
    assert.match(agent.address, /^127\.0\.0\.1:\d+$/);
    assert.match(agent.dns ?? '', /^127\.0\.0\.1:\d+$/);
    const registration = await registerService({
      name: 'users',
      port: 4100,
      address: '127.0.0.1',
      check: { ttlMs: 10_000 },
      consul: { address: agent.address },
    });
    const consul = createConsulClient({ address: agent.address });
    const services = await consul.agent.services();
    assert.ok(Object.values(services).some((s) => s.Service === 'users'));
    await registration.deregister();
  }
  await assert.rejects(fetch(`${url}/v1/status/leader`));
});
