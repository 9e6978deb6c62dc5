/** Registration lifecycle against a real agent: env defaults, TTL heartbeats, re-registration, shutdown. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { createConsulClient } from '../../src/client/api/index.ts';
import { registerService } from '../../src/client/registration/index.ts';
import { startAgentInProcess, waitFor } from '../helpers/agent.ts';

const logger = pino({ level: 'silent' });

test('env defaults, TTL heartbeats keep the check passing, deregister is idempotent', async () => {
  const agent = await startAgentInProcess();
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
  let agent = await startAgentInProcess();
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
    agent = await startAgentInProcess({ flags: { 'http-addr': `127.0.0.1:${port}` } });
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

/** A pino logger writing parsed lines to `lines` (and the raw text, to look for repeated keys). */
function capture(base: Record<string, unknown>) {
  const lines: { raw: string; obj: Record<string, unknown> }[] = [];
  const stream = {
    write(s: string) {
      for (const raw of s.split('\n').filter(Boolean)) lines.push({ raw, obj: JSON.parse(raw) });
    },
  };
  return { lines, logger: pino({ level: 'debug', base }, stream) };
}

/** Keys that occur more than once at the top level of a JSON log line. */
function repeatedKeys(raw: string): string[] {
  const keys = [...raw.matchAll(/[{,]"([^"]+)":/g)].map((m) => m[1] as string);
  return keys.filter((k, i) => keys.indexOf(k) !== i);
}

test('agent down at start: resolves at once, one warning, registers in the background, ready resolves', async () => {
  // A port nothing listens on (an agent started and stopped there), reused for the agent later.
  const probe = await startAgentInProcess();
  const port = new URL(probe.url).port;
  await probe.close();
  const { lines, logger: log } = capture({ service: 'api', component: 'app' });
  const started = Date.now();
  const reg = await registerService({
    name: 'api',
    port: 7400,
    consul: { address: `127.0.0.1:${port}` },
    check: { ttlMs: 5_000 },
    logger: log,
  });
  let agent: Awaited<ReturnType<typeof startAgentInProcess>> | undefined;
  try {
    assert.ok(Date.now() - started < 2_000, 'registerService did not wait for the agent');
    assert.equal(reg.registered, false);
    let readyAt = 0;
    void reg.ready.then(() => {
      readyAt = Date.now();
    });
    // Several background tries over ~2.5 s: still a single warning (summaries come at most every minute).
    await new Promise((r) => setTimeout(r, 2_500));
    const warnings = lines.filter((l) => (l.obj.level as number) >= 40);
    assert.equal(warnings.length, 1, JSON.stringify(warnings.map((l) => l.obj.msg)));
    assert.match(String(warnings[0]?.obj.msg), /agent unreachable; retrying in the background/);
    assert.equal(readyAt, 0);

    agent = await startAgentInProcess({ flags: { 'http-addr': `127.0.0.1:${port}` } });
    await reg.ready;
    assert.equal(reg.registered, true);
    const api = createConsulClient({ address: agent.url });
    assert.equal((await api.health.service('api', { passing: true })).value.length, 1);
    await api.close();
    for (const l of lines) assert.deepEqual(repeatedKeys(l.raw), [], l.raw);
    assert.ok(lines.some((l) => /agent reachable again/.test(String(l.obj.msg))));
  } finally {
    await reg.deregister();
    await agent?.close();
  }
});

test('a registration the agent refuses rejects at once; deregister before the agent came back is a no-op', async () => {
  const agent = await startAgentInProcess();
  try {
    await assert.rejects(
      registerService({
        name: 'bad',
        port: 7500,
        consul: { address: agent.url },
        check: { http: '/health', intervalMs: -5 },
        logger,
      }),
      (err: Error & { code?: string }) => err.code === 'PHARE_ERR_AGENT_RESPONSE',
    );
  } finally {
    await agent.close();
  }
  const pending = await registerService({
    name: 'gone',
    port: 7501,
    consul: { address: '127.0.0.1:1' },
    logger,
  });
  assert.equal(pending.registered, false);
  await pending.deregister();
  await assert.rejects(pending.ready, /deregistered before the agent answered/);
});
