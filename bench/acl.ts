/**
 * Security benchmark (issue 14), two comparisons, each side by side in one run, pinned (agent/baseline on the
 * server CPU, wrk on the loadgen CPU), alternating so drift hits both alike:
 *
 * 1. Token-checked read: `GET /v1/health/service/web?passing` (50 passing instances) with an `X-Consul-Token`
 *    whose policy reads every service and node, on an agent with `--acl-enabled --acl-default-policy deny`,
 *    against the same read on an agent without ACLs. Target ≥ 0.9×.
 * 2. HTTPS keep-alive read: the same read over the agent's `--https-addr`, against a bare `node:https` server
 *    with the same certificate serving the agent's bytes from a Buffer. Target ≥ 0.8×.
 *
 *   npx node bench/acl.ts
 *
 * `--serve-https <file> <cert> <key>` is the child mode: the bare node:https baseline.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { makeTestCa } from '../test/helpers/certs.ts';
import { registerWeb } from './http.ts';
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
const MGMT = '5f0c4d1e-8a7b-4c2d-9e1f-0a1b2c3d4e5f';

function serveHttps(file: string, cert: string, key: string): void {
  const { body, headers } = loadAnswer(file);
  const server = createServer(
    { cert: readFileSync(cert), key: readFileSync(key), minVersion: 'TLSv1.2' },
    (_req, res) => {
      res.writeHead(200, { ...headers, 'content-length': body.length });
      res.end(body);
    },
  );
  server.keepAliveTimeout = 65_000;
  server.listen(0, '127.0.0.1', () => {
    const addr = server.address();
    process.stdout.write(
      `baseline on https://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}\n`,
    );
  });
  process.on('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

async function put(url: string, body: unknown, token: string): Promise<Record<string, string>> {
  const res = await request(url, {
    method: 'PUT',
    headers: { 'x-consul-token': token },
    body: JSON.stringify(body),
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`PUT ${url}: ${res.statusCode} ${text}`);
  return JSON.parse(text) as Record<string, string>;
}

/** A wrk run and the server's CPU time per answered request over it (µs, from /proc). */
type Run = WrkResult & { cpuUs: number };

/**
 * Alternating wrk runs of two targets. Each run also records the server process's CPU time per request:
 * on a shared machine the req/s of a pinned server falls whenever another process takes its core, while
 * the CPU it spends per request moves far less, so the report shows both.
 */
function compare(
  targets: Record<'a' | 'b', { url: string; pid: number; headers?: Record<string, string> }>,
  runs: number,
): Record<'a' | 'b', Run[]> {
  for (const t of Object.values(targets)) wrk(t.url, 2, 50, t.headers);
  const out: Record<'a' | 'b', Run[]> = { a: [], b: [] };
  const one = (t: (typeof targets)['a']): Run => {
    const before = cpuSeconds(t.pid);
    const w = wrk(t.url, DURATION, 50, t.headers);
    const cpu = cpuSeconds(t.pid) - before;
    return { ...w, cpuUs: (cpu / Math.max(1, w.rps * DURATION)) * 1e6 };
  };
  // ABBA: neither side always goes first (a side that runs right after the other's run inherits its
  // cache and scheduler state)
  for (let r = 0; r < runs; r++) {
    const order = r % 2 === 0 ? (['a', 'b'] as const) : (['b', 'a'] as const);
    for (const k of order) out[k].push(one(targets[k]));
  }
  return out;
}

function rows(results: Record<'a' | 'b', Run[]>, names: Record<'a' | 'b', string>) {
  const m = (k: 'a' | 'b', f: (x: Run) => number) => median(results[k].map(f));
  return (['a', 'b'] as const).map((k) => [
    names[k],
    fmt(m(k, (x) => x.rps)),
    fmt(
      m(k, (x) => x.p50Ms),
      2,
    ),
    fmt(
      m(k, (x) => x.p99Ms),
      2,
    ),
    fmt(
      m(k, (x) => x.cpuUs),
      1,
    ),
    results[k].map((x) => fmt(x.rps)).join(' / '),
  ]);
}

/** b's CPU per request over a's: the CPU-time form of the ratio (1 = the same cost per request). */
function cpuRatio(results: Record<'a' | 'b', Run[]>): number {
  return median(results.b.map((x) => x.cpuUs)) / median(results.a.map((x) => x.cpuUs));
}

/** Runs the benchmark; returns its markdown section. */
export async function run(): Promise<string> {
  const runs = QUICK ? 1 : Number(process.env.BENCH_HTTP_RUNS ?? 3);
  const ca = makeTestCa('Bench CA');
  const cert = ca.leaf('agent', { san: 'IP:127.0.0.1,DNS:localhost' });
  const file = join(tmpdir(), `phare-bench-acl-${process.pid}`);
  const acl = await startAgent('dev', [
    '--acl-enabled',
    '--acl-default-policy',
    'deny',
    '--acl-initial-management-token',
    MGMT,
    '--https-addr',
    '127.0.0.1:0',
    '--tls-cert-file',
    cert.certFile,
    '--tls-key-file',
    cert.keyFile,
  ]);
  const plain = await startAgent('dev');
  let baseline: Awaited<ReturnType<typeof spawnPinned>> | undefined;
  try {
    const httpsUrl = /HTTPS API: (https:\/\/[^/\s]+)\//.exec(acl.output())?.[1];
    if (!httpsUrl) throw new Error(`no HTTPS URL in the agent's output:\n${acl.output()}`);
    // a reader token: service_prefix "" and node_prefix "" read (what a discovery client gets)
    const pol = await put(
      `${acl.url}/v1/acl/policy`,
      {
        Name: 'reader',
        Rules: 'service_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }',
      },
      MGMT,
    );
    const token = (await put(`${acl.url}/v1/acl/token`, { Policies: [{ ID: pol.ID }] }, MGMT))
      .SecretID as string;
    await registerWebWithToken(acl.url, MGMT);
    await registerWeb(plain.url, INSTANCES);
    const withToken = await request(`${acl.url}${PATH}`, { headers: { 'x-consul-token': token } });
    const got = JSON.parse(await withToken.body.text()) as unknown[];
    if (withToken.statusCode !== 200 || got.length !== INSTANCES)
      throw new Error(`token read: HTTP ${withToken.statusCode} with ${got.length} instances`);

    // 1. token-checked vs no ACLs
    const tokenRuns = compare(
      {
        a: { url: `${acl.url}${PATH}`, pid: acl.pid, headers: { 'X-Consul-Token': token } },
        // the same request bytes on both sides: a client configured with a token sends it to any agent
        b: { url: `${plain.url}${PATH}`, pid: plain.pid, headers: { 'X-Consul-Token': token } },
      },
      runs,
    );
    const r1 = median(tokenRuns.a.map((x) => x.rps)) / median(tokenRuns.b.map((x) => x.rps));

    // 2. HTTPS agent vs bare node:https, same bytes (the plain agent's answer over TLS; the token read's bytes)
    const tls = new Agent({ connect: { ca: readFileSync(ca.caFile) } });
    const res = await request(`${httpsUrl}${PATH}`, {
      dispatcher: tls,
      headers: { 'x-consul-token': token },
    });
    const body = Buffer.from(await res.body.arrayBuffer());
    saveAnswer(file, body, res.headers);
    baseline = await spawnPinned(
      SERVER_CPU,
      [import.meta.filename, '--serve-https', file, cert.certFile, cert.keyFile],
      /baseline on (\S+)/,
    );
    const b = Buffer.from(
      await (await request(`${baseline.match}${PATH}`, { dispatcher: tls })).body.arrayBuffer(),
    );
    if (!b.equals(body)) throw new Error('baseline body differs from the agent body');
    await tls.close();
    const httpsRuns = compare(
      {
        a: { url: `${httpsUrl}${PATH}`, pid: acl.pid, headers: { 'X-Consul-Token': token } },
        b: { url: `${baseline.match}${PATH}`, pid: baseline.pid },
      },
      runs,
    );
    const r2 = median(httpsRuns.a.map((x) => x.rps)) / median(httpsRuns.b.map((x) => x.rps));
    const errs = [...tokenRuns.a, ...tokenRuns.b, ...httpsRuns.a, ...httpsRuns.b]
      .map((x) => x.errors)
      .filter(Boolean);
    const header = ['server', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'runs (req/s)'];
    return [
      `### ACL and HTTPS reads: \`GET ${PATH}\` (${INSTANCES} passing instances, ${fmt(body.length)} B body)`,
      '',
      `Command: \`taskset ${wrkArgs('<url>', DURATION, 50, { 'X-Consul-Token': '<token>' }).join(' ')}\`, ${runs} run(s) each after a 2 s warm-up, the two sides alternating; median shown. Agents: \`phare agent --dev\` on CPU ${SERVER_CPU}.`,
      '',
      `Token-checked read (\`--acl-enabled --acl-default-policy deny\`, a token with \`service_prefix "" read\` and \`node_prefix "" read\`) against the same read on an agent without ACLs:`,
      '',
      table(header, rows(tokenRuns, { a: 'ACL agent, with token', b: 'agent without ACLs' })),
      '',
      `Ratio: **${r1.toFixed(2)}×** — target ≥ 0.9×: ${verdict(r1 >= 0.9, `by ${fmt((0.9 - r1) * 100, 0)} points`)}. By CPU per request: ${cpuRatio(tokenRuns).toFixed(2)}×.`,
      '',
      `HTTPS keep-alive read (the ACL agent's \`--https-addr\`, TLS 1.3, EC P-256 certificate) against bare \`node:https\` with the same certificate serving the agent's bytes from a Buffer:`,
      '',
      table(header, rows(httpsRuns, { a: 'phare agent, HTTPS', b: 'bare node:https, same bytes' })),
      '',
      `Ratio: **${r2.toFixed(2)}×** — target ≥ 0.8×: ${verdict(r2 >= 0.8, `by ${fmt((0.8 - r2) * 100, 0)} points`)}. By CPU per request: ${cpuRatio(httpsRuns).toFixed(2)}×.${
        errs.length ? `\n\nwrk reported errors: ${errs.join(' | ')}` : ''
      }`,
    ].join('\n');
  } finally {
    await baseline?.stop();
    await acl.stop();
    await plain.stop();
    ca.remove();
    removeAnswer(file);
  }
}

/** registerWeb with a management token (the ACL agent denies anonymous writes). */
async function registerWebWithToken(url: string, token: string): Promise<void> {
  for (let i = 0; i < INSTANCES; i++) {
    const res = await request(`${url}/v1/agent/service/register`, {
      method: 'PUT',
      headers: { 'x-consul-token': token },
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

if (isMain(import.meta)) {
  if (process.argv[2] === '--serve-https') {
    exitWithParent();
    serveHttps(process.argv[3] as string, process.argv[4] as string, process.argv[5] as string);
  } else await benchMain(run);
}
