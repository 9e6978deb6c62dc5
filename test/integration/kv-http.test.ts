/**
 * `/v1/kv`, `/v1/session`, `/v1/txn` over HTTP on a real agent, with the exact requests Patroni 3.0.2 makes
 * (its DCS module, patroni/dcs/consul.py) and Consul's answers (Consul docs, KV store HTTP API).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startAgentInProcess } from '../helpers/agent.ts';

type Agent = Awaited<ReturnType<typeof startAgentInProcess>>;
let agent: Agent;
const call = async (method: string, path: string, body?: string | Buffer) => {
  const res = await fetch(agent.url + path, { method, body });
  const buf = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, buf, text: buf.toString('utf8') };
};
const json = async (method: string, path: string, body?: string | Buffer) => {
  const r = await call(method, path, body);
  assert.equal(r.headers.get('content-type'), 'application/json', `${method} ${path}: ${r.status} ${r.text}`);
  return JSON.parse(r.text);
};

before(async () => {
  agent = await startAgentInProcess();
});
after(async () => {
  await agent.close();
});

test('kv GET: a missing key is 404 with an empty body and X-Consul-Index; Missing key name', async () => {
  const r = await call('GET', '/v1/kv/nope');
  assert.equal(r.status, 404);
  assert.equal(r.text, '');
  assert.ok(Number(r.headers.get('x-consul-index')) >= 1);
  assert.equal(r.headers.get('x-consul-knownleader'), 'true');
  assert.equal(r.headers.get('x-consul-lastcontact'), '0');
  const m = await call('GET', '/v1/kv/');
  assert.deepEqual([m.status, m.text], [400, 'Missing key name']);
});

test('kv PUT/GET: binary values, flags (uint64), raw, recurse, keys with separator', async () => {
  const bin = Buffer.from([0, 1, 2, 255, 254, 10, 13]);
  assert.equal(await json('PUT', '/v1/kv/app/bin?flags=18446744073709551615', bin), true);
  assert.equal(await json('PUT', '/v1/kv/app/cfg/a', 'A'), true);
  assert.equal(await json('PUT', '/v1/kv/app/cfg/b', ''), true);
  const [e] = await call('GET', '/v1/kv/app/bin').then((r) => {
    // parse by hand: Flags is past 2^53 and must come back exact
    assert.match(r.text, /"Flags":18446744073709551615,/);
    return JSON.parse(r.text);
  });
  assert.deepEqual(Object.keys(e), ['LockIndex', 'Key', 'Flags', 'Value', 'CreateIndex', 'ModifyIndex']);
  assert.deepEqual(Buffer.from(e.Value, 'base64'), bin);
  const raw = await call('GET', '/v1/kv/app/bin?raw');
  assert.deepEqual(raw.buf, bin);
  assert.equal(raw.headers.get('content-type'), 'text/plain');
  assert.equal(raw.headers.get('x-content-type-options'), 'nosniff');
  const tree = await json('GET', '/v1/kv/app/?recurse');
  assert.deepEqual(
    tree.map((x: { Key: string; Value: string | null }) => [x.Key, x.Value]),
    [
      ['app/bin', bin.toString('base64')],
      ['app/cfg/a', 'QQ=='],
      ['app/cfg/b', null],
    ],
  );
  assert.deepEqual(await json('GET', '/v1/kv/app/?keys&separator=/'), ['app/bin', 'app/cfg/']);
  assert.deepEqual(await json('GET', '/v1/kv/app/?keys'), ['app/bin', 'app/cfg/a', 'app/cfg/b']);
  assert.equal((await call('GET', '/v1/kv/zzz/?keys')).status, 404);
  assert.ok(Array.isArray(await json('GET', '/v1/kv/?keys')));
});

test('kv PUT: cas, conflicting flags, bad numbers, the 512 KiB limit with Consul text', async () => {
  assert.equal(await json('PUT', '/v1/kv/c/x?cas=0', '1'), true);
  assert.equal(await json('PUT', '/v1/kv/c/x?cas=0', '2'), false);
  const [e] = await json('GET', '/v1/kv/c/x');
  assert.equal(await json('PUT', `/v1/kv/c/x?cas=${e.ModifyIndex + 1}`, '3'), false);
  assert.equal(await json('PUT', `/v1/kv/c/x?cas=${e.ModifyIndex}`, '3'), true);
  // two racers on one index: exactly one wins
  const [cur] = await json('GET', '/v1/kv/c/x');
  const race = await Promise.all(
    ['a', 'b', 'c', 'd'].map((v) => json('PUT', `/v1/kv/c/x?cas=${cur.ModifyIndex}`, v)),
  );
  assert.equal(race.filter(Boolean).length, 1);
  const conflict = await call('PUT', '/v1/kv/c/x?cas=1&release=s');
  assert.deepEqual([conflict.status, conflict.text], [400, 'Conflicting flags: cas=1&release=s']);
  const bad = await call('PUT', '/v1/kv/c/x?flags=-1');
  assert.deepEqual([bad.status, bad.text], [500, 'strconv.ParseUint: parsing "-1": invalid syntax']);
  const big = await call('PUT', '/v1/kv/c/big', Buffer.alloc(512 * 1024 + 1));
  assert.equal(big.status, 413);
  assert.equal(
    big.text,
    'Request body(524289 bytes) too large, max size: 524288 bytes. See https://www.consul.io/docs/agent/config/config-files#kv_max_value_size.',
  );
  assert.equal((await call('GET', '/v1/kv/c/big')).status, 404, 'nothing stored');
  assert.equal(await json('PUT', '/v1/kv/c/max', Buffer.alloc(512 * 1024)), true);
});

test('kv DELETE: one key, cas (missing key is true), recurse, recurse+cas conflict', async () => {
  await json('PUT', '/v1/kv/d/a', '1');
  await json('PUT', '/v1/kv/d/b', '1');
  await json('PUT', '/v1/kv/d/c/e', '1');
  const [a] = await json('GET', '/v1/kv/d/a');
  assert.equal(await json('DELETE', `/v1/kv/d/a?cas=${a.ModifyIndex + 7}`), false);
  assert.equal(await json('DELETE', `/v1/kv/d/a?cas=${a.ModifyIndex}`), true);
  assert.equal(await json('DELETE', '/v1/kv/d/a?cas=5'), true);
  assert.equal(await json('DELETE', '/v1/kv/d/b'), true);
  assert.equal((await call('DELETE', '/v1/kv/d?recurse&cas=1')).status, 400);
  assert.equal(await json('DELETE', '/v1/kv/d/?recurse'), true);
  assert.equal((await call('GET', '/v1/kv/d/?recurse')).status, 404);
});

test('Patroni 3.0.2 requests: session, member and leader locks, cas, watch woken only by its key, renew, failover', async () => {
  // PUT /v1/session/create as Patroni sends it (lower-case keys, Go durations, checks [] = no serfHealth)
  const { ID: sid } = await json(
    'PUT',
    '/v1/session/create',
    JSON.stringify({ name: 'pg-n1', checks: [], lockdelay: '0.001s', behavior: 'delete', ttl: '15.0s' }),
  );
  const [info] = await json('GET', `/v1/session/info/${sid}`);
  assert.deepEqual(
    { ...info, ID: '', CreateIndex: 0, ModifyIndex: 0 },
    {
      ID: '',
      Name: 'pg-n1',
      Node: 'test-node',
      LockDelay: 1_000_000,
      Behavior: 'delete',
      TTL: '15.0s',
      NodeChecks: null,
      ServiceChecks: null,
      CreateIndex: 0,
      ModifyIndex: 0,
    },
  );
  const base = '/v1/kv/service/pg';
  assert.equal(await json('PUT', `${base}/initialize?cas=0`, '7123'), true);
  assert.equal(await json('PUT', `${base}/members/n1?acquire=${sid}`, '{"role":"primary"}'), true);
  assert.equal(await json('PUT', `${base}/leader?acquire=${sid}`, 'n1'), true);
  const { ID: other } = await json(
    'PUT',
    '/v1/session/create',
    JSON.stringify({ name: 'pg-n2', checks: [], ttl: '15s' }),
  );
  assert.equal(
    await json('PUT', `${base}/leader?acquire=${other}`, 'n2'),
    false,
    'a lock is never held twice',
  );
  assert.equal(await json('PUT', `${base}/optime/leader`, '67108960'), true);
  const all = await json('GET', `${base}/?recurse`);
  const leader = all.find((e: { Key: string }) => e.Key === 'service/pg/leader');
  assert.equal(leader.Session, sid);
  assert.equal(leader.LockIndex, 1);
  // the watch: GET …/leader?index=<ModifyIndex>&wait=<n>s
  const t0 = Date.now();
  const watch = call('GET', `${base}/leader?index=${leader.ModifyIndex}&wait=5s`);
  await json('PUT', `${base}/optime/leader`, '67109000'); // not under the key: must not wake it
  await new Promise((r) => setTimeout(r, 200));
  const renewed = await json('PUT', `/v1/session/renew/${sid}`);
  assert.equal(renewed[0].ID, sid);
  // the leader goes: its session is destroyed (as when its TTL lapses), Behavior delete removes its keys
  assert.equal(await json('PUT', `/v1/session/destroy/${sid}`), true);
  const woke = await watch;
  assert.ok(Date.now() - t0 < 4_000, 'woken by the change, not by the timeout');
  assert.equal(woke.status, 404);
  assert.ok(Number(woke.headers.get('x-consul-index')) > leader.ModifyIndex);
  assert.equal((await call('GET', `${base}/members/n1`)).status, 404, 'member key deleted with the session');
  // renew of a gone session: 404, which Patroni reads as "create a new session"
  const gone = await call('PUT', `/v1/session/renew/${sid}`);
  assert.deepEqual([gone.status, gone.text], [404, `Session id '${sid}' not found`]);
  // lock-delay of 1 ms: the other member takes over at once
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(await json('PUT', `${base}/leader?acquire=${other}`, 'n2'), true);
  const released = await call('PUT', `${base}/leader?acquire=${sid}`, 'n1');
  assert.deepEqual([released.status, released.text], [500, `invalid session "${sid}"`]);
  assert.equal(await json('PUT', `${base}/leader?release=${other}`, 'n2'), true);
  const [after1] = await json('GET', `${base}/leader`);
  assert.equal(after1.Session, undefined);
  assert.equal(after1.LockIndex, 1, 'a new key: Behavior delete removed the old one');
  assert.equal(await json('DELETE', `${base}/leader?cas=${after1.ModifyIndex}`), true);
});

test('sessions: Consul texts for TTL out of range, bad Behavior, unknown node; default serfHealth; lists', async () => {
  const low = await call('PUT', '/v1/session/create', JSON.stringify({ TTL: '5s' }));
  assert.deepEqual(
    [low.status, low.text],
    [500, "Invalid Session TTL '5000000000', must be between [10s=24h0m0s]"],
  );
  const high = await call('PUT', '/v1/session/create', JSON.stringify({ TTL: '25h' }));
  assert.match(high.text, /^Invalid Session TTL '90000000000000'/);
  const beh = await call('PUT', '/v1/session/create', JSON.stringify({ Behavior: 'keep' }));
  assert.deepEqual([beh.status, beh.text], [500, "Invalid Behavior setting 'keep'"]);
  const node = await call('PUT', '/v1/session/create', JSON.stringify({ Node: 'ghost' }));
  assert.deepEqual([node.status, node.text], [500, 'Missing node registration']);
  const unknown = await call('PUT', '/v1/session/create', JSON.stringify({ Foo: 1 }));
  assert.deepEqual([unknown.status, unknown.text], [400, 'Request decode failed: json: unknown field "Foo"']);
  const { ID } = await json('PUT', '/v1/session/create');
  const [s] = await json('GET', `/v1/session/info/${ID}`);
  assert.deepEqual([s.NodeChecks, s.LockDelay, s.Behavior, s.TTL], [['serfHealth'], 15e9, 'release', '']);
  assert.ok((await json('GET', '/v1/session/list')).some((x: { ID: string }) => x.ID === ID));
  assert.ok((await json('GET', '/v1/session/node/test-node')).some((x: { ID: string }) => x.ID === ID));
  assert.deepEqual(await json('GET', '/v1/session/info/not-there'), []);
  assert.equal((await call('GET', '/v1/session/create')).status, 405);
});

test('txn: atomic KV operations, results without values except get, 409 with every error, 128-op limit', async () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const ok = await json(
    'PUT',
    '/v1/txn',
    JSON.stringify([
      { KV: { Verb: 'set', Key: 'tx/a', Value: b64('A'), Flags: 3 } },
      { KV: { Verb: 'check-not-exists', Key: 'tx/b' } },
      { KV: { Verb: 'get', Key: 'tx/a' } },
    ]),
  );
  assert.equal(ok.Errors, null);
  assert.equal(ok.Results.length, 2);
  assert.equal(ok.Results[0].KV.Value, null);
  assert.equal(ok.Results[1].KV.Value, b64('A'));
  assert.equal(ok.Results[1].KV.Flags, 3);
  const idx = ok.Results[0].KV.ModifyIndex;
  const r = await call(
    'PUT',
    '/v1/txn',
    JSON.stringify([
      { KV: { Verb: 'set', Key: 'tx/b', Value: b64('B') } },
      { KV: { Verb: 'cas', Key: 'tx/a', Value: b64('X'), Index: idx + 100 } },
      { KV: { Verb: 'check-index', Key: 'tx/a', Index: idx + 1 } },
      { KV: { Verb: 'bogus', Key: 'tx/a' } },
    ]),
  );
  assert.equal(r.status, 409);
  assert.deepEqual(JSON.parse(r.text), {
    Results: null,
    Errors: [
      { OpIndex: 1, What: 'failed to set key "tx/a", index is stale' },
      { OpIndex: 2, What: `failed index check for key "tx/a", current modify index ${idx} != ${idx + 1}` },
      { OpIndex: 3, What: 'unknown KV verb "bogus"' },
    ],
  });
  assert.equal((await call('GET', '/v1/kv/tx/b')).status, 404, 'nothing of a failed txn applies');
  const many = Array.from({ length: 129 }, (_, i) => ({ KV: { Verb: 'get', Key: `k${i}` } }));
  const tooMany = await call('PUT', '/v1/txn', JSON.stringify(many));
  assert.deepEqual(
    [tooMany.status, tooMany.text],
    [413, 'Transaction contains too many operations (129 > 128)'],
  );
  const tree = await json(
    'PUT',
    '/v1/txn',
    JSON.stringify([{ KV: { Verb: 'delete-tree', Key: 'tx/' } }, { KV: { Verb: 'get-tree', Key: 'tx/' } }]),
  );
  assert.deepEqual(tree, { Results: [], Errors: null });
});
