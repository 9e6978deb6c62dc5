/**
 * Test helpers: a real agent on 127.0.0.1 port 0, in-process or as a child process (for signals and kill -9).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { pino } from 'pino';
import { type RawAgentConfig, resolveAgentConfig } from '../../src/agent/config/index.ts';
import { type RunningAgent, startAgent } from '../../src/agent/index.ts';

export const REPO_ROOT = join(import.meta.dirname, '..', '..');
export const NODE_BIN = process.execPath;

/**
 * Starts an in-process agent on a free port (DNS off unless asked) and hands back the whole RunningAgent,
 * internals included, for tests of the agent itself. Dev mode (memory store) unless `dataDir` is given.
 * Tests of the SDK use the public `startTestAgent` of phare/testing, as users do.
 */
export async function startAgentInProcess(
  options: { dataDir?: string; flags?: RawAgentConfig } = {},
): Promise<RunningAgent & { url: string }> {
  const flags: RawAgentConfig = {
    'http-addr': '127.0.0.1:0',
    'dns-addr': '',
    node: 'test-node',
    'log-level': 'silent',
    ...(options.dataDir ? { 'data-dir': options.dataDir } : { dev: true }),
    ...options.flags,
  };
  const config = resolveAgentConfig({ flags, env: {} });
  const agent = await startAgent({ config, logger: pino({ level: 'silent' }) });
  return Object.assign(agent, { url: agent.httpUrl });
}

/** A temporary directory removed by the returned function. */
export function tempDir(prefix = 'phare-test-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** An agent running as a child process (`node bin/phare.js agent …`). */
export interface AgentProcess {
  child: ChildProcess;
  url: string;
  port: number;
  /** Everything the process printed. */
  output(): string;
  /** Resolves with the exit code / signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `phare agent` with `args` and waits until it prints its HTTP URL. */
export async function spawnAgent(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  options: { prefix?: string[] } = {},
): Promise<AgentProcess> {
  // `prefix` runs the agent under another command, e.g. `prlimit --nofile=256:256 --`.
  const [cmd, ...rest] = [...(options.prefix ?? []), NODE_BIN];
  const child = spawn(cmd as string, [...rest, join(REPO_ROOT, 'bin', 'phare.js'), 'agent', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, PHARE_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => {
    out += String(d);
  });
  child.stderr?.on('data', (d) => {
    out += String(d);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent did not start within 15s:\n${out}`)), 15_000);
    const onData = () => {
      const m = /HTTP API: (http:\/\/[^/\s]+)\//.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited with ${code} before starting:\n${out}`));
    });
  });
  return { child, url, port: Number(new URL(url).port), output: () => out, exited };
}

/**
 * A starter of child-process agents named `node`, each on the data dir it is given (loopback HTTP on a free
 * port, no DNS); every agent it started is killed with SIGKILL when the test file ends, whatever happened.
 *
 * @example
 * const start = dataDirAgents('dur-node');
 * const a = await start(dir.path);
 */
export function dataDirAgents(node: string): (dataDir: string) => Promise<AgentProcess> {
  const children: AgentProcess[] = [];
  after(() => {
    for (const c of children)
      if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  });
  return async (dataDir) => {
    const a = await spawnAgent([
      '--data-dir',
      dataDir,
      '--http-addr',
      '127.0.0.1:0',
      '--dns-addr',
      '',
      '--node',
      node,
    ]);
    children.push(a);
    return a;
  };
}

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
