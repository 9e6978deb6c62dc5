/**
 * Shared plumbing of the benchmarks: CPU pinning, spawning a pinned agent, wrk runs, percentiles, /proc
 * sampling and markdown. The method: on this 2-core box the server
 * gets CPU 1 and the load generator CPU 0, so each side has exactly one core.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';

export const REPO_ROOT = join(import.meta.dirname, '..');
export const SERVER_CPU = process.env.SERVER_CPU ?? '1';
export const LOADGEN_CPU = process.env.LOADGEN_CPU ?? '0';
/** `BENCH_QUICK=1`: a ~2 s smoke run of everything. */
export const QUICK = process.env.BENCH_QUICK === '1';
/** Seconds per measured run (`BENCH_DURATION`, default 10; 2 under `BENCH_QUICK=1`). */
export const DURATION = QUICK ? 2 : Number(process.env.BENCH_DURATION ?? 10);

/**
 * Pins this process (all its threads) to the load-generator CPU, so a benchmark run alone behaves like
 * one run from bench/run.ts. Children inherit the mask; the agent is started under its own `taskset`.
 */
export function pinSelfToLoadgen(): void {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', LOADGEN_CPU, String(process.pid)], { stdio: 'ignore' });
  } catch {
    // no taskset or a 1-CPU box: run unpinned; the machine line in the report shows nproc
  }
}

/** A process started by a benchmark. */
export interface Proc {
  child: ChildProcess;
  /** The OS pid of the node process (taskset execs, so it is the child's pid). */
  pid: number;
  output(): string;
  stop(): Promise<void>;
}

/**
 * For a bench's child mode (a backend, a baseline server): exit once the bench that started it is gone. A
 * bench killed by a signal runs no cleanup, and its children (pinned to the server CPU) would go on taking a
 * share of it from every later run; such a child is re-parented, so its parent pid changes.
 *
 * @example
 * if (process.argv[2] === '--serve') { exitWithParent(); serve(); }
 */
export function exitWithParent(): void {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 1000).unref();
}

/** Stops a child: SIGTERM, then SIGKILL after `graceMs`. */
export function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Spawns `node <args>` pinned to `cpu` and resolves once its output matches `ready` (first group returned).
 */
export async function spawnPinned(
  cpu: string,
  args: string[],
  ready: RegExp,
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<Proc & { match: string }> {
  const child = spawn('taskset', ['-c', cpu, process.execPath, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const onData = (d: Buffer) => {
    out += d.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const match = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(new Error(`${args.join(' ')}: not ready within ${options.timeoutMs ?? 20_000} ms:\n${out}`)),
      options.timeoutMs ?? 20_000,
    );
    const check = () => {
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout?.off('data', check);
        child.stderr?.off('data', check);
        resolve(m[1] ?? m[0]);
      }
    };
    child.stdout?.on('data', check);
    child.stderr?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(' ')} exited with ${code}:\n${out}`));
    });
  });
  return { child, pid: child.pid as number, match, output: () => out, stop: () => stopChild(child) };
}

/** A pinned agent child process. */
export interface BenchAgent extends Proc {
  url: string;
  /** The mode it runs in, for table rows: `sqlite` or `memory (--dev)`. */
  store: string;
}

/**
 * Starts `phare agent` on `127.0.0.1:0` pinned to the server CPU: `--dev` (memory store) or with a fresh
 * temp `--data-dir` (the durable sqlite store) under `dataBase` (default the OS temp dir), DNS off so it does
 * not compete for the port.
 */
export async function startAgent(
  mode: 'dev' | 'sqlite',
  extra: string[] = [],
  dataBase: string = tmpdir(),
): Promise<BenchAgent> {
  const dir = mode === 'sqlite' ? mkdtempSync(join(dataBase, 'phare-bench-data-')) : undefined;
  const args = [
    // e.g. BENCH_AGENT_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the agent under load
    ...(process.env.BENCH_AGENT_NODE_ARGS ?? '').split(' ').filter(Boolean),
    join(REPO_ROOT, 'bin', 'phare.js'),
    'agent',
    '--http-addr',
    '127.0.0.1:0',
    '--dns-addr',
    '',
    '--node',
    'bench',
    '--log-level',
    'warn',
    ...(dir ? ['--data-dir', dir] : ['--dev']),
    ...extra,
  ];
  const p = await spawnPinned(SERVER_CPU, args, /HTTP API: (http:\/\/[^/\s]+)\//);
  return {
    ...p,
    url: p.match,
    store: dir ? 'sqlite' : 'memory (--dev)',
    async stop() {
      await p.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Result of one wrk run. */
export interface WrkResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Non-2xx responses and socket errors, as wrk reports them ('' if none). */
  errors: string;
  raw: string;
}

function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(v.trim());
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

/** The exact wrk command line a run uses (printed in the reports). */
export function wrkArgs(
  url: string,
  seconds: number,
  connections = 50,
  headers: Record<string, string> = {},
): string[] {
  return [
    '-c',
    LOADGEN_CPU,
    'wrk',
    '-t1',
    `-c${connections}`,
    `-d${seconds}s`,
    '--timeout',
    '10s',
    '--latency',
    ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]),
    url,
  ];
}

/** Runs wrk pinned to the load-generator CPU and parses req/s, p50 and p99 from `--latency`. */
export function wrk(
  url: string,
  seconds: number,
  connections = 50,
  headers: Record<string, string> = {},
): WrkResult {
  const raw = execFileSync('taskset', wrkArgs(url, seconds, connections, headers), {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: (seconds + 30) * 1000,
  });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(raw)?.[1] ?? Number.NaN);
  const p50Ms = toMs(/^\s+50%\s+(\S+)/m.exec(raw)?.[1] ?? '');
  const p99Ms = toMs(/^\s+99%\s+(\S+)/m.exec(raw)?.[1] ?? '');
  const errors = [/Non-2xx or 3xx responses: \d+/.exec(raw)?.[0], /Socket errors: [^\n]+/.exec(raw)?.[0]]
    .filter(Boolean)
    .join('; ');
  return { rps, p50Ms, p99Ms, errors, raw };
}

/** The `q`-quantile (0..1) of `values` by nearest rank; NaN when empty. Sorts a copy. */
export function quantile(values: ArrayLike<number>, q: number): number {
  if (values.length === 0) return Number.NaN;
  const s = Float64Array.from(values).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
}

/** The median of a few numbers. */
export function median(values: number[]): number {
  return quantile(values, 0.5);
}

/**
 * The median of `xs` with a distribution-free 95 % confidence interval: the order statistics at
 * n/2 ∓ 0.98·√n, between which the median lies with ≥ 95 % probability whatever the distribution.
 */
export function medianCi(xs: number[]): { median: number; lo: number; hi: number } {
  const s = [...xs].sort((a, b) => a - b);
  const h = 0.98 * Math.sqrt(s.length);
  return {
    median: quantile(s, 0.5),
    lo: s[Math.max(0, Math.floor(s.length / 2 - h) - 1)] ?? Number.NaN,
    hi: s[Math.min(s.length - 1, Math.ceil(s.length / 2 + h))] ?? Number.NaN,
  };
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // fields after the parenthesised comm; utime and stime are fields 14 and 15 (1-based)
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(rest[11]) + Number(rest[12]);
  return ticks / clockTicks();
}

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** Resident set size of a process in MiB, from /proc/<pid>/status. */
export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}

/** Formats a number with thousands separators and `digits` decimals. */
export function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return 'n/a';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A markdown table. */
export function table(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  const align = header.map((_, i) => (i === 0 ? '---' : '---:'));
  return [line(header), line(align), ...rows.map(line)].join('\n');
}

/** `met` / `missed by …` against a target. */
export function verdict(ok: boolean, miss = ''): string {
  return ok ? '**met**' : `**missed**${miss ? ` (${miss})` : ''}`;
}

/** The machine lines every report starts with. Call before pinning (`nproc` honours the affinity mask). */
export function machine(): string {
  let model = cpus()[0]?.model ?? '?';
  try {
    model = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? model;
  } catch {}
  let nproc = String(cpus().length);
  try {
    nproc = execFileSync('nproc', { encoding: 'utf8' }).trim();
  } catch {}
  let kernel = '';
  try {
    kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  } catch {}
  let commit = '';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    }).trim();
  } catch {}
  const mem = (() => {
    try {
      return `${Math.round(Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]) / 1048576)} GiB RAM`;
    } catch {
      return '';
    }
  })();
  let load = '';
  try {
    load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {}
  return [
    `- machine: \`nproc\` = ${nproc}, CPU "${model}", ${mem}, kernel ${kernel}; load average at start ${load}`,
    `- node ${process.version}; phare commit ${commit}; ${new Date().toISOString()}`,
    `- pinning: agent / server on CPU ${SERVER_CPU}, load generator on CPU ${LOADGEN_CPU} (\`taskset\`)`,
  ].join('\n');
}

/** The load average now (1, 5, 15 min), as `uptime` shows it. */
export function loadAverage(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'n/a';
  }
}

/** Sleeps. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** True when this module file is the process entry point (a benchmark run alone). */
export function isMain(meta: ImportMeta): boolean {
  return process.argv[1] !== undefined && meta.filename === process.argv[1];
}

/**
 * The entry point of a benchmark run alone: machine lines (unless `BENCH_NO_HEADER=1`, as bench/run.ts
 * sets), then pin this process to the loadgen CPU and print the section `run` returns.
 */
export async function benchMain(run: () => Promise<string>): Promise<void> {
  const header = process.env.BENCH_NO_HEADER === '1' ? '' : `${machine()}\n\n`;
  pinSelfToLoadgen();
  process.stdout.write(`${header}${await run()}\n`);
}

/**
 * Busy and total jiffies of all CPUs so far, from /proc/stat (busy = everything but idle and iowait; steal —
 * time the hypervisor gave another guest — counts as busy and is also given alone).
 */
export function systemJiffies(): { busy: number; total: number; steal: number } {
  const cpu =
    readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
  return { busy: total - idle, total, steal: cpu[7] ?? 0 };
}

/** CPU seconds this process's reaped children (and their reaped descendants) used, from /proc/self/stat. */
export function childrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[13]) + Number(rest[14])) / clockTicks();
}

/** Fraction (0..1) of all CPUs busy over `ms`, whoever uses them. */
export async function machineBusy(ms = 1000): Promise<number> {
  const a = systemJiffies();
  await sleep(ms);
  const b = systemJiffies();
  return (b.busy - a.busy) / Math.max(1, b.total - a.total);
}

/** Headers a baseline server writes itself (per connection or per answer): not part of a saved answer. */
const OWN_HEADERS = new Set(['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding']);

/**
 * Saves an agent's answer as `<file>.json` (the body) and `<file>.headers` (the headers a baseline must repeat),
 * for a bare node:http/https baseline child to serve the same bytes ({@link loadAnswer}).
 */
export function saveAnswer(
  file: string,
  body: Buffer,
  headers: Record<string, string | string[] | undefined>,
): void {
  const kept: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (!OWN_HEADERS.has(k) && v) kept[k] = String(v);
  writeFileSync(`${file}.json`, body);
  writeFileSync(`${file}.headers`, JSON.stringify(kept));
}

/** The answer {@link saveAnswer} saved. */
export function loadAnswer(file: string): { body: Buffer; headers: Record<string, string> } {
  return {
    body: readFileSync(`${file}.json`),
    headers: JSON.parse(readFileSync(`${file}.headers`, 'utf8')) as Record<string, string>,
  };
}

/** Removes what {@link saveAnswer} wrote. */
export function removeAnswer(file: string): void {
  rmSync(`${file}.json`, { force: true });
  rmSync(`${file}.headers`, { force: true });
}
