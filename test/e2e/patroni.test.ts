/**
 * Patroni (Debian `patroni` 3.0.2, its python3-consul client) runs a real PostgreSQL HA cluster with one
 * Phare agent (sqlite store) as its DCS: three members with their PostgreSQL 15 instances on loopback ports.
 * The cluster bootstraps, elects one leader, both replicas stream; `kill -9` of the leader's Patroni and
 * PostgreSQL hands leadership to a replica once the dead leader's session lapses (Patroni's session TTL is
 * ttl/2, which Consul — and Phare — invalidates at 2×, so within ttl + loop_wait); restarted, the old leader
 * rejoins as a replica. Every member's REST API is polled throughout: there is never more than one primary.
 * (The same on a 3-agent etcd cluster, one member per agent: test/cluster/patroni.test.ts.)
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startAgentInProcess, tempDir } from '../helpers/agent.ts';
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

const SCOPE = 'phare-pg';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('Patroni 3.0.2 on Phare: bootstrap, one leader, two streaming replicas, kill -9 failover, the old leader rejoins, never two primaries', {
  skip: PATRONI_SKIP,
  timeout: 240_000,
}, async () => {
  const data = tempDir('phare-patroni-agent-');
  cleanups.push(() => data.remove());
  const agent = await startAgentInProcess({ dataDir: data.path });
  cleanups.push(() => agent.close());
  const agentPort = agent.httpAddress.port;
  const root = tempDir('phare-patroni-');
  cleanups.push(() => root.remove());
  const pc = await patroniCluster(SCOPE, root.path, ['n1', 'n2', 'n3'], [agentPort, agentPort, agentPort]);
  cleanups.push(() => pc.close());

  // Never more than one primary, sampled every 250 ms for the whole run.
  pc.poll();
  for (const m of pc.members) pc.start(m);
  const leader = await waitForLeader(pc, 2);
  const others = pc.members.filter((m) => m !== leader);

  // Patroni's state in Phare's KV: the leader key, locked by the leader's session; members; its service.
  // Each member writes its own member key and registers its service in its own loop, after the leader race:
  // wait for all of them (a loaded machine can be a loop or two behind), then check what they wrote.
  const wanted = ['leader', 'initialize', 'config', ...pc.members.map((m) => `members/${m.name}`)];
  const ids = pc.members.map((m) => `${SCOPE}/${m.name}`).sort();
  type Entry = { Key: string; Session?: string; Value: string };
  let kv: Entry[] = [];
  let svcIds: string[] = [];
  await waitPatroni(
    'every member in KV and in the catalog',
    30_000,
    async () => {
      kv = (await (await fetch(`${agent.url}/v1/kv/service/${SCOPE}/?recurse`)).json()) as Entry[];
      const svc = (await (await fetch(`${agent.url}/v1/catalog/service/${SCOPE}`)).json()) as {
        ServiceID: string;
      }[];
      svcIds = svc.map((x) => x.ServiceID).sort();
      const keys = kv.map((e) => e.Key);
      const all = wanted.every((k) => keys.includes(`service/${SCOPE}/${k}`));
      return all && svcIds.length === ids.length ? true : undefined;
    },
    () => `KV: ${kv.map((e) => e.Key).join(', ')}; services: ${svcIds.join(', ')}\n${pc.logs()}`,
    pc.running(pc.members),
  );
  const leaderKey = kv.find((e) => e.Key === `service/${SCOPE}/leader`);
  assert.equal(Buffer.from(leaderKey?.Value ?? '', 'base64').toString(), leader.name);
  assert.ok(leaderKey?.Session, 'the leader key is held by a session');
  assert.deepEqual(svcIds, ids, 'Patroni registers each member as service <scope>/<name>');

  // kill -9 the leader's Patroni and PostgreSQL: a replica is promoted once the dead session lapses.
  const t0 = Date.now();
  pc.killHard(leader);
  const promoted = await waitPatroni(
    'a replica to be promoted',
    90_000,
    async () => {
      const st = await Promise.all(others.map(pc.status));
      return others.find((_, i) => isPrimary(st[i]));
    },
    pc.logs,
    pc.running(others),
  );
  const failoverSec = (Date.now() - t0) / 1000;
  console.log(
    `# failover after kill -9: ${failoverSec.toFixed(1)} s (ttl ${PATRONI_TTL} s, loop_wait ${PATRONI_LOOP_WAIT} s)`,
  );
  // ttl + loop_wait, plus slack for a loaded 2-core CI machine (Patroni's own loop and PostgreSQL's promote)
  assert.ok(failoverSec < PATRONI_TTL + PATRONI_LOOP_WAIT + 15, `failover took ${failoverSec} s`);
  const after1 = await (await fetch(`${agent.url}/v1/kv/service/${SCOPE}/leader`)).json();
  assert.equal(
    Buffer.from((after1 as { Value: string }[])[0]?.Value ?? '', 'base64').toString(),
    promoted.name,
  );

  // The old leader comes back (pg_rewind onto the new timeline) and rejoins as a streaming replica.
  pc.start(leader);
  await waitPatroni(
    'the old leader to rejoin as a replica',
    90_000,
    async () => {
      const [o, n] = await Promise.all([pc.status(leader), pc.status(promoted as PatroniMember)]);
      const streaming = (n?.replication ?? []).filter((r) => r.state === 'streaming').length;
      return o?.role === 'replica' && o.state === 'running' && streaming === 2 ? true : undefined;
    },
    pc.logs,
    pc.running(),
  );
  await pc.stopPolling();
  assert.equal(pc.maxPrimaries, 1, 'never more than one primary');
});
