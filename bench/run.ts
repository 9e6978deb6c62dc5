/**
 * `npm run bench`: every benchmark in sequence, each in its own process (so one's sockets, heap and JIT
 * state never colour the next), then one markdown report on stdout and in bench/results/latest.md.
 *
 *   npm run bench                          # 10 s per measured run (about 8 minutes in all)
 *   BENCH_DURATION=5 npm run bench
 *   BENCH_QUICK=1 npx node bench/run.ts    # smoke run, ~2 s per measurement; written to bench/results/tmp/quick.md
 *
 * bench/dns.ts (the DNS benchmark) is run too when it exists; its markdown is included as is.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DURATION, machine, QUICK, REPO_ROOT } from './lib.ts';

const BENCHES = ['http', 'register', 'blocking', 'checks', 'dns'];

interface Outcome {
  name: string;
  ok: boolean;
  markdown: string;
  seconds: number;
}

function runOne(name: string): Promise<Outcome> {
  const file = join(REPO_ROOT, 'bench', `${name}.ts`);
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        BENCH_NO_HEADER: '1',
        BENCH_DURATION: String(DURATION),
        // bench/dns.ts has its own knob
        DNS_BENCH_SECONDS: process.env.DNS_BENCH_SECONDS ?? String(DURATION),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      process.stderr.write(d);
    });
    // a hung benchmark must not hang the run
    const limitMs = (QUICK ? 120 : 900) * 1000;
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const seconds = (performance.now() - started) / 1000;
      const ok = code === 0;
      const markdown = ok
        ? out.trim()
        : `### ${name}: FAILED (${signal ?? `exit ${code}`} after ${seconds.toFixed(0)} s)\n\n\`\`\`\n${(err || out).trim().slice(-2000)}\n\`\`\``;
      resolve({ name, ok, markdown, seconds });
    });
  });
}

async function main(): Promise<number> {
  const header = [
    `## Phare benchmarks${QUICK ? ' (BENCH_QUICK=1 smoke run: figures are not meaningful)' : ''}`,
    '',
    machine(),
    `- command: \`${QUICK ? 'BENCH_QUICK=1 ' : ''}${process.env.BENCH_DURATION ? `BENCH_DURATION=${process.env.BENCH_DURATION} ` : ''}npm run bench\` (${DURATION} s per measured run)`,
  ].join('\n');
  process.stdout.write(`${header}\n`);
  const sections: string[] = [header];
  let failed = 0;
  for (const name of BENCHES) {
    if (!existsSync(join(REPO_ROOT, 'bench', `${name}.ts`))) continue;
    process.stderr.write(`bench: ${name} …\n`);
    const o = await runOne(name);
    if (!o.ok) failed++;
    process.stderr.write(`bench: ${name} ${o.ok ? 'done' : 'FAILED'} in ${o.seconds.toFixed(0)} s\n`);
    const section = `${o.markdown}\n\n_(${name}: ${o.seconds.toFixed(0)} s)_`;
    sections.push(section);
    process.stdout.write(`\n${section}\n`);
  }
  const dir = QUICK ? join(REPO_ROOT, 'bench', 'results', 'tmp') : join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const out = join(dir, QUICK ? 'quick.md' : 'latest.md');
  writeFileSync(out, `${sections.join('\n\n')}\n`);
  process.stderr.write(`bench: report written to ${out}${failed ? `; ${failed} benchmark(s) FAILED` : ''}\n`);
  return failed ? 1 : 0;
}

process.exitCode = await main();
