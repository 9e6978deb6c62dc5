/**
 * The test runner's parts that need no Docker engine: phare.yaml validation, components from phare.yaml
 * and npm workspaces, the prepared compose file (ports, labels, profiles, container_name), the derived
 * environment, --affected in a real temporary git repository, infra split on a root file shaped like the
 * seed's, and a host-only component run through the CLI with Docker made unreachable (a recording fake
 * `docker` proves it is never called). The real-engine half is test/docker/test-runner.test.ts.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parse } from 'yaml';
import { main } from '../cli/main.ts';
import { phareJsonSchemaText, SCHEMA_PATH } from './generate-schema.ts';
import {
  affectedComponents,
  derivedEnv,
  infraSource,
  junitXml,
  LABELS,
  loadMonorepo,
  parsePhareFile,
  prepareCompose,
  readComposeFile,
  servicePorts,
  splitCompose,
} from './index.ts';

const EXAMPLE = join(import.meta.dirname, '..', '..', 'examples', 'monorepo');
const temps: string[] = [];
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), 'phare-infra-test-'));
  temps.push(d);
  return d;
};
after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

function write(root: string, files: Record<string, string>) {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }
}

async function cli(argv: string[], env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()) {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: (s) => {
      stdout += s;
    },
    stderr: (s) => {
      stderr += s;
    },
    env,
    cwd,
  });
  return { code, stdout, stderr };
}

describe('phare.yaml', () => {
  test('a mistake is named by file, line and field', () => {
    assert.throws(
      () => parsePhareFile('components:\n  - path: api\n    test:\n      integration: 3\n', 'phare.yaml'),
      /phare\.yaml:4: components\[0\]\.test\.integration: expected string, got 3/,
    );
    assert.throws(
      () => parsePhareFile('components:\n  - path: api\n    tests: {}\n', 'phare.yaml'),
      /phare\.yaml:3: components\[0\]\.tests: unknown key/,
    );
    assert.throws(
      () => parsePhareFile('components:\n  - path: api\n    wait_timeout: soon\n', 'phare.yaml'),
      /components\[0\]\.wait_timeout: a duration such as 90s or 2m, got "soon"/,
    );
  });

  test('the example monorepo: three components, their compose files and ports.yaml', () => {
    const repo = loadMonorepo(join(EXAMPLE, 'notes'));
    assert.equal(repo.root, EXAMPLE);
    assert.equal(repo.source, 'phare.yaml');
    assert.deepEqual(
      repo.components.map((c) => [
        c.name,
        Object.keys(c.commands),
        Object.keys(c.compose).sort(),
        c.dependsOn,
      ]),
      [
        ['notes', ['unit', 'integration'], ['development', 'test'], []],
        ['bus', ['unit', 'integration'], [], []],
        ['cache', ['unit', 'integration'], ['development', 'test'], ['notes']],
      ],
    );
    assert.equal(repo.portsFile, join(EXAMPLE, 'ports.yaml'));
  });

  test('depends_on naming no component is refused', () => {
    const root = temp();
    write(root, {
      'phare.yaml': 'components:\n  - path: a\n    depends_on: [nope]\n',
      'a/.keep': '',
    });
    assert.throws(() => loadMonorepo(root), /a\.depends_on: "nope" is not a component \(known: a\)/);
  });
});

describe('the compose file of a run', () => {
  const file = () =>
    readComposeFile(join(EXAMPLE, 'notes', 'docker-compose.test.yaml')) as ReturnType<typeof readComposeFile>;
  const labels = { [LABELS.project]: 'notes-abc123', [LABELS.pid]: '42' };

  test('ports go to the chosen host ports on 127.0.0.1; containers, networks and volumes carry the run', () => {
    const f = file();
    f.volumes = { data: null };
    const out = prepareCompose(
      f,
      {},
      {
        project: 'notes-abc123',
        component: 'notes',
        env: 'test',
        profiles: ['integration'],
        hostPorts: new Map([['postgres:5432', 7001]]),
        labels,
        source: 'notes/docker-compose.test.yaml',
      },
    );
    assert.deepEqual(out.services['postgres']?.['ports'], ['127.0.0.1:7001:5432/tcp']);
    assert.deepEqual(out.services['postgres']?.['labels'], { ...labels, [LABELS.component]: 'notes' });
    assert.deepEqual(out.networks?.['default'], { labels });
    assert.deepEqual(out.volumes?.['data'], { labels });
    const env = derivedEnv(out, {});
    assert.equal(env['DATABASE_URL'], 'postgresql://notes:test_password@127.0.0.1:7001/notes_test');
    assert.deepEqual(
      [env['PGHOST'], env['PGPORT'], env['PGUSER'], env['PGPASSWORD'], env['PGDATABASE']],
      ['127.0.0.1', '7001', 'notes', 'test_password', 'notes_test'],
    );
    assert.equal(env['POSTGRES_PORT'], '7001');
    assert.equal(env['POSTGRES_PORT_5432'], '7001');
  });

  test('a fixed container_name is refused, saying why', () => {
    const f = file();
    (f.services['postgres'] as Record<string, unknown>)['container_name'] = 'pourtier-postgres-test';
    assert.throws(
      () =>
        prepareCompose(
          f,
          {},
          {
            project: 'p',
            component: 'notes',
            env: 'test',
            profiles: [],
            hostPorts: new Map(),
            labels,
            source: 'notes/docker-compose.test.yaml',
          },
        ),
      /notes\/docker-compose\.test\.yaml: postgres \(container_name: pourtier-postgres-test\): a fixed container_name makes every run use the same container, so two runs \(or two components\) collide/,
    );
  });

  test('profiles choose services; Redis gets REDIS_URL; dev.phare.env labels add variables', () => {
    const out = prepareCompose(
      {
        services: {
          redis: {
            image: 'redis:7',
            // biome-ignore lint/suspicious/noTemplateCurlyInString: Compose's variable syntax
            ports: ['${REDIS_HOST_PORT:-6390}:6379'],
            labels: ['dev.phare.env.CACHE_ADDR={host}:{port:6379}'],
          },
          seed: { image: 'busybox', profiles: ['e2e'], depends_on: ['redis'] },
          web: {
            image: 'x',
            depends_on: { seed: { condition: 'service_completed_successfully' }, redis: {} },
          },
        },
      },
      {},
      {
        project: 'p',
        component: 'c',
        env: 'test',
        profiles: ['integration'],
        hostPorts: new Map(),
        labels: {},
        source: 'f',
      },
    );
    assert.deepEqual(Object.keys(out.services), ['redis', 'web']);
    assert.deepEqual(out.services['web']?.['depends_on'], { redis: {} });
    const env = derivedEnv(out, {});
    assert.equal(env['REDIS_URL'], 'redis://127.0.0.1:6390');
    assert.equal(env['CACHE_ADDR'], '127.0.0.1:6390');
    assert.throws(
      () => servicePorts('x', { ports: ['8000-8001:8000-8001'] }, {}),
      /services\.x\.ports\[0\].*ranges/,
    );
  });
});

describe('--affected', () => {
  test('selects exactly the changed workspaces and the ones that depend on them', async () => {
    const root = temp();
    write(root, {
      'package.json': JSON.stringify({ name: 'mono', private: true, workspaces: ['packages/*', 'apps/web'] }),
      'packages/lib/package.json': JSON.stringify({ name: '@m/lib', scripts: { test: 'true' } }),
      'packages/lib/index.js': '1',
      'packages/api/package.json': JSON.stringify({
        name: '@m/api',
        dependencies: { '@m/lib': '*' },
        scripts: { 'test:unit': 'true', 'test:integration': 'true' },
      }),
      'packages/worker/package.json': JSON.stringify({ name: '@m/worker', scripts: { test: 'true' } }),
      'apps/web/package.json': JSON.stringify({ name: '@m/web', devDependencies: { '@m/api': '*' } }),
      'README.md': 'x',
    });
    const git = (...a: string[]) => execFileSync('git', a, { cwd: root, stdio: 'pipe' }).toString();
    git('init', '-q', '-b', 'main');
    git('-c', 'user.name=t', '-c', 'user.email=t@t', 'add', '.');
    git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'base');
    git('checkout', '-qb', 'feature');
    const repo = loadMonorepo(root);
    assert.deepEqual(
      repo.components.map((c) => [c.name, c.packageName, c.dependsOn, Object.keys(c.commands)]),
      [
        ['api', '@m/api', ['lib'], ['unit', 'integration']],
        ['lib', '@m/lib', [], ['unit']],
        ['worker', '@m/worker', [], ['unit']],
        ['web', '@m/web', ['api'], []],
      ],
    );
    assert.deepEqual((await affectedComponents(repo, 'main')).affected, []);
    // a committed change to lib: lib, api (depends on lib) and web (depends on api)
    writeFileSync(join(root, 'packages/lib/index.js'), '2');
    git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qam', 'lib');
    let a = await affectedComponents(repo, 'main');
    assert.deepEqual([a.changed, a.affected], [['lib'], ['api', 'lib', 'web']]);
    // an untracked file in worker and a root file (which selects nothing) are counted too
    writeFileSync(join(root, 'packages/worker/new.js'), 'x');
    writeFileSync(join(root, 'README.md'), 'y');
    a = await affectedComponents(repo, 'main');
    assert.deepEqual(
      [a.changed, a.affected, a.outside],
      [['lib', 'worker'], ['api', 'lib', 'worker', 'web'], ['README.md']],
    );
    await assert.rejects(affectedComponents(repo, 'nope'), /--base: "nope" is not a commit git knows here/);
    // through the CLI: only the affected components' commands run (true), the others are not listed
    const r = await cli(['test', '--affected', '--base', 'main', '--unit', '--root', root]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /changed since main \([0-9a-f]+\): lib, worker; affected with dependents: api, lib, worker, web/,
    );
    assert.deepEqual(
      r.stdout
        .split('\n')
        .filter((l) => / host /.test(l))
        .map((l) => l.split(/\s+/)[0]),
      ['api', 'lib', 'worker'],
    );
  });
});

/** The seed's root docker-compose.test.yaml, with a Dockerfile per component and an unused service. */
const SEED_ROOT = `services:
  postgres-test:
    image: postgres:16
    container_name: lumiere-postgres-test
    environment:
      POSTGRES_DB: lumiere_test
      POSTGRES_USER: lumiere
      POSTGRES_PASSWORD: test_password
    profiles: ["integration", "e2e"]

  pourtier-test:
    build:
      context: .
      dockerfile: pourtier/Dockerfile
    depends_on:
      - postgres-test
    volumes:
      - ./pourtier/tests:/app/tests
    profiles: ["integration", "e2e"]

  courier-test:
    build:
      context: .
      dockerfile: courier/Dockerfile
    profiles: ["integration", "e2e"]

  passeur-test:
    build: ./passeur
    profiles: ["integration", "e2e"]

  grafana:
    image: grafana/grafana
    profiles: ["e2e"]
`;

describe('phare infra split', () => {
  const seedRepo = () => {
    const root = temp();
    write(root, {
      'docker-compose.test.yaml': SEED_ROOT,
      'phare.yaml':
        'components:\n  - path: pourtier\n    test: { integration: "true" }\n  - path: courier\n    test: { integration: "true" }\n  - path: passeur\n    test: { integration: "true" }\n',
      'pourtier/Dockerfile': 'FROM x\n',
      'courier/Dockerfile': 'FROM x\n',
      'passeur/Dockerfile': 'FROM x\n',
    });
    return root;
  };

  test('writes each component its own file, reports what it could not place', async () => {
    const root = seedRepo();
    const repo = loadMonorepo(root);
    // before the split, phare test falls back to the root file, with a deprecation warning
    const fallback = infraSource(repo, repo.components[0] as never, 'test');
    assert.deepEqual(fallback?.services, ['postgres-test', 'pourtier-test']);
    assert.match(
      fallback?.deprecated ?? '',
      /pourtier: using the root docker-compose\.test\.yaml .*deprecated — run phare infra split/,
    );

    const r = await cli(['infra', 'split', '--root', root]);
    assert.equal(r.code, 1, 'an unplaced service makes the exit code 1'); // grafana
    assert.match(r.stdout, /wrote pourtier\/docker-compose\.test\.yaml: postgres-test, pourtier-test/);
    assert.match(r.stdout, /wrote courier\/docker-compose\.test\.yaml: courier-test/);
    assert.match(r.stdout, /wrote passeur\/docker-compose\.test\.yaml: passeur-test/);
    assert.match(r.stdout, /could not place grafana: builds nothing and no component service depends on it/);
    assert.match(r.stdout, /pourtier: postgres-test: removed container_name lumiere-postgres-test/);
    assert.match(
      r.stdout,
      /courier: its file only builds the component itself .* delete courier\/docker-compose\.test\.yaml and they run on the host/,
    );
    const pourtier = parse(readFileSync(join(root, 'pourtier/docker-compose.test.yaml'), 'utf8'));
    assert.deepEqual(Object.keys(pourtier.services), ['postgres-test', 'pourtier-test']);
    assert.equal(pourtier.services['postgres-test'].container_name, undefined);
    assert.equal(pourtier.services['postgres-test'].profiles, undefined);
    assert.deepEqual(pourtier.services['pourtier-test'].build, {
      context: '..',
      dockerfile: 'pourtier/Dockerfile',
    });
    assert.deepEqual(pourtier.services['pourtier-test'].volumes, ['./tests:/app/tests']);
    const passeur = parse(readFileSync(join(root, 'passeur/docker-compose.test.yaml'), 'utf8'));
    assert.equal(passeur.services['passeur-test'].build, '.');
    // the component's own file now wins over the root one
    const after = loadMonorepo(root);
    assert.deepEqual(infraSource(after, after.components[0] as never, 'test'), {
      file: join(root, 'pourtier/docker-compose.test.yaml'),
    });
    // a second split does not overwrite
    const again = splitCompose(
      readComposeFile(join(root, 'docker-compose.test.yaml')),
      join(root, 'docker-compose.test.yaml'),
      after.components,
      { env: 'test' },
    );
    assert.equal(again.skipped.length, 3);
  });

  test('--dry-run prints and writes nothing', async () => {
    const root = seedRepo();
    const r = await cli(['infra', 'split', '--dry-run', '--root', root]);
    assert.match(r.stdout, /would write pourtier\/docker-compose\.test\.yaml/);
    assert.ok(!existsSync(join(root, 'pourtier/docker-compose.test.yaml')));
  });
});

describe('phare test on the host', () => {
  test('a component with no compose test file never calls Docker', async () => {
    const dir = temp();
    const calls = join(dir, 'calls');
    const fake = join(dir, 'docker');
    writeFileSync(fake, `#!/bin/sh\necho "$@" >> "${calls}"\nexit 1\n`);
    chmodSync(fake, 0o755);
    const junit = join(dir, 'report.xml');
    const env = {
      ...process.env,
      DOCKER_HOST: 'unix:///nonexistent/docker.sock',
      PHARE_DOCKER_CLI: fake,
      PHARE_COMPOSE_CLI: fake,
    };
    const r = await cli(['test', 'bus', '--root', EXAMPLE, '--junit', junit], env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /bus:unit \| .*OK|bus:unit \| OK/s);
    assert.match(
      r.stdout,
      /COMPONENT\s+CATEGORY\s+INFRASTRUCTURE\s+DURATION\s+RESULT\nbus\s+unit\s+host\s+\S+ m?s\s+passed\nbus\s+integration\s+host\s+\S+ m?s\s+passed\n/,
    );
    assert.ok(
      !existsSync(calls),
      `docker was called: ${existsSync(calls) ? readFileSync(calls, 'utf8') : ''}`,
    );
    const xml = readFileSync(junit, 'utf8');
    assert.match(xml, /<testsuite name="bus" tests="2" failures="0" errors="0"/);
    // the same fake proves the other path: notes' integration tests do need Docker, and say so, while a
    // host-only component in the same run still runs
    const both = await cli(['test', 'notes', 'bus', '--integration', '--root', EXAMPLE], env);
    assert.equal(both.code, 1);
    assert.match(both.stderr, /cannot reach Docker to start the test infrastructure/);
    assert.match(both.stdout, /^notes\s+integration\s+failed to start\s+\S+ m?s\s+error$/m);
    assert.match(both.stdout, /^bus\s+integration\s+host\s+\S+ m?s\s+passed$/m);
    assert.ok(existsSync(calls));
  });

  test('a failing command fails the run (exit 1); e2e without a compose test file is an error', async () => {
    const root = temp();
    write(root, {
      'phare.yaml': 'components:\n  - path: a\n    test: { unit: "echo boom; exit 3", e2e: "true" }\n',
      'a/.keep': '',
    });
    const junit = join(root, 'r.xml');
    const r = await cli(['test', '--root', root, '--junit', junit]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^a:unit \| boom$/m);
    assert.match(r.stdout, /^a\s+unit\s+host\s+\S+ m?s\s+failed$/m);
    assert.match(r.stdout, /^a\s+e2e\s+none\s+0 ms\s+error$/m);
    const xml = readFileSync(junit, 'utf8');
    assert.match(xml, /<failure message="exit code 3">boom\n<\/failure>/);
    assert.match(
      xml,
      /<error message="a: e2e tests run against infrastructure, but a\/docker-compose\.test\.yaml does not exist">/,
    );
  });

  test('a failing command fails the run; JUnit holds its output', () => {
    const xml = junitXml([
      {
        component: 'a',
        category: 'unit',
        infrastructure: 'host',
        durationMs: 1200,
        result: 'failed',
        message: 'exit code 1',
        output: 'boom <&>',
      },
      {
        component: 'a',
        category: 'integration',
        infrastructure: 'failed to start',
        durationMs: 5,
        result: 'error',
        message: 'unhealthy',
        output: '',
      },
    ]);
    assert.match(xml, /<testsuites name="phare test" tests="2" failures="1" errors="1"/);
    assert.match(xml, /<testcase classname="a" name="unit" time="1\.200">/);
    assert.match(xml, /<failure message="exit code 1">boom &lt;&amp;&gt;<\/failure>/);
    assert.match(xml, /<error message="unhealthy">/);
  });

  test('bad flags and names are named', async () => {
    assert.match(
      (await cli(['test', '--parallel', '0', '--root', EXAMPLE])).stderr,
      /--parallel: expected a number/,
    );
    const r = await cli(['test', 'nope', '--root', EXAMPLE]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /component "nope" is not in phare\.yaml \(known: notes, bus, cache\)/);
  });
});

test('schema/phare.schema.json is the JSON Schema generated from the zod schema', () => {
  assert.equal(
    readFileSync(SCHEMA_PATH, 'utf8'),
    phareJsonSchemaText(),
    'stale: run npx node src/infra/generate-schema.ts',
  );
});
