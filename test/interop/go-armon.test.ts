/**
 * Interop: Debian's golang-github-armon-consul-api-dev (github.com/armon/consul-api, the old Go client)
 * against a real Phare agent, unchanged. go/story.go is built with Debian's golang-go in GOPATH mode (the
 * package installs under /usr/share/gocode) into the Phare cache, keyed by the source and Go version, so
 * only the first run pays for the build. The story runs register → TTL check → health → watch →
 * catalog register/deregister (with the obsolete `Address` this client always sends) → deregister;
 * this file asserts on what the client saw, step by step.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startAgentInProcess } from '../helpers/agent.ts';
import { needs, phareCacheDir, requirePresent } from '../helpers/outside.ts';

const SOURCE = join(import.meta.dirname, 'go', 'story.go');
const GOPATH = '/usr/share/gocode';
const CLIENT_DIR = join(GOPATH, 'src', 'github.com', 'armon', 'consul-api');

function goVersion(): string | undefined {
  const r = spawnSync('go', ['version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}
const version = goVersion();
const missing = !version
  ? 'Debian golang-go (go) is not installed'
  : !existsSync(join(CLIENT_DIR, 'api.go'))
    ? `${CLIENT_DIR} not found (apt-get install golang-github-armon-consul-api-dev)`
    : undefined;

/** Builds story.go once per (source, client, Go version) into the cache; returns the binary. */
function build(): string {
  const key = createHash('sha256')
    .update(readFileSync(SOURCE))
    .update(readFileSync(join(CLIENT_DIR, 'api.go')))
    .update(version ?? '')
    .digest('hex')
    .slice(0, 16);
  const dir = join(phareCacheDir(), 'go-armon');
  const bin = join(dir, `story-${key}`);
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const tmp = `${bin}.tmp-${process.pid}`;
  const r = spawnSync('go', ['build', '-o', tmp, SOURCE], {
    encoding: 'utf8',
    env: { ...process.env, GO111MODULE: 'off', GOPATH, GOCACHE: join(dir, 'gocache'), GOFLAGS: '' },
    timeout: 240_000,
  });
  if (r.status !== 0) throw new Error(`go build of ${SOURCE} failed:\n${r.stderr}${r.stdout}`);
  renameSync(tmp, bin);
  return bin;
}

type Agent = Awaited<ReturnType<typeof startAgentInProcess>>;
let agent: Agent | undefined;
// biome-ignore lint/suspicious/noExplicitAny: the story's JSON output, checked field by field below
let out: Record<string, any> = {};

before(async () => {
  if (missing) return;
  const bin = build();
  agent = await startAgentInProcess();
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(bin, [`127.0.0.1:${agent?.httpAddress.port}`], { timeout: 60_000 }, (err, so, se) => {
      if (err) reject(new Error(`story failed (${err.message}):\n${se}\n${so}`));
      else resolve(so);
    });
  });
  out = JSON.parse(stdout);
});

after(async () => {
  await agent?.close();
});

const opts = needs(missing);

test('armon/consul-api: reads on a fresh agent, with the query meta it parses', opts, () => {
  requirePresent(missing);
  assert.equal(out['leader'], '127.0.0.1:8300');
  assert.equal(out['node_name'], 'test-node');
  assert.deepEqual(out['members'], ['test-node']);
  assert.deepEqual(out['datacenters'], ['dc1']);
  assert.equal(out['nodes_index'].known_leader, true);
  assert.ok(out['nodes_index'].index >= 2, JSON.stringify(out['nodes_index']));
});

test('armon/consul-api: register with a TTL check; pass, warn; tags', opts, () => {
  requirePresent(missing);
  assert.equal(out['register_web1'], true);
  assert.deepEqual(out['services'], { Service: 'web', Tags: ['v1'], Port: 8080 });
  assert.equal(out['check_initial'], 'critical');
  assert.deepEqual(out['passing_initial'], []);
  assert.equal(out['pass'], true);
  assert.deepEqual(out['passing_after_pass'], ['web-1']);
  assert.deepEqual(out['check_after_pass'], { Status: 'passing', Output: 'all good', ServiceID: 'web-1' });
  assert.equal(out['warn'], true);
  assert.deepEqual(out['tag_v1'], ['web-1']);
  assert.equal(out['register_check'], true);
  assert.deepEqual(out['state_critical'], ['mem']);
});

test('armon/consul-api: a blocking health watch is woken by another goroutine', opts, () => {
  requirePresent(missing);
  const w = out['watch'];
  assert.deepEqual(w.ids, ['web-1', 'web-2'], JSON.stringify(w));
  assert.ok(w.after > w.before, JSON.stringify(w));
  assert.ok(w.elapsed >= 0.2 && w.elapsed < 4.5, `woken after ${w.elapsed}s (change at 0.3s, wait 5s)`);
});

test('armon/consul-api: catalog register, read, deregister with the obsolete Address field', opts, () => {
  requirePresent(missing);
  assert.equal(out['catalog_register'], true);
  assert.deepEqual(out['catalog_service'], [
    { Node: 'ext-redis', Address: '10.1.2.3', ServiceID: 'redis-1', ServicePort: 6379 },
  ]);
  assert.deepEqual(out['health_redis'], ['redis-1']);
  assert.deepEqual(out['catalog_node'], { Address: '10.1.2.3', Services: ['redis-1'] });
  assert.equal(out['catalog_deregister_service'], true);
  assert.equal(out['catalog_after'], 0);
  assert.equal(out['catalog_deregister_node'], true);
  assert.deepEqual(out['nodes_after'], ['test-node']);
});

test('armon/consul-api: deregister; an unknown ID is an error from the client', opts, () => {
  requirePresent(missing);
  assert.equal(out['deregister_web1'], true);
  assert.equal(out['deregister_check'], true);
  assert.deepEqual(out['services_after'], ['web-2']);
  assert.match(String(out['deregister_unknown']?.error), /404/);
});
