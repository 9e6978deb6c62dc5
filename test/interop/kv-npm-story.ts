/**
 * The KV story the npm `consul` client (2.x, silas/node-consul) lives through, against two agent URLs (the
 * same agent twice for one node; two agents of a cluster): set/get with flags, keys with a separator, recurse,
 * a CAS race between two clients, delete, sessions create/renew/info/destroy, a lock taken with
 * `kv.set({ acquire })`, refused to a second session and taken over once the holder's session is destroyed,
 * and a watch (blocking get) through the second client woken by a write through the first.
 */
import assert from 'node:assert/strict';
import Consul from 'consul';

// node-consul's typings are loose (`any` results): describe what the story reads.
interface Entry {
  Key: string;
  Value: string | null;
  Flags: number;
  Session?: string;
  LockIndex: number;
  ModifyIndex: number;
}

/**
 * Runs the story with client X on `portX` and client Y on `portY`, under key prefix `root`.
 *
 * @example
 * await npmKvStory(agent.httpAddress.port, agent.httpAddress.port, 'npm/');
 */
export async function npmKvStory(portX: number, portY: number, root: string): Promise<void> {
  const x = new Consul({ host: '127.0.0.1', port: portX });
  const y = new Consul({ host: '127.0.0.1', port: portY });
  try {
    assert.equal(await x.kv.set({ key: `${root}a`, value: 'hello', flags: 7 }), true);
    const a = (await y.kv.get({ key: `${root}a`, consistent: true } as never)) as Entry;
    assert.equal(a.Value, 'hello');
    assert.equal(a.Flags, 7);
    await x.kv.set(`${root}dir/x`, '1');
    await x.kv.set(`${root}dir/y`, '2');
    await x.kv.set(`${root}b`, 'b');
    assert.deepEqual(await y.kv.keys({ key: root, separator: '/', consistent: true } as never), [
      `${root}a`,
      `${root}b`,
      `${root}dir/`,
    ]);
    const tree = (await y.kv.get({ key: `${root}dir/`, recurse: true })) as Entry[];
    assert.deepEqual(
      tree.map((e) => [e.Key, e.Value]),
      [
        [`${root}dir/x`, '1'],
        [`${root}dir/y`, '2'],
      ],
    );

    // CAS race: both clients move the same ModifyIndex; exactly one wins
    const cur = (await x.kv.get(`${root}a`)) as Entry;
    const race = await Promise.all([
      x.kv.set({ key: `${root}a`, value: 'x', cas: cur.ModifyIndex }),
      y.kv.set({ key: `${root}a`, value: 'y', cas: cur.ModifyIndex }),
    ]);
    assert.equal(race.filter((r) => r === true).length, 1, `cas answers ${race.join('/')}`);
    const won = race[0] === true ? 'x' : 'y';
    assert.equal(((await y.kv.get({ key: `${root}a`, consistent: true } as never)) as Entry).Value, won);

    assert.equal(await y.kv.del(`${root}b`), true);
    assert.equal(await x.kv.get({ key: `${root}b`, consistent: true } as never), undefined);

    // sessions: create through X, renew and read through Y
    const s1 = ((await x.session.create({ name: 'npm-1', ttl: '10s', lockdelay: '0s' })) as { ID: string })
      .ID;
    const s2 = ((await y.session.create({ name: 'npm-2', lockdelay: '0s' })) as { ID: string }).ID;
    const renewed = (await y.session.renew(s1)) as { ID: string; TTL: string }[];
    assert.equal(renewed[0]?.ID, s1);
    assert.equal(renewed[0]?.TTL, '10s');
    const info = (await y.session.info(s1)) as { Name: string } | undefined;
    assert.equal(info?.Name, 'npm-1');

    // the lock: X holds it, Y is refused, X's session is destroyed, Y takes it over
    assert.equal(await x.kv.set({ key: `${root}lock`, value: 'x', acquire: s1 }), true);
    // node-consul resolves Consul's `false` as undefined (papi's next(false, undefined, false) keeps undefined)
    assert.equal(await y.kv.set({ key: `${root}lock`, value: 'y', acquire: s2 }), undefined);
    const held = (await y.kv.get({ key: `${root}lock`, consistent: true } as never)) as Entry;
    assert.equal(held.Session, s1);
    await x.session.destroy(s1);
    assert.equal(await y.kv.set({ key: `${root}lock`, value: 'y', acquire: s2 }), true);
    const taken = (await x.kv.get({ key: `${root}lock`, consistent: true } as never)) as Entry;
    assert.deepEqual([taken.Session, taken.Value, taken.LockIndex], [s2, 'y', held.LockIndex + 1]);
    assert.equal(await y.kv.set({ key: `${root}lock`, value: 'y', release: s2 }), true);
    await y.session.destroy(s2);

    // a watch through Y (blocking gets) is woken by a write through X
    await x.kv.set(`${root}w`, 'v0');
    const watch = y.watch({ method: y.kv.get, options: { key: `${root}w` } as never });
    const seen = new Promise<string>((resolve, reject) => {
      watch.on('change', (e: Entry | undefined) => {
        if (e?.Value === 'v1') resolve(e.Value);
      });
      watch.on('error', reject);
    });
    await new Promise((r) => setTimeout(r, 100));
    await x.kv.set(`${root}w`, 'v1');
    assert.equal(await seen, 'v1');
    watch.end();

    assert.equal(await x.kv.del({ key: root, recurse: true }), true);
    assert.equal(await y.kv.get({ key: root, recurse: true, consistent: true } as never), undefined);
  } finally {
    x.destroy?.();
    y.destroy?.();
  }
}
