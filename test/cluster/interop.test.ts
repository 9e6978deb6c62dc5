/**
 * Outside clients against a Phare cluster, unchanged: npm `consul` (2.x) and Debian's python3-consul register
 * through agent A and watch (blocking queries) through agent B; npm `consul`'s and python-consul's KV stories
 * (KV, sessions, a lock taken over, a CAS race, a blocking get) with one client on A and the other on B.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import Consul from 'consul';
import { clusterAgents, startClusterAgent } from '../helpers/cluster.ts';
import { ETCD_SKIP, startEtcdCluster } from '../helpers/etcd.ts';
import { npmKvStory } from '../interop/kv-npm-story.ts';
import { pythonKvStoryChecks, runPythonKvStory } from '../interop/kv-python-story.ts';

const PYTHON = '/usr/bin/python3';
const pythonMissing = (): string | false => {
  if (!existsSync(PYTHON)) return `${PYTHON} not found (apt-get install python3-consul)`;
  return spawnSync(PYTHON, ['-c', 'import consul']).status === 0
    ? false
    : `${PYTHON} cannot import consul (apt-get install python3-consul)`;
};

// python-consul: register on A, then a blocking health.service on B must return the new index once A passes
// the TTL check. Prints what it saw as JSON.
const PY = `
import json, sys, threading, time, consul
a = consul.Consul(port=int(sys.argv[1])); b = consul.Consul(port=int(sys.argv[2]))
a.agent.service.register('py', service_id='py-1', port=7000, check=consul.Check.ttl('30s'))
deadline = time.time() + 5
while True:
    idx, nodes = b.health.service('py')
    if nodes or time.time() > deadline: break
    time.sleep(0.05)
out = {'seen_on_b': [n['Service']['ID'] for n in nodes], 'status': nodes[0]['Checks'][-1]['Status'] if nodes else None}
threading.Timer(0.3, lambda: a.agent.check.ttl_pass('service:py-1')).start()
t0 = time.time()
idx2, nodes2 = b.health.service('py', index=idx, wait='5s', passing=True)
out['woke_ms'] = int((time.time() - t0) * 1000)
out['index_moved'] = int(idx2) > int(idx)
out['passing_on_b'] = [n['Service']['ID'] for n in nodes2]
print(json.dumps(out))
`;

if (ETCD_SKIP && process.env['CI'] !== 'true') {
  test('cluster interop', { skip: ETCD_SKIP }, () => {});
} else {
  const etcd = await startEtcdCluster({ size: 1 });
  const { track } = clusterAgents(etcd, 'interop');
  const a = await startClusterAgent(etcd, '/interop', 'a', { 'dns-addr': '' });
  track(a);
  const b = await startClusterAgent(etcd, '/interop', 'b', { 'dns-addr': '' });
  track(b);

  test('npm consul: register through A, a blocking watch through B sees it', async () => {
    const ca = new Consul({ host: '127.0.0.1', port: a.httpAddress.port });
    const cb = new Consul({ host: '127.0.0.1', port: b.httpAddress.port });
    try {
      const first = await cb.health.service({ service: 'node-svc' });
      assert.deepEqual(first, []);
      const watch = cb.watch({
        method: cb.health.service,
        options: { service: 'node-svc', passing: true } as never,
      });
      const seen = new Promise<{ Service: { ID: string } }[]>((resolve, reject) => {
        watch.on('change', (data: { Service: { ID: string } }[]) => {
          if (data.length > 0) resolve(data);
        });
        watch.on('error', reject);
      });
      await ca.agent.service.register({
        name: 'node-svc',
        id: 'node-svc-1',
        port: 7001,
        check: { ttl: '30s', status: 'passing' } as never,
      });
      const data = await seen;
      watch.end();
      assert.deepEqual(
        data.map((e) => e.Service.ID),
        ['node-svc-1'],
      );
      const members = (await cb.agent.members()) as { Name: string; Status: number }[];
      assert.deepEqual(members.map((m) => [m.Name, m.Status]).sort(), [
        ['a', 1],
        ['b', 1],
      ]);
    } finally {
      ca.destroy?.();
      cb.destroy?.();
    }
  });

  test('npm consul: the KV story with one client on A and the other on B (KV, CAS race, sessions, lock, watch)', () =>
    npmKvStory(a.httpAddress.port, b.httpAddress.port, 'npm/'));

  const skip = pythonMissing();
  test('python-consul: register through A, a blocking health.service through B wakes when A passes the check', {
    skip: skip && process.env['CI'] !== 'true' ? skip : false,
  }, async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        PYTHON,
        ['-c', PY, String(a.httpAddress.port), String(b.httpAddress.port)],
        { timeout: 30_000 },
        (err, so, se) => (err ? reject(new Error(`${err.message}\n${se}`)) : resolve(so)),
      ),
    );
    const r = JSON.parse(out) as Record<string, unknown>;
    assert.deepEqual(r['seen_on_b'], ['py-1']);
    assert.equal(r['status'], 'critical');
    assert.equal(r['index_moved'], true);
    assert.deepEqual(r['passing_on_b'], ['py-1']);
    assert.ok((r['woke_ms'] as number) < 4000, `woke after ${r['woke_ms']} ms`);
  });

  test('python-consul: the KV story with one client on A and the other on B', {
    skip: skip && process.env['CI'] !== 'true' ? skip : false,
  }, async () => {
    const out = await runPythonKvStory(
      `http://127.0.0.1:${a.httpAddress.port}`,
      `http://127.0.0.1:${b.httpAddress.port}`,
    );
    for (const [name, check] of Object.entries(pythonKvStoryChecks)) {
      try {
        check(out);
      } catch (err) {
        throw new Error(`${name}: ${(err as Error).message}`, { cause: err });
      }
    }
  });
}
