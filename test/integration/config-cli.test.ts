/** `phare config print` through the CLI entry point, with real files in a temp dir. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { main } from '../../src/cli/main.ts';

const root = mkdtempSync(join(tmpdir(), 'phare-config-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));

const configDir = join(root, 'config');
mkdirSync(configDir);
writeFileSync(
  join(configDir, 'default.yaml'),
  [
    'http:',
    '  port: 3000',
    'database:',
    '  url: postgres://app:s3cret@127.0.0.1/app',
    '  password: hunter2',
    '',
  ].join('\n'),
);
writeFileSync(join(configDir, 'production.yaml'), 'http:\n  port: 80\n');
// The schema module imports the project's zod by URL, since the temp dir has no node_modules.
writeFileSync(
  join(root, 'schema.ts'),
  [
    `import { z } from '${import.meta.resolve('zod')}';`,
    'export const schema = z.strictObject({',
    "  http: z.strictObject({ port: z.number().int().meta({ env: 'PORT' }) }),",
    '  database: z.strictObject({ url: z.string().meta({ secret: true }), password: z.string() }),',
    '});',
    'export const typo = z.strictObject({ http: z.strictObject({ prot: z.number() }) });',
    '',
  ].join('\n'),
);

async function run(args: string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    stdout: (s) => {
      stdout += s;
    },
    stderr: (s) => {
      stderr += s;
    },
    env,
    cwd: root,
  });
  return { code, stdout, stderr };
}

test('config print without a schema: merged layers, sources, secret-looking names redacted', async () => {
  const r = await run(['config', 'print', '--env', 'production'], { HTTP__PORT: '8080' });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^# env: production; files: .*default\.yaml < .*production\.yaml < environment/);
  assert.match(r.stdout, /port: 8080 # env HTTP__PORT/);
  assert.match(r.stdout, /url: postgres:\/\/app:\[redacted\]@127\.0\.0\.1\/app # .*default\.yaml:4:8/);
  assert.match(r.stdout, /password: "\[redacted\]"/);
  assert.doesNotMatch(r.stdout, /s3cret|hunter2/);
});

test('config print with --schema validates and uses its secret marks; env from $ENV', async () => {
  const r = await run(['config', 'print', '--schema', 'schema.ts'], { ENV: 'production' });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /port: 80 # .*production\.yaml:2:9/);
  assert.match(r.stdout, /url: "\[redacted\]"/);
  // Secret-looking names are redacted even when the schema does not mark them.
  assert.match(r.stdout, /password: "\[redacted\]"/);
  assert.doesNotMatch(r.stdout, /s3cret|hunter2/);
});

test('config print reports invalid config with exit code 2 and file:line', async () => {
  const r = await run(['config', 'print', '--schema', 'schema.ts#typo']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /config\/default\.yaml:2:3 http\.port: unknown key; did you mean "prot"\?/);
  assert.match(r.stderr, /database: unknown key/);
  const missing = await run(['config', 'print', '--dir', 'nope']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /config dir: .*nope is not a directory/);
  const noExport = await run(['config', 'print', '--schema', 'schema.ts#nothing']);
  assert.equal(noExport.code, 2);
  assert.match(noExport.stderr, /--schema: .* has no zod schema export "nothing"/);
});

test('bin/phare.js config print runs as a process', () => {
  const bin = join(import.meta.dirname, '..', '..', 'bin', 'phare.js');
  const r = spawnSync(process.execPath, [bin, 'config', 'print', '--dir', configDir], {
    encoding: 'utf8',
    env: { ...process.env, PORT: '1', ENV: '', NODE_ENV: '' },
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /# env: development/);
  assert.match(r.stdout, /port: 3000/);
});
