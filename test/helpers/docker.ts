/**
 * A private Docker engine for a test file, and the local base image its containers run.
 *
 * - `startDockerd()` runs Debian's dockerd (docker.io) with its own data root, exec root, pidfile and unix
 *   socket under a temp dir, no iptables/forwarding/masquerading, the cgroupfs driver, no default bridge
 *   (two test files' engines would fight over docker0) and a random 10.x address pool for user networks.
 *   It is stopped by its PID. One per test file at most.
 * - No image registry is reachable here: `baseImage(engine)` imports a Debian bookworm minbase rootfs
 *   (debootstrap) with the `node` devDependency's binary at /usr/local/bin/node. The rootfs tarball is
 *   built once and cached on disk under a content key (debootstrap version + node version + recipe), so
 *   test files and reruns share it; a file lock keeps concurrent test files from building it twice.
 */

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import lockfile from 'proper-lockfile';
import { Agent, request } from 'undici';
import { waitFor } from './agent.ts';
import { dependencySkip } from './requires.ts';

const run = promisify(execFile);

/** Debian's docker CLI (a newer one elsewhere on PATH may refuse the 20.10 engine's API version). */
export const DOCKER_CLI = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
const DOCKERD = ['/usr/sbin/dockerd', '/usr/bin/dockerd'].find((p) => existsSync(p));
const DEBOOTSTRAP = ['/usr/sbin/debootstrap', '/usr/bin/debootstrap'].find((p) => existsSync(p));

/** `false`, or the skip reason (throws in CI) when dockerd, iptables or debootstrap is missing. */
export function dockerSkip(): string | false {
  const missing: string[] = [];
  if (!DOCKERD) missing.push('dockerd (apt-get install docker.io)');
  if (!existsSync('/usr/sbin/iptables')) missing.push('iptables (apt-get install iptables)');
  if (!DEBOOTSTRAP) missing.push('debootstrap (apt-get install debootstrap)');
  if (process.getuid?.() !== 0) missing.push('root (dockerd needs it)');
  return dependencySkip(missing.join(', ') || undefined);
}

/** A running private engine. */
export interface Dockerd {
  /** The engine's unix socket path. */
  readonly socket: string;
  /** `unix://…` for `--docker` and DOCKER_HOST. */
  readonly endpoint: string;
  readonly pid: number;
  /** Runs the docker CLI against this engine; resolves with trimmed stdout. */
  docker(...args: string[]): Promise<string>;
  /** Stops the engine (containers die with it) and keeps its data root. */
  stop(): Promise<void>;
  /** Starts it again on the same data root (after {@link Dockerd.stop}). */
  restart(): Promise<void>;
  /** Stops it and removes every file. */
  close(): Promise<void>;
}

async function ping(socket: string): Promise<boolean> {
  const agent = new Agent({ connect: { socketPath: socket } });
  try {
    const res = await request('http://docker/_ping', { dispatcher: agent, headersTimeout: 2000 });
    await res.body.text();
    return res.statusCode === 200;
  } catch {
    return false;
  } finally {
    await agent.close();
  }
}

/**
 * Starts a private dockerd; resolves once its API answers.
 *
 * @example
 * const engine = await startDockerd();
 * await engine.docker('network', 'create', 'net');
 * await engine.close();
 */
export async function startDockerd(): Promise<Dockerd> {
  if (!DOCKERD) throw new Error('dockerd is not installed (apt-get install docker.io)');
  // short path: a unix socket path is limited to 108 bytes
  const dir = await mkdtemp(join('/tmp', 'phd-'));
  const socket = join(dir, 'docker.sock');
  const pool = `base=10.${64 + Math.floor(Math.random() * 180)}.0.0/16,size=24`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let log = '';

  const start = async () => {
    log = '';
    child = spawn(
      DOCKERD,
      [
        `--data-root=${join(dir, 'data')}`,
        `--exec-root=${join(dir, 'exec')}`,
        `--pidfile=${join(dir, 'docker.pid')}`,
        `--host=unix://${socket}`,
        '--iptables=false',
        '--ip6tables=false',
        '--ip-forward=false',
        '--ip-masq=false',
        '--bridge=none',
        // published ports bind to loopback only, whatever a compose file says (tests stay on loopback)
        '--ip=127.0.0.1',
        `--default-address-pool=${pool}`,
        '--exec-opt=native.cgroupdriver=cgroupfs',
        '--shutdown-timeout=1',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DOCKER_HOST: undefined } },
    );
    const c = child;
    c.stdout?.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-8000);
    });
    c.stderr?.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-8000);
    });
    exited = new Promise((resolve) => c.once('exit', () => resolve()));
    const deadline = Date.now() + 30_000;
    while (!(await ping(socket))) {
      if (c.exitCode !== null || Date.now() > deadline)
        throw new Error(`dockerd did not start (exit ${c.exitCode}):\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const stop = async () => {
    const c = child;
    if (!c?.pid || c.exitCode !== null) return;
    process.kill(c.pid, 'SIGTERM');
    const timer = setTimeout(() => c.pid && c.exitCode === null && process.kill(c.pid, 'SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  };

  await start();
  return {
    socket,
    endpoint: `unix://${socket}`,
    get pid() {
      return child?.pid ?? 0;
    },
    async docker(...args) {
      try {
        const { stdout } = await run(DOCKER_CLI, ['-H', `unix://${socket}`, ...args], {
          maxBuffer: 64 * 1024 * 1024,
          env: { ...process.env, DOCKER_CLI_HINTS: 'false' },
        });
        return stdout.trim();
      } catch (err) {
        const e = err as { stderr?: string; message: string };
        throw new Error(`docker ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
      }
    },
    stop,
    restart: start,
    async close() {
      // dockerd leaves its networks' bridges (br-…) on the host when it exits: remove them first
      if (child?.exitCode === null) {
        const cli = (...a: string[]) =>
          run(DOCKER_CLI, ['-H', `unix://${socket}`, ...a]).catch(() => ({ stdout: '' }));
        const ids = (await cli('ps', '-aq')).stdout.split('\n').filter(Boolean);
        if (ids.length) await cli('rm', '-f', ...ids);
        await cli('network', 'prune', '-f');
      }
      await stop();
      // overlay mounts are gone once dockerd exits cleanly; anything left is unmounted first
      await run('sh', ['-c', `grep -o " ${dir}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l`]).catch(
        () => {},
      );
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}

const NODE_BIN = join(import.meta.dirname, '..', '..', 'node_modules', 'node', 'bin', 'node');
const RECIPE = 'minbase-bookworm-v1';

/** Where the base rootfs tarball is cached: /var/cache/phare-test when writable, else the temp dir. */
function cacheDir(): string {
  const wanted = process.env['PHARE_TEST_IMAGE_CACHE'] ?? '/var/cache/phare-test';
  try {
    mkdirSync(wanted, { recursive: true });
    accessSync(wanted, constants.W_OK);
    return wanted;
  } catch {
    const dir = join(tmpdir(), 'phare-test');
    mkdirSync(dir, { recursive: true });
    return dir;
  }
}

async function contentKey(): Promise<string> {
  const { stdout } = await run(DEBOOTSTRAP as string, ['--version']);
  const nodeVersion = (await run(NODE_BIN, ['--version'])).stdout.trim();
  return createHash('sha256')
    .update(`${RECIPE}\n${stdout.trim()}\n${nodeVersion}\n${readFileSync(NODE_BIN).length}`)
    .digest('hex')
    .slice(0, 16);
}

/** Builds (once, under a lock) the base rootfs tarball; resolves with its path and key. */
export async function baseRootfs(): Promise<{ tar: string; key: string }> {
  const dir = cacheDir();
  const key = await contentKey();
  const tar = join(dir, `base-${key}.tar`);
  if (existsSync(tar)) return { tar, key };
  const release = await lockfile.lock(dir, {
    lockfilePath: join(dir, 'build.lock'),
    retries: { retries: 600, minTimeout: 1000, maxTimeout: 1000 },
    stale: 30_000,
  });
  try {
    if (existsSync(tar)) return { tar, key };
    const work = await mkdtemp(join(dir, 'build-'));
    try {
      const root = join(work, 'rootfs');
      const debs = join(dir, 'debs'); // kept: a rebuild for a new node version downloads nothing
      mkdirSync(debs, { recursive: true });
      await run(
        DEBOOTSTRAP as string,
        ['--variant=minbase', `--cache-dir=${debs}`, 'bookworm', root, 'http://deb.debian.org/debian'],
        { maxBuffer: 64 * 1024 * 1024 },
      );
      await run('sh', [
        '-c',
        `set -e; cd "${root}"; rm -rf var/cache/apt/archives/*.deb usr/share/doc usr/share/man usr/share/locale var/lib/apt/lists/*; ` +
          `cp "${NODE_BIN}" usr/local/bin/node; chmod 755 usr/local/bin/node; ` +
          `tar --numeric-owner -cf "${work}/base.tar" .`,
      ]);
      renameSync(join(work, 'base.tar'), tar);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    return { tar, key };
  } finally {
    await release();
  }
}

/**
 * The local base image in `engine` (imported from the cached rootfs on first use): Debian bookworm
 * minbase with Node at /usr/local/bin/node. Resolves with its tag.
 *
 * @example
 * const image = await baseImage(engine);
 * await engine.docker('run', '--rm', image, 'node', '-v');
 */
export async function baseImage(engine: Dockerd): Promise<string> {
  const { tar, key } = await baseRootfs();
  const tag = `phare-test-base:${key}`;
  const have = await engine.docker('images', '-q', tag);
  if (!have) {
    await engine.docker(
      'import',
      '--change',
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      '--change',
      'CMD ["/bin/bash"]',
      tar,
      tag,
    );
  }
  return tag;
}

/**
 * Polls `fn` until it returns a truthy value (every 50 ms, up to `ms`); the last error thrown is named in
 * the timeout. For engine state that has no event to wait on (Docker's health, an IP after a restart).
 *
 * @example
 * await until('healthy', async () => (await engine.docker('inspect', '-f', '{{.State.Health.Status}}', 'c')) === 'healthy');
 */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  ms = 30_000,
): Promise<T> {
  // the suite's one polling helper, with this file's argument order
  return (await waitFor(fn, ms, what)) as T;
}

/**
 * Creates a user network with an explicit subnet (a free one from the engine's pool, found by creating and
 * removing a probe network): `docker run --ip` needs a user-configured subnet. Resolves with the subnet.
 *
 * @example
 * const subnet = await subnetNetwork(engine, 'pnet'); // '172.18.0.0/16'
 */
export async function subnetNetwork(engine: Dockerd, name: string): Promise<string> {
  const probe = `${name}-probe`;
  await engine.docker('network', 'create', probe);
  const subnet = await engine.docker('network', 'inspect', '-f', '{{(index .IPAM.Config 0).Subnet}}', probe);
  await engine.docker('network', 'rm', probe);
  await engine.docker('network', 'create', '--subnet', subnet, name);
  return subnet;
}
