/**
 * Patroni on a Phare cluster (issue 13, "Patroni complaints": the local Consul agent is a single point of
 * failure): three Patroni members with PostgreSQL 15, each pointed at a *different* Phare agent of a 3-agent
 * cluster over a 3-member etcd. One leader, two streaming replicas. `kill -9` of the Phare agent under a
 * replica changes nothing for the others (the leader keeps its lock: Patroni's session has no serfHealth
 * check, only its TTL); then the leader's whole host dies — `kill -9` of its Patroni, its PostgreSQL and its
 * Phare agent — and the replica whose agent is alive is promoted once the dead leader's session lapses: the
 * TTL is enforced by the cluster's reaper on a surviving agent (re-elected if the dead agent held the role).
 * Every member's REST API is polled throughout: never two primaries.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { type AgentProcess, tempDir } from '../helpers/agent.ts';
import { spawnClusterAgent } from '../helpers/cluster.ts';
import { ETCD_SKIP, startEtcdCluster } from '../helpers/etcd.ts';
import {
  isPrimary,
  PATRONI_LOOP_WAIT,
  PATRONI_SKIP,
  PATRONI_TTL,
  type PatroniMember,
  patroniCluster,
  waitForLeader,
  waitPatroni,
} from '../helpers/patroni.ts';

const SCOPE = 'phare-pgc';
const skip = PATRONI_SKIP || (ETCD_SKIP && process.env['CI'] !== 'true' ? ETCD_SKIP : false);

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('Patroni on a 3-agent Phare cluster: one leader; an agent under a replica dies and nothing moves; the leader host dies (Patroni, PostgreSQL, its agent) and the other replica is promoted; never two primaries', {
  skip,
  timeout: 240_000,
}, async () => {
  const etcd = await startEtcdCluster({ size: 3 });
  cleanups.push(() => etcd.close());
  const agents: AgentProcess[] = [];
  for (const name of ['a', 'b', 'c']) {
    const dir = tempDir(`phare-pg-${name}-`);
    const agent = await spawnClusterAgent(etcd, '/pgc', name, dir.path);
    cleanups.push(() => {
      agent.child.kill('SIGKILL');
      dir.remove();
    });
    agents.push(agent);
  }
  const root = tempDir('phare-patroni-cluster-');
  cleanups.push(() => root.remove());
  const pc = await patroniCluster(
    SCOPE,
    root.path,
    ['p1', 'p2', 'p3'],
    agents.map((a) => a.port),
  );
  cleanups.push(() => pc.close());
  const agentOf = (m: PatroniMember) => agents[pc.members.indexOf(m)] as AgentProcess;

  pc.poll();
  for (const m of pc.members) pc.start(m);
  const leader = await waitForLeader(pc, 2);
  const [r1, r2] = pc.members.filter((m) => m !== leader) as [PatroniMember, PatroniMember];
  const leaderKey = async (via = agentOf(r2)) => {
    const r = await fetch(`${via.url}/v1/kv/service/${SCOPE}/leader`);
    if (r.status !== 200) return undefined;
    const e = ((await r.json()) as { Value: string; Session?: string }[])[0];
    return { holder: Buffer.from(e?.Value ?? '', 'base64').toString(), session: e?.Session };
  };
  // Every agent serves the same Patroni state: the leader key, held by the leader's session.
  for (const a of agents) assert.equal((await leaderKey(a))?.holder, leader.name);
  const held = await leaderKey();

  // kill -9 the Phare agent under replica r1: its Patroni loses its DCS; the leader and r2 do not notice.
  agentOf(r1).child.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, (2 * PATRONI_LOOP_WAIT + 2) * 1000));
  assert.ok(isPrimary(await pc.status(leader)), 'the leader is still primary');
  assert.deepEqual(await leaderKey(), held, 'the leader still holds its lock with the same session');

  // The leader's host dies: Patroni, PostgreSQL and the Phare agent its session was created and renewed on.
  // r2 (its agent alive) is promoted when that session lapses.
  const t0 = Date.now();
  pc.killHard(leader);
  agentOf(leader).child.kill('SIGKILL');
  await waitPatroni(
    'r2 to be promoted',
    90_000,
    async () => (isPrimary(await pc.status(r2)) ? true : undefined),
    pc.logs,
    pc.running([r2]),
  );
  const failoverSec = (Date.now() - t0) / 1000;
  console.log(
    `# cluster failover after kill -9: ${failoverSec.toFixed(1)} s (ttl ${PATRONI_TTL} s, loop_wait ${PATRONI_LOOP_WAIT} s)`,
  );
  assert.ok(failoverSec < PATRONI_TTL + PATRONI_LOOP_WAIT + 15, `failover took ${failoverSec} s`);
  assert.equal((await leaderKey())?.holder, r2.name);
  assert.ok(!isPrimary(await pc.status(r1)), 'the member without an agent was not promoted');
  await pc.stopPolling();
  assert.equal(pc.maxPrimaries, 1, 'never more than one primary');
});
