import assert from 'node:assert/strict';
import { chmodSync, mkdirSync } from 'node:fs';
import { test } from 'node:test';
import lockfile from 'proper-lockfile';
import { makeProject, PROJECT_PORTS } from '../../test/helpers/ports-project.ts';
import { PhareError } from '../api/index.ts';
import type { PortsProblem } from './model.ts';
import { syncPorts } from './sync.ts';

async function rejectsWithProblems(p: Promise<unknown>, rule: string): Promise<PortsProblem[]> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof PhareError, String(err));
    assert.equal(err.code, 'PHARE_ERR_INVALID_CONFIG');
    const problems = (err as unknown as { problems: PortsProblem[] }).problems;
    assert.ok(
      problems.some((x) => x.rule === rule),
      `expected a ${rule} problem, got ${JSON.stringify(problems, null, 2)}`,
    );
    return problems;
  }
  assert.fail('expected sync to fail');
}

test('sync writes every target, keeps comments and formatting, and a second run changes nothing', async () => {
  const p = makeProject();
  try {
    const res = await syncPorts(p.path('ports.yaml'));
    assert.equal(res.written.length, 7);
    assert.equal(
      p.read('api/production.yaml'),
      '# api (production)\nserver:\n  host: 0.0.0.0   # all interfaces\n  port: 3000 # synced\nlist:\n- a\n- b\n',
    );
    // "{internal}" alone writes a number, replacing the quoted string.
    assert.equal(p.read('api/development.yaml'), 'server:\n  port: 19000\n');
    assert.equal(
      p.read('bus/production.json'),
      '{\n    "listen": {\n        "port": 4000\n    },\n    "name": "bus"\n}\n',
    );
    assert.equal(p.read('bus/development.json'), '{\n\t"listen": {\n\t\t"port": 19010\n\t}\n}');
    assert.equal(
      p.read('env/production.env'),
      '# production\nexport API_PORT=18000 # api\nPGPORT="15001"\n\nOTHER=x\nREDIS_PORT=15010\n',
    );
    assert.equal(p.read('env/development.env'), 'OTHER=y\nAPI_PORT=19000\nPGPORT=15002\nREDIS_PORT=15010\n');
    assert.equal(
      p.read('compose.yaml'),
      `# compose
services:
  postgres:
    image: postgres:17
    ports:
      - "15001:5432" # container only
  api:
    ports: ["18000:3000"]
  bridge:
    environment:
      - NODE_ENV=production
      - BUS_URL=ws://bus:4000/events
`,
    );
    const before = p.snapshot();
    const again = await syncPorts(p.path('ports.yaml'));
    assert.deepEqual(again.written, []);
    assert.deepEqual(p.snapshot(), before);
  } finally {
    p.cleanup();
  }
});

test('sync --dry-run returns a unified diff and writes nothing', async () => {
  const p = makeProject();
  try {
    const before = p.snapshot();
    const res = await syncPorts(p.path('ports.yaml'), { dryRun: true });
    assert.deepEqual(res.written, []);
    assert.deepEqual(p.snapshot(), before);
    assert.match(
      res.diff,
      /^--- a\/api\/production\.yaml\n\+\+\+ b\/api\/production\.yaml\n@@ -1,7 \+1,7 @@\n/m,
    );
    assert.match(res.diff, /^- {2}port: 1 # synced\n\+ {2}port: 3000 # synced$/m);
    assert.match(res.diff, /^\+REDIS_PORT=15010$/m);
  } finally {
    p.cleanup();
  }
});

test('sync creates a missing .env, YAML and JSON file in an existing directory', async () => {
  const p = makeProject();
  try {
    p.write(
      'ports.yaml',
      'version: 1\nenvironments:\n  test: { range: { from: 17000, to: 17010 } }\ncomponents:\n  api:\n    ports: { test: 17001 }\n    targets:\n' +
        '      - { type: dotenv, file: new.env, var: PORT }\n' +
        '      - { type: yaml, file: new.yaml, key: [a.b, port] }\n' +
        '      - { type: json, file: new.json, key: servers.0.port }\n',
    );
    await syncPorts(p.path('ports.yaml'));
    assert.equal(p.read('new.env'), 'PORT=17001\n');
    assert.equal(p.read('new.yaml'), 'a.b:\n  port: 17001\n');
    assert.equal(p.read('new.json'), '{\n  "servers": [\n    {\n      "port": 17001\n    }\n  ]\n}\n');
  } finally {
    p.cleanup();
  }
});

test('malformed ports.yaml leaves every file untouched', async () => {
  const p = makeProject();
  try {
    p.write('ports.yaml', PROJECT_PORTS.replace('  development:\n    range:', '  development:\n   range: ['));
    const before = p.snapshot();
    const problems = await rejectsWithProblems(syncPorts(p.path('ports.yaml')), 'yaml');
    assert.ok(problems[0]!.line! > 0);
    assert.deepEqual(p.snapshot(), before);
  } finally {
    p.cleanup();
  }
});

test('an unknown environment leaves every file untouched', async () => {
  const p = makeProject();
  try {
    p.write('ports.yaml', PROJECT_PORTS.replace('development: 19010', 'staging: 19010'));
    const before = p.snapshot();
    const problems = await rejectsWithProblems(syncPorts(p.path('ports.yaml')), 'unknown-environment');
    const prob = problems.find((x) => x.rule === 'unknown-environment')!;
    assert.equal(prob.key, 'components.bus.ports.staging');
    assert.equal(prob.found, 'staging');
    assert.equal(prob.line, PROJECT_PORTS.split('\n').findIndex((l) => l.includes('development: 19010')) + 1);
    assert.deepEqual(p.snapshot(), before);
  } finally {
    p.cleanup();
  }
});

test('overlapping ranges leave every file untouched', async () => {
  const p = makeProject();
  try {
    p.write('ports.yaml', PROJECT_PORTS.replace('from: 19000, to: 19099', 'from: 18050, to: 19099'));
    const before = p.snapshot();
    await rejectsWithProblems(syncPorts(p.path('ports.yaml')), 'range-overlap');
    assert.deepEqual(p.snapshot(), before);
  } finally {
    p.cleanup();
  }
});

test('unwritable targets leave every file untouched', async (t) => {
  await t.test('target path is a directory', async () => {
    const p = makeProject();
    try {
      p.write('ports.yaml', PROJECT_PORTS.replace("file: 'bus/{env}.json'", "file: 'busdir/{env}'"));
      mkdirSync(p.path('busdir/production'), { recursive: true });
      mkdirSync(p.path('busdir/development'), { recursive: true });
      const before = p.snapshot();
      const problems = await rejectsWithProblems(syncPorts(p.path('ports.yaml')), 'target');
      assert.match(problems[0]!.message, /busdir\/production: cannot read \(EISDIR\)/);
      assert.deepEqual(p.snapshot(), before);
    } finally {
      p.cleanup();
    }
  });
  await t.test('parent directory missing', async () => {
    const p = makeProject();
    try {
      p.write(
        'ports.yaml',
        PROJECT_PORTS.replace("file: 'env/{env}.env', var: PGPORT", "file: 'nodir/{env}.env', var: PGPORT"),
      );
      const before = p.snapshot();
      await rejectsWithProblems(syncPorts(p.path('ports.yaml')), 'target');
      assert.deepEqual(p.snapshot(), before);
    } finally {
      p.cleanup();
    }
  });
  await t.test('compose service missing', async () => {
    const p = makeProject();
    try {
      p.write('ports.yaml', PROJECT_PORTS.replace('service: bridge', 'service: brige'));
      const before = p.snapshot();
      const problems = await rejectsWithProblems(syncPorts(p.path('ports.yaml')), 'target');
      assert.match(problems[0]!.message, /compose\.yaml: compose file has no service "brige"/);
      assert.deepEqual(p.snapshot(), before);
    } finally {
      p.cleanup();
    }
  });
  await t.test('directory not writable (skipped as root, who may write anywhere)', async (st) => {
    if (process.getuid?.() === 0) return st.skip('running as root');
    const p = makeProject();
    try {
      chmodSync(p.path('bus'), 0o555);
      const before = p.snapshot();
      await assert.rejects(syncPorts(p.path('ports.yaml')), { code: 'PHARE_ERR_FILE_WRITE' });
      assert.deepEqual(p.snapshot(), before);
    } finally {
      chmodSync(p.path('bus'), 0o755);
      p.cleanup();
    }
  });
});

test('a held lock stops a second sync', async () => {
  const p = makeProject();
  try {
    const release = await lockfile.lock(p.path('ports.yaml'), { realpath: false });
    try {
      const before = p.snapshot();
      await assert.rejects(syncPorts(p.path('ports.yaml')), {
        code: 'PHARE_ERR_LOCKED',
        message: /another phare ports sync is running/,
      });
      assert.deepEqual(p.snapshot(), before);
    } finally {
      await release();
    }
    await syncPorts(p.path('ports.yaml'));
  } finally {
    p.cleanup();
  }
});

test('two concurrent syncs: one wins, the other is refused or finds nothing to do', async () => {
  const p = makeProject();
  try {
    const results = await Promise.allSettled([
      syncPorts(p.path('ports.yaml')),
      syncPorts(p.path('ports.yaml')),
    ]);
    const ok = results.filter((r) => r.status === 'fulfilled');
    assert.ok(ok.length >= 1);
    for (const r of results) {
      if (r.status === 'rejected') assert.equal((r.reason as PhareError).code, 'PHARE_ERR_LOCKED');
    }
    const again = await syncPorts(p.path('ports.yaml'));
    assert.deepEqual(again.written, []);
  } finally {
    p.cleanup();
  }
});
