/**
 * SDK benchmark: `client.get(service, path)` against plain undici to a fixed URL (same backend, same run),
 * and against the pattern it replaces — one registry HTTP lookup per request plus a random pick. Then
 * failover: kill -9 of one of three backends under steady load, time until no try goes to it any more, and
 * failed calls meanwhile. Backends and the agent run pinned to the server CPU, the client to the loadgen CPU.
 *
 *   npx node bench/sdk.ts                  # 10 s per throughput run
 *   BENCH_DURATION=3 npx node bench/sdk.ts
 *
 * `--backend` is the child mode: a plain node:http server answering a small JSON body.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { Pool } from 'undici';
import { createConsulClient, createDiscovery, createServiceClient } from '../src/index.ts';
import {
  benchMain,
  DURATION,
  fmt,
  isMain,
  type Proc,
  REPO_ROOT,
  SERVER_CPU,
  sleep,
  spawnPinned,
  startAgent,
  table,
  verdict,
} from './lib.ts';

const CONCURRENCY = Number(process.env.SDK_BENCH_CONCURRENCY ?? 32);
const logger = pino({ level: 'silent' });

function backendMode(): void {
  const body = JSON.stringify({ ok: true, service: 'bench' });
  const server = createServer((req, res) => {
    req.resume();
    res.setHeader('content-type', 'application/json');
    res.end(body);
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1', () =>
    process.stdout.write(`PORT ${(server.address() as AddressInfo).port}\n`),
  );
}

async function backend(): Promise<Proc & { port: number }> {
  const p = await spawnPinned(SERVER_CPU, [`${REPO_ROOT}/bench/sdk.ts`, '--backend'], /PORT (\d+)/);
  return { ...p, port: Number(p.match) };
}

/** Runs `fn` in `CONCURRENCY` loops for `seconds`; returns calls per second and failures. */
async function measure(seconds: number, fn: () => Promise<void>): Promise<{ rps: number; failed: number }> {
  // warm-up (JIT, connections)
  const warmEnd = performance.now() + Math.min(1_000, seconds * 200);
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < warmEnd) await fn().catch(() => {});
    }),
  );
  let done = 0;
  let failed = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        try {
          await fn();
          done++;
        } catch {
          failed++;
        }
      }
    }),
  );
  return { rps: done / ((performance.now() - start) / 1000), failed };
}

async function run(): Promise<string> {
  const agent = await startAgent('dev');
  const consul = createConsulClient({ address: agent.url });
  const backends: (Proc & { port: number })[] = [];
  const out: string[] = ['## SDK: service client vs plain undici vs lookup-per-request', ''];
  try {
    // Throughput: one backend, so every variant talks to the same server.
    const b = await backend();
    backends.push(b);
    await consul.agent.register({ Name: 'bench', ID: 'bench-1', Address: '127.0.0.1', Port: b.port });

    const pool = new Pool(`http://127.0.0.1:${b.port}`, { connections: CONCURRENCY });
    const plain = await measure(DURATION, async () => {
      const res = await pool.request({ path: '/items/1', method: 'GET' });
      await res.body.json();
    });
    await pool.close();

    const discovery = createDiscovery({ consul: { address: agent.url }, logger });
    const client = createServiceClient({ discovery, logger, connections: CONCURRENCY });
    const sdk = await measure(DURATION, async () => {
      const res = await client.get('bench', '/items/1');
      await res.json();
    });

    // The wrapper teams hand-write: ask the registry on every call, pick at random, call.
    const lookupPools = new Map<string, Pool>();
    const naive = await measure(DURATION, async () => {
      const { value } = await consul.health.service('bench', { passing: true });
      const e = value[Math.floor(Math.random() * value.length)];
      if (!e) throw new Error('no instance');
      const origin = `http://${e.Service.Address || e.Node.Address}:${e.Service.Port}`;
      let p = lookupPools.get(origin);
      if (!p) {
        p = new Pool(origin, { connections: CONCURRENCY });
        lookupPools.set(origin, p);
      }
      const res = await p.request({ path: '/items/1', method: 'GET' });
      await res.body.json();
    });
    for (const p of lookupPools.values()) await p.close();

    const vsPlain = sdk.rps / plain.rps;
    const vsNaive = sdk.rps / naive.rps;
    out.push(
      table(
        ['variant', 'calls/s', 'failed', 'ratio'],
        [
          ['plain undici Pool, fixed URL', fmt(plain.rps), plain.failed, '1.00×'],
          ['phare `client.get(service, path)`', fmt(sdk.rps), sdk.failed, `${fmt(vsPlain, 2)}× of plain`],
          [
            'registry lookup per call + random pick',
            fmt(naive.rps),
            naive.failed,
            `phare = ${fmt(vsNaive, 1)}× this`,
          ],
        ],
      ),
      '',
      `- ${CONCURRENCY} concurrent callers, ${DURATION} s each after a warm-up; backend and agent on CPU ${SERVER_CPU}.`,
      `- target ≥ 0.9× plain undici: ${verdict(vsPlain >= 0.9, `${fmt(vsPlain, 2)}×`)}; target ≥ 3× lookup-per-call: ${verdict(vsNaive >= 3, `${fmt(vsNaive, 1)}×`)}`,
      '',
    );
    await client.close();
    await discovery.close();

    // Failover: three backends, kill -9 one under load.
    const three = [await backend(), await backend(), await backend()];
    backends.push(...three);
    for (const x of three) {
      await consul.agent.register({ Name: 'fo', ID: `fo-${x.port}`, Address: '127.0.0.1', Port: x.port });
    }
    const victim = three[1] as Proc & { port: number };
    let killedAt = 0;
    let lastTryToVictim = 0;
    const d2 = createDiscovery({ consul: { address: agent.url }, logger });
    const c2 = createServiceClient({
      discovery: d2,
      logger,
      hooks: {
        onTry: ({ instance }) => {
          if (killedAt && instance.port === victim.port) lastTryToVictim = performance.now();
        },
      },
    });
    let running = true;
    let ok = 0;
    let failed = 0;
    const loops = Array.from({ length: 16 }, async () => {
      while (running) {
        try {
          const res = await c2.get('fo', '/');
          await res.body.dump();
          ok++;
        } catch {
          failed++;
        }
      }
    });
    await sleep(1_000);
    killedAt = performance.now();
    victim.child.kill('SIGKILL');
    await sleep(3_000);
    running = false;
    await Promise.all(loops);
    const stopMs = lastTryToVictim ? lastTryToVictim - killedAt : 0;
    out.push(
      '### Failover after kill -9 of one of three backends (16 callers, idempotent GETs)',
      '',
      table(
        ['measure', 'value'],
        [
          ['time from kill -9 until the last try to it', `${fmt(stopMs, 1)} ms`],
          ['failed calls', String(failed)],
          ['calls served in the 4 s window', fmt(ok)],
        ],
      ),
      '',
      `- target < 1 s and zero failures: ${verdict(stopMs < 1_000 && failed === 0)}`,
      '- tries to the dead backend end when outlier ejection removes it (3 consecutive connect errors); each failed try is retried on another instance.',
    );
    await c2.close();
    await d2.close();
  } finally {
    await consul.close();
    for (const b of backends) await b.stop();
    await agent.stop();
  }
  return out.join('\n');
}

if (process.argv.includes('--backend')) backendMode();
else if (isMain(import.meta)) await benchMain(run);
