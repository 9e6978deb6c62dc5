/**
 * `--docker`: containers register themselves, against a real Docker engine (a private dockerd, see
 * test/helpers/docker.ts). Containers are started, made healthy and unhealthy, stopped, killed and removed;
 * the agent is restarted while containers change; dockerd is restarted under the agent.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { resolveAgentConfig } from '../../src/agent/config/index.ts';
import { type RunningAgent, startAgent } from '../../src/agent/index.ts';
import { tempDir } from '../helpers/agent.ts';
import {
  baseImage,
  type Dockerd,
  dockerSkip,
  startDockerd,
  subnetNetwork,
  until,
} from '../helpers/docker.ts';

const skip = dockerSkip();
const SERVER = "require('http').createServer((q,s)=>s.end('ok')).listen(process.argv[1]||8080)";

let engine: Dockerd;
let image: string;
let agent: RunningAgent;
let data: { path: string; remove: () => void };
let subnetPrefix: string;

interface AgentService {
  ID: string;
  Service: string;
  Address: string;
  Port: number;
  Tags: string[];
  Meta: Record<string, string>;
}

async function start(): Promise<RunningAgent> {
  const config = resolveAgentConfig({
    flags: {
      'http-addr': '127.0.0.1:0',
      'dns-addr': '',
      node: 'docker-host',
      'data-dir': data.path,
      docker: engine.endpoint,
      'log-level': 'silent',
    },
    env: {},
  });
  return startAgent({ config, logger: pino({ level: 'silent' }), dockerResyncIntervalMs: 300 });
}

async function services(): Promise<Record<string, AgentService>> {
  const res = await fetch(`${agent.httpUrl}/v1/agent/services`);
  return (await res.json()) as Record<string, AgentService>;
}

async function byName(name: string): Promise<AgentService[]> {
  return Object.values(await services()).filter((s) => s.Service === name);
}

async function checksOf(serviceId: string): Promise<{ Status: string; Output: string }[]> {
  const res = await fetch(`${agent.httpUrl}/v1/agent/checks`);
  const all = (await res.json()) as Record<string, { ServiceID: string; Status: string; Output: string }>;
  return Object.values(all).filter((c) => c.ServiceID === serviceId);
}

/** Whether the container's server answers at `address:port` (node may still be starting under load). */
const answers = async (address: string, port: number) =>
  (await (await fetch(`http://${address}:${port}/`)).text()) === 'ok';

const ipOf = (name: string) =>
  engine.docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', name);

function runServer(name: string, ...args: string[]): Promise<string> {
  return engine.docker(
    'run',
    '-d',
    '--init',
    '--network',
    'pnet',
    '--name',
    name,
    ...args,
    image,
    'node',
    '-e',
    SERVER,
  );
}

before(async () => {
  if (skip) return;
  engine = await startDockerd();
  image = await baseImage(engine);
  const subnet = await subnetNetwork(engine, 'pnet'); // `--ip` below needs a user-configured subnet
  subnetPrefix = subnet.replace(/\.0\/\d+$/, '');
  data = tempDir('phare-docker-');
  agent = await start();
});

after(async () => {
  await agent?.close();
  await engine?.close();
  data?.remove();
});

test('labels and registrator variables register the container address; plain containers stay out', {
  skip,
}, async () => {
  await runServer(
    'web',
    '--label',
    'phare.service=web',
    '--label',
    'phare.port=8080',
    '--label',
    'phare.tags=blue, v1',
    '--label',
    'phare.meta.version=1.2',
    '--health-cmd',
    'test -f /tmp/ok',
    '--health-interval',
    '300ms',
    '--health-retries',
    '1',
  );
  await runServer(
    'legacy',
    '-e',
    'SERVICE_NAME=legacy',
    '-e',
    'SERVICE_TAGS=x,y',
    '--expose',
    '9000',
    '--expose',
    '9001',
    '-e',
    'SERVICE_9001_NAME=admin',
  );
  await runServer('plain', '--expose', '8080');

  const [web] = await until('web registered', () => byName('web').then((l) => l.length === 1 && l));
  assert.ok(web);
  assert.equal(web.Address, await ipOf('web'));
  assert.equal(web.Port, 8080);
  assert.deepEqual(web.Tags, ['blue', 'v1']);
  assert.equal(web.Meta['version'], '1.2');
  assert.match(web.ID, /^web:[0-9a-f]{12}:8080$/);
  // the registered address really is the container's server
  await until('the server at the registered address', () => answers(web.Address, web.Port));

  const [legacy] = await until('legacy-9000', () => byName('legacy-9000').then((l) => l.length === 1 && l));
  const [admin] = await until('admin', () => byName('admin').then((l) => l.length === 1 && l));
  assert.equal(legacy?.Port, 9000);
  assert.deepEqual(legacy?.Tags, ['x', 'y']);
  assert.equal(admin?.Port, 9001);
  assert.equal(admin?.Address, await ipOf('legacy'));
  const names = Object.values(await services()).map((s) => s.Service);
  assert.ok(!names.some((n) => n.startsWith('plain')), `plain registered: ${names}`);

  // Docker's HEALTHCHECK is the instance's check: starting/unhealthy -> critical, healthy -> passing
  const [first] = await checksOf(web.ID);
  assert.equal(first?.Status, 'critical');
  await engine.docker('exec', 'web', 'touch', '/tmp/ok');
  await until('web passing', () => checksOf(web.ID).then((c) => c[0]?.Status === 'passing'));
  const health = await (await fetch(`${agent.httpUrl}/v1/health/service/web?passing`)).json();
  assert.equal((health as unknown[]).length, 1);
  await engine.docker('exec', 'web', 'rm', '/tmp/ok');
  await until('web critical', () => checksOf(web.ID).then((c) => c[0]?.Status === 'critical'));
});

test('full reconciles that find everything in place write nothing (no index bump, no watcher woken)', {
  skip,
}, async () => {
  const watcher = agent.docker;
  assert.ok(watcher);
  const indexOf = async () =>
    Number((await fetch(`${agent.httpUrl}/v1/health/service/web`)).headers.get('x-consul-index'));
  // let the unhealthy state settle (Docker keeps probing; only the output changes)
  const before = watcher.syncs;
  await until('two resyncs', async () => watcher.syncs >= before + 2);
  const index = await indexOf();
  const at = watcher.syncs;
  await until('three more resyncs', async () => watcher.syncs >= at + 3);
  assert.equal(await indexOf(), index, 'a no-op resync bumped the index');
});

test('stop, kill and rm deregister at once', { skip }, async () => {
  await engine.docker('stop', '-t', '1', 'web');
  await until('web gone', () => byName('web').then((l) => l.length === 0));
  await engine.docker('kill', 'legacy');
  await until('legacy gone', () =>
    Promise.all([byName('legacy-9000'), byName('admin')]).then(([a, b]) => a.length + b.length === 0),
  );
  await engine.docker('rm', '-f', 'web', 'legacy', 'plain');
});

test('agent restarted while containers changed: no stale instance; a reused IP carries only its new service', {
  skip,
}, async () => {
  const ip = `${subnetPrefix}.200`;
  await runServer('old', '--ip', ip, '--label', 'phare.service=old', '--label', 'phare.port=8080');
  await runServer('stays', '--label', 'phare.service=stays', '--label', 'phare.port=8080');
  await until(
    'old and stays',
    async () => (await byName('old')).length === 1 && (await byName('stays')).length === 1,
  );
  const staysId = (await byName('stays'))[0]?.ID;
  await agent.close();
  // while no agent watches: the old container goes, a new one takes its IP
  await engine.docker('rm', '-f', 'old');
  await runServer('new', '--ip', ip, '--label', 'phare.service=new', '--label', 'phare.port=8080');
  agent = await start();
  const [fresh] = await until('new registered', () => byName('new').then((l) => l.length === 1 && l));
  assert.equal(fresh?.Address, ip);
  assert.deepEqual(await byName('old'), [], 'the old service survived the restart');
  assert.deepEqual(
    Object.values(await services())
      .filter((s) => s.Address === ip)
      .map((s) => s.Service),
    ['new'],
  );
  assert.equal((await byName('stays'))[0]?.ID, staysId);
  await engine.docker('rm', '-f', 'new');
  await until('new gone', () => byName('new').then((l) => l.length === 0));
});

test('dockerd restarted under the agent: what died is deregistered, a restart=always container is followed', {
  skip,
}, async () => {
  await runServer(
    'always',
    '--restart',
    'always',
    '--label',
    'phare.service=always',
    '--label',
    'phare.port=8080',
  );
  await until('always', () => byName('always').then((l) => l.length === 1));
  const watcher = agent.docker;
  assert.ok(watcher?.connected);
  await engine.stop();
  await until('watcher sees the engine gone', async () => !agent.docker?.connected);
  await engine.restart();
  await until('watcher reconnected', async () => agent.docker?.connected);
  // "stays" had no restart policy: dead with the engine, gone from the catalog
  await until('stays gone', () => byName('stays').then((l) => l.length === 0));
  const [always] = await until('always back', async () => {
    const l = await byName('always');
    const ip = await ipOf('always').catch(() => '');
    return l.length === 1 && ip !== '' && l[0]?.Address === ip && l;
  });
  await until('the server at the new address', () => answers(always?.Address ?? '', 8080));
});
