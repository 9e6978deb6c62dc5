import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { makeProject, PROJECT_PORTS } from '../../test/helpers/ports-project.ts';
import { checkPorts, checkRules } from './check.ts';
import { parsePorts } from './model.ts';
import { syncPorts } from './sync.ts';

const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

async function problemsFor(ports: string) {
  const p = makeProject();
  try {
    p.write('ports.yaml', ports);
    await syncPorts(p.path('ports.yaml')).catch(() => {});
    return (await checkPorts(p.path('ports.yaml'))).problems;
  } finally {
    p.cleanup();
  }
}

test('the example ports.yaml is valid and its files are in sync', async () => {
  const file = fileURLToPath(new URL('../../examples/ports/ports.yaml', import.meta.url));
  const report = await checkPorts(file);
  assert.deepEqual(report.problems, []);
  assert.equal(report.ok, true);
  assert.equal(report.summary.components, 3);
  assert.equal(report.summary.infrastructure, 2);
  assert.equal(report.summary.environments, 3);
});

test('a synced project passes; an out-of-sync one names file, key, expected and found', async () => {
  const p = makeProject();
  try {
    const before = await checkPorts(p.path('ports.yaml'));
    assert.equal(before.ok, false);
    const api = before.problems.find((x) => x.file === 'api/production.yaml')!;
    assert.deepEqual(
      {
        rule: api.rule,
        line: api.line,
        key: api.key,
        expected: api.expected,
        found: api.found,
        fix: api.fix,
      },
      {
        rule: 'out-of-sync',
        line: 4,
        key: 'server.port',
        expected: '3000',
        found: '1',
        fix: 'run phare ports sync',
      },
    );
    assert.equal(before.problems.find((x) => x.key === 'services.bridge.environment.BUS_URL')!.line, 12);
    assert.equal(before.problems.find((x) => x.file === 'env/production.env' && x.key === 'PGPORT')!.line, 3);
    assert.ok(before.problems.some((x) => x.file === 'env/development.env' && x.found === 'missing'));
    await syncPorts(p.path('ports.yaml'));
    const after = await checkPorts(p.path('ports.yaml'));
    assert.deepEqual(after.problems, []);
    assert.equal(after.summary.targets, 13);
    assert.equal(after.summary.files, 7);
  } finally {
    p.cleanup();
  }
});

test('schema errors carry the line, key, expected and found', () => {
  const text = PROJECT_PORTS.replace('port: 15010', 'port: "15010"').replace(
    "{ type: json, file: 'bus/{env}.json'",
    "{ type: jsn, file: 'bus/{env}.json'",
  );
  const { model, problems } = parsePorts(
    text.replace('version: 1', 'version: 1\nverison: 2'),
    '/p/ports.yaml',
  );
  assert.equal(model, null);
  const byKey = Object.fromEntries(problems.map((p) => [p.key, p]));
  const redis = byKey['infrastructure.services.redis.port']!;
  assert.equal(redis.file, 'ports.yaml');
  assert.equal(redis.expected, 'number');
  assert.equal(redis.found, '"15010"');
  assert.equal(redis.line, lineOf(text, 'port: "15010"') + 1);
  const target = byKey['components.bus.targets[0].type']!;
  assert.equal(target.expected, 'yaml | json | dotenv | compose-port | compose-env');
  assert.equal(target.found, '"jsn"');
  assert.equal(target.line, lineOf(text, 'type: jsn') + 1);
  const typo = byKey['verison']!;
  assert.equal(typo.found, 'verison');
  assert.equal(typo.line, 3);
});

test('malformed YAML is one problem with its line', () => {
  const { model, problems } = parsePorts('version: 1\nenvironments:\n  a: [\n', '/p/ports.yaml');
  assert.equal(model, null);
  assert.equal(problems[0]!.rule, 'yaml');
  assert.ok(problems[0]!.line! >= 3);
});

test('range rules: empty, privileged and overlapping ranges', async () => {
  const problems = await problemsFor(
    PROJECT_PORTS.replace('from: 19000, to: 19099', 'from: 19099, to: 19000').replace(
      'from: 15000, to: 15099',
      'from: 80, to: 18005',
    ),
  );
  const rules = problems.map((p) => `${p.rule} ${p.key}`);
  assert.ok(rules.includes('range environments.development.range'), rules.join('\n'));
  assert.ok(rules.includes('range infrastructure.range'), rules.join('\n'));
  const overlap = problems.find((p) => p.rule === 'range-overlap')!;
  assert.equal(overlap.key, 'infrastructure.range');
  assert.equal(overlap.expected, 'disjoint from production 18000-18099');
  assert.equal(overlap.found, '80-18005');
});

test('a port outside its range, and a host port used twice across environments', async () => {
  const text = PROJECT_PORTS.replace('development: 19010', 'development: 19000').replace(
    'ports: { production: 15001, development: 15002 }',
    'ports: { production: 15001, development: 16002 }',
  );
  const problems = await problemsFor(text);
  const out = problems.find((p) => p.rule === 'out-of-range')!;
  assert.equal(out.key, 'infrastructure.services.postgres.ports.development');
  assert.equal(out.expected, '15000-15099');
  assert.equal(out.found, '16002');
  assert.match(out.fix, /phare ports next --env infrastructure/);
  const dup = problems.find((p) => p.rule === 'duplicate-port')!;
  assert.equal(dup.key, 'components.bus.ports.development');
  assert.match(dup.message, /already used by api \(development\)/);
  assert.equal(dup.line, lineOf(text, '  bus:') + 3);
});

test('two values written to one place are a problem; unknown placeholders too', async () => {
  const problems = await problemsFor(
    PROJECT_PORTS.replace(
      "file: 'env/{env}.env', var: API_PORT",
      'file: env/production.env, var: API_PORT',
    ).replace("value: 'ws://bus:{internal}/events'", "value: 'ws://bus:{internl}/events'"),
  );
  const dup = problems.find((p) => p.rule === 'duplicate-target')!;
  assert.match(
    dup.message,
    /env\/production\.env API_PORT is written by api \(production\) and api \(development\)/,
  );
  const ph = problems.find((p) => p.rule === 'placeholder')!;
  assert.equal(ph.found, '{internl}');
  assert.equal(ph.key, 'components.bus.targets[1]');
});

test('a target outside the project directory is refused', () => {
  const { problems } = parsePorts(
    PROJECT_PORTS.replace("file: 'api/{env}.yaml'", "file: '../api/{env}.yaml'"),
    '/p/ports.yaml',
  );
  assert.equal(problems[0]!.rule, 'target-path');
});

test('a target env that is unknown, or that the component has no port for', () => {
  const { problems } = parsePorts(
    PROJECT_PORTS.replace('service: postgres, env: production', 'service: postgres, env: prod').replace(
      '      development: 19000\n',
      '',
    ),
    '/p/ports.yaml',
  );
  const unknown = problems.find((p) => p.key === 'infrastructure.services.postgres.targets[1].env')!;
  assert.equal(unknown.rule, 'unknown-environment');
  assert.equal(unknown.expected, 'one of production, development');
  assert.equal(problems.filter((p) => p.rule === 'unknown-environment').length, 1);
  // api has no development port now: its {env} targets expand to production only, no problem.
  const { problems: noPort } = parsePorts(
    PROJECT_PORTS.replace('service: api, env: production', 'service: api, env: development').replace(
      '      development: 19000\n',
      '',
    ),
    '/p/ports.yaml',
  );
  assert.equal(noPort.length, 1);
  assert.equal(noPort[0]!.message, 'api has no port for environment "development"');
  assert.equal(noPort[0]!.key, 'components.api.targets[2].env');
});

test('the ports.yaml shown in docs/ports.md is valid', () => {
  const doc = readFileSync(fileURLToPath(new URL('../../docs/ports.md', import.meta.url)), 'utf8');
  const yaml = /```yaml\n([\s\S]*?)```/.exec(doc)![1]!;
  const { model, problems } = parsePorts(yaml, '/p/ports.yaml');
  assert.deepEqual(problems, []);
  assert.deepEqual(checkRules(model!), []);
  const example = readFileSync(
    fileURLToPath(new URL('../../examples/ports/ports.yaml', import.meta.url)),
    'utf8',
  );
  assert.deepEqual(
    parsePorts(example, '/p/ports.yaml').model!.config,
    model!.config,
    'docs and example differ',
  );
});

test('a key under a scalar is a target problem, not a crash', async () => {
  const p = makeProject();
  try {
    p.write('api/development.yaml', 'server: 5\n');
    const report = await checkPorts(p.path('ports.yaml'));
    const prob = report.problems.find((x) => x.rule === 'target')!;
    assert.equal(prob.file, 'api/development.yaml');
    assert.match(prob.message, /^api\/development\.yaml: /);
    assert.equal(report.problems.filter((x) => x.file === 'api/development.yaml').length, 1);
  } finally {
    p.cleanup();
  }
});
