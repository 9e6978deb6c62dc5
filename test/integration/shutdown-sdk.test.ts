/**
 * Issue 5's acceptance test: graceful shutdown with the registry, end to end.
 *
 * Two real service processes register with a real agent through the SDK (`registerService`, HTTP check on
 * /health/ready) and shut down with the health kit (`createGracefulShutdown`, deregistration as the
 * beforeShutdown hook). An SDK service client with retries loads them by name through the agent. One
 * instance gets SIGTERM mid-load. Expected: zero failed requests; the agent stops listing the instance
 * before the instance stops accepting connections (observed from outside: the agent's answers vs. TCP
 * connects to the instance); the instance exits 0; the other instance takes the traffic.
 *
 * The service is this same file run with PHARE_SHUTDOWN_SDK_FIXTURE=1 (see `runFixture`).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { createGracefulShutdown, createHealth } from '../../src/health/index.ts';
import { createDiscovery, createServiceClient, type Registration, registerService } from '../../src/index.ts';
import { startAgentInProcess, waitFor } from '../helpers/agent.ts';

const FIXTURE_ENV = 'PHARE_SHUTDOWN_SDK_FIXTURE';
const SERVICE = 'shutdown-sdk';
const DRAIN_DELAY_MS = 1500;
const WORK_MS = 10;

type FixtureMessage = { type: 'ready'; port: number; id: string };

/** The service under test: a plain node:http service wired the way docs/health.md tells users to. */
async function runFixture(): Promise<void> {
  const silent = pino({ level: 'silent' });
  const health = createHealth({ logger: silent, checks: { self: async () => {} } });
  let id = '';
  const server = createServer((req, res) => {
    if (health.handle(req, res)) return;
    // A little work per request, so SIGTERM lands with requests in flight.
    setTimeout(() => res.end(id), WORK_MS);
  });
  let registration: Registration | undefined;
  createGracefulShutdown({
    server,
    health,
    drainDelayMs: DRAIN_DELAY_MS,
    timeoutMs: 15_000,
    logger: silent,
    beforeShutdown: () => registration?.deregister(),
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const port = (server.address() as AddressInfo).port;
  registration = await registerService({
    name: SERVICE,
    id: `${SERVICE}-${port}`,
    port,
    address: '127.0.0.1',
    check: { http: '/health/ready', intervalMs: 200, timeoutMs: 1000 },
    logger: silent,
  });
  id = registration.id;
  health.markReady();
  process.send?.({ type: 'ready', port, id } satisfies FixtureMessage);
}

if (process.env[FIXTURE_ENV] === '1') {
  await runFixture();
} else {
  registerTests();
}

function registerTests(): void {
  test('SIGTERM mid-load: zero failed requests, deregistered before it stops accepting, exit 0', {
    timeout: 60_000,
  }, async () => {
    const silent = pino({ level: 'silent' });
    const agent = await startAgentInProcess();
    const instances: { child: ChildProcess; port: number; id: string; exit: Promise<number | null> }[] = [];
    const cleanups: (() => Promise<unknown> | unknown)[] = [];
    // One hook, in order: callers first, then the services, then the agent they talk to.
    after(async () => {
      for (const c of cleanups) await c();
      for (const i of instances) if (i.child.exitCode === null) i.child.kill('SIGKILL');
      await agent.close();
    });
    for (let n = 0; n < 2; n++) {
      const child = fork(import.meta.filename, [], {
        env: { ...process.env, [FIXTURE_ENV]: '1', PHARE_HTTP_ADDR: agent.url, PHARE_LOG_LEVEL: 'silent' },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      const ready = await new Promise<FixtureMessage>((resolve, reject) => {
        child.once('message', (m) => resolve(m as FixtureMessage));
        child.once('exit', (code) => reject(new Error(`fixture exited with ${code} before it was ready`)));
      });
      instances.push({ child, port: ready.port, id: ready.id, exit });
    }
    const [victim, survivor] = instances as [(typeof instances)[0], (typeof instances)[0]];

    const discovery = createDiscovery({ consul: { address: agent.url }, logger: silent });
    const client = createServiceClient({ discovery, retry: { maxRetries: 3 }, logger: silent });
    cleanups.push(
      () => client.close(),
      () => discovery.close(),
    );
    // Both instances pass their agent check and are in the client's discovery set.
    await waitFor(
      async () => (await discovery.instances(SERVICE)).length === 2,
      15_000,
      'both instances passing in discovery',
    );

    // --- outside observers: the agent's view, and TCP connects to the victim
    let deregisteredAt: number | undefined;
    let refusedAt: number | undefined;
    let acceptedAfterDeregistration = 0;
    let observing = true;
    const watchAgent = (async () => {
      while (observing && deregisteredAt === undefined) {
        const res = await fetch(`${agent.url}/v1/agent/services`);
        const services = (await res.json()) as Record<string, unknown>;
        if (!(victim.id in services)) deregisteredAt = performance.now();
        else await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const probeVictim = (async () => {
      while (observing && refusedAt === undefined) {
        const accepted = await new Promise<boolean>((resolve) => {
          const s = connect(victim.port, '127.0.0.1');
          s.once('connect', () => {
            s.destroy();
            resolve(true);
          });
          s.once('error', () => resolve(false));
        });
        const at = performance.now();
        if (!accepted) refusedAt = at;
        else if (deregisteredAt !== undefined) acceptedAfterDeregistration++;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();

    // --- load: 8 concurrent callers through the SDK client, by name
    const served = new Map<string, number>();
    const servedAfterExit = new Map<string, number>();
    const failures: string[] = [];
    let victimExited = false;
    let loading = true;
    const worker = async () => {
      while (loading) {
        try {
          const res = await client.get(SERVICE, '/work', { deadlineMs: 10_000 });
          const body = await res.text();
          if (res.statusCode !== 200)
            failures.push(`HTTP ${res.statusCode} from ${res.instance.id}: ${body}`);
          else {
            served.set(body, (served.get(body) ?? 0) + 1);
            if (victimExited) servedAfterExit.set(body, (servedAfterExit.get(body) ?? 0) + 1);
          }
        } catch (err) {
          failures.push(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`);
        }
      }
    };
    const workers = Array.from({ length: 8 }, worker);

    await waitFor(
      () => (served.get(victim.id) ?? 0) >= 50 && (served.get(survivor.id) ?? 0) >= 50,
      15_000,
      'both instances to serve load',
    );
    const servedByVictimBefore = served.get(victim.id) ?? 0;
    victim.child.kill('SIGTERM');
    const code = await victim.exit;
    victimExited = true;
    // Keep loading a little after the exit: callers must not notice it at all.
    await waitFor(() => (servedAfterExit.get(survivor.id) ?? 0) >= 50, 15_000, 'load after the exit');
    loading = false;
    await Promise.all(workers);
    observing = false;
    await Promise.all([watchAgent, probeVictim]);

    assert.deepEqual(failures, [], `failed requests: ${failures.slice(0, 5).join('; ')}`);
    assert.equal(code, 0, 'the instance exits 0');
    assert.ok(servedByVictimBefore >= 50);
    assert.equal(servedAfterExit.get(victim.id) ?? 0, 0, 'nothing answered by the exited instance');
    assert.ok(deregisteredAt !== undefined, 'the agent stopped listing the instance');
    assert.ok(refusedAt !== undefined, 'the instance stopped accepting connections');
    assert.ok(
      deregisteredAt < refusedAt,
      `deregistered (${deregisteredAt.toFixed(0)}) before it stopped accepting (${refusedAt.toFixed(0)})`,
    );
    // The drain window: between deregistration and closing, late callers are still accepted.
    assert.ok(acceptedAfterDeregistration > 0, 'connections accepted during the drain delay');
    // The survivor is untouched and still registered.
    assert.equal(survivor.child.exitCode, null);
    const left = (await (await fetch(`${agent.url}/v1/agent/services`)).json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(left), [survivor.id]);
    survivor.child.kill('SIGTERM');
    assert.equal(await survivor.exit, 0);
  });
}
