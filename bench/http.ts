/**
 * HTTP read benchmark (issue 2): `GET /v1/health/service/web?passing` with 50
 * passing instances, wrk 1 thread 50 keep-alive connections, against a bare `node:http` server that serves
 * the very same bytes (the agent's body, fetched once, from a Buffer, with the same Consul headers). Both
 * servers are pinned to the server CPU and measured alternately in the same run; wrk is on the loadgen CPU.
 *
 *   npx node bench/http.ts                 # 3 alternating 10 s runs each, after a 2 s warm-up
 *   BENCH_DURATION=5 npx node bench/http.ts
 *
 * `--serve <file>` is the child mode: the bare node:http baseline serving <file>.json with <file>.headers.
 */

import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import {
  benchMain,
  cpuSeconds,
  DURATION,
  exitWithParent,
  fmt,
  isMain,
  loadAnswer,
  median,
  QUICK,
  removeAnswer,
  SERVER_CPU,
  saveAnswer,
  spawnPinned,
  startAgent,
  table,
  verdict,
  type WrkResult,
  wrk,
  wrkArgs,
} from './lib.ts';

const INSTANCES = 50;
const PATH = '/v1/health/service/web?passing';
const TARGET_RATIO = 0.8;

/** Registers `n` instances of `web` with a passing TTL check each (Status given, so no pass call needed). */
export async function registerWeb(url: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await request(`${url}/v1/agent/service/register`, {
      method: 'PUT',
      body: JSON.stringify({
        ID: `web-${i}`,
        Name: 'web',
        Address: `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`,
        Port: 8080,
        Tags: ['v1', 'primary'],
        Meta: { version: '1.4.2', zone: `zone-${i % 3}` },
        Check: { CheckID: `web-${i}-ttl`, Name: 'web alive', TTL: '30m', Status: 'passing' },
      }),
    });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`register web-${i}: HTTP ${res.statusCode}`);
  }
}

function serve(file: string): void {
  const { body, headers } = loadAnswer(file);
  const server = createServer((_req, res) => {
    res.writeHead(200, { ...headers, 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 65_000;
  server.listen(0, '127.0.0.1', () => {
    const addr = server.address();
    process.stdout.write(
      `baseline on http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}\n`,
    );
  });
  process.on('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

/**
 * Runs the benchmark; returns its markdown section. `on` measures another agent instead of a fresh
 * `phare agent --dev` (bench/cluster.ts: a cluster agent over etcd), described by `label`; it is not stopped.
 */
export async function run(on?: { url: string; label: string; pid?: number }): Promise<string> {
  const runs = QUICK ? 1 : Number(process.env.BENCH_HTTP_RUNS ?? 3);
  const agent = on ?? (await startAgent('dev'));
  const label = on?.label ?? '`phare agent --dev`';
  const file = join(tmpdir(), `phare-bench-http-${process.pid}`);
  let baseline: Awaited<ReturnType<typeof spawnPinned>> | undefined;
  try {
    await registerWeb(agent.url, INSTANCES);
    const res = await request(`${agent.url}${PATH}`);
    const body = Buffer.from(await res.body.arrayBuffer());
    const parsed = JSON.parse(body.toString()) as unknown[];
    if (res.statusCode !== 200 || parsed.length !== INSTANCES) {
      throw new Error(
        `expected ${INSTANCES} passing instances, got HTTP ${res.statusCode} with ${parsed.length}`,
      );
    }
    saveAnswer(file, body, res.headers);
    baseline = await spawnPinned(SERVER_CPU, [import.meta.filename, '--serve', file], /baseline on (\S+)/);
    const targets = { agent: `${agent.url}${PATH}`, baseline: `${baseline.match}${PATH}` };
    // the same bytes from both, checked once
    const b = Buffer.from(await (await request(targets.baseline)).body.arrayBuffer());
    if (!b.equals(body)) throw new Error('baseline body differs from the agent body');

    for (const u of Object.values(targets)) wrk(u, 2); // warm-up: JIT, caches, connection setup paths
    const results: Record<keyof typeof targets, WrkResult[]> = { agent: [], baseline: [] };
    // CPU each server spent per answered request (µs): on a shared machine req/s says how much CPU the server
    // got, this says what a request costs it — their ratio is what req/s would be with a core each.
    const pids: Record<keyof typeof targets, number | undefined> = {
      agent: on ? on.pid : (agent as Awaited<ReturnType<typeof startAgent>>).pid,
      baseline: baseline.pid,
    };
    const cpuPerReq: Record<keyof typeof targets, number[]> = { agent: [], baseline: [] };
    const measure = (k: keyof typeof targets) => {
      const pid = pids[k];
      const c0 = pid ? cpuSeconds(pid) : 0;
      const w = wrk(targets[k], DURATION);
      if (pid) cpuPerReq[k].push(((cpuSeconds(pid) - c0) / (w.rps * DURATION)) * 1e6);
      results[k].push(w);
    };
    for (let r = 0; r < runs; r++) {
      // alternate, so drift on a shared VM hits both sides alike
      measure('agent');
      measure('baseline');
    }
    const rps = (k: keyof typeof targets) => median(results[k].map((x) => x.rps));
    const p99 = (k: keyof typeof targets) => median(results[k].map((x) => x.p99Ms));
    const p50 = (k: keyof typeof targets) => median(results[k].map((x) => x.p50Ms));
    const ratio = rps('agent') / rps('baseline');
    const cpuUs = (k: keyof typeof targets) => median(cpuPerReq[k]);
    const cpuNote =
      cpuPerReq.agent.length > 0 && cpuPerReq.baseline.length > 0
        ? ` CPU per request (median; what a request costs each server whatever CPU it got): agent ${fmt(cpuUs('agent'), 1)} µs, node:http ${fmt(cpuUs('baseline'), 1)} µs — **${(cpuUs('baseline') / cpuUs('agent')).toFixed(2)}×** at equal CPU (diagnostic; the target is the req/s ratio).`
        : '';
    const errs = [...results.agent, ...results.baseline].map((x) => x.errors).filter(Boolean);
    const row = (name: string, k: keyof typeof targets) => [
      name,
      fmt(rps(k)),
      fmt(p50(k), 2),
      fmt(p99(k), 2),
      results[k].map((x) => fmt(x.rps)).join(' / '),
    ];
    return [
      `### HTTP read: \`GET ${PATH}\` (${INSTANCES} passing instances, ${fmt(body.length)} B body)`,
      '',
      `Command: \`taskset ${wrkArgs('<url>', DURATION).join(' ')}\`, ${runs} run(s) each after a 2 s warm-up, agent and baseline alternating; median shown. Agent: ${label} on CPU ${SERVER_CPU}; baseline: \`node:http\` on CPU ${SERVER_CPU} serving the agent's body and headers from a Buffer.`,
      '',
      table(
        ['server', 'req/s', 'p50 ms', 'p99 ms', 'runs (req/s)'],
        [row('phare agent', 'agent'), row('bare node:http, same bytes', 'baseline')],
      ),
      '',
      `Ratio agent / node:http: **${ratio.toFixed(2)}×** — target ≥ ${TARGET_RATIO}×: ${verdict(
        ratio >= TARGET_RATIO,
        `by ${fmt((TARGET_RATIO - ratio) * 100, 0)} points`,
      )}.${cpuNote} Reference (node:http serving a pre-serialized 50-instance body, measured before the suite): 16,292 req/s, p99 9.78 ms.${
        errs.length ? `\n\nwrk reported errors: ${errs.join(' | ')}` : ''
      }`,
    ].join('\n');
  } finally {
    await baseline?.stop();
    if (!on) await (agent as Awaited<ReturnType<typeof startAgent>>).stop();
    removeAnswer(file);
  }
}

if (isMain(import.meta)) {
  if (process.argv[2] === '--serve') {
    exitWithParent();
    serve(process.argv[3] as string);
  } else {
    await benchMain(run);
  }
}
