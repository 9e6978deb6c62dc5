/**
 * Real etcd clusters for tests (Debian package `etcd-server`): one or three members on free loopback ports,
 * data on tmpfs when the machine has one (fsync stays real but cheap), short raft timers so elections and
 * lease expiry take fractions of a second. Members can be killed (`kill -9`) and restarted on the same ports
 * and data, to test quorum loss and recovery.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from './server-process.ts';

/** Path of a binary from the PATH or the usual Debian places. */
function findBin(name: string): string | undefined {
  const dirs = (process.env['PATH'] ?? '')
    .split(delimiter)
    .concat(['/usr/bin', '/usr/local/bin', '/usr/sbin']);
  for (const d of dirs) if (d && existsSync(join(d, name))) return join(d, name);
  return undefined;
}

/** `false` when etcd is installed, else the reason (in CI a missing etcd fails the tests, never skips). */
export const ETCD_SKIP: string | false =
  findBin('etcd') && findBin('etcdctl')
    ? false
    : 'etcd/etcdctl not found (apt-get install etcd-server etcd-client)';

/** One etcd member. */
export interface EtcdMember {
  readonly name: string;
  /** Process id while running (for CPU accounting). */
  readonly pid: number | undefined;
  /** `http://127.0.0.1:<client port>` */
  readonly clientUrl: string;
  readonly running: boolean;
  /** `kill -9`: no clean shutdown. */
  kill(): Promise<void>;
  /** Starts it again on the same ports and data; resolves once its client port answers. */
  start(): Promise<void>;
}

/** A running etcd cluster. */
export interface EtcdCluster {
  readonly members: readonly EtcdMember[];
  /** Every member's client URL. */
  readonly endpoints: string[];
  /** Runs `etcdctl` against the running members; resolves with stdout. */
  ctl(...args: string[]): Promise<string>;
  /** Resolves once every running member passes `endpoint health` (a quorum read: the cluster has a leader). */
  healthy(timeoutMs?: number): Promise<void>;
  /** Everything the members printed (for assertion messages). */
  log(): string;
  /** Kills every member and removes the data. */
  close(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/**
 * Starts an etcd cluster of `size` members (1 or 3, or any) and waits until it has a leader.
 *
 * @example
 * const etcd = await startEtcdCluster({ size: 3 });
 * after(() => etcd.close());
 * await etcd.members[1].kill();
 */
export async function startEtcdCluster(
  options: {
    size?: number;
    /** Pin every member to these CPUs with `taskset -c` (benchmarks). */
    cpus?: string;
    /** Extra etcd flags, e.g. `['--quota-backend-bytes', '8589934592']`. */
    extraArgs?: string[];
    /**
     * Serve clients over TLS only (https client URLs) with this certificate, requiring client certificates of
     * `caFile` (etcd's --client-cert-auth); `client` is what etcdctl presents. Peers stay plain.
     */
    tls?: {
      certFile: string;
      keyFile: string;
      caFile: string;
      client: { certFile: string; keyFile: string };
    };
  } = {},
): Promise<EtcdCluster> {
  const size = options.size ?? 1;
  const bin = findBin('etcd');
  const ctlBin = findBin('etcdctl');
  if (!bin || !ctlBin) throw new Error(ETCD_SKIP || 'no etcd');
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = mkdtempSync(join(base, 'phare-etcd-'));
  const token = `phare-${process.pid}-${Date.now()}`;
  let logText = '';
  const specs: { name: string; client: number; peer: number }[] = [];
  for (let i = 0; i < size; i++)
    specs.push({ name: `m${i}`, client: await freePort(), peer: await freePort() });
  const scheme = options.tls ? 'https' : 'http';
  const tlsArgs = options.tls
    ? [
        '--cert-file',
        options.tls.certFile,
        '--key-file',
        options.tls.keyFile,
        '--trusted-ca-file',
        options.tls.caFile,
        '--client-cert-auth',
      ]
    : [];
  const ctlTls = options.tls
    ? [
        '--cacert',
        options.tls.caFile,
        '--cert',
        options.tls.client.certFile,
        '--key',
        options.tls.client.keyFile,
      ]
    : [];
  const initialCluster = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peer}`).join(',');
  const children = new Map<string, ChildProcess>();
  let restarted = new Set<string>();

  const launch = (s: (typeof specs)[number]) => {
    const etcdArgs = [
      '--name',
      s.name,
      '--data-dir',
      join(dir, s.name),
      '--listen-client-urls',
      `${scheme}://127.0.0.1:${s.client}`,
      '--advertise-client-urls',
      `${scheme}://127.0.0.1:${s.client}`,
      ...tlsArgs,
      '--listen-peer-urls',
      `http://127.0.0.1:${s.peer}`,
      '--initial-advertise-peer-urls',
      `http://127.0.0.1:${s.peer}`,
      '--initial-cluster',
      initialCluster,
      '--initial-cluster-state',
      restarted.has(s.name) ? 'existing' : 'new',
      '--initial-cluster-token',
      token,
      // etcd's own defaults (100 ms / 1 s): shorter timers make a CPU-starved test machine (2 cores, parallel
      // suites) hold spurious elections. The lease floor with these is 1.5 s, so tests use TTL 2 s.
      '--heartbeat-interval',
      '100',
      '--election-timeout',
      '1000',
      '--log-level',
      'warn',
      '--logger',
      'zap',
      ...(options.extraArgs ?? []),
    ];
    // taskset execs etcd, so the child's pid is etcd's own (kill -9 reaches it)
    const c = options.cpus
      ? spawn('taskset', ['-c', options.cpus, bin, ...etcdArgs], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(bin, etcdArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(c);
    const tag = (d: Buffer) => {
      logText += `[${s.name}] ${String(d)}`;
      if (logText.length > 200_000) logText = logText.slice(-100_000);
    };
    c.stdout?.on('data', tag);
    c.stderr?.on('data', tag);
    c.once('exit', () => live.delete(c));
    children.set(s.name, c);
    return c;
  };

  const ctl = (endpoints: string[], args: string[]) =>
    new Promise<string>((resolve, reject) => {
      execFile(
        ctlBin,
        [
          '--endpoints',
          endpoints.join(','),
          '--dial-timeout',
          '2s',
          '--command-timeout',
          '5s',
          ...ctlTls,
          ...args,
        ],
        { env: { ...process.env, ETCDCTL_API: '3' } },
        (err, stdout, stderr) =>
          err ? reject(new Error(`etcdctl ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout),
      );
    });

  const isRunning = (name: string) => {
    const c = children.get(name);
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  };

  const waitHealthy = async (endpoint: string, deadlineMs: number) => {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      try {
        // `endpoint health` does a quorum read: it succeeds only when the cluster has a leader.
        await ctl([endpoint], ['endpoint', 'health']);
        return;
      } catch (err) {
        if (Date.now() > deadline)
          throw new Error(`etcd at ${endpoint} not healthy: ${String(err)}\n${logText}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };

  const kill = async (name: string) => {
    const c = children.get(name);
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  };

  for (const s of specs) launch(s);
  try {
    await Promise.all(specs.map((s) => waitHealthy(`${scheme}://127.0.0.1:${s.client}`, 20_000)));
  } catch (err) {
    for (const s of specs) await kill(s.name);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  restarted = new Set(specs.map((s) => s.name));

  const members: EtcdMember[] = specs.map((s) => ({
    name: s.name,
    get pid() {
      return isRunning(s.name) ? children.get(s.name)?.pid : undefined;
    },
    clientUrl: `${scheme}://127.0.0.1:${s.client}`,
    get running() {
      return isRunning(s.name);
    },
    kill: () => kill(s.name),
    async start() {
      if (isRunning(s.name)) return;
      launch(s);
      // A restarted member answers once it rejoined; with quorum still lost the caller waits for health.
      const deadline = Date.now() + 20_000;
      for (;;) {
        try {
          await ctl([`${scheme}://127.0.0.1:${s.client}`], ['endpoint', 'status']);
          return;
        } catch (err) {
          if (!isRunning(s.name)) throw new Error(`etcd member ${s.name} exited on restart:\n${logText}`);
          if (Date.now() > deadline) throw new Error(`etcd member ${s.name} did not answer: ${String(err)}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    },
  }));

  return {
    members,
    endpoints: members.map((m) => m.clientUrl),
    ctl: (...args) =>
      ctl(
        members.filter((m) => m.running).map((m) => m.clientUrl),
        args,
      ),
    async healthy(timeoutMs = 20_000) {
      await Promise.all(members.filter((m) => m.running).map((m) => waitHealthy(m.clientUrl, timeoutMs)));
    },
    log: () => logText,
    async close() {
      for (const s of specs) await kill(s.name);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
