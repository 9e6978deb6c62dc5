import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, test } from 'node:test';
import { z } from 'zod';
import {
  configInfo,
  configSource,
  describeSource,
  isPhareUrl,
  loadConfig,
  parsePhareUrl,
  printConfig,
  redactConfig,
  secret,
  serviceUrl,
} from './index.ts';

const root = mkdtempSync(join(tmpdir(), 'phare-config-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/** A config dir with the given files. */
function dir(files: Record<string, string>): string {
  const d = join(root, `c${n++}`);
  mkdirSync(d);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text);
  return d;
}
const relFile = (d: string, f: string) => {
  const r = relative(process.cwd(), join(d, f));
  return r.startsWith('..') ? join(d, f) : r;
};

const schema = z.strictObject({
  http: z.strictObject({
    port: z.number().int().min(1).max(65535).default(3000).meta({ env: 'PORT' }),
    host: z.string().default('127.0.0.1'),
  }),
  database: z.strictObject({
    url: secret(z.string()).meta({ env: 'DATABASE_URL' }),
    poolSize: z.number().int().min(1).default(10),
  }),
  billing: z.strictObject({ url: serviceUrl() }),
  features: z.array(z.string()).default([]),
  log: z
    .strictObject({ level: z.enum(['debug', 'info', 'warn']).default('info') })
    .default({ level: 'info' }),
});

const files = {
  'default.yaml': [
    '# defaults for every environment',
    'http:',
    '  port: 3000',
    'database:',
    '  url: postgres://app:devpass@127.0.0.1/app',
    '  poolSize: 5',
    'billing:',
    '  url: phare://billing',
    '',
  ].join('\n'),
  'production.yaml': ['database:', '  poolSize: 20', 'features: [a, b]', ''].join('\n'),
  'local.yaml': ['http:', '  host: 0.0.0.0', ''].join('\n'),
};

test('layers merge in order default < env < local < variables, typed and deeply frozen', () => {
  const d = dir(files);
  const config = loadConfig({ dir: d, env: 'production', schema, envVars: { DATABASE__POOL_SIZE: '30' } });
  assert.deepEqual(config, {
    http: { port: 3000, host: '0.0.0.0' },
    database: { url: 'postgres://app:devpass@127.0.0.1/app', poolSize: 30 },
    billing: { url: 'phare://billing' },
    features: ['a', 'b'],
    log: { level: 'info' },
  });
  const poolSize: number = config.database.poolSize;
  assert.equal(poolSize, 30);
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.database) && Object.isFrozen(config.features));
  assert.throws(() => {
    (config.database as { poolSize: number }).poolSize = 1;
  }, TypeError);

  assert.deepEqual(configSource(config, 'http.port'), {
    layer: 'default',
    file: relFile(d, 'default.yaml'),
    line: 3,
    column: 9,
  });
  assert.equal(describeSource(configSource(config, 'http.host')!), `${relFile(d, 'local.yaml')}:2:9`);
  assert.deepEqual(configSource(config, 'database.poolSize'), {
    layer: 'env',
    variable: 'DATABASE__POOL_SIZE',
  });
  assert.equal(configSource(config, 'features')?.layer, 'production');
  assert.deepEqual(configSource(config, 'log.level'), { layer: 'schema' });
  const info = configInfo(config);
  assert.equal(info.env, 'production');
  assert.deepEqual(
    info.files,
    ['default.yaml', 'production.yaml', 'local.yaml'].map((f) => relFile(d, f)),
  );
});

test('env name: ENV, then NODE_ENV, then development; declared variable names win', () => {
  const d = dir({
    ...files,
    'staging.yaml': 'database:\n  poolSize: 7\n',
    'development.yaml': 'database:\n  poolSize: 2\n',
  });
  const load = (envVars: Record<string, string>) => loadConfig({ dir: d, schema, envVars });
  assert.equal(load({ ENV: 'staging', NODE_ENV: 'production' }).database.poolSize, 7);
  assert.equal(load({ NODE_ENV: 'production' }).database.poolSize, 20);
  assert.equal(load({}).database.poolSize, 2);
  const c = load({ PORT: '8080', HTTP__PORT: '9090', DATABASE_URL: 'postgres://x' });
  assert.equal(c.http.port, 8080);
  assert.equal(c.database.url, 'postgres://x');
  assert.deepEqual(configSource(c, 'http.port'), { layer: 'env', variable: 'PORT' });
  // Variables that name no section of the schema belong to someone else and are ignored.
  assert.equal(load({ OTHER__THING: '1', PATH: '/bin' }).http.port, 3000);
  assert.deepEqual(load({ FEATURES__X: '1' }).features, []);
});

test('an error names the file, line, key, what was expected and what was found', () => {
  const d = dir({
    ...files,
    'production.yaml': [
      'database:',
      '  poolSize: ten',
      'http:',
      '  port: 70000',
      'log:',
      '  level: loud',
      '',
    ].join('\n'),
  });
  const f = relFile(d, 'production.yaml');
  assert.throws(
    () => loadConfig({ dir: d, env: 'production', schema, envVars: {} }),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'PHARE_ERR_INVALID_CONFIG');
      assert.match(err.message, /3 problems/);
      assert.ok(
        err.message.includes(`${f}:2:13 database.poolSize: expected number, found string "ten"`),
        err.message,
      );
      assert.ok(
        err.message.includes(
          `${f}:4:9 http.port: Too big: expected number to be <=65535, found number 70000`,
        ),
        err.message,
      );
      assert.ok(err.message.includes(`${f}:6:10 log.level: Invalid option: expected one of`), err.message);
      assert.ok(err.message.includes('found string "loud"'), err.message);
      return true;
    },
  );
});

test('unknown keys are errors with a did-you-mean, in files and in variables', () => {
  const d = dir({
    ...files,
    'production.yaml': ['databse:', '  poolSize: 1', 'http:', '  prot: 1', ''].join('\n'),
  });
  const f = relFile(d, 'production.yaml');
  assert.throws(
    () => loadConfig({ dir: d, env: 'production', schema, envVars: { DATABASE__POOL_SIZ: '3' } }),
    (err: Error) => {
      assert.ok(err.message.includes(`${f}:1:1 databse: unknown key; did you mean "database"?`), err.message);
      assert.ok(err.message.includes(`${f}:4:3 http.prot: unknown key; did you mean "port"?`), err.message);
      assert.ok(
        err.message.includes(
          'env DATABASE__POOL_SIZ: no config key matches; did you mean DATABASE__POOL_SIZE?',
        ),
      );
      return true;
    },
  );
});

test('secrets are never shown: not in errors, not when printed; URL passwords are redacted', () => {
  const d = dir({ ...files, 'production.yaml': 'database:\n  url: 12345\n' });
  assert.throws(
    () => loadConfig({ dir: d, env: 'production', schema, envVars: {} }),
    (err: Error) => {
      assert.match(err.message, /database\.url: expected string, found a number \(secret, not shown\)/);
      assert.doesNotMatch(err.message, /12345/);
      return true;
    },
  );
  const c = loadConfig({ dir: dir(files), schema, envVars: { PORT: '8080' } });
  assert.equal(
    redactConfig(c)['database'] && (redactConfig(c)['database'] as { url: string }).url,
    '[redacted]',
  );
  const printed = printConfig(c);
  assert.doesNotMatch(printed, /devpass/);
  assert.match(printed, /port: 8080 # env PORT/);
  assert.match(printed, /url: "\[redacted\]" # .*default\.yaml:5:8/);
  assert.match(printed, /level: info # schema default/);
  assert.match(printed, /features: \[\] # schema default/);
  assert.match(printed, /^# env: development; files: .*default\.yaml < .*local\.yaml < environment/);

  // Without a schema: secret-looking names and URL passwords are redacted.
  const raw = loadConfig({
    dir: dir({ 'default.yaml': 'api:\n  token: abc\n  url: https://u:pw@x.test/\n  name: n\n' }),
    envVars: { API__NAME: 'from-env' },
  });
  assert.deepEqual(redactConfig(raw), {
    api: { token: '[redacted]', url: 'https://u:[redacted]@x.test/', name: 'from-env' },
  });
});

test('missing required values say where they can be set', () => {
  const d = dir({ 'default.yaml': 'billing:\n  url: http://127.0.0.1:4000\n' });
  assert.throws(
    () => loadConfig({ dir: d, schema, envVars: {} }),
    /database: expected object, found nothing \(set it in a YAML layer\)/,
  );
  const d2 = dir({ 'default.yaml': 'billing:\n  url: http://127.0.0.1:4000\ndatabase:\n  poolSize: 1\n' });
  assert.throws(
    () => loadConfig({ dir: d2, schema, envVars: {} }),
    /database\.url: expected string, found nothing \(set it in a YAML layer or env DATABASE_URL \/ DATABASE__URL\)/,
  );
});

test('YAML syntax errors and bad top-level shapes name file and line', () => {
  const d = dir({ 'default.yaml': 'http:\n  port: [1\n' });
  assert.throws(
    () => loadConfig({ dir: d, schema, envVars: {} }),
    new RegExp(`${relFile(d, 'default.yaml')}:\\d+:\\d+: YAML:`),
  );
  const d2 = dir({ 'default.yaml': '- a\n- b\n' });
  assert.throws(() => loadConfig({ dir: d2, envVars: {} }), /expected a mapping of sections/);
  const d3 = dir({ 'default.yaml': 'a: 1\na: 2\n' });
  assert.throws(() => loadConfig({ dir: d3, envVars: {} }), /YAML: Map keys must be unique/);
  assert.throws(
    () => loadConfig({ dir: join(root, 'nope'), envVars: {} }),
    /config dir: .* is not a directory/,
  );
  assert.throws(() => loadConfig({ dir: dir({}), env: 'local', envVars: {} }), /config env: expected a name/);
});

test('variables are coerced to the schema type: numbers, booleans, lists, JSON', () => {
  const s = z.strictObject({
    a: z.strictObject({
      n: z.number(),
      b: z.boolean(),
      list: z.array(z.string()),
      json: z.array(z.number()),
      rec: z.record(z.string(), z.number()),
      s: z.string(),
    }),
  });
  const c = loadConfig({
    dir: dir({}),
    schema: s,
    envVars: {
      A__N: '1.5',
      A__B: 'yes',
      A__LIST: 'x, y',
      A__JSON: '[1,2]',
      A__REC: '{"k":1}',
      A__S: '007',
    },
  });
  assert.deepEqual(c, { a: { n: 1.5, b: true, list: ['x', 'y'], json: [1, 2], rec: { k: 1 }, s: '007' } });
  assert.throws(
    () =>
      loadConfig({
        dir: dir({}),
        schema: s,
        envVars: { A__N: 'many', A__B: '1', A__LIST: '', A__JSON: '[]', A__REC: '{}', A__S: '' },
      }),
    /env A__N a\.n: expected number, found string "many"/,
  );
});

test('loose objects accept extra keys; an env prefix namespaces variables', () => {
  const s = z.strictObject({ app: z.looseObject({ name: z.string() }) });
  const c = loadConfig({
    dir: dir({ 'default.yaml': 'app:\n  name: a\n  extra: 1\n' }),
    schema: s,
    envPrefix: 'SVC_',
    envVars: { SVC_APP__NAME: 'b', APP__NAME: 'ignored' },
  });
  assert.deepEqual(c, { app: { name: 'b', extra: 1 } });
});

test('phare:// service URLs', () => {
  assert.equal(isPhareUrl('phare://billing'), true);
  assert.equal(isPhareUrl('http://billing'), false);
  assert.equal(isPhareUrl('phare://'), false);
  assert.equal(isPhareUrl('phare://bad_name'), false);
  assert.deepEqual(parsePhareUrl('phare://billing/v1/x?y=1'), { service: 'billing', path: '/v1/x?y=1' });
  const s = serviceUrl();
  assert.equal(s.safeParse('https://api.example.com/v1').success, true);
  assert.equal(s.safeParse('phare://users').success, true);
  assert.equal(s.safeParse('ftp://x').success, false);
  assert.equal(s.safeParse('billing').success, false);
});
