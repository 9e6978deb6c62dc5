/**
 * KV and sessions on the etcd cluster store (docs/cluster.md): every agent serves the same KV state with etcd
 * revisions as indexes; CAS and lock acquisition are decided inside etcd's transaction, so two agents racing
 * for one key never both win; sessions are valid cluster-wide and the elected reaper invalidates them exactly
 * once when their node's agent dies, their TTL lapses or a linked check goes critical; without quorum a KV
 * write fails with Consul's "No cluster leader" and changes nothing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RunningAgent } from '../../src/agent/index.ts';
import { tempDir, waitFor } from '../helpers/agent.ts';
import { clusterAgents, getJson, put, spawnClusterAgent, startClusterAgent } from '../helpers/cluster.ts';
import { ETCD_SKIP, startEtcdCluster } from '../helpers/etcd.ts';

type Entry = {
  Key: string;
  Value: string | null;
  Flags: number;
  Session?: string;
  LockIndex: number;
  ModifyIndex: number;
  CreateIndex: number;
};

const b64 = (s: string) => Buffer.from(s).toString('base64');
/** waitFor for a value: resolves with what `fn` returned once it is not undefined. */
const until = <T>(fn: () => Promise<T | undefined>, ms: number, what?: string) =>
  waitFor(fn, ms, what) as Promise<T>;

async function req(
  method: string,
  url: string,
  body?: string | Buffer,
): Promise<{ status: number; text: string; index: number }> {
  const r = await fetch(url, { method, ...(body === undefined ? {} : { body }) });
  return { status: r.status, text: await r.text(), index: Number(r.headers.get('x-consul-index') ?? 0) };
}

if (ETCD_SKIP && process.env['CI'] !== 'true') {
  test('KV on the etcd cluster', { skip: ETCD_SKIP }, () => {});
} else {
  const etcd = await startEtcdCluster({ size: 3 });
  const { three, track, prefix: freshPrefix } = clusterAgents(etcd, 'kv', { 'dns-addr': '' });
  const session = async (agent: { httpUrl: string } | { url: string }, body: Record<string, unknown>) => {
    const url = 'httpUrl' in agent ? agent.httpUrl : agent.url;
    const r = await put(`${url}/v1/session/create`, body);
    assert.equal(r.status, 200, r.text);
    return (JSON.parse(r.text) as { ID: string }).ID;
  };

  test('a key written through A is read on C with the same indexes; a blocking read on C wakes only for its prefix', async () => {
    const { a, b, c } = await three();
    const bin = Buffer.from([0, 1, 2, 255, 254]);
    assert.equal((await req('PUT', `${a.httpUrl}/v1/kv/app/bin?flags=42`, bin)).text, 'true');
    const onA = await getJson(`${a.httpUrl}/v1/kv/app/bin`);
    const entryA = (onA.body as Entry[])[0] as Entry;
    assert.equal(
      onA.index,
      entryA.ModifyIndex,
      'X-Consul-Index of a key is its ModifyIndex (an etcd revision)',
    );
    const onC = await until(async () => {
      const r = await getJson(`${c.httpUrl}/v1/kv/app/bin`);
      return r.status === 200 ? r : undefined;
    }, 5000);
    assert.deepEqual(onC.body, onA.body);
    assert.equal(Buffer.from(((onC.body as Entry[])[0] as Entry).Value as string, 'base64').compare(bin), 0);
    assert.equal(((onC.body as Entry[])[0] as Entry).Flags, 42);
    // missing key: 404 with an index
    const missing = await getJson(`${c.httpUrl}/v1/kv/app/nope`);
    assert.equal(missing.status, 404);
    assert.ok(missing.index >= entryA.ModifyIndex);

    // blocking read on C over app/ : a write outside the prefix through B must not answer it
    const list = await getJson(`${c.httpUrl}/v1/kv/app/?recurse`);
    const parked = getJson(`${c.httpUrl}/v1/kv/app/?recurse&index=${list.index}&wait=10s`);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await req('PUT', `${b.httpUrl}/v1/kv/other/x`, 'o')).text, 'true');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await req('PUT', `${b.httpUrl}/v1/kv/app/new`, 'n')).text, 'true');
    const woken = await parked;
    const newEntry = (woken.body as Entry[]).find((e) => e.Key === 'app/new');
    assert.ok(newEntry, 'woken with the new key');
    assert.equal(
      woken.index,
      newEntry.ModifyIndex,
      'answered by the write under the prefix, not the one outside',
    );

    // delete ?recurse through B is seen on A; a txn through C is atomic
    assert.equal((await req('DELETE', `${b.httpUrl}/v1/kv/app/?recurse`)).text, 'true');
    await waitFor(async () => (await getJson(`${a.httpUrl}/v1/kv/app/?recurse`)).status === 404, 5000);
    const other = ((await getJson(`${c.httpUrl}/v1/kv/other/x`)).body as Entry[])[0] as Entry;
    const txn = await req(
      'PUT',
      `${c.httpUrl}/v1/txn`,
      JSON.stringify([
        { KV: { Verb: 'set', Key: 't/1', Value: b64('1') } },
        { KV: { Verb: 'check-index', Key: 'other/x', Index: other.ModifyIndex + 1000 } },
      ]),
    );
    assert.equal(txn.status, 409, txn.text);
    assert.equal((await getJson(`${a.httpUrl}/v1/kv/t/1`)).status, 404, 'a failed txn wrote nothing');
    const ok = await req(
      'PUT',
      `${c.httpUrl}/v1/txn`,
      JSON.stringify([
        { KV: { Verb: 'set', Key: 't/1', Value: b64('1') } },
        { KV: { Verb: 'cas', Key: 'other/x', Value: b64('2'), Index: other.ModifyIndex } },
      ]),
    );
    assert.equal(ok.status, 200, ok.text);
    const results = (JSON.parse(ok.text) as { Results: { KV: Entry }[] }).Results;
    const t1 = ((await getJson(`${c.httpUrl}/v1/kv/t/1`)).body as Entry[])[0] as Entry;
    assert.equal(results[0]?.KV.ModifyIndex, t1.ModifyIndex, 'txn results carry the committed revision');
    assert.equal(results[1]?.KV.ModifyIndex, t1.ModifyIndex, 'one revision for the whole txn');
  });

  test('two agents racing: one acquire and one CAS win per round, never two', async () => {
    const { a, b, c } = await three();
    const sa = await session(a, { Name: 'a', LockDelay: '0s' });
    const sb = await session(b, { Name: 'b', LockDelay: '0s' });
    await waitFor(
      async () => ((await getJson(`${c.httpUrl}/v1/session/list`)).body as unknown[]).length === 2,
      5000,
    );
    for (let i = 0; i < 15; i++) {
      const [ra, rb] = await Promise.all([
        req('PUT', `${a.httpUrl}/v1/kv/race/${i}?acquire=${sa}`, 'a'),
        req('PUT', `${b.httpUrl}/v1/kv/race/${i}?acquire=${sb}`, 'b'),
      ]);
      const wins = [ra.text, rb.text].filter((t) => t === 'true').length;
      assert.equal(wins, 1, `round ${i}: acquire answers ${ra.text}/${rb.text}`);
      const held = (
        (await getJson(`${c.httpUrl}/v1/kv/race/${i}?consistent`)).body as Entry[] | undefined
      )?.[0];
      const winner = ra.text === 'true' ? sa : sb;
      await waitFor(async () => {
        const e = ((await getJson(`${c.httpUrl}/v1/kv/race/${i}`)).body as Entry[] | undefined)?.[0];
        return e?.Session === winner;
      }, 5000);
      assert.ok(held === undefined || held.Session === winner);
    }
    // CAS: both agents try to move the same ModifyIndex
    assert.equal((await req('PUT', `${a.httpUrl}/v1/kv/cas`, '0')).text, 'true');
    for (let i = 0; i < 15; i++) {
      const cur = ((await getJson(`${a.httpUrl}/v1/kv/cas`)).body as Entry[])[0] as Entry;
      const [ra, rc] = await Promise.all([
        req('PUT', `${a.httpUrl}/v1/kv/cas?cas=${cur.ModifyIndex}`, `a${i}`),
        req('PUT', `${c.httpUrl}/v1/kv/cas?cas=${cur.ModifyIndex}`, `c${i}`),
      ]);
      assert.equal(
        [ra.text, rc.text].filter((t) => t === 'true').length,
        1,
        `round ${i}: ${ra.text}/${rc.text}`,
      );
    }
  });

  test('a dead agent’s session is invalidated once by the reaper, its lock released; lock-delay holds on every agent', async () => {
    const prefix = freshPrefix();
    const a = await startClusterAgent(etcd, prefix, 'a', { 'dns-addr': '' });
    track(a);
    const c = await startClusterAgent(etcd, prefix, 'c', { 'dns-addr': '' });
    track(c);
    const dir = tempDir('phare-b-');
    const b = await spawnClusterAgent(etcd, prefix, 'b', dir.path);
    track({
      close: async () => {
        b.child.kill('SIGKILL');
        dir.remove();
      },
    });
    // B's session keeps the default serfHealth check: it dies with B's agent.
    const sb = await session(b, { Name: 'b', LockDelay: '3s', Behavior: 'release' });
    assert.equal((await req('PUT', `${b.url}/v1/kv/leader?acquire=${sb}`, 'b')).text, 'true');
    const sa = await session(a, { Name: 'a', LockDelay: '0s' });
    await waitFor(async () => (await getJson(`${a.httpUrl}/v1/kv/leader`)).status === 200, 5000);
    assert.equal(
      (await req('PUT', `${a.httpUrl}/v1/kv/leader?acquire=${sa}`, 'a')).text,
      'false',
      'held by B',
    );
    const before = ((await getJson(`${a.httpUrl}/v1/kv/leader`)).body as Entry[])[0] as Entry;

    b.child.kill('SIGKILL');
    // the node lease lapses (2 s in tests) -> serfHealth critical everywhere -> the reaper invalidates
    const released = await until(
      async () => {
        const e = ((await getJson(`${c.httpUrl}/v1/kv/leader`)).body as Entry[])[0] as Entry;
        return e.Session === undefined ? e : undefined;
      },
      10_000,
      'lock released',
    );
    const releasedAt = Date.now();
    assert.equal(released.LockIndex, before.LockIndex, 'released, not re-locked');
    assert.equal(released.ModifyIndex > before.ModifyIndex, true);
    assert.equal((await getJson(`${a.httpUrl}/v1/session/info/${sb}`)).text, '[]');
    // lock-delay (3 s) set by the invalidation blocks an acquire through any agent
    await waitFor(
      async () => ((await getJson(`${a.httpUrl}/v1/kv/leader`)).body as Entry[])[0]?.Session === undefined,
      5000,
    );
    assert.equal(
      (await req('PUT', `${a.httpUrl}/v1/kv/leader?acquire=${sa}`, 'a')).text,
      'false',
      'lock-delay on A',
    );
    const sc = await session(c, { Name: 'c', LockDelay: '0s' });
    assert.equal(
      (await req('PUT', `${c.httpUrl}/v1/kv/leader?acquire=${sc}`, 'c')).text,
      'false',
      'lock-delay on C',
    );
    const won = await waitFor(
      async () => (await req('PUT', `${a.httpUrl}/v1/kv/leader?acquire=${sa}`, 'a')).text === 'true',
      10_000,
    );
    assert.ok(won);
    assert.ok(Date.now() - releasedAt >= 2000, 'not before the lock-delay');
    // exactly one invalidation: the entry was modified once by it (release), then by A's acquire
    const after = ((await getJson(`${c.httpUrl}/v1/kv/leader?consistent`)).body as Entry[])[0] as Entry;
    assert.equal(after.Session, sa);
    assert.equal(after.LockIndex, before.LockIndex + 1);
  });

  test('a TTL session renewed through another agent lives; unrenewed it lapses cluster-wide; a critical check invalidates', async () => {
    const { a, b, c } = await three();
    // TTLs below Consul's 10 s floor are not accepted over HTTP: drive the session manager directly.
    const id = await a.sessions.create({
      name: 'ttl',
      nodeChecks: [],
      serviceChecks: [],
      lockDelayMs: 0,
      behavior: 'delete',
      ttlMs: 1000,
      ttl: '1s',
    });
    assert.equal((await req('PUT', `${a.httpUrl}/v1/kv/ttl/key?acquire=${id}`, 'x')).text, 'true');
    await waitFor(async () => (await getJson(`${c.httpUrl}/v1/session/info/${id}`)).text !== '[]', 5000);
    // renewed through C every 500 ms for 3 s (past its 2 s lease): still alive
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const r = await req('PUT', `${c.httpUrl}/v1/session/renew/${id}`);
      assert.equal(r.status, 200, `renew ${i}: ${r.text}`);
    }
    assert.equal((await getJson(`${b.httpUrl}/v1/kv/ttl/key`)).status, 200);
    // no more renewals: invalidated within 2×TTL (+ lease expiry granularity), its lock deleted (Behavior delete)
    await waitFor(
      async () => (await getJson(`${b.httpUrl}/v1/kv/ttl/key`)).status === 404,
      8000,
      'key deleted',
    );
    assert.equal((await getJson(`${b.httpUrl}/v1/session/info/${id}`)).text, '[]');
    assert.equal((await req('PUT', `${c.httpUrl}/v1/session/renew/${id}`)).status, 404);

    // a session linked to a check on A: the check goes critical on A, whichever agent reaps
    assert.equal(
      (
        await put(`${a.httpUrl}/v1/agent/check/register`, {
          ID: 'lock-guard',
          Name: 'guard',
          TTL: '60s',
          Status: 'passing',
        })
      ).status,
      200,
    );
    await waitFor(
      async () =>
        ((await getJson(`${b.httpUrl}/v1/health/node/a`)).body as { CheckID: string }[]).some(
          (x) => x.CheckID === 'lock-guard',
        ),
      5000,
    );
    const sg = await session(b, {
      Name: 'g',
      Node: 'a',
      Checks: ['serfHealth', 'lock-guard'],
      LockDelay: '0s',
    });
    assert.equal((await req('PUT', `${c.httpUrl}/v1/kv/guarded?acquire=${sg}`, 'g')).text, 'true');
    assert.equal((await req('PUT', `${a.httpUrl}/v1/agent/check/fail/lock-guard`)).status, 200);
    await waitFor(
      async () => ((await getJson(`${c.httpUrl}/v1/kv/guarded`)).body as Entry[])[0]?.Session === undefined,
      5000,
      'released',
    );
    assert.equal((await getJson(`${c.httpUrl}/v1/session/list`)).text, '[]');
  });

  test("a DELETE ?recurse of 300 keys is one range delete (past etcd's 128-op limit), seen on every agent", async () => {
    const { a, c } = await three();
    const ops = (from: number) =>
      Array.from({ length: 100 }, (_, i) => ({
        KV: { Verb: 'set', Key: `big/${from + i}`, Value: b64('x') },
      }));
    for (const from of [0, 100, 200])
      assert.equal((await req('PUT', `${a.httpUrl}/v1/txn`, JSON.stringify(ops(from)))).status, 200);
    assert.equal((await req('PUT', `${a.httpUrl}/v1/kv/bigger`, 'stays')).text, 'true');
    await waitFor(
      async () => ((await getJson(`${c.httpUrl}/v1/kv/big/?keys`)).body as string[]).length === 300,
      5000,
    );
    assert.equal((await req('DELETE', `${c.httpUrl}/v1/kv/big/?recurse`)).text, 'true');
    assert.equal((await getJson(`${c.httpUrl}/v1/kv/big/?keys`)).status, 404);
    await waitFor(async () => (await getJson(`${a.httpUrl}/v1/kv/big/?keys`)).status === 404, 5000);
    assert.equal((await getJson(`${a.httpUrl}/v1/kv/bigger?raw`)).text, 'stays');
  });

  test('KV puts through three agents while an etcd member is killed: every acknowledged put is on every agent', async () => {
    const { a, b, c } = await three();
    const all = [a, b, c];
    const acked = new Map<string, string>();
    const maybe = new Map<string, string>();
    let errors = 0;
    let noLeader = 0;
    let firstError = '';
    let stop = false;
    const clients = Array.from({ length: 24 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const key = `dur/${w}/${i % 20}`;
        const value = `${w}-${i}`;
        try {
          const r = await req('PUT', `${(all[w % 3] as RunningAgent).httpUrl}/v1/kv/${key}`, value);
          if (r.text === 'true') {
            acked.set(key, value);
            maybe.delete(key);
          }
          // An election that outlasts the leader hold answers Consul's "No cluster leader". Like Consul's, that
          // answer can follow an attempt that did land (the member died mid-request): the key may hold it.
          else if (r.status === 500 && r.text === 'No cluster leader') {
            noLeader++;
            maybe.set(key, value);
          } else {
            errors++;
            firstError ||= `${r.status} ${r.text}`;
          }
        } catch (err) {
          errors++;
          firstError ||= String(err);
        }
      }
    });
    await new Promise((r) => setTimeout(r, 700));
    const victim = etcd.members[0];
    await victim?.kill();
    await new Promise((r) => setTimeout(r, 1500));
    stop = true;
    await Promise.all(clients);
    await victim?.start();
    assert.equal(errors, 0, `no write failed but for "No cluster leader"; first: ${firstError}`);
    assert.ok(acked.size > 20, `${acked.size} keys acknowledged (${noLeader} "No cluster leader")`);
    for (const agent of all) {
      const r = await getJson(`${agent.httpUrl}/v1/kv/dur/?recurse&consistent`);
      assert.equal(r.status, 200, r.text);
      const tree = r.body as Entry[];
      const got = new Map(tree.map((e) => [e.Key, Buffer.from(e.Value ?? '', 'base64').toString()]));
      for (const [k, v] of acked)
        assert.ok(
          got.get(k) === v || got.get(k) === maybe.get(k),
          `${k} on ${agent.config.node}: ${got.get(k)}, acknowledged ${v}`,
        );
    }
  });

  test('without quorum a KV write answers 500 "No cluster leader" and changes nothing; reads serve the cache', async () => {
    const { a, c } = await three();
    assert.equal((await req('PUT', `${a.httpUrl}/v1/kv/q`, 'before')).text, 'true');
    await waitFor(async () => (await getJson(`${c.httpUrl}/v1/kv/q`)).status === 200, 5000);
    const [m1, m2] = etcd.members.slice(1);
    await m1?.kill();
    await m2?.kill();
    try {
      const w = await until(async () => {
        const r = await req('PUT', `${c.httpUrl}/v1/kv/q`, 'during');
        return r.status === 500 ? r : undefined;
      }, 10_000);
      assert.match(w.text, /No cluster leader/);
      const s = await put(`${a.httpUrl}/v1/session/create`, { Name: 'x' });
      assert.equal(s.status, 500);
      const r = await getJson(`${a.httpUrl}/v1/kv/q?raw`);
      assert.equal(r.status, 200);
      assert.equal(r.text, 'before');
      assert.equal(r.knownLeader, 'false');
    } finally {
      await m1?.start();
      await m2?.start();
    }
    await waitFor(async () => (await req('PUT', `${c.httpUrl}/v1/kv/q`, 'after')).text === 'true', 15_000);
    await waitFor(async () => (await getJson(`${a.httpUrl}/v1/kv/q?raw`)).text === 'after', 5000);
  });
}
