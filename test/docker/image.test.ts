/**
 * The Dockerfile, built and run on a real engine: the packaged agent (`npm pack`, prepack builds dist/)
 * installed on the host and copied in (`PHARE_SOURCE=context`: the build has no network), on the local
 * Debian base (`BASE_IMAGE`). Run as a non-root user, healthy by its HEALTHCHECK, registered into from the
 * host, restarted with its state kept on the volume, stopped by `docker stop` with exit 0 within 2 s.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { REPO_ROOT, tempDir } from '../helpers/agent.ts';
import { baseImage, DOCKER_CLI, type Dockerd, dockerSkip, startDockerd, until } from '../helpers/docker.ts';

const run = promisify(execFile);
const skip = dockerSkip();
let engine: Dockerd;
const work = tempDir('phare-image-');

/** A user's npm, run from the project's Node (its npm scripts then find node_modules/.bin/node first). */
async function npm(cwd: string, args: string[]): Promise<string> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^npm_/i.test(k) && k !== 'NODE_OPTIONS' && !/^PHARE_/.test(k)) env[k] = v;
  const { stdout } = await run('npm', args, { cwd, env, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

before(async () => {
  if (skip) return;
  engine = await startDockerd();
  const base = baseImage(engine);
  // Pack from a copy of the checkout: another test file packing the checkout rebuilds its dist/ meanwhile.
  const src = join(work.path, 'src');
  const { stdout: files } = await run('git', ['ls-files', '-co', '--exclude-standard'], { cwd: REPO_ROOT });
  for (const f of files.split('\n').filter(Boolean)) {
    mkdirSync(join(src, f, '..'), { recursive: true });
    try {
      cpSync(join(REPO_ROOT, f), join(src, f));
    } catch {} // a file listed but deleted in the working tree
  }
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(src, 'node_modules'));
  await npm(src, ['pack', '--pack-destination', work.path]);
  const tgz = readdirSync(work.path).find((f) => f.endsWith('.tgz'));
  assert.ok(tgz, 'npm pack made no tarball');
  const ctx = join(work.path, 'ctx');
  mkdirSync(join(ctx, 'phare'), { recursive: true });
  writeFileSync(join(ctx, 'phare', 'package.json'), '{"name":"phare-image","private":true}');
  await npm(join(ctx, 'phare'), [
    'install',
    '--omit=dev',
    '--prefer-offline',
    '--no-audit',
    '--no-fund',
    join(work.path, tgz),
  ]);
  cpSync(join(REPO_ROOT, 'Dockerfile'), join(ctx, 'Dockerfile'));
  await run(
    DOCKER_CLI,
    [
      '-H',
      engine.endpoint,
      'build',
      '--network',
      'none',
      '--build-arg',
      `BASE_IMAGE=${await base}`,
      '--build-arg',
      'PHARE_SOURCE=context',
      '-t',
      'phare:test',
      ctx,
    ],
    { env: { ...process.env, DOCKER_BUILDKIT: '1' }, maxBuffer: 64 * 1024 * 1024 },
  );
  await engine.docker('network', 'create', 'pnet');
});

after(async () => {
  await engine?.close();
  work.remove();
});

const health = () => engine.docker('inspect', '-f', '{{.State.Health.Status}}', 'phare');
const ip = () => engine.docker('inspect', '-f', '{{.NetworkSettings.Networks.pnet.IPAddress}}', 'phare');

test('the image runs the packaged agent as non-root on 0.0.0.0, healthy by its HEALTHCHECK; state survives a restart; docker stop exits 0 within 2 s', {
  skip,
}, async () => {
  const cfg = JSON.parse(await engine.docker('image', 'inspect', '-f', '{{json .Config}}', 'phare:test')) as {
    User: string;
    Volumes: Record<string, unknown>;
    Healthcheck: { Test: string[] };
    Env: string[];
  };
  assert.equal(cfg.User, '10001:10001');
  assert.deepEqual(Object.keys(cfg.Volumes), ['/data']);
  assert.match(cfg.Healthcheck.Test.join(' '), /\/v1\/status\/leader/);
  assert.ok(cfg.Env.includes('PHARE_HTTP_ADDR=0.0.0.0:8500'));

  await engine.docker(
    'run',
    '-d',
    '--name',
    'phare',
    '--network',
    'pnet',
    '-v',
    'phare-data:/data',
    '-e',
    'PHARE_NODE=box-1',
    '--health-interval',
    '500ms',
    'phare:test',
  );
  await until('healthy', async () => (await health()) === 'healthy');
  assert.equal(await engine.docker('exec', 'phare', 'id', '-u'), '10001');
  const url = `http://${await ip()}:8500`;
  const self = (await (await fetch(`${url}/v1/agent/self`)).json()) as { Config: { NodeName: string } };
  assert.equal(self.Config.NodeName, 'box-1', 'PHARE_NODE configures the agent');
  // registered from the host, over the container's network
  const put = await fetch(`${url}/v1/agent/service/register`, {
    method: 'PUT',
    body: JSON.stringify({ Name: 'db', ID: 'db-1', Port: 5432, Address: '10.1.2.3' }),
  });
  assert.equal(put.status, 200);

  await engine.docker('stop', '-t', '2', 'phare'); // past 2 s Docker would SIGKILL: exit 137
  const state = JSON.parse(await engine.docker('inspect', '-f', '{{json .State}}', 'phare')) as {
    ExitCode: number;
    OOMKilled: boolean;
  };
  assert.equal(state.ExitCode, 0, 'docker stop did not end the agent cleanly within 2 s');

  await engine.docker('start', 'phare');
  await until('healthy again', async () => (await health()) === 'healthy');
  const services = (await (await fetch(`http://${await ip()}:8500/v1/agent/services`)).json()) as Record<
    string,
    { Service: string; Port: number }
  >;
  assert.equal(services['db-1']?.Port, 5432, 'the registration did not survive the restart (volume)');
  await engine.docker('rm', '-f', 'phare');
});
