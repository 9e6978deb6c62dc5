/**
 * Helpers of the fault tests (test/faults/): a small tmpfs mounted for real (so "disk full" is the kernel's
 * ENOSPC, not a simulation) and a way to fill it.
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statfsSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { REPO_ROOT } from './agent.ts';

/** A mounted tmpfs; `unmount()` is idempotent. */
export interface Tmpfs {
  path: string;
  unmount(): void;
}

/**
 * Mounts a tmpfs of `sizeBytes` on a new directory (needs root, as CI has). Where it cannot be mounted the
 * test is skipped locally, and fails under CI=true: a fault test whose fault cannot be produced proves nothing.
 */
export function mountTmpfs(t: TestContext, sizeBytes: number): Tmpfs | undefined {
  const path = mkdtempSync(join(tmpdir(), 'phare-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', path], { stdio: 'pipe' });
  } catch (err) {
    rmSync(path, { recursive: true, force: true });
    const why = `cannot mount a tmpfs (root needed): ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
    if (process.env['CI'] === 'true') throw new Error(why);
    t.skip(why);
    return undefined;
  }
  let mounted = true;
  return {
    path,
    unmount() {
      if (!mounted) return;
      mounted = false;
      execFileSync('umount', ['-l', path], { stdio: 'pipe' });
      rmSync(path, { recursive: true, force: true });
    },
  };
}

/** Fills the filesystem holding `dir` until the kernel answers ENOSPC; returns a function that frees it. */
export function fillDisk(dir: string): () => void {
  const file = join(dir, 'filler');
  const fd = openSync(file, 'a');
  try {
    const { bavail, bsize } = statfsSync(dir);
    const chunk = Buffer.alloc(64 * 1024);
    let left = Number(bavail) * Number(bsize);
    try {
      while (left > 0) left -= writeSync(fd, chunk, 0, Math.min(chunk.length, Math.max(left, 4096)));
      // whatever statfs did not count: keep writing small pieces until the kernel refuses
      for (;;) writeSync(fd, chunk, 0, 512);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    }
  } finally {
    closeSync(fd);
  }
  return () => unlinkSync(file);
}

/**
 * Runs `phare agent` expecting it to refuse to start: resolves with its exit code and everything it printed
 * (rejects if it is still running after `timeoutMs`, killing it).
 */
export function agentRefusal(
  args: string[],
  timeoutMs = 20_000,
): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'phare.js'), 'agent', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, PHARE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => {
    output += String(d);
  });
  child.stderr.on('data', (d) => {
    output += String(d);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the agent did not refuse to start within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
