/** Registration lifecycle against a real agent: env defaults, TTL heartbeats, re-registration, shutdown. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { createConsulClient } from '../../src/client/api/index.ts';
import { gracefulShutdown, registerService } from '../../src/client/registration/index.ts';
import { startTestAgent, waitFor } from '../helpers/agent.ts';

const logger = pino({ level: 'silent' });

test('env defaults, TTL heartbeats keep the check passing, deregister is idempotent', async () => {
  const agent = await startTestAgent();
  const api = createConsulClient({ address: agent.url });
  try {
    const reg = await registerService({
      consul: { address: agent.url },
      logger,
      env: {
        SERVICE_NAME: 'orders',
        SERVICE_PORT: '7001',
        SERVICE_TAGS: 'v2, blue',
        SERVICE_ADDRESS: '127.0.0.1',
      },
      check: { ttlMs: 600 },
      deregisterCriticalAfter: '1m',
    });
    assert.match(reg.id, /^orders-.+-7001$/);
    const svc = await api.agent.service(reg.id);
    assert.deepEqual(svc?.Tags, ['v2', 'blue']);
    assert.equal(svc?.Address, '127.0.0.1');
    // Passing right away (first heartbeat at registration), and still passing after several TTLs.
    assert.equal((await api.health.service('orders', { passing: true })).value.length, 1);
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal((await api.health.service('orders', { passing: true })).value.length, 1);
    await Promise.all([reg.deregister(), reg.deregister()]);
    assert.equal((await api.health.service('orders')).value.length, 0);
  } finally {
    await api.close();
    await agent.close();
  }
});

test('re-registers when the agent forgets the service (HTTP-check mode and TTL mode)', async () => {
  let agent = await startTestAgent();
  const port = new URL(agent.url).port;
  const consul = { address: agent.url };
  const plain = await registerService({
    name: 'billing',
    port: 7100,
    consul,
    check: { http: '/health' },
    watchWaitMs: 1_000,
    logger,
  });
  const ttl = await registerService({ name: 'ledger', port: 7200, consul, check: { ttlMs: 900 }, logger });
  try {
    // Deregistered behind its back: the watch notices the 404 and registers again.
    const api = createConsulClient(consul);
    await api.agent.deregister(plain.id);
    await waitFor(async () => (await api.agent.service(plain.id)) !== undefined, 10_000, 'billing back');
    assert.equal(plain.reregistrations, 1);
    const back = await api.agent.checks();
    assert.equal(back[`service:${plain.id}`]?.Definition.HTTP, 'http://127.0.0.1:7100/health');
    await api.close();
    // A --dev agent restarted on the same port has forgotten everything.
    await agent.close();
    agent = await startTestAgent({ flags: { 'http-addr': `127.0.0.1:${port}` } });
    const api2 = createConsulClient(consul);
    await waitFor(
      async () => (await api2.agent.service(plain.id)) !== undefined,
      15_000,
      'billing after restart',
    );
    await waitFor(
      async () => (await api2.health.service('ledger', { passing: true })).value.length === 1,
      15_000,
      'ledger after restart',
    );
    assert.ok(ttl.reregistrations >= 1);
    await api2.close();
  } finally {
    await Promise.all([plain.deregister(), ttl.deregister()]);
    await agent.close();
  }
});

test('graceful shutdown: deregister, wait, close, exit once; a second signal forces exit', async () => {
  const agent = await startTestAgent();
  const api = createConsulClient({ address: agent.url });
  try {
    const reg = await registerService({ name: 'mailer', port: 7300, consul: { address: agent.url }, logger });
    const steps: string[] = [];
    const codes: number[] = [];
    const ctl = gracefulShutdown({
      deregister: async () => {
        await reg.deregister();
        steps.push(`deregistered:${(await api.health.service('mailer')).value.length}`);
      },
      drainDelayMs: 100,
      close: () => {
        steps.push('closed');
      },
      signals: ['SIGHUP'],
      exit: (c) => codes.push(c),
      logger,
    });
    process.emit('SIGHUP', 'SIGHUP');
    await Promise.all([ctl.shutdown(), ctl.shutdown()]);
    assert.deepEqual(steps, ['deregistered:0', 'closed']);
    assert.deepEqual(codes, [0]);
    ctl.dispose();

    const forced: number[] = [];
    const slow = gracefulShutdown({
      drainDelayMs: 300,
      signals: ['SIGHUP'],
      exit: (c) => forced.push(c),
      logger,
    });
    process.emit('SIGHUP', 'SIGHUP');
    process.emit('SIGHUP', 'SIGHUP');
    assert.deepEqual(forced, [1]);
    slow.dispose();
  } finally {
    await api.close();
    await agent.close();
  }
});
