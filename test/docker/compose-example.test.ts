/**
 * The seeds' Compose world, for real (issue 16 §3): `examples/compose.yaml` — the agent, PostgreSQL, and the
 * example's api, bus and bridge — brought up by Debian's docker-compose on a private engine, unchanged. The
 * public images it names are stood in for by local ones under the same tags (no registry here): `node:24-slim`
 * is the suite's Debian base with Node, `postgres:17` the host's PostgreSQL in the same base
 * (test/helpers/infra-images.ts). The engine publishes ports on 127.0.0.1 only (`--ip`), and the file's fixed
 * host ports (8500, 5432, 8000…) are moved to free ones in a copy run with `--project-directory examples/`,
 * so a developer's own agent or PostgreSQL on this machine (or another test) cannot collide with it; nothing
 * else in the file changes.
 *
 * What it shows: `depends_on: condition: service_healthy` orders start-up (the api starts only after
 * PostgreSQL's healthcheck passed; the bridge only after the api's and the bus's); every service finds the
 * others (a) by Docker DNS name, (b) through the Phare SDK over the agent (a note posted to the api is
 * summarized by the bridge, which found the bus and the api through the agent), (c) through Phare's DNS;
 * and the health kit's readiness drives the Docker healthcheck (PostgreSQL stopped → the api container turns
 * unhealthy and its agent check critical; started again → healthy and passing).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { parseDocument } from 'yaml';
import { REPO_ROOT } from '../helpers/agent.ts';
import { baseImage, type Dockerd, dockerSkip, startDockerd, until } from '../helpers/docker.ts';
import { INFRA_IMAGES, infraImages, infraImagesSkip } from '../helpers/infra-images.ts';
import { dependencySkip } from '../helpers/requires.ts';

const run = promisify(execFile);
const COMPOSE_BIN = '/usr/bin/docker-compose';
const EXAMPLES = join(REPO_ROOT, 'examples');
const work = mkdtempSync(join(tmpdir(), 'phare-compose-'));
const FILE = join(work, 'compose.yaml');
/** Host port the copy publishes for each of the file's own host ports (8500 → a free one). */
const hostPort = new Map<number, number>();
/** The example's published ports: the file's host port, and the one Docker chose for it here. */
const published: { service: string; example: number; container: number }[] = [];
const PROJECT = 'phex';
const skip =
  dockerSkip() ||
  infraImagesSkip() ||
  dependencySkip(
    (await run(COMPOSE_BIN, ['version']).then(
      () => '',
      () => 'docker-compose',
    )) || undefined,
  );
let engine: Dockerd;

async function compose(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run(
      COMPOSE_BIN,
      ['-f', FILE, '--project-directory', EXAMPLES, '-p', PROJECT, ...args],
      {
        env: { ...process.env, DOCKER_HOST: engine.endpoint, COMPOSE_INTERACTIVE_NO_CLI: '1' },
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    return stdout.trim();
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`docker-compose ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
}

/** Runs a Node snippet inside a service's container (its network, its DNS); resolves with its stdout. */
const inside = (service: string, code: string) => compose('exec', '-T', service, 'node', '-e', code);
const container = (service: string) => `${PROJECT}_${service}_1`;
const health = async (service: string) =>
  engine.docker('inspect', '-f', '{{.State.Health.Status}}', container(service));
const logs = async () => compose('logs', '--no-color', '--tail', '30').catch((e: Error) => e.message);

before(async () => {
  if (skip) return;
  const doc = parseDocument(readFileSync(join(EXAMPLES, 'compose.yaml'), 'utf8'));
  const services = doc.toJS().services as Record<string, { ports?: string[] }>;
  for (const [name, svc] of Object.entries(services))
    for (const [i, mapping] of (svc.ports ?? []).entries()) {
      const m = /^(?:(127\.0\.0\.1):)?(\d+):(\d+)$/.exec(mapping);
      assert.ok(m, `examples/compose.yaml: ${name}.ports[${i}] ${mapping} is not host:container`);
      // Docker picks the host port (`127.0.0.1::3000`): a free port chosen here could be taken before the bind
      published.push({ service: name, example: Number(m[2]), container: Number(m[3]) });
      doc.setIn(['services', name, 'ports', i], `127.0.0.1::${m[3]}`);
    }
  writeFileSync(FILE, doc.toString());
  engine = await startDockerd();
  const [node] = await Promise.all([baseImage(engine), infraImages(engine)]);
  await engine.docker('tag', node, 'node:24-slim');
  await engine.docker('tag', INFRA_IMAGES.postgres, 'postgres:17');
});

after(async () => {
  if (!engine) return;
  await compose('down', '-v', '--timeout', '2').catch(() => {});
  await engine.close();
  rmSync(work, { recursive: true, force: true });
});

test('examples/compose.yaml runs: health-ordered start-up, finding by Docker DNS, the SDK and Phare DNS, readiness as the Docker healthcheck', {
  skip,
  timeout: 300_000,
}, async () => {
  // `up -d` returns once every container started, each after its dependencies' healthchecks passed
  const upSince = Math.floor(Date.now() / 1000) - 1;
  await compose('up', '-d').catch(async (err: Error) => {
    const states = await Promise.all(
      ['agent', 'postgres', 'api', 'bus', 'bridge'].map(async (s) =>
        engine.docker('inspect', '-f', '{{json .State.Health}}', container(s)).then(
          (h) => `${s}: ${h}`,
          () => `${s}: not created`,
        ),
      ),
    );
    assert.fail(`${err.message}\n${states.join('\n')}\n${await logs()}`);
  });
  for (const p of published) {
    const at = /:(\d+)\s*$/.exec(await compose('port', p.service, String(p.container)));
    assert.ok(at, `docker-compose port ${p.service} ${p.container}: no host port`);
    hostPort.set(p.example, Number(at[1]));
  }
  // the engine's event log (Docker keeps only the last 5 health results per container, so .State.Health.Log
  // cannot say when a dependency first turned healthy): a container's `start` must come after the
  // `health_status: healthy` of each dependency
  const events = (
    await engine.docker(
      'events',
      '--since',
      String(upSince),
      '--until',
      String(Math.ceil(Date.now() / 1000) + 1),
      '--filter',
      'type=container',
      '--format',
      '{{json .}}',
    )
  )
    .split('\n')
    .filter(Boolean)
    .map(
      (l) =>
        JSON.parse(l) as { status: string; timeNano: number; Actor: { Attributes: Record<string, string> } },
    );
  const at = (service: string, status: string) => {
    const e = events.find(
      (x) => x.status === status && x.Actor.Attributes['com.docker.compose.service'] === service,
    );
    assert.ok(e, `no "${status}" event for ${service}: ${events.map((x) => x.status).join(', ')}`);
    return e.timeNano;
  };
  for (const [service, deps] of [
    ['api', ['agent', 'postgres']],
    ['bus', ['agent']],
    ['bridge', ['agent', 'api', 'bus']],
  ] as const)
    for (const dep of deps)
      assert.ok(
        at(service, 'start') > at(dep, 'health_status: healthy'),
        `${service} started before ${dep} was healthy`,
      );
  await until(
    'api, bus and bridge healthy (their readiness)',
    async () => (await Promise.all(['api', 'bus', 'bridge'].map(health))).every((h) => h === 'healthy'),
    90_000,
  ).catch(async (err: Error) => assert.fail(`${err.message}\n${await logs()}`));

  // the agent, from the host through the published port: every service registered under its compose name, passing
  const passing = async (s: string) =>
    (await (await fetch(`http://127.0.0.1:${hostPort.get(8500)}/v1/health/service/${s}?passing`)).json()) as {
      Service: { Address: string; Port: number };
    }[];
  await until(
    'api, bus, bridge passing in the agent',
    async () => (await Promise.all(['api', 'bus', 'bridge'].map(passing))).every((l) => l.length === 1),
    60_000,
  );
  assert.deepEqual(
    (await passing('api')).map((e) => `${e.Service.Address}:${e.Service.Port}`),
    ['api:3000'],
  );

  // (a) Docker DNS: the bridge's container reaches the api by its compose name
  assert.equal(
    await inside('bridge', "fetch('http://api:3000/health/ready').then((r) => console.log(r.status))"),
    '200',
  );

  // (b) the Phare SDK over the agent: a note posted to the api (published port) reaches the bus, and the bridge
  // — which found the bus and the api through the agent — writes its summary back to the api
  const posted = await fetch(`http://127.0.0.1:${hostPort.get(8000)}/notes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text: 'three little words' }),
  });
  assert.equal(posted.status, 201, await posted.clone().text());
  const note = (await posted.json()) as { id: number | string };
  const summarized = await until(
    'the bridge summarized the note',
    async () => {
      const n = (await (await fetch(`http://127.0.0.1:${hostPort.get(8000)}/notes/${note.id}`)).json()) as {
        words?: number | null;
        processedBy?: string | null;
      };
      return n.words != null ? n : undefined;
    },
    30_000,
  ).catch(async (err: Error) => assert.fail(`${err.message}\n${await logs()}`));
  assert.equal(summarized.words, 3);

  // the SDK itself, in a container on the network: discovery by name through the agent
  const viaSdk = await inside(
    'bus',
    "import('phare').then(async ({ createDiscovery }) => { const d = createDiscovery({ consul: { address: 'http://agent:8500' } }); const i = await d.instances('api'); console.log(JSON.stringify(i.map((x) => [x.address, x.port].join(':')))); await d.close(); })",
  );
  assert.deepEqual(JSON.parse(viaSdk), ['api:3000']);

  // (c) Phare's DNS, from the api's container: the agent's DNS server (port 8600) answers for the service
  const viaPhareDns = await inside(
    'api',
    "const { Resolver, lookup } = require('node:dns').promises; lookup('agent').then(async ({ address }) => { const r = new Resolver(); r.setServers([address + ':8600']); const srv = await r.resolveSrv('bus.service.consul'); console.log(JSON.stringify(srv.map((s) => s.port))); })",
  );
  assert.deepEqual(JSON.parse(viaPhareDns), [3000]);

  // readiness drives the Docker healthcheck: without PostgreSQL the api is unhealthy (Docker) and critical (agent)
  await compose('stop', 'postgres');
  await until('api unhealthy without PostgreSQL', async () => (await health('api')) === 'unhealthy', 60_000);
  await until('api critical in the agent', async () => (await passing('api')).length === 0, 30_000);
  await compose('start', 'postgres');
  await until('api healthy again', async () => (await health('api')) === 'healthy', 60_000);
  await until('api passing again', async () => (await passing('api')).length === 1, 30_000);
});
