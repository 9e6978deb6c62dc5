/**
 * The SDK's `dns` resolver against Docker's embedded DNS (127.0.0.11) with a service of 3 replicas behind
 * one `--network-alias`: traffic spreads over every replica (Docker returns all A records; most resolvers use
 * the first), a replica replaced by one with a new IP is followed (the 600 s TTL is capped) and idempotent
 * calls never fail meanwhile (connection refused moves on to another instance); then the service is scaled
 * 3 → 1 → 3 the way `docker-compose up --scale` does it (stop with SIGTERM, remove; start new replicas) under
 * the same load, still with zero failed idempotent calls, and the new replicas get traffic.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { REPO_ROOT } from '../helpers/agent.ts';
import {
  baseImage,
  type Dockerd,
  dockerSkip,
  startDockerd,
  subnetNetwork,
  until,
} from '../helpers/docker.ts';

const skip = dockerSkip();
const SERVER = "require('http').createServer((q,s)=>s.end(require('os').hostname())).listen(8080)";
let engine: Dockerd;
let image: string;

const replica = (name: string) =>
  engine.docker(
    'run',
    '-d',
    '--init',
    '--network',
    'dnet',
    '--network-alias',
    'users',
    '--name',
    name,
    '--hostname',
    name,
    image,
    'node',
    '-e',
    SERVER,
  );

before(async () => {
  if (skip) return;
  engine = await startDockerd();
  image = await baseImage(engine);
  await subnetNetwork(engine, 'dnet'); // `--ip` below needs a user-configured subnet
  await Promise.all(['users-1', 'users-2', 'users-3'].map(replica));
});

after(async () => {
  await engine?.close();
});

test('3 replicas behind one alias all get traffic; a replaced replica and scaling 3 → 1 → 3 under load cost zero failed idempotent calls', {
  skip,
}, async () => {
  await engine.docker(
    'run',
    '-d',
    '--name',
    'client',
    '--network',
    'dnet',
    '-e',
    'DONE_HOSTS=users-5,users-6',
    '-v',
    `${REPO_ROOT}:/repo:ro`,
    '-w',
    '/repo',
    image,
    'node',
    '--conditions=phare-source',
    '/repo/test/docker/dns-client.ts',
  );
  const last = async () => {
    const lines = (await engine.docker('logs', 'client')).split('\n').filter((l) => l.startsWith('{'));
    return JSON.parse(lines.at(-1) ?? '{"byHost":{},"errors":[]}') as {
      byHost: Record<string, number>;
      errors: string[];
      done?: boolean;
    };
  };
  // the replacement starts once the load has reached every first replica
  await until(
    'traffic on users-1..3',
    async () => {
      const { byHost } = await last();
      return ['users-1', 'users-2', 'users-3'].every((h) => (byHost[h] ?? 0) > 0);
    },
    60_000,
  );
  const oldIp = await engine.docker(
    'inspect',
    '-f',
    '{{.NetworkSettings.Networks.dnet.IPAddress}}',
    'users-2',
  );
  await engine.docker('rm', '-f', 'users-2');
  // Docker hands a freed IP out again: hold it, so the replacement comes back on a new one
  await engine.docker(
    'run',
    '-d',
    '--network',
    'dnet',
    '--name',
    'squat',
    '--ip',
    oldIp,
    image,
    'sleep',
    '60',
  );
  await replica('users-4');
  const newIp = await engine.docker(
    'inspect',
    '-f',
    '{{.NetworkSettings.Networks.dnet.IPAddress}}',
    'users-4',
  );
  assert.notEqual(newIp, oldIp, 'the replacement took the old IP: nothing to follow');
  const calls = async (host: string) => (await last()).byHost[host] ?? 0;
  await until('traffic on the replacement users-4', async () => (await calls('users-4')) > 0, 60_000);
  // scale 3 → 1: compose stops a replica with SIGTERM (10 s grace) and then removes it
  await Promise.all(['users-3', 'users-4'].map((n) => engine.docker('stop', '-t', '10', n)));
  await Promise.all(['users-3', 'users-4'].map((n) => engine.docker('rm', n)));
  const alone = await calls('users-1');
  await until(
    'users-1 alone serves 50 more calls',
    async () => (await calls('users-1')) >= alone + 50,
    60_000,
  );
  // scale 1 → 3: the client stops once both new replicas have answered 50 calls
  await Promise.all(['users-5', 'users-6'].map(replica));
  await engine.docker('wait', 'client');
  const out = await last();
  assert.ok(out.done, `the client did not finish: ${await engine.docker('logs', '--tail', '5', 'client')}`);
  process.stdout.write(`# calls per replica: ${JSON.stringify(out.byHost)}\n`);
  assert.deepEqual(out.errors, [], 'idempotent calls failed');
  for (const host of ['users-1', 'users-2', 'users-3', 'users-4', 'users-5', 'users-6'])
    assert.ok((out.byHost[host] ?? 0) > 0, `${host} got no traffic: ${JSON.stringify(out.byHost)}`);
});
