/**
 * Patroni (Debian `patroni` 3.0.2, its python3-consul client) runs a real PostgreSQL HA cluster with one
 * Phare agent (sqlite store) as its DCS: two members with their PostgreSQL 15 instances on loopback ports.
 * The cluster bootstraps, elects one leader, the replica streams; `kill -9` of the leader's Patroni and
 * PostgreSQL hands leadership to the replica once the dead leader's session lapses (Patroni's session TTL is
 * ttl/2, which Consul — and Phare — invalidates at 2×, so within ttl + loop_wait); restarted, the old leader
 * rejoins as a replica. Every member's REST API is polled throughout: there is never more than one primary.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startAgentInProcess, tempDir } from '../helpers/agent.ts';
import { postgresBinDir, runAsUser } from '../helpers/postgres.ts';
import { dependencySkip } from '../helpers/requires.ts';
import { freePort } from '../helpers/server-process.ts';

const PATRONI = '/usr/bin/patroni';
const skip = dependencySkip(
  !existsSync(PATRONI)
    ? `${PATRONI} (apt-get install patroni)`
    : !postgresBinDir()
      ? 'PostgreSQL binaries (apt-get install postgresql)'
      : undefined,
);

const SCOPE = 'phare-pg';
const TTL = 20; // Patroni's minimum; its session TTL is 10 s
const LOOP_WAIT = 2;

interface Member {
  name: string;
  api: number;
  pg: number;
  dir: string;
  child?: ChildProcess;
  log: string[];
}

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function config(m: Member, agentPort: number): string {
  // JSON is YAML: no YAML writer needed for the config file.
  return JSON.stringify({
    scope: SCOPE,
    name: m.name,
    log: { level: 'INFO' },
    restapi: { listen: `127.0.0.1:${m.api}`, connect_address: `127.0.0.1:${m.api}` },
    consul: { host: `127.0.0.1:${agentPort}`, register_service: true },
    bootstrap: {
      dcs: {
        ttl: TTL,
        loop_wait: LOOP_WAIT,
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

function startMember(m: Member, agentPort: number): void {
  const owner = runAsUser();
  mkdirSync(m.dir, { recursive: true, mode: 0o700 });
  const file = join(m.dir, 'patroni.yml');
  writeFileSync(file, config(m, agentPort));
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
}

/** `GET /patroni` of a member, or undefined when it does not answer. */
async function status(
  m: Member,
): Promise<{ role?: string; state?: string; replication?: { state: string }[] } | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${m.api}/patroni`, { signal: AbortSignal.timeout(1500) });
    return (await res.json()) as { role?: string; state?: string };
  } catch {
    return undefined;
  }
}

const isPrimary = (s: { role?: string; state?: string } | undefined) =>
  (s?.role === 'master' || s?.role === 'primary') && s.state === 'running';

function killHard(m: Member): void {
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

async function waitFor<T>(
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

test('Patroni 3.0.2 on Phare: bootstrap, one leader, a streaming replica, kill -9 failover, the old leader rejoins, never two primaries', {
  skip,
  timeout: 240_000,
}, async () => {
  const data = tempDir('phare-patroni-agent-');
  cleanups.push(() => data.remove());
  const agent = await startAgentInProcess({ dataDir: data.path });
  cleanups.push(() => agent.close());
  const agentPort = agent.httpAddress.port;
  const root = tempDir('phare-patroni-');
  cleanups.push(() => root.remove());
  const owner = runAsUser();
  if (owner) chownSync(root.path, owner.uid, owner.gid);
  const members: Member[] = [];
  for (const name of ['n1', 'n2']) {
    members.push({ name, api: await freePort(), pg: await freePort(), dir: join(root.path, name), log: [] });
  }
  cleanups.push(() => {
    for (const m of members) killHard(m);
  });
  const logs = () => members.map((m) => `--- ${m.name} ---\n${m.log.join('').slice(-6000)}`).join('\n');
  const running = (ms: Member[]) => () => {
    const dead = ms.find((m) => m.child && (m.child.exitCode !== null || m.child.signalCode !== null));
    if (dead)
      throw new Error(
        `patroni ${dead.name} exited (${dead.child?.exitCode ?? dead.child?.signalCode})\n${logs()}`,
      );
  };

  // Never more than one primary, sampled every 250 ms for the whole run.
  let maxPrimaries = 0;
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const st = await Promise.all(members.map(status));
      maxPrimaries = Math.max(maxPrimaries, st.filter(isPrimary).length);
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  cleanups.push(async () => {
    polling = false;
    await poller;
  });

  for (const m of members) startMember(m, agentPort);
  const leader = await waitFor(
    'a leader and a streaming replica',
    150_000,
    async () => {
      const st = await Promise.all(members.map(status));
      const li = st.findIndex(isPrimary);
      if (li < 0) return undefined;
      const streaming = (st[li]?.replication ?? []).filter((r) => r.state === 'streaming').length;
      const replica = st.find((s, i) => i !== li && s?.role === 'replica' && s.state === 'running');
      return streaming === 1 && replica ? members[li] : undefined;
    },
    logs,
    running(members),
  );
  const other = members.find((m) => m !== leader) as Member;

  // Patroni's state in Phare's KV: the leader key, locked by the leader's session; members; its service.
  const kv = await (await fetch(`${agent.url}/v1/kv/service/${SCOPE}/?recurse`)).json();
  const keys = (kv as { Key: string; Session?: string; Value: string }[]).map((e) => e.Key);
  for (const k of ['leader', 'initialize', 'config', `members/${leader.name}`, `members/${other.name}`])
    assert.ok(keys.includes(`service/${SCOPE}/${k}`), `KV has ${k}: ${keys.join(', ')}`);
  const leaderKey = (kv as { Key: string; Session?: string; Value: string }[]).find(
    (e) => e.Key === `service/${SCOPE}/leader`,
  );
  assert.equal(Buffer.from(leaderKey?.Value ?? '', 'base64').toString(), leader.name);
  assert.ok(leaderKey?.Session, 'the leader key is held by a session');
  const svc = (await (await fetch(`${agent.url}/v1/catalog/service/${SCOPE}`)).json()) as {
    ServiceID: string;
  }[];
  assert.deepEqual(
    svc.map((s) => s.ServiceID).sort(),
    members.map((m) => `${SCOPE}/${m.name}`).sort(),
    'Patroni registers each member as service <scope>/<name>',
  );

  // kill -9 the leader's Patroni and PostgreSQL: the replica is promoted once the dead session lapses.
  const t0 = Date.now();
  killHard(leader);
  await waitFor(
    'the replica to be promoted',
    90_000,
    async () => (isPrimary(await status(other)) ? true : undefined),
    logs,
    running([other]),
  );
  const failoverSec = (Date.now() - t0) / 1000;
  console.log(
    `# failover after kill -9: ${failoverSec.toFixed(1)} s (ttl ${TTL} s, loop_wait ${LOOP_WAIT} s)`,
  );
  // ttl + loop_wait, plus slack for a loaded 2-core CI machine (Patroni's own loop and PostgreSQL's promote)
  assert.ok(failoverSec < TTL + LOOP_WAIT + 15, `failover took ${failoverSec} s`);
  const after1 = await (await fetch(`${agent.url}/v1/kv/service/${SCOPE}/leader`)).json();
  assert.equal(Buffer.from((after1 as { Value: string }[])[0]?.Value ?? '', 'base64').toString(), other.name);

  // The old leader comes back (pg_rewind onto the new timeline) and rejoins as a streaming replica.
  leader.log.length = 0;
  startMember(leader, agentPort);
  await waitFor(
    'the old leader to rejoin as a replica',
    90_000,
    async () => {
      const [o, n] = await Promise.all([status(leader), status(other)]);
      const streaming = (n?.replication ?? []).filter((r) => r.state === 'streaming').length;
      return o?.role === 'replica' && o.state === 'running' && streaming === 1 ? true : undefined;
    },
    logs,
    running(members),
  );
  polling = false;
  await poller;
  assert.equal(maxPrimaries, 1, 'never more than one primary');
});
