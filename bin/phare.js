#!/usr/bin/env node
// Entry point of the `phare` CLI.
//
// In a checkout (src/ present) it runs the TypeScript sources directly, so working on Phare needs no build
// step; the published package has no src/ and runs the compiled dist/. The version check comes first and
// uses nothing newer than Node 18, so an old Node prints one line instead of a stack trace.
import { existsSync } from 'node:fs';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  process.stderr.write(`phare needs Node >= 22.19; this is ${process.version}\n`);
  process.exit(1);
}

// `phare agent` is a long-running process holding a small live set (about 65 MiB with 10,000 checks) and
// allocating fast (1,000 probes/s). V8's defaults size the heap for throughput of short programs: a young
// generation of up to 2 × 64 MiB, allocation-site pretenuring that moves per-probe garbage straight into the
// old generation, and an old generation allowed to grow to ~4× what is live between full GCs. That made RSS
// 450–500 MiB at 10,000 HTTP checks (BENCHMARKS.md, "Agent memory"). These flags size it for the agent
// at no measured CPU cost; they only take effect at start-up, so the agent command re-executes itself once
// with them (same PID, same stdio: process.execve). MALLOC_ARENA_MAX=2 keeps glibc from giving each of
// Node's threads its own malloc arena full of freed memory (~30 MiB of RSS here). Together: RSS under
// 200 MiB at 10,000 checks. Settings of the user's own (flags on the command line or in NODE_OPTIONS, the
// variable in the environment) win; with such flags nothing is re-executed.
const AGENT_V8_FLAGS = [
  '--max-semi-space-size=8',
  '--no-allocation-site-pretenuring',
  '--heap-growing-percent=30',
];
const ownFlags = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`;
if (
  process.argv[2] === 'agent' &&
  typeof process.execve === 'function' &&
  !/semi-space|heap-growing|allocation-site-pretenuring|optimize-for-size/.test(ownFlags)
) {
  process.execve(
    process.execPath,
    [process.execPath, ...AGENT_V8_FLAGS, ...process.execArgv, ...process.argv.slice(1)],
    { MALLOC_ARENA_MAX: '2', ...process.env },
  );
}

const module = await import('node:module');
module.enableCompileCache?.();
const fromSource = existsSync(new URL('../src/cli/main.ts', import.meta.url));
const { main } = await import(fromSource ? '../src/cli/main.ts' : '../dist/cli/main.js');
process.exitCode = await main(process.argv.slice(2));
