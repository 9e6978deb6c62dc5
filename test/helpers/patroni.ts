/**
 * Patroni (Debian `patroni` 3.0.2, its python3-consul client) members for tests: each runs PostgreSQL 15 on
 * loopback ports with Phare as its `consul:` DCS, can be `kill -9`ed with its PostgreSQL and restarted on the
 * same data. A poller samples every member's REST API (`GET /patroni`) to prove there is never more than one
 * primary.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { postgresBinDir, runAsUser } from './postgres.ts';
import { dependencySkip } from './requires.ts';
import { freePort } from './server-process.ts';

const PATRONI = '/usr/bin/patroni';

/** `false` when Patroni and PostgreSQL are installed, else the reason (a failure in CI). */
export const PATRONI_SKIP: string | false = dependencySkip(
  !existsSync(PATRONI)
    ? `${PATRONI} (apt-get install patroni)`
    : !postgresBinDir()
      ? 'PostgreSQL binaries (apt-get install postgresql)'
      : undefined,
);

/** Patroni's minimum ttl; its session TTL is ttl/2 = 10 s, Consul's (and Phare's) floor. */
export const PATRONI_TTL = 20;
/** Short loop, so a run stays short but real. */
export const PATRONI_LOOP_WAIT = 2;

/** One member: its Patroni REST port, PostgreSQL port, directory and the agent it talks to. */
export interface PatroniMember {
  name: string;
  api: number;
  pg: number;
  dir: string;
  /** HTTP port of the Phare agent this member uses as its DCS. */
  agentPort: number;
  child?: ChildProcess;
  log: string[];
}

/** The status `GET /patroni` reports. */
export interface PatroniStatus {
  role?: string;
  state?: string;
  replication?: { state: string }[];
}

function config(scope: string, m: PatroniMember): string {
  // JSON is YAML: no YAML writer needed for the config file.
  return JSON.stringify({
    scope,
    name: m.name,
    log: { level: 'INFO' },
    restapi: { listen: `127.0.0.1:${m.api}`, connect_address: `127.0.0.1:${m.api}` },
    consul: { host: `127.0.0.1:${m.agentPort}`, register_service: true },
    bootstrap: {
      dcs: {
        ttl: PATRONI_TTL,
        loop_wait: PATRONI_LOOP_WAIT,
        retry_timeout: 5,
        maximum_lag_on_failover: 1048576,
        postgresql: {
          use_pg_rewind: true,
          parameters: { wal_level: 'replica', hot_standby: 'on', wal_log_hints: 'on', max_wal_senders: 5 },
        },
      },
      initdb: [{ encoding: 'UTF8' }, { locale: 'C' }],
      pg_hba: [
        'host replication replicator 127.0.0.1/32 trust',
        'host all all 127.0.0.1/32 trust',
        'local all all trust',
      ],
    },
    postgresql: {
      listen: `127.0.0.1:${m.pg}`,
      connect_address: `127.0.0.1:${m.pg}`,
      data_dir: join(m.dir, 'data'),
      bin_dir: postgresBinDir(),
      pgpass: join(m.dir, 'pgpass'),
      authentication: {
        replication: { username: 'replicator', password: 'rep' },
        superuser: { username: 'postgres', password: 'pw' },
        rewind: { username: 'postgres', password: 'pw' },
      },
      parameters: { unix_socket_directories: m.dir, fsync: 'off', shared_buffers: '16MB' },
    },
  });
}

/**
 * A Patroni cluster `scope` whose members live under `root`, member `names[i]` using the agent on
 * `agentPorts[i]`. Nothing runs until {@link PatroniCluster.start}.
 *
 * @example
 * const pc = await patroniCluster('pg', root, ['n1', 'n2'], [8500, 8500]);
 * for (const m of pc.members) pc.start(m);
 */
export async function patroniCluster(
  scope: string,
  root: string,
  names: readonly string[],
  agentPorts: readonly number[],
): Promise<PatroniCluster> {
  const owner = runAsUser();
  if (owner) chownSync(root, owner.uid, owner.gid);
  const members: PatroniMember[] = [];
  for (const [i, name] of names.entries())
    members.push({
      name,
      api: await freePort(),
      pg: await freePort(),
      dir: join(root, name),
      agentPort: agentPorts[i] as number,
      log: [],
    });
  let maxPrimaries = 0;
  let polling = false;
  let poller: Promise<void> | undefined;
  const logs = () => members.map((m) => `--- ${m.name} ---\n${m.log.join('').slice(-6000)}`).join('\n');

  return {
    members,
    logs,
    get maxPrimaries() {
      return maxPrimaries;
    },
    start(m) {
      m.log.length = 0;
      mkdirSync(m.dir, { recursive: true, mode: 0o700 });
      const file = join(m.dir, 'patroni.yml');
      writeFileSync(file, config(scope, m));
      if (owner) {
        chownSync(m.dir, owner.uid, owner.gid);
        chownSync(file, owner.uid, owner.gid);
      }
      // PostgreSQL refuses to run as root: Patroni (and the postgres it starts) run as the postgres user.
      const child = spawn(PATRONI, [file], {
        ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
        cwd: m.dir,
        env: { PATH: '/usr/bin:/bin', HOME: m.dir, LC_ALL: 'C' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const keep = (b: Buffer) => {
        m.log.push(b.toString());
        if (m.log.length > 400) m.log.splice(0, 100);
      };
      child.stdout?.on('data', keep);
      child.stderr?.on('data', keep);
      m.child = child;
    },
    killHard,
    status,
    poll() {
      polling = true;
      poller = (async () => {
        while (polling) {
          const st = await Promise.all(members.map(status));
          maxPrimaries = Math.max(maxPrimaries, st.filter(isPrimary).length);
          await new Promise((r) => setTimeout(r, 250));
        }
      })();
    },
    async stopPolling() {
      polling = false;
      await poller;
    },
    running(ms = members) {
      return () => {
        const dead = ms.find((m) => m.child && (m.child.exitCode !== null || m.child.signalCode !== null));
        if (dead)
          throw new Error(
            `patroni ${dead.name} exited (${dead.child?.exitCode ?? dead.child?.signalCode})\n${logs()}`,
          );
      };
    },
    async close() {
      polling = false;
      await poller;
      for (const m of members) killHard(m);
    },
  };
}

/** A set of Patroni members. */
export interface PatroniCluster {
  readonly members: PatroniMember[];
  /** The tail of every member's log (for failure messages). */
  logs(): string;
  /** The most primaries seen at once since {@link PatroniCluster.poll} started. */
  readonly maxPrimaries: number;
  /** Starts (or restarts on its data) one member. */
  start(m: PatroniMember): void;
  /** `kill -9` of the member's Patroni and its PostgreSQL postmaster. */
  killHard(m: PatroniMember): void;
  status(m: PatroniMember): Promise<PatroniStatus | undefined>;
  /** Samples every member every 250 ms, counting primaries. */
  poll(): void;
  stopPolling(): Promise<void>;
  /** A liveness check for `waitPatroni`: throws when one of `ms` exited. */
  running(ms?: PatroniMember[]): () => void;
  close(): Promise<void>;
}

/** `GET /patroni` of a member, or undefined when it does not answer. */
async function status(m: PatroniMember): Promise<PatroniStatus | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${m.api}/patroni`, { signal: AbortSignal.timeout(1500) });
    return (await res.json()) as PatroniStatus;
  } catch {
    return undefined;
  }
}

/** A running primary (Patroni 3.0 still says `master`). */
export const isPrimary = (s: PatroniStatus | undefined): boolean =>
  (s?.role === 'master' || s?.role === 'primary') && s.state === 'running';

function killHard(m: PatroniMember): void {
  m.child?.kill('SIGKILL');
  const pidFile = join(m.dir, 'data', 'postmaster.pid');
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

/** Polls `fn` every 250 ms until it returns a value; on timeout fails with the members' logs. */
export async function waitPatroni<T>(
  what: string,
  timeoutMs: number,
  fn: () => Promise<T | undefined>,
  logs: () => string,
  alive: () => void = () => {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    alive();
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}\n${logs()}`);
}

/**
 * Waits until one member is a running primary with `replicas` streaming replicas; resolves with the leader.
 */
export function waitForLeader(
  pc: PatroniCluster,
  replicas: number,
  timeoutMs = 150_000,
  among: PatroniMember[] = pc.members,
): Promise<PatroniMember> {
  return waitPatroni(
    `a leader and ${replicas} streaming replica(s)`,
    timeoutMs,
    async () => {
      const st = await Promise.all(among.map(pc.status));
      const li = st.findIndex(isPrimary);
      if (li < 0) return undefined;
      const streaming = (st[li]?.replication ?? []).filter((r) => r.state === 'streaming').length;
      const running = st.filter((s, i) => i !== li && s?.role === 'replica' && s.state === 'running').length;
      return streaming >= replicas && running >= replicas ? among[li] : undefined;
    },
    pc.logs,
    pc.running(among),
  );
}
