/**
 * The published package, as a user gets it: `npm pack`, then `npm install ./phare-<v>.tgz` into a fresh
 * project (dependencies from the registry as usual), and there
 *   1. import every entry point from plain ESM JavaScript and call a few exports (Node 24 and Node 22.19);
 *   2. type-check a strict NodeNext TypeScript consumer against the shipped `.d.ts` (no Phare source read);
 *   3. run `phare agent --dev` from the package and read /v1/status/leader and /ui/;
 *   4. register a service with `registerService` and call it by name with `createServiceClient`;
 *   5. on a Node older than `engines`, every entry point and the CLI print one line and exit 1.
 * Node 20 and 22.19 come from the npm `node` package (as the project's own Node 24 does), so the test needs
 * nothing from the machine.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { NODE_BIN, REPO_ROOT, tempDir, waitFor } from '../helpers/agent.ts';

const run = promisify(execFile);
const ENTRY_POINTS = ['phare', 'phare/agent', 'phare/health', 'phare/config', 'phare/testing'];
const NPM_CLI = join(REPO_ROOT, 'node_modules', 'npm', 'bin', 'npm-cli.js');
const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
const tsVersion = (
  JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', 'typescript', 'package.json'), 'utf8')) as {
    version: string;
  }
).version;

/** The environment of a user's shell: none of npm's `npm_*` variables nor our NODE_OPTIONS leak in. */
function userEnv(nodeDir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || k === 'NODE_OPTIONS' || k === 'INIT_CWD' || /^(PHARE_|CONSUL_)/.test(k)) continue;
    env[k] = v;
  }
  env.PATH = `${nodeDir}:${process.env.PATH ?? ''}`;
  return { ...env, ...extra };
}

/** npm, run by the Node under test, as a user would type it. */
async function npm(cwd: string, args: string[], nodeBin = NODE_BIN): Promise<string> {
  const npmCli = await npmCliPath();
  const { stdout } = await run(nodeBin, [npmCli, ...args], {
    cwd,
    env: userEnv(join(nodeBin, '..')),
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

/** The npm that came with the machine (the project's own npm scripts run under it too). */
let npmCliCache: string | undefined;
async function npmCliPath(): Promise<string> {
  if (npmCliCache) return npmCliCache;
  try {
    readFileSync(NPM_CLI);
    npmCliCache = NPM_CLI;
  } catch {
    const { stdout } = await run('npm', ['root', '-g']);
    npmCliCache = join(stdout.trim(), 'npm', 'bin', 'npm-cli.js');
  }
  return npmCliCache;
}

const work = tempDir('phare-package-');
const project = join(work.path, 'consumer');
const runtimes = join(work.path, 'runtimes');
let tarball = '';
let packedFiles: string[] = [];
const children: ChildProcess[] = [];

before(async () => {
  // Pack exactly as `npm publish` would: prepack builds dist/.
  const packOut = await npm(REPO_ROOT, ['pack', '--json', '--pack-destination', work.path]);
  // npm prints the lifecycle scripts' banners before the JSON
  const packed = JSON.parse(packOut.slice(packOut.search(/^\[/m))) as {
    filename: string;
    size: number;
    unpackedSize: number;
    entryCount: number;
    files: { path: string }[];
  }[];
  const info = packed[0];
  assert.ok(info, 'npm pack printed no package');
  tarball = join(work.path, info.filename);
  packedFiles = info.files.map((f) => f.path);
  process.stdout.write(
    `# tarball ${info.filename}: ${info.entryCount} files, ${(info.size / 1024).toFixed(1)} KiB packed, ` +
      `${(info.unpackedSize / 1024).toFixed(1)} KiB unpacked\n`,
  );

  mkdirSync(project, { recursive: true });
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }, null, 2),
  );
  await npm(project, [
    'install',
    '--no-audit',
    '--no-fund',
    tarball,
    `typescript@${tsVersion}`,
    '@types/node@24',
  ]);

  // Older Nodes to try the package with, from the npm registry like the project's own Node 24.
  mkdirSync(runtimes, { recursive: true });
  writeFileSync(join(runtimes, 'package.json'), JSON.stringify({ name: 'runtimes', private: true }));
  await npm(runtimes, [
    'install',
    '--no-audit',
    '--no-fund',
    'node22@npm:node@22.19.0',
    'node20@npm:node@20',
  ]);
});

after(() => {
  for (const c of children) c.kill('SIGKILL');
  work.remove();
});

const node22 = () => join(runtimes, 'node_modules', 'node22', 'bin', 'node');
const node20 = () => join(runtimes, 'node_modules', 'node20', 'bin', 'node');

describe('the packed tarball', () => {
  test('holds dist, the CLI, schema, UI, docs, README and LICENSE, and no tests, bench, CI or examples', () => {
    for (const must of [
      'package.json',
      'README.md',
      'LICENSE',
      'bin/phare.js',
      'schema/ports.schema.json',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/index.js.map',
      'dist/cli/main.js',
      'dist/ui/index.html',
      'dist/ui/app.js',
      'docs/errors.md',
      ...['agent', 'health', 'config', 'testing'].flatMap((e) => [
        `dist/${e}/index.js`,
        `dist/${e}/index.d.ts`,
      ]),
    ])
      assert.ok(packedFiles.includes(must), `${must} is missing from the tarball`);
    const stray = packedFiles.filter(
      (f) =>
        /^(src|test|bench|examples|scripts|\.ci|node_modules)\//.test(f) ||
        /\.test\.(js|ts|d\.ts)$/.test(f) ||
        /(^|\/)tsconfig.*\.json$|biome\.json$|package-lock\.json$/.test(f),
    );
    assert.deepEqual(stray, [], 'files that do not belong in the package');
  });

  test('npm pack --dry-run lists no test or bench file', async () => {
    const out = await npm(REPO_ROOT, ['pack', '--dry-run', '--json', '--ignore-scripts']);
    const files = (JSON.parse(out) as { files: { path: string }[] }[])[0]?.files.map((f) => f.path) ?? [];
    assert.ok(files.length > 0, 'npm pack --dry-run listed nothing');
    assert.deepEqual(
      files.filter((f) => /(^|\/)(test|bench)\/|\.test\.|^\.ci\//.test(f)),
      [],
    );
  });
});

describe('installed into a fresh project', () => {
  const consumerJs = `
import * as phare from 'phare';
import * as agent from 'phare/agent';
import * as health from 'phare/health';
import * as config from 'phare/config';
import * as testing from 'phare/testing';
const out = {};
for (const [name, m] of Object.entries({ phare, agent, health, config, testing })) out[name] = Object.keys(m).sort();
// a few calls, each from a different entry point
const discovery = phare.createDiscovery({ resolver: phare.staticResolver({ services: { users: ['http://127.0.0.1:9'] } }) });
out.url = await discovery.url('users');
await discovery.close();
const h = health.createHealth({ checks: { ok: async () => {} } });
out.healthType = typeof h.handle;
out.parsed = config.parsePhareUrl('phare://users/v1/x');
out.isPhareUrl = config.isPhareUrl('phare://users/path');
out.error = await phare.registerService({ name: '' }).then(() => 'none', (e) => e.code);
const a = await testing.startTestAgent(); // (\`await using\` needs Node 24 in plain JavaScript)
try { out.leader = await (await fetch(a.url + '/v1/status/leader')).json(); } finally { await a.close(); }
out.resolvedConfig = typeof agent.resolveAgentConfig({ flags: { dev: true } }).node;
console.log(JSON.stringify(out));
`;

  async function consumer(nodeBin: string): Promise<Record<string, unknown>> {
    writeFileSync(join(project, 'consumer.mjs'), consumerJs);
    const { stdout } = await run(nodeBin, ['consumer.mjs'], {
      cwd: project,
      env: userEnv(join(nodeBin, '..')),
    });
    return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
  }

  for (const [label, bin] of [
    ['Node 24', () => NODE_BIN],
    ['Node 22.19', node22],
  ] as const) {
    test(`every entry point imports from plain ESM JavaScript and works (${label})`, async () => {
      const out = await consumer(bin());
      for (const e of ['phare', 'agent', 'health', 'config', 'testing'])
        assert.ok((out[e] as string[]).length > 0, `${e} exports nothing`);
      assert.ok((out.phare as string[]).includes('registerService'));
      assert.ok((out.testing as string[]).includes('startTestAgent'));
      assert.equal(out.url, 'http://127.0.0.1:9');
      assert.equal(out.healthType, 'function');
      assert.deepEqual(out.parsed, { service: 'users', path: '/v1/x' });
      assert.equal(out.isPhareUrl, true);
      assert.equal(out.error, 'PHARE_ERR_INVALID_ARGUMENT');
      assert.match(String(out.leader), /^127\.0\.0\.1:\d+$/);
      assert.equal(out.resolvedConfig, 'string');
    });

    test(`phare --version prints the version (${label})`, async () => {
      const { stdout } = await run(bin(), [join(project, 'node_modules', '.bin', 'phare'), '--version'], {
        cwd: project,
        env: userEnv(join(bin(), '..')),
      });
      assert.equal(stdout.trim(), pkg.version);
    });
  }

  test('npx phare --version works as a user types it', async () => {
    const { stdout } = await run(NODE_BIN, [await npmCliPath(), 'exec', '--', 'phare', '--version'], {
      cwd: project,
      env: userEnv(join(NODE_BIN, '..')),
    });
    assert.equal(stdout.trim(), pkg.version);
  });

  test('a strict NodeNext TypeScript consumer type-checks against the shipped .d.ts, reading no Phare source', async () => {
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'es2022',
          lib: ['es2023', 'esnext.disposable'],
          types: ['node'],
          noEmit: true,
          skipLibCheck: false,
        },
        files: ['consumer.ts'],
      }),
    );
    writeFileSync(
      join(project, 'consumer.ts'),
      `import { createDiscovery, createServiceClient, registerService, staticResolver, type Registration, PhareError } from 'phare';
import { startAgent, resolveAgentConfig } from 'phare/agent';
import { createHealth, createGracefulShutdown } from 'phare/health';
import { loadConfig, secret } from 'phare/config';
import { startTestAgent, type TestAgent } from 'phare/testing';

const discovery = createDiscovery({ resolver: staticResolver({ services: { users: ['http://127.0.0.1:8080'] } }) });
const client = createServiceClient({ discovery });
export async function demo(): Promise<number> {
  const reg: Registration = await registerService({ name: 'orders', port: 8080 });
  const res = await client.get('users', '/users/42', { deadlineMs: 2000 });
  const agent: TestAgent = await startTestAgent();
  await agent.close();
  await reg.deregister();
  void createHealth; void createGracefulShutdown; void loadConfig; void startAgent; void resolveAgentConfig;
  const s: string = typeof secret;
  // @ts-expect-error: a misspelt option is a type error for users, which proves types are really checked
  createServiceClient({ discovery, retriez: 3 });
  return res.statusCode + s.length + (new PhareError('PHARE_ERR_INVALID_ARGUMENT', 'x') instanceof Error ? 1 : 0);
}
`,
    );
    const tsc = join(project, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await run(NODE_BIN, [tsc, '-p', 'tsconfig.json', '--listFiles'], {
      cwd: project,
      env: userEnv(join(NODE_BIN, '..')),
    }).catch((e: { stdout?: string; stderr?: string }) => {
      assert.fail(`tsc failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    });
    const phareFiles = result.stdout.split('\n').filter((l) => l.includes('/node_modules/phare/'));
    assert.ok(phareFiles.length > 0, 'tsc read no file of the phare package');
    const notDts = phareFiles.filter((f) => !/\/node_modules\/phare\/dist\/.*\.d\.ts$/.test(f));
    assert.deepEqual(notDts, [], 'tsc read files of phare other than dist/*.d.ts');
  });

  test('phare agent --dev from the package serves the API and /ui/; registerService + createServiceClient call a service by name', async () => {
    const bin = join(project, 'node_modules', '.bin', 'phare');
    const child = spawn(NODE_BIN, [bin, 'agent', '--dev', '--http-addr', '127.0.0.1:0', '--dns-addr', ''], {
      cwd: project,
      env: userEnv(join(NODE_BIN, '..')),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout?.on('data', (d) => {
      out += String(d);
    });
    child.stderr?.on('data', (d) => {
      out += String(d);
    });
    const url: string = await waitFor(
      () => /HTTP API: (http:\/\/127\.0\.0\.1:\d+)\//.exec(out)?.[1] ?? '',
      20_000,
      'the agent start-up line',
    );
    const leader = await fetch(`${url}/v1/status/leader`);
    assert.equal(leader.status, 200);
    assert.match(String(await leader.json()), /^127\.0\.0\.1:\d+$/);
    const ui = await fetch(`${url}/ui/`);
    assert.equal(ui.status, 200);
    assert.match(ui.headers.get('content-type') ?? '', /text\/html/);
    assert.match(await ui.text(), /<html/i);
    const js = await fetch(`${url}/ui/app.js`);
    assert.equal(js.status, 200);

    writeFileSync(
      join(project, 'service.mjs'),
      `import http from 'node:http';
import { createDiscovery, createServiceClient, registerService } from 'phare';
const server = http.createServer((req, res) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ hello: 'from ' + req.url })); });
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const registration = await registerService({ name: 'greeter', port: server.address().port, address: '127.0.0.1' });
const discovery = createDiscovery();
const client = createServiceClient({ discovery });
const res = await client.get('greeter', '/hi', { deadlineMs: 5000 });
console.log(JSON.stringify({ status: res.statusCode, body: await res.json() }));
await registration.deregister();
await discovery.close();
await client.close?.();
server.close();
`,
    );
    const { stdout } = await run(NODE_BIN, ['service.mjs'], {
      cwd: project,
      env: userEnv(join(NODE_BIN, '..'), { PHARE_HTTP_ADDR: url.replace('http://', '') }),
      timeout: 30_000,
    });
    assert.deepEqual(JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}'), {
      status: 200,
      body: { hello: 'from /hi' },
    });
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    assert.equal(code, 0, `the agent exits 0 on SIGTERM (output: ${out})`);
  });

  test('on Node 20 every entry point and the CLI print one line naming the Node they need, and exit 1', async () => {
    const bin = node20();
    const { stdout: version } = await run(bin, ['--version']);
    const expected = `phare needs Node >= 22.19; this is ${version.trim()}\n`;
    const cases = [
      ...ENTRY_POINTS.map((e) => ['-e', `import('${e}')`]),
      [join(project, 'node_modules', '.bin', 'phare'), '--version'],
      [join(project, 'node_modules', '.bin', 'phare'), 'agent', '--dev'],
    ];
    for (const args of cases) {
      const r = await run(bin, args, { cwd: project, env: userEnv(join(bin, '..')) }).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      );
      assert.equal(r.code, 1, `${args.join(' ')}: exit code`);
      assert.equal(r.stderr, expected, `${args.join(' ')}: stderr`);
    }
  });
});
