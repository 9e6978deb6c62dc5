import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ContainerInspect } from './engine.ts';
import { CONTAINER_META, readContainer } from './labels.ts';

function container(over: {
  labels?: Record<string, string>;
  env?: string[];
  ports?: string[];
  networks?: Record<string, string>;
  health?: string;
}): ContainerInspect {
  return {
    Id: 'abcdef0123456789abcdef',
    Name: '/app-1',
    Config: {
      Labels: over.labels ?? {},
      Env: over.env ?? [],
      ExposedPorts: Object.fromEntries((over.ports ?? []).map((p) => [p, {}])),
      Healthcheck: over.health ? { Test: ['CMD-SHELL', 'true'] } : null,
    },
    State: {
      Status: 'running',
      Running: true,
      Health: over.health ? { Status: over.health, Log: [{ Output: 'probe said so\n' }] } : null,
    },
    NetworkSettings: {
      Networks: Object.fromEntries(
        Object.entries(over.networks ?? { net: '10.0.0.5' }).map(([n, ip]) => [n, { IPAddress: ip }]),
      ),
    },
  };
}

test('phare labels: one service on the only exposed port, tags, meta, owner meta', () => {
  const { registrations, problems } = readContainer(
    container({
      labels: { 'phare.service': 'api', 'phare.tags': 'a, b', 'phare.meta.v': '2' },
      ports: ['8000/tcp'],
    }),
  );
  assert.deepEqual(problems, []);
  assert.equal(registrations.length, 1);
  const s = registrations[0]?.service;
  assert.equal(s?.id, 'app-1:abcdef012345:8000');
  assert.equal(s?.port, 8000);
  assert.equal(s?.address, '10.0.0.5');
  assert.deepEqual(s?.tags, ['a', 'b']);
  assert.equal(s?.meta['v'], '2');
  assert.equal(s?.meta[CONTAINER_META], 'abcdef0123456789abcdef');
});

test('bad labels are reported by name and register nothing', () => {
  const bad = readContainer(container({ labels: { 'phare.service': 'api', 'phare.port': '70000' } }));
  assert.deepEqual(bad.registrations, []);
  assert.match(bad.problems[0] ?? '', /^label phare.port: expected a port number 1-65535, got "70000"$/);
  const two = readContainer(container({ labels: { 'phare.service': 'api' }, ports: ['1/tcp', '2/tcp'] }));
  assert.deepEqual(two.registrations, []);
  assert.match(two.problems[0] ?? '', /exposes 1, 2; say which one/);
  const net = readContainer(container({ labels: { 'phare.service': 'api', 'phare.network': 'other' } }));
  assert.match(net.problems[0] ?? '', /no address on network "other"/);
});

test('phare.network picks the address; without it the first network by name', () => {
  const nets = { zeta: '10.0.9.9', alpha: '10.0.1.1' };
  const first = readContainer(container({ labels: { 'phare.service': 'x' }, networks: nets }));
  assert.equal(first.registrations[0]?.service.address, '10.0.1.1');
  const chosen = readContainer(
    container({ labels: { 'phare.service': 'x', 'phare.network': 'zeta' }, networks: nets }),
  );
  assert.equal(chosen.registrations[0]?.service.address, '10.0.9.9');
});

test('registrator variables: SERVICE_NAME per port with -<port>, SERVICE_<port>_NAME, IGNORE; labels win over env', () => {
  const r = readContainer(
    container({
      env: ['SERVICE_NAME=legacy', 'SERVICE_TAGS=t1', 'SERVICE_81_NAME=admin', 'SERVICE_82_IGNORE=1'],
      labels: { SERVICE_TAGS: 'from-label' },
      ports: ['80/tcp', '81/tcp', '82/tcp'],
    }),
  );
  assert.deepEqual(
    r.registrations.map((x) => [x.service.name, x.service.port, x.service.tags]),
    [
      ['legacy-80', 80, ['from-label']],
      ['admin', 81, ['from-label']],
    ],
  );
  assert.deepEqual(
    readContainer(container({ env: ['SERVICE_NAME=x', 'SERVICE_IGNORE=1'] })).registrations,
    [],
  );
  assert.deepEqual(
    readContainer(container({ ports: ['80/tcp'] })).registrations,
    [],
    'no opt-in, no service',
  );
});

test('Docker health: healthy -> passing, unhealthy -> critical, starting -> critical with that output', () => {
  const of = (h: string) => readContainer(container({ labels: { 'phare.service': 'x' }, health: h }));
  assert.deepEqual(of('healthy').registrations[0]?.health?.status, 'passing');
  assert.deepEqual(of('unhealthy').registrations[0]?.health, {
    checkId: 'docker-health:app-1:abcdef012345:0',
    status: 'critical',
    output: 'probe said so',
  });
  assert.equal(of('starting').registrations[0]?.health?.output, 'starting: probe said so');
  assert.equal(
    readContainer(container({ labels: { 'phare.service': 'x' } })).registrations[0]?.checks.length,
    0,
  );
});

test('phare.check.http adds an HTTP check on the container address', () => {
  const r = readContainer(
    container({
      labels: {
        'phare.service': 'x',
        'phare.port': '8080',
        'phare.check.http': '/ready',
        'phare.check.interval': '2s',
      },
    }),
  );
  const c = r.registrations[0]?.checks[0];
  assert.equal(c?.def.type, 'http');
  assert.equal(c?.def.http, 'http://10.0.0.5:8080/ready');
  assert.equal(c?.def.intervalMs, 2000);
  const bad = readContainer(container({ labels: { 'phare.service': 'x', 'phare.check.http': 'ready' } }));
  assert.match(bad.problems[0] ?? '', /phare.check.http: expected a path such as \/health/);
});

test('--docker: off by default, alone the default socket, a unix:// endpoint, anything else an error naming the flag', async () => {
  const { resolveAgentConfig } = await import('../config/index.ts');
  const of = (docker: unknown) => resolveAgentConfig({ flags: { dev: true, docker }, env: {} }).dockerSocket;
  assert.equal(resolveAgentConfig({ flags: { dev: true }, env: {} }).dockerSocket, null);
  assert.equal(of(true), '/var/run/docker.sock');
  assert.equal(of('unix:///tmp/d.sock'), '/tmp/d.sock');
  assert.equal(of('false'), null);
  assert.equal(
    resolveAgentConfig({ env: { PHARE_DOCKER: 'true', PHARE_DEV: 'true' } }).dockerSocket,
    '/var/run/docker.sock',
  );
  assert.throws(
    () => of('tcp://127.0.0.1:2375'),
    (err: Error & { code?: string }) =>
      err.code === 'PHARE_ERR_INVALID_ARGUMENT' &&
      err.message ===
        '--docker: "tcp://127.0.0.1:2375" is not valid; expected a unix socket endpoint such as unix:///var/run/docker.sock',
  );
});
