/**
 * `phare test` and `phare infra` on the real engine: a private dockerd (test/helpers/docker.ts), Debian's
 * docker-compose 1.29, and `postgres:16` / `redis:7` built locally from the host's PostgreSQL and Redis
 * (test/helpers/infra-images.ts). One engine for the whole file; the images are imported once.
 *
 * - the example monorepo's three components in parallel, while a second run tests notes at the same time:
 *   no name or port collision, every project torn down, the host-only component (bus) never named in any
 *   docker or compose call (every call is recorded);
 * - a service whose healthcheck never passes: the component fails naming it, with its health output and
 *   its logs, and nothing is left;
 * - Ctrl-C in the middle of a test command: the command's process tree stops, everything is removed;
 * - kill -9 of the runner: its containers, network and volume stay until the next run, whose reaper
 *   removes them (that run also uses a root compose file: the deprecated fallback, with its warning);
 * - a service labelled `phare.service` (issue 16's labels) waited on until it passes in a real agent
 *   watching the engine (`--agent`);
 * - `phare infra up|ps|logs|down --env test`, printing the URL (development is the README tour's).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO_ROOT, spawnAgent } from '../helpers/agent.ts';
import { DOCKER_CLI, type Dockerd, dockerSkip, startDockerd, until } from '../helpers/docker.ts';
import { infraImages, infraImagesSkip } from '../helpers/infra-images.ts';
import { assertExampleSummary } from '../helpers/monorepo.ts';

const skip = dockerSkip() || infraImagesSkip();
const EXAMPLE = join(REPO_ROOT, 'examples', 'monorepo');
let engine: Dockerd;
let work: string;
let calls: string;
let env: NodeJS.ProcessEnv;

before(async () => {
  if (skip) return;
  engine = await startDockerd();
  await infraImages(engine);
  work = mkdtempSync(join(tmpdir(), 'phare-runner-'));
  // every docker and compose call goes through a wrapper that records it, then runs the real CLI
  calls = join(work, 'calls.log');
  const wrap = (name: string, real: string) => {
    const path = join(work, name);
    writeFileSync(path, `#!/bin/sh\necho "${name} $*" >> "${calls}"\nexec ${real} "$@"\n`);
    chmodSync(path, 0o755);
    return path;
  };
  env = {
    ...process.env,
    // the example's `node --test` commands must not think they run inside this test file's runner
    NODE_TEST_CONTEXT: undefined,
    DOCKER_HOST: engine.endpoint,
    PHARE_DOCKER_CLI: wrap('docker', DOCKER_CLI),
    PHARE_COMPOSE_CLI: wrap('docker-compose', 'docker-compose'),
  };
});
after(async () => {
  await engine?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

interface Run {
  child: ChildProcess;
  out: () => string;
  done: Promise<{ code: number | null; out: string }>;
}

function phare(args: string[], options: { detached?: boolean } = {}): Run {
  const child = spawn(
    process.execPath,
    ['--conditions=phare-source', join(REPO_ROOT, 'bin', 'phare.js'), ...args],
    {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: options.detached ?? false,
    },
  );
  let out = '';
  child.stdout?.on('data', (d) => {
    out += String(d);
  });
  child.stderr?.on('data', (d) => {
    out += String(d);
  });
  const done = new Promise<{ code: number | null; out: string }>((resolve) =>
    child.once('close', (code) => resolve({ code, out })),
  );
  return { child, out: () => out, done };
}

/** Containers, networks and volumes any phare test run labelled, as `docker … ls` lines. */
async function leftovers(): Promise<string[]> {
  const f = ['--filter', 'label=dev.phare.project'];
  const lists = await Promise.all([
    engine.docker('ps', '-a', ...f, '--format', 'container {{.Names}}'),
    engine.docker('network', 'ls', ...f, '--format', 'network {{.Name}}'),
    engine.docker('volume', 'ls', ...f, '--format', 'volume {{.Name}}'),
  ]);
  return lists.join('\n').split('\n').filter(Boolean);
}

/** A scratch monorepo for the failure cases. */
function scratchRepo(): string {
  const root = mkdtempSync(join(work, 'repo-'));
  const files: Record<string, string> = {
    'phare.yaml': `components:
  - path: broken
    test: { integration: "true" }
  - path: slow
    test: { integration: 'echo $$ > "$PIDFILE"; echo started; exec sleep 120' }
  - path: quick
    test: { integration: 'redis-cli -u "$REDIS_URL" ping' }
`,
    'broken/docker-compose.test.yaml': `services:
  redis:
    image: redis:7
    healthcheck:
      test: ["CMD-SHELL", "echo probing the broken check; exit 1"]
      interval: 200ms
      retries: 3
`,
    'slow/docker-compose.test.yaml': `services:
  redis:
    image: redis:7
    ports: ["6379"]
    volumes: ["slowdata:/data"]
    healthcheck: { test: ["CMD", "redis-cli", "ping"], interval: 200ms, retries: 50 }
volumes:
  slowdata:
`,
    // quick has no file of its own: its services are in the root file (profiles, a build context)
    'docker-compose.test.yaml': `services:
  quick-app:
    build: ./quick
    depends_on: [quick-redis]
    profiles: ["integration"]
  quick-redis:
    image: redis:7
    ports: ["6379"]
    healthcheck: { test: ["CMD", "redis-cli", "ping"], interval: 200ms, retries: 50 }
    profiles: ["integration"]
`,
    'quick/Dockerfile': 'FROM redis:7\n',
  };
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(join(root, p, '..'), { recursive: true });
    writeFileSync(join(root, p), text);
  }
  return root;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('phare test on a real engine', { skip }, () => {
  test('three components in parallel, and a second run at the same time: no collision, nothing left', async () => {
    writeFileSync(calls, '');
    const junit = join(work, 'all.xml');
    const all = phare(['test', '--root', EXAMPLE, '--parallel', '3', '--junit', junit]);
    const second = phare(['test', 'notes', '--integration', '--root', EXAMPLE]);
    const [a, b] = await Promise.all([all.done, second.done]);
    assert.equal(a.code, 0, a.out);
    assert.equal(b.code, 0, b.out);
    assertExampleSummary(a.out);
    // two projects for notes, one per run: the names differ, and one run took a free port because the other
    // held ports.yaml's (seen before starting, or when Docker refused the bind: a race between two processes)
    const projects = [...`${a.out}\n${b.out}`.matchAll(/starting \S+ \(project (\S+)\)/g)].map((m) => m[1]);
    assert.equal(new Set(projects).size, 3, `three distinct projects: ${projects}`);
    assert.match(
      a.out + b.out,
      /port \d+ of postgres \(ports\.yaml\) is in use; using a free port|notes: a host port was taken meanwhile; starting again on free ports/,
    );
    // every Docker call named notes' or cache's projects, or none (listing, reaping); bus never appears
    const log = readFileSync(calls, 'utf8');
    assert.match(log, /docker-compose -p notes-[0-9a-f]{6} .* up -d/);
    assert.match(log, /docker-compose -p cache-[0-9a-f]{6} .* down -v/);
    assert.doesNotMatch(log, /bus/);
    assert.match(
      readFileSync(junit, 'utf8'),
      /<testsuites name="phare test" tests="6" failures="0" errors="0"/,
    );
    assert.deepEqual(await leftovers(), []);
  });

  test('a service that never gets healthy fails its component with its health output and logs', async () => {
    const root = scratchRepo();
    const r = await phare(['test', 'broken', '--root', root]).done;
    assert.equal(r.code, 1, r.out);
    assert.match(
      r.out,
      /broken: infrastructure failed:\nservice "redis" \(container broken-[0-9a-f]{6}_redis_1\): reported unhealthy/,
    );
    assert.match(r.out, /last check output: probing the broken check \(exit 1\)/);
    assert.match(r.out, /last log lines:\n(.*\n)*\s+\| .*Ready to accept connections/);
    assert.match(r.out, /^broken\s+integration\s+failed to start\s+\S+ m?s\s+error$/m);
    assert.deepEqual(await leftovers(), []);
  });

  test('Ctrl-C in the middle: the test command stops and everything is removed', async () => {
    const root = scratchRepo();
    const pidfile = join(work, 'ctrl-c.pid');
    env['PIDFILE'] = pidfile;
    // a terminal's Ctrl-C reaches the runner's whole process group
    const run = phare(['test', 'slow', '--root', root], { detached: true });
    await until(
      'the test command started',
      async () => /slow:integration \| started/.test(run.out()),
      60_000,
    );
    assert.ok((await leftovers()).length > 0, 'the infrastructure is up');
    const testPid = Number(readFileSync(pidfile, 'utf8'));
    process.kill(-(run.child.pid as number), 'SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130, r.out);
    assert.match(r.out, /SIGINT: stopping the tests and removing their infrastructure/);
    assert.match(r.out, /^slow\s+integration\s+redis \(slow-[0-9a-f]{6}\)\s+\S+ m?s\s+interrupted$/m);
    assert.equal(alive(testPid), false, 'the test command was stopped');
    assert.deepEqual(await leftovers(), []);
  });

  test('kill -9 of the runner: the next run reaps what it left (and a root compose file still works)', async () => {
    const root = scratchRepo();
    const pidfile = join(work, 'kill.pid');
    env['PIDFILE'] = pidfile;
    const run = phare(['test', 'slow', '--root', root]);
    await until(
      'the test command started',
      async () => /slow:integration \| started/.test(run.out()),
      60_000,
    );
    process.kill(run.child.pid as number, 'SIGKILL');
    await run.done;
    process.kill(Number(readFileSync(pidfile, 'utf8')), 'SIGKILL'); // the orphaned test command itself
    const left = await leftovers();
    assert.ok(
      left.some((l) => /^container slow-/.test(l)),
      `left: ${left}`,
    );
    assert.ok(
      left.some((l) => /^network slow-[0-9a-f]{6}_default$/.test(l)),
      `left: ${left}`,
    );
    assert.ok(
      left.some((l) => /^volume slow-[0-9a-f]{6}_slowdata$/.test(l)),
      `left: ${left}`,
    );
    const next = await phare(['test', 'quick', '--root', root]).done;
    assert.equal(next.code, 0, next.out);
    assert.match(
      next.out,
      /removed what killed runs left behind: slow-[0-9a-f]{6} \(1 containers, 1 networks, 1 volumes\)/,
    );
    assert.match(
      next.out,
      /warning: quick: using the root docker-compose\.test\.yaml \(services quick-app, quick-redis\): a root compose file is deprecated — run phare infra split/,
    );
    assert.match(next.out, /quick:integration \| PONG/);
    const killed = /removed what killed runs left behind: (slow-[0-9a-f]{6})/.exec(next.out)?.[1];
    assert.ok(
      !existsSync(join(tmpdir(), 'phare-infra', `${killed}.yaml`)),
      "the dead run's compose file is removed",
    );
    assert.deepEqual(await leftovers(), []);
  });

  test('a service labelled phare.service is waited on until it passes in the agent (--agent)', async () => {
    const agent = await spawnAgent([
      '--dev',
      '--http-addr',
      '127.0.0.1:0',
      '--dns-addr',
      '127.0.0.1:0',
      `--docker=${engine.endpoint}`,
    ]);
    try {
      const root = mkdtempSync(join(work, 'repo-'));
      mkdirSync(join(root, 'reg'));
      writeFileSync(
        join(root, 'phare.yaml'),
        // the command runs only once the agent answers the service as passing: it checks that itself
        `components:\n  - path: reg\n    test: { integration: 'curl -sf "${agent.url}/v1/health/service/reg-web?passing" | grep -q reg-web' }\n`,
      );
      writeFileSync(
        join(root, 'reg', 'docker-compose.test.yaml'),
        `services:
  web:
    image: redis:7
    labels: { phare.service: reg-web, phare.port: "6379" }
    healthcheck: { test: ["CMD", "redis-cli", "ping"], interval: 300ms, retries: 50 }
`,
      );
      const r = await phare(['test', 'reg', '--root', root, '--agent', agent.url]).done;
      assert.equal(r.code, 0, `${r.out}\n--- agent ---\n${agent.output()}`);
      assert.match(r.out, /^reg\s+integration\s+web \(reg-[0-9a-f]{6}\)\s+\S+ m?s\s+passed$/m);
      assert.deepEqual(await leftovers(), []);
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
  });

  test('phare infra up|ps|logs|down --env test: one component alone, with its URL', async () => {
    // (development with notes' PostgreSQL is the README tour's: test/integration/readme-tour.test.ts)
    const args = ['--env', 'test', '--root', EXAMPLE];
    const up = await phare(['infra', 'up', 'cache', ...args]).done;
    assert.equal(up.code, 0, up.out);
    assert.match(up.out, /cache \(test\) is up as compose project cache-test:/);
    assert.match(up.out, /^redis\s+redis:\/\/127\.0\.0\.1:\d+$/m);
    assert.match(up.out, /^export REDIS_URL="redis:\/\/127\.0\.0\.1:\d+"$/m);
    const ps = await phare(['infra', 'ps', 'cache', ...args]).done;
    assert.match(ps.out, /^redis\s+cache-test_redis_1\s+Up .*\(healthy\)/m, ps.out);
    const logs = await phare(['infra', 'logs', 'cache', 'redis', '--tail', '20', ...args]).done;
    assert.match(logs.out, /Ready to accept connections/, logs.out);
    // a project of phare infra outlives its process on purpose: the reaper leaves it alone
    const reaped = await phare(['infra', 'reap']).done;
    assert.match(reaped.out, /nothing left behind/);
    const down = await phare(['infra', 'down', 'cache', ...args]).done;
    assert.equal(down.code, 0, down.out);
    const f = ['--filter', 'label=com.docker.compose.project=cache-test'];
    assert.equal(await engine.docker('ps', '-aq', ...f), '');
    assert.equal(await engine.docker('network', 'ls', '-q', ...f), '');
  });
});
