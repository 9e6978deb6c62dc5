/**
 * `phare agent` as a user runs it: flags, PHARE_* environment variables and `--config` files; invalid
 * values fail at start with exit code 2 and a message naming the flag and the value; SIGINT/SIGTERM exit 0.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { call } from '../fixtures/http.ts';
import { NODE_BIN, REPO_ROOT, spawnAgent, tempDir, waitFor } from '../helpers/agent.ts';

const dir = tempDir('phare-cli-');
after(() => dir.remove());

/** Runs `phare agent …` expecting it to exit by itself; resolves with its exit code and output. */
function runToExit(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE_BIN, [join(REPO_ROOT, 'bin', 'phare.js'), 'agent', ...args], {
      cwd: dir.path,
      env: { ...process.env, PHARE_LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += String(d);
    });
    child.stderr.on('data', (d) => {
      out += String(d);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`phare agent ${args.join(' ')} did not exit within 15s:\n${out}`));
    }, 15_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

const BASE = ['--dev', '--http-addr', '127.0.0.1:0', '--dns-addr', ''];

for (const [what, args, env, mustName] of [
  ['--http-addr nope', [...BASE, '--http-addr', 'nope'], {}, ['--http-addr', 'nope']],
  ['--http-addr with port 70000', [...BASE, '--http-addr', '127.0.0.1:70000'], {}, ['--http-addr', '70000']],
  ['--log-level loud', [...BASE, '--log-level', 'loud'], {}, ['--log-level', 'loud']],
  ['--datacenter with a space', [...BASE, '--datacenter', 'my dc'], {}, ['--datacenter', 'my dc']],
  // a value from the environment is named by the variable the user set, not by the flag
  [
    'PHARE_HTTP_ADDR=x',
    ['--dev', '--dns-addr', ''],
    { PHARE_HTTP_ADDR: 'x' },
    ['phare: PHARE_HTTP_ADDR: "x"'],
  ],
  ['PHARE_LOG_LEVEL=loud', [...BASE], { PHARE_LOG_LEVEL: 'loud' }, ['phare: PHARE_LOG_LEVEL: "loud"']],
  [
    '--http-addr over PHARE_HTTP_ADDR',
    [...BASE, '--http-addr', 'yy'],
    { PHARE_HTTP_ADDR: 'x' },
    ['phare: --http-addr: "yy"'],
  ],
  ['an unknown flag', [...BASE, '--no-such-flag'], {}, ['--no-such-flag']],
] as [string, string[], NodeJS.ProcessEnv, string[]][]) {
  test(`invalid start: ${what} -> exit 2 naming the flag and value`, async () => {
    const { code, out } = await runToExit(args, env);
    assert.equal(code, 2, out);
    for (const s of mustName) assert.ok(out.includes(s), `message should name ${s}:\n${out}`);
    assert.ok(!out.includes('    at '), `a stack trace is not a message:\n${out}`);
  });
}

test('invalid start: a config file with an unknown key -> exit 2 naming the file and the key', async () => {
  const file = join(dir.path, 'bad.yaml');
  writeFileSync(file, 'dev: true\nhttp-addr: 127.0.0.1:0\nhttp_port: 8500\n');
  const { code, out } = await runToExit(['--config', file, '--dns-addr', '']);
  assert.equal(code, 2, out);
  assert.ok(out.includes(file), out);
  assert.ok(out.includes('http_port'), out);
});

test('invalid start: a config file that does not exist or is not a mapping -> exit 2', async () => {
  const missing = await runToExit(['--config', join(dir.path, 'nope.yaml'), ...BASE]);
  assert.equal(missing.code, 2, missing.out);
  assert.ok(missing.out.includes('nope.yaml'), missing.out);
  const list = join(dir.path, 'list.yaml');
  writeFileSync(list, '- a\n- b\n');
  const notMap = await runToExit(['--config', list, ...BASE]);
  assert.equal(notMap.code, 2, notMap.out);
  assert.ok(notMap.out.includes('list.yaml'), notMap.out);
});

test('--config file.yaml works; flags override env, env overrides the file', async () => {
  const file = join(dir.path, 'agent.yaml');
  writeFileSync(
    file,
    [
      '# a commented config',
      'dev: true',
      'node: file-node',
      'datacenter: dc-file',
      'http-addr: 127.0.0.1:0',
      "dns-addr: ''",
      'log-level: warn',
      '',
    ].join('\n'),
  );
  const a = await spawnAgent(['--config', file]);
  try {
    const self = (await call(a.url, 'GET', '/v1/agent/self')).json<{
      Config: { NodeName: string; Datacenter: string };
    }>();
    assert.equal(self.Config.NodeName, 'file-node');
    assert.equal(self.Config.Datacenter, 'dc-file');
  } finally {
    a.child.kill('SIGTERM');
    assert.equal((await a.exited).code, 0);
  }
  const b = await spawnAgent(['--config', file, '--node', 'flag-node'], {
    PHARE_NODE: 'env-node',
    PHARE_DATACENTER: 'dc-env',
  });
  try {
    const self = (await call(b.url, 'GET', '/v1/agent/self')).json<{
      Config: { NodeName: string; Datacenter: string };
    }>();
    assert.equal(self.Config.NodeName, 'flag-node');
    assert.equal(self.Config.Datacenter, 'dc-env');
    assert.deepEqual((await call(b.url, 'GET', '/v1/catalog/datacenters')).json(), ['dc-env']);
  } finally {
    b.child.kill('SIGTERM');
    assert.equal((await b.exited).code, 0);
  }
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`${signal} stops the agent with exit code 0`, async () => {
    const a = await spawnAgent([...BASE, '--node', 'sig-node']);
    assert.equal((await call(a.url, 'GET', '/v1/status/leader')).status, 200);
    a.child.kill(signal);
    const exit = await a.exited;
    assert.equal(exit.code, 0, `${signal}: ${JSON.stringify(exit)}\n${a.output()}`);
  });
}

// The cold-start time itself is a benchmark figure (bench/, BENCHMARKS.md), never a pass/fail; this test
// asserts what a cold start must deliver, and prints the time for the curious.
test('a cold-started agent answers /v1/status/leader with its own address', async () => {
  const t0 = performance.now();
  const a = await spawnAgent(BASE);
  try {
    const leader = await waitFor(
      async () => {
        const r = await call(a.url, 'GET', '/v1/status/leader');
        return r.status === 200 ? r.json<string>() : undefined;
      },
      10_000,
      'leader',
    );
    // Consul names the leader by its server RPC address (port 8300); this agent is its own leader
    assert.equal(leader, '127.0.0.1:8300', 'the leader is this agent, at its advertised address');
    console.log(
      `# cold start to first 200 on /v1/status/leader: ${Math.round(performance.now() - t0)} ms (process spawn included)`,
    );
  } finally {
    a.child.kill('SIGTERM');
    await a.exited;
  }
});
