/**
 * DNS benchmark: dnsperf against the agent's DNS server and against dnsmasq serving the same records,
 * A and SRV queries, each server pinned to CPU 1 and dnsperf to CPU 0, as
 * bench/http.ts does. Prints a markdown table with the QPS of each and the ratio.
 *
 *   npx node bench/dns.ts                  # 10 s per run
 *   DNS_BENCH_SECONDS=3 npx node bench/dns.ts
 *
 * Needs Debian's `dnsperf`, `dnsmasq-base` and `taskset` (util-linux) on a machine with 2+ cores.
 * `--serve` is the child mode: it starts only the agent's DNS server and prints its port.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Catalog } from '../src/agent/catalog/index.ts';
import { createDnsServer } from '../src/agent/dns/index.ts';
import { createMemoryStore } from '../src/agent/store/index.ts';
import { exitWithParent } from './lib.ts';

const SECONDS = Number(process.env.DNS_BENCH_SECONDS ?? 10);
const SERVER_CPU = process.env.SERVER_CPU ?? '1';
const LOADGEN_CPU = process.env.LOADGEN_CPU ?? '0';
const CLIENTS = '4';
const OUTSTANDING = '100';

/** The records both servers hold: `api` on three nodes, `web` and `db` on one each. */
const API = [0, 1, 2].map((i) => ({ node: `node-00${i}`, ip: `10.0.0.${i + 1}` }));
const SINGLES = [
  { name: 'web', node: 'node-web', ip: '10.0.1.1' },
  { name: 'db', node: 'node-db', ip: '10.0.2.1' },
];

async function serve(): Promise<void> {
  const catalog = await Catalog.open({
    store: createMemoryStore(),
    node: { name: 'bench', id: 'bench', address: '127.0.0.1' },
    datacenter: 'dc1',
  });
  const register = (node: string, ip: string, name: string) =>
    catalog.catalogRegister({
      node: { id: node, node, address: ip, taggedAddresses: {}, meta: {} },
      service: {
        id: `${name}-${node}`,
        name,
        kind: '',
        tags: [],
        address: '',
        port: 8080,
        meta: {},
        weights: { Passing: 1, Warning: 1 },
        enableTagOverride: false,
      },
      checks: [],
    });
  for (const a of API) await register(a.node, a.ip, 'api');
  for (const s of SINGLES) await register(s.node, s.ip, s.name);
  const dns = createDnsServer({
    catalog,
    logger: pino({ level: 'warn' }),
    domain: 'consul',
    datacenter: 'dc1',
  });
  const { port } = await dns.listen({ host: '127.0.0.1', port: 0 });
  process.stdout.write(`${port}\n`);
  process.on('SIGTERM', () => {
    void dns.close().then(() => process.exit(0));
  });
}

interface Result {
  qps: number;
  latencyMs: number;
  lost: string;
}

function dnsperf(port: number, file: string, seconds: number): Result {
  const out = execFileSync(
    'taskset',
    [
      '-c',
      LOADGEN_CPU,
      'dnsperf',
      '-s',
      '127.0.0.1',
      '-p',
      String(port),
      '-d',
      file,
      '-l',
      String(seconds),
      '-c',
      CLIENTS,
      '-q',
      OUTSTANDING,
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const qps = Number(/Queries per second:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
  const lat = Number(/Average Latency \(s\):\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
  const lost = /Queries lost:\s+\d+ \(([\d.]+%)\)/.exec(out)?.[1] ?? '?';
  return { qps, latencyMs: lat * 1000, lost };
}

function dig(port: number, name: string, type: string): string {
  try {
    return execFileSync(
      'dig',
      ['+short', '+time=1', '+tries=1', '-p', String(port), '@127.0.0.1', name, type],
      {
        encoding: 'utf8',
      },
    ).trim();
  } catch {
    return '';
  }
}

async function waitAnswer(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (dig(port, 'api.service.consul', 'A') !== '') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no DNS answer on port ${port}`);
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function startAgentDns(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn('taskset', ['-c', SERVER_CPU, process.execPath, import.meta.filename, '--serve'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /^(\d+)\n/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`agent DNS child exited with ${code}`)));
  });
  return { child, port };
}

function freePortGuess(): number {
  return 20000 + Math.floor(Math.random() * 20000);
}

async function startDnsmasq(dir: string): Promise<{ child: ChildProcess; port: number }> {
  const hosts = join(dir, 'hosts');
  writeFileSync(
    hosts,
    [
      ...API.map((a) => `${a.ip} api.service.consul ${a.node}.node.dc1.consul`),
      ...SINGLES.map((s) => `${s.ip} ${s.name}.service.consul ${s.node}.node.dc1.consul`),
    ].join('\n') + '\n',
  );
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = freePortGuess();
    const child = spawn(
      'taskset',
      [
        '-c',
        SERVER_CPU,
        'dnsmasq',
        '--keep-in-foreground',
        '--conf-file=/dev/null',
        '--no-resolv',
        '--no-hosts',
        `--addn-hosts=${hosts}`,
        '--listen-address=127.0.0.1',
        '--bind-interfaces',
        `--port=${port}`,
        '--local=/consul/',
        '--cache-size=1000',
        `--pid-file=${join(dir, 'dnsmasq.pid')}`,
        `--log-facility=${join(dir, 'dnsmasq.log')}`,
        ...(process.getuid?.() === 0 ? ['--user=root'] : []),
        ...API.map((a) => `--srv-host=_api._tcp.service.consul,${a.node}.node.dc1.consul,8080,1,1`),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    try {
      await Promise.race([
        waitAnswer(port),
        new Promise((_, reject) => child.once('exit', (c) => reject(new Error(`dnsmasq exited with ${c}`)))),
      ]);
      return { child, port };
    } catch {
      await stop(child);
    }
  }
  throw new Error('dnsmasq did not start');
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'phare-bench-dns-'));
  const files = {
    A: join(dir, 'queries-a.txt'),
    SRV: join(dir, 'queries-srv.txt'),
  };
  writeFileSync(files.A, 'api.service.consul A\nweb.service.consul A\ndb.service.consul A\n');
  writeFileSync(files.SRV, '_api._tcp.service.consul SRV\n');
  const results: Record<string, Record<'A' | 'SRV', Result>> = {};
  try {
    for (const name of ['phare agent', 'dnsmasq'] as const) {
      const server = name === 'dnsmasq' ? await startDnsmasq(dir) : await startAgentDns();
      try {
        await waitAnswer(server.port);
        const srv = dig(server.port, '_api._tcp.service.consul', 'SRV').split('\n').length;
        if (srv !== 3) throw new Error(`${name}: expected 3 SRV answers, got ${srv}`);
        results[name] = { A: { qps: 0, latencyMs: 0, lost: '' }, SRV: { qps: 0, latencyMs: 0, lost: '' } };
        for (const qt of ['A', 'SRV'] as const) {
          dnsperf(server.port, files[qt], 2); // warm-up (JIT, caches)
          (results[name] as Record<'A' | 'SRV', Result>)[qt] = dnsperf(server.port, files[qt], SECONDS);
        }
      } finally {
        await stop(server.child);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const lines = [
    `### DNS: dnsperf -c ${CLIENTS} -q ${OUTSTANDING}, ${SECONDS} s per run, server on CPU ${SERVER_CPU}, dnsperf on CPU ${LOADGEN_CPU}`,
    '',
    '| query | phare agent QPS | dnsmasq QPS | ratio | phare avg latency ms | dnsmasq avg latency ms | lost (phare / dnsmasq) |',
    '|---|---:|---:|---:|---:|---:|---|',
  ];
  for (const qt of ['A', 'SRV'] as const) {
    const p = results['phare agent']?.[qt] as Result;
    const d = results.dnsmasq?.[qt] as Result;
    lines.push(
      `| ${qt} | ${Math.round(p.qps)} | ${Math.round(d.qps)} | ${(p.qps / d.qps).toFixed(2)}× | ${p.latencyMs.toFixed(2)} | ${d.latencyMs.toFixed(2)} | ${p.lost} / ${d.lost} |`,
    );
  }
  lines.push('', 'Target: ≥ 0.45× dnsmasq (issue 4).');
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (process.argv.includes('--serve')) {
  exitWithParent();
  await serve();
} else await main();
