/**
 * Cluster benchmark (issue 12): Phare agents over a real 3-member etcd cluster, side by side with etcd itself.
 *
 * 1. Registrations/s: 64 clients spread over 3 agents (`PUT /v1/agent/service/register`, each with a TTL check)
 *    vs raw etcd transactions of the same size (the service and check records as two puts) from 64 clients.
 * 2. Change propagation: a TTL pass/fail on agent A -> a blocking query on agent C answers: p50 / p99.
 * 3. etcd writes (revisions) per registration, per check status change, and for steady passing checks.
 * 4. Lease simulation: N agents' leases (one keepalive stream each, TTL 10 s) and 10 services per agent on one
 *    etcd from one process: etcd CPU and keepalives/s, and whether every lease stayed alive.
 * 5. The single-node reference in the same run: etcd single-member puts at 64 clients next to a sqlite agent.
 *
 * etcd members and agents run on the server CPU, this load generator on the loadgen CPU (`taskset`).
 *
 *   npx node bench/cluster.ts            (BENCH_DURATION=s measured per side, BENCH_ROUNDS=rounds it is split into,
 *                                         BENCH_WARMUP=s before it; BENCH_LEASES=agents to simulate;
 *                                         BENCH_AGENT_OTHER=<checkout>: its agents as a third side, an A/B)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { Pool } from 'undici';
import { type EtcdCluster, startEtcdCluster } from '../test/helpers/etcd.ts';
import { run as runRead } from './http.ts';
import {
  benchMain,
  cpuSeconds,
  DURATION,
  fmt,
  isMain,
  medianCi,
  QUICK,
  quantile,
  REPO_ROOT,
  SERVER_CPU,
  spawnPinned,
  startAgent,
  table,
  verdict,
} from './lib.ts';

const CLIENTS = 64;
/**
 * Warm-up of each registration side before it is measured (BENCH_WARMUP=s). The agents are JIT-compiled
 * programs: after a 2 s warm-up, V8's compiler threads still took ~10 % of the agents' core during the
 * 8 s that followed (perf, stop 12), and much of the hot code ran in its baseline tier; a running agent is
 * long past that. etcd (Go) needs no warm-up, but gets the same, so both sides write as much before measuring.
 */
const WARMUP = Number(process.env.BENCH_WARMUP ?? 10);
const LEASE_AGENTS = Number(process.env.BENCH_LEASES ?? (QUICK ? 200 : 1000));

interface ClusterAgent {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** Spawns one pinned cluster agent per name over `etcd` under `prefix`. */
export async function startClusterAgents(
  etcd: EtcdCluster,
  prefix: string,
  names: string[],
  root = REPO_ROOT,
): Promise<ClusterAgent[]> {
  const out: ClusterAgent[] = [];
  for (const node of names) {
    const dir = mkdtempSync(join(tmpdir(), `phare-bench-${node}-`));
    const p = await spawnPinned(
      SERVER_CPU,
      [
        // BENCH_AGENT_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the agents, as in bench/lib.ts
        ...(process.env.BENCH_AGENT_NODE_ARGS ?? '').split(' ').filter(Boolean),
        join(root, 'bin', 'phare.js'),
        'agent',
        '--http-addr',
        '127.0.0.1:0',
        '--dns-addr',
        '',
        '--node',
        node,
        '--log-level',
        'warn',
        '--data-dir',
        dir,
        '--store',
        'etcd',
        '--etcd-endpoints',
        etcd.endpoints.join(','),
        '--etcd-prefix',
        prefix,
      ],
      /HTTP API: (http:\/\/[^/\s]+)\//,
    );
    out.push({
      url: p.match,
      pid: p.pid,
      stop: async () => {
        await p.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    });
  }
  return out;
}

/** The cluster's current revision (every etcd transaction is one). */
async function etcdRevision(etcd: EtcdCluster): Promise<number> {
  const s = JSON.parse(await etcd.ctl('endpoint', 'status', '-w', 'json')) as {
    Status: { header: { revision: number } };
  }[];
  return Math.max(...s.map((x) => x.Status.header.revision));
}

export function etcdCpu(etcd: EtcdCluster): number {
  let s = 0;
  for (const m of etcd.members) if (m.pid) s += cpuSeconds(m.pid);
  return s;
}

const registration = (i: number) => ({
  ID: `svc-${i}`,
  Name: `bench-${i % 100}`,
  Address: '10.1.0.1',
  Port: 10_000 + (i % 50_000),
  Tags: ['bench'],
  Meta: { n: String(i) },
  // a TTL longer than the run: no check expires while the rounds measure
  Check: { TTL: '10m', Status: 'passing' },
});

/** 64 loops for `seconds`, each calling `op(i)` back to back; returns acknowledged count and latencies. */
export async function loop(
  seconds: number,
  op: (i: number) => Promise<boolean>,
): Promise<{ ok: number; errors: number; lat: number[]; seconds: number }> {
  let next = 0;
  let ok = 0;
  let errors = 0;
  const lat: number[] = [];
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < end) {
        const i = next++;
        const t = performance.now();
        try {
          if (await op(i)) {
            ok++;
            lat.push(performance.now() - t);
          } else errors++;
        } catch {
          errors++;
        }
      }
    }),
  );
  return { ok, errors, lat, seconds: (performance.now() - t0) / 1000 };
}

/** Rounds of the registration comparison (BENCH_ROUNDS); each round runs both sides, DURATION/ROUNDS s each. */
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? (QUICK ? 2 : 10)));

/**
 * Registrations through the agents vs raw etcd transactions of the same bytes, in alternating rounds.
 *
 * Both sides share the server CPU and this VM's drift: the same code measured minutes apart moved 30–40 %
 * (stop 12: the agents' CPU per registration 424–660 µs, raw etcd 1,600–2,150 txns/s), so one long run per side
 * compares two samples of that drift. Instead both sides stay up and run back to back in each of ROUNDS
 * rounds (the order rotating), and the headline is the median of the per-round ratios with its 95 %
 * interval, as bench/sdk.ts does; the pooled rates and CPU are shown beside it. Agents not being measured
 * are SIGSTOPped (what idle agents still do — GC, timers — took ~15 % of the server core from raw etcd), a
 * few seconds, far inside their lease TTL (10 s) and gRPC keepalive. The raw side writes under another
 * prefix, so the agents' watches get none of its events.
 *
 * BENCH_AGENT_OTHER=<checkout> adds a second set of 3 agents run from that checkout (its own prefix, same
 * etcd) as a third side of every round: an A/B of two versions whose ratio is read per round too.
 */
async function registrations(
  etcd: EtcdCluster,
): Promise<{ rows: (string | number)[][]; ratio: number; detail: string }> {
  const other = process.env.BENCH_AGENT_OTHER;
  const client = new Etcd3({ hosts: etcd.endpoints.map((e) => e.replace('http://', '')) });
  interface Side {
    name: string;
    label: string;
    agents: ClusterAgent[];
    pools: Pool[];
    op: (i: number) => Promise<boolean>;
    ok: number;
    errors: number;
    seconds: number;
    lat: number[];
    etcd: number;
    cpu: number[];
    txns: number;
    rates: number[];
    next: number;
  }
  const sides: Side[] = [];
  /** Answers other than 200, by status and text (shown under the table when there are any). */
  const failures = new Map<string, number>();
  const newSide = (
    name: string,
    label: string,
    agents: ClusterAgent[],
    op: Side['op'],
    pools: Pool[] = [],
  ): Side => {
    const s: Side = {
      name,
      label,
      agents,
      pools,
      op,
      ok: 0,
      errors: 0,
      seconds: 0,
      lat: [],
      etcd: 0,
      cpu: agents.map(() => 0),
      txns: 0,
      rates: [],
      next: 0,
    };
    sides.push(s);
    return s;
  };
  const agentSide = async (name: string, label: string, prefix: string, root?: string) => {
    const agents = await startClusterAgents(etcd, prefix, ['a', 'b', 'c'], root);
    const pools = agents.map((a) => new Pool(a.url, { connections: CLIENTS }));
    const op = (i: number) =>
      (pools[i % 3] as Pool)
        .request({ method: 'PUT', path: '/v1/agent/service/register', body: JSON.stringify(registration(i)) })
        .then(async (r) => {
          if (r.statusCode === 200) {
            await r.body.dump();
            return true;
          }
          const why = `${r.statusCode} ${(await r.body.text()).slice(0, 120)}`;
          failures.set(why, (failures.get(why) ?? 0) + 1);
          return false;
        });
    return newSide(name, label, agents, op, pools);
  };
  const stopAll = (except?: Side) => {
    for (const s of sides) if (s !== except) for (const a of s.agents) process.kill(a.pid, 'SIGSTOP');
  };
  const contAll = () => {
    for (const s of sides) for (const a of s.agents) process.kill(a.pid, 'SIGCONT');
  };
  try {
    const phare = await agentSide(
      'phare',
      '3 Phare agents (etcd store), service + TTL check per registration',
      '/bench-reg',
    );
    const otherSide = other
      ? await agentSide(
          'other',
          `3 agents of ${other} (etcd store), the same registrations`,
          '/bench-reg-other',
          other,
        )
      : undefined;
    // Warm-up, each side in turn; the others stay running (idle): a stop longer than their lease TTL (10 s)
    // would make them rejoin, not warm up.
    const warm = (s: Side) => loop(QUICK ? 0.5 : WARMUP, (i) => s.op(1_000_000 + i));
    await warm(phare);
    if (otherSide) await warm(otherSide);
    // What a registration wrote to etcd, byte for byte: the raw side writes values of these sizes, under keys
    // of the same shape; Phare's transactions also carry one small head-key put per batch, the raw ones none.
    const first = ['a', 'b', 'c'][1_000_000 % 3]; // the agent that took svc-1000000
    const service = Buffer.from(
      (await client.get(`/bench-reg/v1/services/${first}%2Fsvc-1000000`).string()) ?? '',
    );
    const check = Buffer.from(
      (await client.get(`/bench-reg/v1/checks/${first}%2Fservice%3Asvc-1000000`).string()) ?? '',
    );
    if (service.length === 0 || check.length === 0)
      throw new Error('bench: registration svc-1000000 is not in etcd');
    const txn = (i: number) =>
      client.kv
        .txn({
          compare: [],
          success: [
            { request_put: { key: Buffer.from(`/raw/v1/services/a%2Fsvc-${i}`), value: service } },
            { request_put: { key: Buffer.from(`/raw/v1/checks/a%2Fservice%3Asvc-${i}`), value: check } },
          ],
          failure: [],
        })
        .then(() => true);
    const raw = newSide(
      'raw',
      `raw etcd txns (2 puts each of the same ${fmt(service.length)} + ${fmt(check.length)} B, etcd3 client, this process)`,
      [],
      txn,
    );
    await warm(raw);
    // at most 2 s per side and round: a side waits stopped for the others' turns, well inside its lease TTL
    const rounds = Math.max(ROUNDS, Math.ceil(DURATION / 2));
    const per = Math.max(0.5, DURATION / rounds);
    const measure = async (s: Side) => {
      const rev0 = await etcdRevision(etcd);
      const cpu0 = etcdCpu(etcd);
      const each0 = s.agents.map((a) => cpuSeconds(a.pid));
      const base = s.next;
      stopAll(s);
      let r: Awaited<ReturnType<typeof loop>>;
      try {
        r = await loop(per, (i) => s.op(base + i));
      } finally {
        contAll();
      }
      s.next = base + r.ok + r.errors + CLIENTS;
      s.etcd += etcdCpu(etcd) - cpu0;
      s.agents.forEach((a, k) => {
        s.cpu[k] = (s.cpu[k] as number) + cpuSeconds(a.pid) - (each0[k] as number);
      });
      s.txns += (await etcdRevision(etcd)) - rev0;
      s.ok += r.ok;
      s.errors += r.errors;
      s.seconds += r.seconds;
      for (const x of r.lat) s.lat.push(x);
      s.rates.push(r.ok / r.seconds);
    };
    // BENCH_PERF=<file>: `perf record` the server CPU (etcd and agents) during the measured rounds
    const perf = process.env.BENCH_PERF
      ? spawn(
          'perf',
          [
            'record',
            '-q',
            '-C',
            SERVER_CPU,
            '-F',
            '499',
            '-g',
            '-o',
            process.env.BENCH_PERF,
            '--',
            'sleep',
            String(sides.length * per * rounds),
          ],
          { stdio: 'inherit' },
        )
      : undefined;
    for (let k = 0; k < rounds; k++) {
      // the order rotates, so no side is always first after another's stop
      for (let j = 0; j < sides.length; j++) await measure(sides[(k + j) % sides.length] as Side);
    }
    if (perf) await new Promise((res) => perf.once('exit', res));
    // every acknowledged registration is on every agent
    const counted = async (s: Side) =>
      Promise.all(
        s.pools.map(async (p) => {
          const res = await p.request({ method: 'GET', path: '/v1/catalog/services' });
          const services = (await res.body.json()) as Record<string, unknown>;
          let n = 0;
          for (const name of Object.keys(services)) {
            const q = await p.request({ method: 'GET', path: `/v1/catalog/service/${name}` });
            n += ((await q.body.json()) as unknown[]).length;
          }
          return n;
        }),
      );
    const rows: (string | number)[][] = [];
    for (const s of sides) {
      const rate = s.ok / s.seconds;
      const cpu = s.cpu.reduce((a, x) => a + x, 0);
      const counts = s.agents.length > 0 ? await counted(s) : [];
      rows.push([
        s.label,
        fmt(rate),
        fmt(quantile(s.lat, 0.5), 1),
        fmt(quantile(s.lat, 0.99), 1),
        fmt(s.errors),
        s.agents.length > 0
          ? `${fmt((s.etcd / s.seconds) * 100)} % / ${fmt((cpu / s.seconds) * 100)} %`
          : `${fmt((s.etcd / s.seconds) * 100)} % / – (agents stopped)`,
        s.agents.length > 0
          ? `${fmt((s.etcd / s.ok) * 1e6)} / ${fmt((cpu / s.ok) * 1e6)} µs (${s.cpu.map((x) => fmt((x / s.ok) * 1e6)).join(' + ')})`
          : `${fmt((s.etcd / s.ok) * 1e6)} / – µs`,
        s.agents.length > 0 ? `${fmt(s.ok / Math.max(1, s.txns), 1)} (${fmt(s.txns)} txns)` : '1',
        s.agents.length > 0 ? `min ${fmt(Math.min(...counts))} on an agent (≥ ${fmt(s.ok)} acked)` : '',
      ]);
    }
    const perRound = (a: Side, b: Side) => a.rates.map((x, i) => x / (b.rates[i] as number));
    const describe = (xs: number[]) => {
      const m = medianCi(xs);
      return `${xs.map((x) => fmt(x, 2)).join(' / ')}; median ${fmt(m.median, 2)}× (95 % CI ${fmt(m.lo, 2)}–${fmt(m.hi, 2)})`;
    };
    const ratios = perRound(phare, raw);
    let detail = `${rounds} rounds of ${fmt(per, 2)} s per side, the order rotating; per-round ratios ${describe(ratios)}; pooled rates ${fmt(phare.ok / phare.seconds / (raw.ok / raw.seconds), 2)}×.`;
    if (otherSide)
      detail += ` ${other} vs raw etcd: ${describe(perRound(otherSide, raw))}; this checkout ÷ ${other}: ${describe(perRound(phare, otherSide))}.`;
    if (failures.size > 0)
      detail += ` Failed registrations: ${[...failures].map(([why, n]) => `${fmt(n)} × ${why}`).join('; ')}.`;
    return { rows, ratio: medianCi(ratios).median, detail };
  } finally {
    client.close();
    for (const s of sides) {
      for (const p of s.pools) await p.close();
      for (const a of s.agents) await a.stop();
    }
  }
}

async function propagation(
  etcd: EtcdCluster,
): Promise<{ p50: number; p99: number; n: number; revs: Record<string, number> }> {
  const agents = await startClusterAgents(etcd, '/bench-prop', ['a', 'b', 'c']);
  const [a, , c] = agents as [ClusterAgent, ClusterAgent, ClusterAgent];
  const revision = () => etcdRevision(etcd);
  try {
    const put = (url: string, path: string, body?: unknown) =>
      fetch(`${url}${path}`, {
        method: 'PUT',
        body: body === undefined ? undefined : JSON.stringify(body),
      }).then((r) => r.text());
    // etcd writes per change, counted as revisions (each etcd transaction is one revision)
    const revs: Record<string, number> = {};
    let r0 = await revision();
    for (let i = 0; i < 20; i++) await put(a.url, '/v1/agent/service/register', registration(i));
    revs['registration (service + check), one at a time'] = ((await revision()) - r0) / 20;
    r0 = await revision();
    for (let i = 0; i < 20; i++) await put(a.url, `/v1/agent/check/${i % 2 ? 'pass' : 'fail'}/service:svc-0`);
    revs['check status change'] = ((await revision()) - r0) / 20;
    await put(a.url, '/v1/agent/check/pass/service:svc-0');
    // steady passing checks: 20 HTTP checks against the agent's own leader endpoint every 100 ms, for 3 s
    for (let i = 0; i < 20; i++)
      await put(a.url, '/v1/agent/service/register', {
        ID: `http-${i}`,
        Name: 'steady',
        Port: 1,
        Check: { HTTP: `${a.url}/v1/status/leader`, Interval: '1s', Status: 'passing' },
      });
    await new Promise((r) => setTimeout(r, 1500));
    r0 = await revision();
    await new Promise((r) => setTimeout(r, 3000));
    revs['20 steady passing HTTP checks over 3 s (1 s interval)'] = (await revision()) - r0;
    // propagation: a status change on A -> a blocking query on C returns
    const lat: number[] = [];
    const n = QUICK ? 50 : 300;
    let index = 0;
    const first = await fetch(`${c.url}/v1/health/service/bench-0`);
    index = Number(first.headers.get('x-consul-index'));
    await first.text();
    for (let i = 0; i < n; i++) {
      const parked = fetch(`${c.url}/v1/health/service/bench-0?index=${index}&wait=10s`);
      await new Promise((r) => setTimeout(r, 5));
      const t = performance.now();
      await put(a.url, `/v1/agent/check/${i % 2 ? 'pass' : 'fail'}/service:svc-0`);
      const res = await parked;
      const done = performance.now();
      await res.text();
      index = Number(res.headers.get('x-consul-index'));
      lat.push(done - t);
    }
    return { p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), n, revs };
  } finally {
    for (const x of agents) await x.stop();
  }
}

async function leases(etcd: EtcdCluster): Promise<{ rows: (string | number)[][] }> {
  const client = new Etcd3({ hosts: etcd.endpoints.map((e) => e.replace('http://', '')) });
  const rows: (string | number)[][] = [];
  try {
    for (const agents of [LEASE_AGENTS, LEASE_AGENTS * 2]) {
      let lost = 0;
      let keepalives = 0;
      const ls = [];
      for (let i = 0; i < agents; i++) {
        const l = client.lease(10);
        l.on('lost', () => lost++);
        l.on('keepaliveSucceeded', () => keepalives++);
        ls.push(l);
      }
      const t0 = performance.now();
      // a lease that expired before its key was written (a starved machine) is reported, not fatal
      let failedPuts = 0;
      await Promise.all(
        ls.map((l, i) =>
          l
            .put(`/sim/v1/live/n${i}`)
            .value('{}')
            .catch(() => {
              failedPuts++;
            }),
        ),
      );
      // 10 durable services per simulated agent (10,000 for 1,000 agents), in batches of 100 per txn
      const ops = [];
      for (let i = 0; i < agents * 10; i++) ops.push(i);
      for (let k = 0; k < ops.length; k += 100) {
        await client.kv.txn({
          compare: [],
          success: ops.slice(k, k + 100).map((i) => ({
            request_put: {
              key: Buffer.from(`/sim/v1/services/n${i % agents}/s${i}`),
              value: Buffer.from(JSON.stringify(registration(i))),
            },
          })),
          failure: [],
        });
      }
      const setupS = (performance.now() - t0) / 1000;
      const cpu0 = etcdCpu(etcd);
      keepalives = 0;
      const w0 = performance.now();
      const windowS = QUICK ? 12 : 30;
      await new Promise((r) => setTimeout(r, windowS * 1000));
      const secs = (performance.now() - w0) / 1000;
      const cpu = (etcdCpu(etcd) - cpu0) / secs;
      const live = Number((await client.getAll().prefix('/sim/v1/live/').count()) ?? 0);
      rows.push([
        fmt(agents),
        fmt(agents * 10),
        `${fmt(setupS, 1)} s`,
        fmt(keepalives / secs),
        `${fmt(cpu * 100)} %`,
        `${fmt(live)} of ${fmt(agents)}${lost ? `, ${lost} lost` : ''}${failedPuts ? `, ${failedPuts} expired before their key was written` : ''}`,
      ]);
      await Promise.all(ls.map((l) => l.revoke().catch(() => {})));
      await client.delete().prefix('/sim/');
    }
  } finally {
    client.close();
  }
  return { rows };
}

async function singleNode(): Promise<(string | number)[][]> {
  const rows: (string | number)[][] = [];
  const one = await startEtcdCluster({ size: 1, cpus: SERVER_CPU });
  const client = new Etcd3({ hosts: one.endpoints.map((e) => e.replace('http://', '')) });
  try {
    const put = async (i: number) => {
      await client.put(`/single/svc-${i}`).value(JSON.stringify(registration(i)));
      return true;
    };
    await loop(QUICK ? 0.5 : 2, (i) => put(1_000_000 + i));
    const r = await loop(DURATION, put);
    rows.push([
      'etcd 3.4 single member, put',
      fmt(r.ok / r.seconds),
      fmt(quantile(r.lat, 0.99), 1),
      fmt(r.errors),
    ]);
  } finally {
    client.close();
    await one.close();
  }
  const agent = await startAgent('sqlite');
  const pool = new Pool(agent.url, { connections: CLIENTS });
  try {
    const reg = (i: number) =>
      pool
        .request({ method: 'PUT', path: '/v1/agent/service/register', body: JSON.stringify(registration(i)) })
        .then(async (res) => {
          await res.body.dump();
          return res.statusCode === 200;
        });
    await loop(QUICK ? 0.5 : 2, (i) => reg(1_000_000 + i));
    const r = await loop(DURATION, reg);
    rows.push([
      'Phare agent, sqlite store (service + check)',
      fmt(r.ok / r.seconds),
      fmt(quantile(r.lat, 0.99), 1),
      fmt(r.errors),
    ]);
  } finally {
    await pool.close();
    await agent.stop();
  }
  return rows;
}

/** A health read on a cluster agent vs bare node:http serving the same bytes (reads never touch etcd). */
async function clusterRead(etcd: EtcdCluster): Promise<string> {
  const [agent] = await startClusterAgents(etcd, '/bench-read', ['r']);
  try {
    return await runRead({
      url: (agent as ClusterAgent).url,
      pid: (agent as ClusterAgent).pid,
      label: 'a cluster agent (`--store etcd`, 3 members)',
    });
  } finally {
    await agent?.stop();
  }
}

/**
 * Runs the benchmark; returns its markdown section. `BENCH_CLUSTER_PARTS` (comma list of reg, prop, leases,
 * read, single; default all) runs some of the parts only.
 */
export async function run(): Promise<string> {
  const parts = new Set((process.env.BENCH_CLUSTER_PARTS ?? 'reg,prop,leases,read,single').split(','));
  const etcd = await startEtcdCluster({
    size: 3,
    cpus: SERVER_CPU,
    extraArgs: ['--quota-backend-bytes', String(4 * 1024 ** 3)],
  });
  const out: string[] = [
    '### Cluster: 3 agents over a 3-member etcd (issue 12)',
    '',
    `Command: \`npx node bench/cluster.ts\` — etcd 3.4 members (data on tmpfs, fsync on) and agents pinned to CPU ${SERVER_CPU}, load generator (undici pools / etcd3 client, ${CLIENTS} loops) on the other CPU; ${DURATION} s per measured run after a warm-up.`,
    '',
  ];
  try {
    if (parts.has('reg')) {
      const reg = await registrations(etcd);
      out.push(
        table(
          [
            '',
            'per s',
            'p50 ms',
            'p99 ms',
            'errors',
            'CPU etcd / agents',
            'CPU per registration etcd / agents (a + b + c)',
            'registrations per txn',
            'on every agent',
          ],
          reg.rows,
        ),
        '',
        `Agents vs raw etcd transactions, median of the per-round ratios: **${fmt(reg.ratio, 2)}×** (target ≥ 0.7×: ${verdict(reg.ratio >= 0.7)}). ${reg.detail}`,
        '',
      );
    }
    if (parts.has('prop')) {
      const prop = await propagation(etcd);
      out.push(
        `Change propagation (TTL status change on agent A -> blocking query on agent C answered), ${prop.n} changes: p50 **${fmt(prop.p50, 1)} ms**, p99 **${fmt(prop.p99, 1)} ms** (target p99 ≤ 50 ms: ${verdict(prop.p99 <= 50)}).`,
        '',
        table(
          ['etcd writes (revisions)', 'measured'],
          Object.entries(prop.revs).map(([k, v]) => [k, fmt(v, 2)]),
        ),
        '',
      );
    }
    if (parts.has('leases')) {
      const sim = await leases(etcd);
      out.push(
        `Lease simulation (one process, one etcd3 lease with its own keepalive stream per simulated agent, TTL 10 s, renewed every TTL/3; ${QUICK ? 12 : 30} s window):`,
        '',
        table(
          ['agents', 'services', 'setup', 'keepalives/s', 'etcd CPU (3 members)', 'leases alive at the end'],
          sim.rows,
        ),
        '',
      );
    }
    if (parts.has('read')) out.push(await clusterRead(etcd), '');
  } finally {
    await etcd.close();
  }
  if (parts.has('single')) {
    const single = await singleNode();
    out.push(
      'Single-node reference, same run (64 clients):',
      '',
      table(['', 'per s', 'p99 ms', 'errors'], single),
    );
  }
  return out.join('\n');
}

if (isMain(import.meta)) {
  await benchMain(run);
}
