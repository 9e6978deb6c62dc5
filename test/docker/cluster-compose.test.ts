/**
 * docs/cluster.md's compose file, run as written (issue 12): 3 etcd members and 3 Phare agents started by
 * Debian's docker-compose on a private engine. The file is read from the doc itself, so the doc cannot drift
 * from what runs. Only what cannot run here is changed: the published host ports move to free ones on
 * 127.0.0.1 (a developer's own agent on 8501 must not collide), and the public images it names are stood in
 * for by local ones under the same tags (no registry here) — `node:24-slim` is the suite's Debian base with
 * Node, `quay.io/coreos/etcd:v3.5.17` that base with the host's own etcd (Debian's 3.4, which takes the same
 * `ETCD_*` variables and flags the file uses).
 *
 * What it shows: the agents join one cluster (every agent lists three members alive, each advertising its
 * fixed address), a registration through one agent is answered by another (a blocking query there wakes),
 * and an agent's container killed is seen by the others as Consul shows a dead agent: member `failed`,
 * `serfHealth` critical, its services out of `?passing`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { parseDocument } from 'yaml';
import { REPO_ROOT } from '../helpers/agent.ts';
import { baseImage, type Dockerd, dockerSkip, startDockerd, until } from '../helpers/docker.ts';
import { dependencySkip } from '../helpers/requires.ts';
import { freePort } from '../helpers/server-process.ts';

const run = promisify(execFile);
const COMPOSE_BIN = '/usr/bin/docker-compose';
const ETCD_BIN = '/usr/bin/etcd';
const ETCD_IMAGE = 'quay.io/coreos/etcd:v3.5.17';
const work = mkdtempSync(join(tmpdir(), 'phare-cluster-compose-'));
const FILE = join(work, 'compose.yaml');
const PROJECT = 'phcl';
/** Host port the copy publishes for each agent (a, b, c). */
const port: Record<string, number> = {};
const skip =
  dockerSkip() ||
  dependencySkip(
    [
      existsSync(ETCD_BIN) ? '' : 'etcd-server (apt-get install etcd-server)',
      await run(COMPOSE_BIN, ['version']).then(
        () => '',
        () => 'docker-compose',
      ),
    ]
      .filter(Boolean)
      .join(', ') || undefined,
  );
let engine: Dockerd;

/** The YAML block of docs/cluster.md's "Compose file" section. */
function composeFromDoc(): string {
  const doc = readFileSync(join(REPO_ROOT, 'docs', 'cluster.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Compose file'));
  const m = /```yaml\n([\s\S]*?)```/.exec(section);
  assert.ok(m?.[1], 'docs/cluster.md: no ```yaml block in the "Compose file" section');
  return m[1];
}

async function compose(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run(
      COMPOSE_BIN,
      ['-f', FILE, '--project-directory', REPO_ROOT, '-p', PROJECT, ...args],
      {
        env: { ...process.env, DOCKER_HOST: engine.endpoint, COMPOSE_INTERACTIVE_NO_CLI: '1' },
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    return stdout.trim();
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`docker-compose ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
}
const logs = async () => compose('logs', '--no-color', '--tail', '20').catch((e: Error) => e.message);
const get = async (agent: string, path: string) => {
  const r = await fetch(`http://127.0.0.1:${port[agent]}${path}`);
  return { status: r.status, index: Number(r.headers.get('x-consul-index')), body: await r.json() };
};

/** Writes the copy with a free loopback host port for each agent. */
async function writeCopy(): Promise<void> {
  const doc = parseDocument(composeFromDoc());
  for (const name of ['a', 'b', 'c']) {
    const ports = doc.getIn(['services', name, 'ports']) as { toJSON(): string[] } | undefined;
    const mapping = ports?.toJSON()[0] ?? '';
    const m = /^(\d+):8500$/.exec(mapping);
    assert.ok(m, `docs/cluster.md: services.${name}.ports[0] is ${mapping}, expected <host port>:8500`);
    port[name] = await freePort();
    doc.setIn(['services', name, 'ports', 0], `127.0.0.1:${port[name]}:8500`);
  }
  writeFileSync(FILE, doc.toString());
}

before(async () => {
  if (skip) return;
  await writeCopy();
  engine = await startDockerd();
  const base = await baseImage(engine);
  await engine.docker('tag', base, 'node:24-slim');
  // etcd's image: the base plus the host's etcd binary (it needs only libc, which the base has)
  const holder = await engine.docker('create', base, 'true');
  await engine.docker('cp', ETCD_BIN, `${holder}:/usr/local/bin/etcd`);
  await engine.docker('commit', holder, ETCD_IMAGE);
  await engine.docker('rm', holder);
});

after(async () => {
  if (!engine) return;
  await compose('down', '-v', '--timeout', '2').catch(() => {});
  await engine.close();
  rmSync(work, { recursive: true, force: true });
});

test("docs/cluster.md's compose file runs: three agents over three etcd members, one catalog, a killed agent seen by the others", {
  skip,
  timeout: 180_000,
}, async () => {
  // a free port can be taken by another process between freePort() and the engine's bind: new ports, again
  for (let attempt = 1; ; attempt++) {
    const failed = await compose('up', '-d').then(
      () => undefined,
      (err: Error) => err,
    );
    if (!failed) break;
    if (attempt === 3 || !/address already in use/.test(failed.message))
      assert.fail(`${failed.message}\n${await logs()}`);
    await compose('down', '-v', '--timeout', '2');
    await writeCopy();
  }
  type Member = { Name: string; Addr: string; Status: number };
  const members = async (agent: string) =>
    ((await get(agent, '/v1/agent/members')).body as Member[])
      .map((m) => `${m.Name} ${m.Addr} ${m.Status}`)
      .sort();
  const joined = ['a 172.28.0.11 1', 'b 172.28.0.12 1', 'c 172.28.0.13 1'];
  for (const agent of ['a', 'b', 'c'])
    await until(
      `agent ${agent} lists three members alive`,
      async () => (await members(agent)).join() === joined.join() || undefined,
      90_000,
    ).catch(async (err: Error) => assert.fail(`${err.message}\n${await logs()}`));

  // registered through b, answered by a (a blocking query parked on a wakes) and by c
  const before = await get('a', '/v1/health/service/web?passing');
  assert.deepEqual(before.body, []);
  const parked = get('a', `/v1/health/service/web?passing&index=${before.index}&wait=20s`);
  const reg = await fetch(`http://127.0.0.1:${port['b']}/v1/agent/service/register`, {
    method: 'PUT',
    body: JSON.stringify({ ID: 'web-1', Name: 'web', Port: 8080, Check: { TTL: '5m', Status: 'passing' } }),
  });
  assert.equal(reg.status, 200);
  type Entry = { Node: { Node: string; Address: string }; Service: { ID: string } };
  const woke = (await parked).body as Entry[];
  assert.deepEqual(
    woke.map((e) => [e.Node.Node, e.Node.Address, e.Service.ID]),
    [['b', '172.28.0.12', 'web-1']],
  );
  assert.equal(((await get('c', '/v1/health/service/web?passing')).body as Entry[]).length, 1);

  // b's container killed: its lease (10 s) expires and a and c show it dead, its service out of ?passing
  await engine.docker('kill', `${PROJECT}_b_1`);
  for (const agent of ['a', 'c'])
    await until(
      `agent ${agent} sees b failed`,
      async () => (await members(agent)).includes('b 172.28.0.12 4') || undefined,
      30_000,
    );
  assert.deepEqual((await get('c', '/v1/health/service/web?passing')).body, []);
  const serf = (await get('a', '/v1/health/node/b')).body as {
    CheckID: string;
    Status: string;
    Output: string;
  }[];
  assert.deepEqual(
    serf.filter((c) => c.CheckID === 'serfHealth').map((c) => [c.Status, c.Output]),
    [['critical', 'Agent not live or unreachable']],
  );
});
