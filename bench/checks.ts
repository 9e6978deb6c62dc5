/**
 * Health-check load benchmark (issue 2): 10,000 service instances on one agent (durable
 * sqlite store, the default mode), each with an HTTP check every 10 s against one local node:http backend
 * (a separate process on the loadgen CPU). After registration and a settle period, a ~30 s window measures:
 * the agent's CPU share (utime+stime delta from /proc/<pid>/stat over wall time), its RSS, and check
 * lateness — from the agent's Prometheus metrics if it exports a lateness metric, and always from the
 * backend side: for each check path, the gap between consecutive probes minus the 10 s interval.
 *
 *   npx node bench/checks.ts
 *
 * `--backend` is the child mode: the probe target, which records when each path was hit.
 */
import { createServer } from 'node:http';
import { Pool, request } from 'undici';
import {
  benchMain,
  cpuSeconds,
  exitWithParent,
  fmt,
  isMain,
  LOADGEN_CPU,
  QUICK,
  quantile,
  rssMiB,
  SERVER_CPU,
  sleep,
  spawnPinned,
  startAgent,
  table,
  verdict,
} from './lib.ts';

const INSTANCES = QUICK ? 1000 : Number(process.env.BENCH_CHECKS ?? 10_000);
const INTERVAL_S = QUICK ? 2 : 10;
const SETTLE_S = QUICK ? 1 : 5;
/** The measured window: three intervals (about 30 s; `BENCH_DURATION` does not shorten it below 2 intervals). */
const WINDOW_S = QUICK ? 2 * INTERVAL_S + 1 : 3 * INTERVAL_S;
const TARGET_P99_MS = 1000;

function backend(): void {
  // hits per check path since the last /__reset, as ms timestamps
  let hits = new Map<string, number[]>();
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/__reset') {
      hits = new Map();
      res.end('{}');
      return;
    }
    if (url === '/__stats') {
      const interval = Number(process.env.INTERVAL_MS);
      const late: number[] = [];
      let total = 0;
      for (const ts of hits.values()) {
        total += ts.length;
        for (let i = 1; i < ts.length; i++) late.push((ts[i] as number) - (ts[i - 1] as number) - interval);
      }
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          paths: hits.size,
          hits: total,
          gaps: late.length,
          p50: quantile(late, 0.5),
          p99: quantile(late, 0.99),
          max: late.length ? Math.max(...late) : Number.NaN,
          min: late.length ? Math.min(...late) : Number.NaN,
          cpu: process.cpuUsage(),
        }),
      );
      return;
    }
    const t = performance.now();
    const list = hits.get(url);
    if (list) list.push(t);
    else hits.set(url, [t]);
    res.end('ok');
  });
  server.keepAliveTimeout = 65_000;
  server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    process.stdout.write(`backend on http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}\n`);
  });
  process.on('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

interface BackendStats {
  paths: number;
  hits: number;
  gaps: number;
  p50: number;
  p99: number;
  max: number;
  min: number;
}

/** Lines of the agent's Prometheus output about check lateness, and a p99 in ms if one is there. */
async function agentLateness(url: string): Promise<{ lines: string[]; p99Ms: number }> {
  const res = await request(`${url}/v1/agent/metrics?format=prometheus`);
  const text = await res.body.text();
  const lines = text.split('\n').filter((l) => /late/i.test(l) && !l.startsWith('#'));
  let p99Ms = Number.NaN;
  for (const l of lines) {
    const m = /^(\S+?)(\{[^}]*\})?\s+([-\d.e+]+)/.exec(l);
    if (!m) continue;
    const name = m[1] as string;
    const labels = m[2] ?? '';
    if (/quantile="0\.99"/.test(labels) || /p99/.test(name) || /p99/.test(labels)) {
      const v = Number(m[3]);
      p99Ms = /seconds/.test(name) ? v * 1000 : v;
    }
  }
  return { lines, p99Ms };
}

/** The agent's own memory figures from its Prometheus metrics (prom-client's default process metrics), MiB. */
async function agentMemory(url: string): Promise<{ heapUsed: number; heapTotal: number; external: number }> {
  const res = await request(`${url}/v1/agent/metrics?format=prometheus`);
  const text = await res.body.text();
  const read = (name: string) => {
    const m = new RegExp(`^\\S*${name}(?:\\{[^}]*\\})?\\s+([-\\d.e+]+)`, 'm').exec(text);
    return m ? Number(m[1]) / 1048576 : Number.NaN;
  };
  return {
    heapUsed: read('nodejs_heap_size_used_bytes'),
    heapTotal: read('nodejs_heap_size_total_bytes'),
    external: read('nodejs_external_memory_bytes'),
  };
}

/** Runs the benchmark; returns its markdown section. */
export async function run(): Promise<string> {
  const back = await spawnPinned(LOADGEN_CPU, [import.meta.filename, '--backend'], /backend on (\S+)/, {
    env: { INTERVAL_MS: String(INTERVAL_S * 1000) },
  });
  const agent = await startAgent('sqlite');
  try {
    // register all instances, 64 at a time
    const pool = new Pool(agent.url, { connections: 64 });
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        for (let i = next++; i < INSTANCES; i = next++) {
          const res = await pool.request({
            method: 'PUT',
            path: '/v1/agent/service/register',
            body: JSON.stringify({
              ID: `chk-${i}`,
              Name: `svc-${i % 100}`,
              Port: 20_000 + (i % 40_000),
              Check: {
                HTTP: `${back.match}/health/${i}`,
                Interval: `${INTERVAL_S}s`,
                Timeout: '5s',
              },
            }),
          });
          await res.body.dump();
          if (res.statusCode !== 200) throw new Error(`register chk-${i}: HTTP ${res.statusCode}`);
        }
      }),
    );
    const registerS = (performance.now() - t0) / 1000;
    await pool.close();

    await sleep(SETTLE_S * 1000);
    await (await request(`${back.match}/__reset`)).body.dump();
    const cpu0 = cpuSeconds(agent.pid);
    const w0 = performance.now();
    await sleep(WINDOW_S * 1000);
    const cpu1 = cpuSeconds(agent.pid);
    const wall = (performance.now() - w0) / 1000;
    const rss = rssMiB(agent.pid);
    const mem = await agentMemory(agent.url);
    const stats = (await (await request(`${back.match}/__stats`)).body.json()) as BackendStats;
    const metric = await agentLateness(agent.url);
    const passing = (
      (await (await request(`${agent.url}/v1/health/state/passing`)).body.json()) as { ServiceID: string }[]
    ).filter((c) => c.ServiceID.startsWith('chk-')).length;

    const share = (cpu1 - cpu0) / wall;
    const expectedHits = (INSTANCES * wall) / INTERVAL_S;
    const probing = stats.hits > 0;
    // the worse of the two views: the agent's own figure and what the backend saw
    const p99 = Number.isFinite(metric.p99Ms) ? Math.max(metric.p99Ms, stats.p99) : stats.p99;
    const rows = [
      ['instances with an HTTP check', fmt(INSTANCES)],
      ['registration time (64 concurrent)', `${fmt(registerS, 1)} s (${fmt(INSTANCES / registerS)}/s)`],
      ['measured window', `${fmt(wall, 1)} s, after ${SETTLE_S} s settle`],
      ['agent CPU share (one core = 100 %)', `**${fmt(share * 100, 1)} %**`],
      ['agent RSS at the end', `**${fmt(rss, 0)} MiB**`],
      [
        'agent V8 heap used / heap total / external (its metrics)',
        `${fmt(mem.heapUsed, 0)} / ${fmt(mem.heapTotal, 0)} / ${fmt(mem.external, 0)} MiB`,
      ],
      [
        'probes received by the backend',
        `${fmt(stats.hits)} (expected ≈ ${fmt(expectedHits)}), ${fmt(stats.paths)} distinct checks`,
      ],
      ['checks passing at the end', `${fmt(passing)} of ${fmt(INSTANCES)}`],
      [
        'lateness from the backend (gap − interval): p50 / p99 / max / min',
        probing
          ? `${fmt(stats.p50, 1)} / **${fmt(stats.p99, 1)}** / ${fmt(stats.max, 1)} / ${fmt(stats.min, 1)} ms over ${fmt(stats.gaps)} gaps`
          : 'n/a',
      ],
      [
        'lateness from the agent metrics',
        metric.lines.length
          ? metric.lines.map((l) => `\`${l.trim()}\``).join('<br>')
          : 'no lateness metric exported',
      ],
    ];
    return [
      `### Health checks: ${fmt(INSTANCES)} HTTP checks every ${INTERVAL_S} s on one agent`,
      '',
      `Command: \`npx node bench/checks.ts\` — agent \`phare agent --data-dir <tmp>\` (sqlite) on CPU ${SERVER_CPU}; backend: node:http on CPU ${LOADGEN_CPU} answering \`200 ok\` on \`/health/<i>\` (one path per check) and recording hit times; instances spread over 100 service names.`,
      '',
      table(['measure', 'value'], rows),
      '',
      probing
        ? `Check lateness p99 target < ${fmt(TARGET_P99_MS)} ms: ${verdict(p99 < TARGET_P99_MS, `p99 ${fmt(p99)} ms`)} (${Number.isFinite(metric.p99Ms) ? 'the worse of the agent metric and the backend-side gaps' : 'backend-side gaps'}).`
        : '**No probe reached the backend: the health-check engine is not running in this build**, so CPU/RSS above are for an agent holding the checks without running them.',
    ].join('\n');
  } finally {
    await agent.stop();
    await back.stop();
  }
}

if (isMain(import.meta)) {
  if (process.argv[2] === '--backend') {
    exitWithParent();
    backend();
  } else {
    await benchMain(run);
  }
}
