/**
 * Durable registration benchmark (issue 2): 64 concurrent clients each send
 * `PUT /v1/agent/service/register` of a distinct service ID, back to back, through one undici Pool with 64
 * connections (this process, pinned to the loadgen CPU). The agent runs on the server CPU, first with the
 * durable sqlite store (a fresh `--data-dir`, not `--dev`: a 200 means the write is committed), then with
 * `--dev` (memory) for comparison. Afterwards every acknowledged ID is checked to be in the agent.
 *
 *   npx node bench/register.ts
 */
import { Pool } from 'undici';
import {
  type BenchAgent,
  benchMain,
  cpuSeconds,
  DURATION,
  fmt,
  isMain,
  QUICK,
  quantile,
  SERVER_CPU,
  startAgent,
  table,
  verdict,
} from './lib.ts';

const CLIENTS = 64;
const TARGET = 5000;
/** etcd 3.4.23, 1 member on this box, wrk through the grpc-gateway, 64 conns, put (median of 3). */
export const ETCD_REFERENCE = {
  putsPerSecond: 2700,
  source:
    'etcd 3.4.23 single member on this box, 64 in-flight puts ≈ 2.7k/s (etcd3 client, client-bound); 3.6k/s via wrk → grpc-gateway',
};

interface Phase {
  /** CPU share of the agent and of this load generator over the phase (1 = one core). */
  agentCpu: number;
  loadgenCpu: number;
  ok: number;
  errors: number;
  latMs: number[];
  seconds: number;
}

async function load(
  pool: Pool,
  pid: number,
  seconds: number,
  next: () => number,
  keep: boolean,
): Promise<Phase> {
  const latMs: number[] = [];
  let ok = 0;
  let errors = 0;
  let firstError = '';
  const end = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const i = next();
      const body = JSON.stringify({
        ID: `svc-${i}`,
        Name: `bench-${i % 100}`,
        Address: '10.1.0.1',
        Port: 10_000 + (i % 50_000),
        Tags: ['bench'],
        Meta: { n: String(i) },
      });
      const t = performance.now();
      try {
        const res = await pool.request({
          method: 'PUT',
          path: '/v1/agent/service/register',
          body,
          headers: { 'content-type': 'application/json' },
        });
        await res.body.dump();
        if (res.statusCode === 200) {
          ok++;
          if (keep) latMs.push(performance.now() - t);
        } else {
          errors++;
          firstError ||= `HTTP ${res.statusCode}`;
        }
      } catch (err) {
        errors++;
        firstError ||= String(err);
      }
    }
  };
  const t0 = performance.now();
  const a0 = cpuSeconds(pid);
  const l0 = process.cpuUsage();
  await Promise.all(Array.from({ length: CLIENTS }, worker));
  const wall = (performance.now() - t0) / 1000;
  const l1 = process.cpuUsage(l0);
  const agentCpu = (cpuSeconds(pid) - a0) / wall;
  const loadgenCpu = (l1.user + l1.system) / 1e6 / wall;
  if (firstError && keep) process.stderr.write(`register: first error: ${firstError}\n`);
  return { ok, errors, latMs, seconds: wall, agentCpu, loadgenCpu };
}

async function measure(agent: BenchAgent): Promise<Phase & { registered: number; stored: number }> {
  const pool = new Pool(agent.url, { connections: CLIENTS, pipelining: 1 });
  let n = 0;
  try {
    const warm = await load(pool, agent.pid, QUICK ? 0.5 : 2, () => n++, false); // warm-up: JIT, connections, sqlite pages
    const phase = await load(pool, agent.pid, DURATION, () => n++, true);
    // every acknowledged registration must be there (and nothing went missing under load)
    const res = await pool.request({ method: 'GET', path: '/v1/agent/services' });
    const stored = Object.keys((await res.body.json()) as object).length;
    return { ...phase, registered: warm.ok + phase.ok, stored };
  } finally {
    await pool.close();
  }
}

/** Runs the benchmark; returns its markdown section. */
export async function run(): Promise<string> {
  const rows: (string | number)[][] = [];
  let durableRate = 0;
  for (const mode of ['sqlite', 'dev'] as const) {
    const agent = await startAgent(mode);
    try {
      const r = await measure(agent);
      const rate = r.ok / r.seconds;
      if (mode === 'sqlite') durableRate = rate;
      rows.push([
        `phare agent, ${agent.store}`,
        fmt(rate),
        fmt(quantile(r.latMs, 0.5), 2),
        fmt(quantile(r.latMs, 0.99), 2),
        fmt(r.errors),
        `${fmt(r.agentCpu * 100)} % / ${fmt(r.loadgenCpu * 100)} %`,
        // CPU per registration holds on a busy machine, where the rate only says how much CPU the agent got
        fmt((r.agentCpu * r.seconds * 1e6) / Math.max(1, r.ok)),
        `${fmt(r.stored)} of ${fmt(r.registered)} acked ${r.stored >= r.registered ? '✓' : '✗'}`,
      ]);
    } finally {
      await agent.stop();
    }
  }
  rows.push([
    `etcd 3.4 put (reference, not re-run)`,
    `≈ ${fmt(ETCD_REFERENCE.putsPerSecond)}`,
    '',
    '',
    '',
    '',
    '',
    '',
  ]);
  return [
    `### Durable registrations: ${CLIENTS} concurrent clients, \`PUT /v1/agent/service/register\`, distinct IDs`,
    '',
    `Command: \`npx node bench/register.ts\` — load generator: undici \`Pool\` with ${CLIENTS} connections, ${CLIENTS} request loops, pinned to the loadgen CPU; agent \`phare agent --data-dir <tmp>\` (sqlite, WAL, group commit) and then \`phare agent --dev\` on CPU ${SERVER_CPU}; ${DURATION} s after a warm-up. "in agent" counts \`/v1/agent/services\` afterwards (warm-up included).`,
    '',
    table(
      [
        'store',
        'registrations/s',
        'p50 ms',
        'p99 ms',
        'errors',
        'CPU agent / loadgen',
        'agent CPU µs / registration',
        'in agent',
      ],
      rows,
    ),
    '',
    `Durable target ≥ ${fmt(TARGET)}/s: ${verdict(
      durableRate >= TARGET,
      `by ${fmt(TARGET - durableRate)}/s, ${fmt((1 - durableRate / TARGET) * 100)} %`,
    )}. Reference: ${ETCD_REFERENCE.source}.`,
  ].join('\n');
}

if (isMain(import.meta)) {
  await benchMain(run);
}
