import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { test } from 'node:test';
import { makeProject, PROJECT_PORTS } from '../../../test/helpers/ports-project.ts';
import type { CliIo } from '../io.ts';
import { main } from '../main.ts';

async function run(argv: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: (s) => {
      stdout += s;
    },
    stderr: (s) => {
      stderr += s;
    },
    env,
    cwd,
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

test('ports check: exit 1 with a table, --json for CI, exit 0 with a summary once synced', async () => {
  const p = makeProject();
  try {
    const bad = await run(['ports', 'check'], p.dir);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /^SEVERITY +WHERE +KEY +PROBLEM +EXPECTED +FOUND +FIX$/m);
    assert.match(
      bad.stdout,
      /^error +api\/production\.yaml:4 +server\.port +out of sync: .* +3000 +1 +run phare ports sync$/m,
    );
    assert.match(bad.stdout, /\d+ error\(s\) in ports\.yaml/);

    const json = await run(['ports', 'check', '--json'], p.dir);
    assert.equal(json.code, 1);
    const report = JSON.parse(json.stdout);
    assert.equal(report.ok, false);
    assert.ok(report.problems.every((x: { rule: string }) => x.rule === 'out-of-sync'));

    const dry = await run(['ports', 'sync', '--dry-run'], p.dir);
    assert.equal(dry.code, 0);
    assert.match(dry.stdout, /^\+ {2}port: 3000 # synced$/m);

    const sync = await run(['ports', 'sync'], p.dir);
    assert.equal(sync.code, 0, sync.stderr);
    assert.match(sync.stdout, /^wrote 7 file\(s\): /);
    assert.equal((await run(['ports', 'sync'], p.dir)).stdout, 'in sync: 13 targets, nothing to change\n');

    const ok = await run(['ports', 'check'], p.dir);
    assert.equal(ok.code, 0);
    assert.equal(
      ok.stdout,
      'ports ok: 7 ports (2 components, 2 infrastructure, 2 environments), 13 targets in 7 files in sync\n',
    );
  } finally {
    p.cleanup();
  }
});

test('ports sync with a broken ports.yaml prints the problems, exits 1 and writes nothing', async () => {
  const p = makeProject();
  try {
    p.write('ports.yaml', PROJECT_PORTS.replace('from: 19000, to: 19099', 'from: 18050, to: 19099'));
    const before = p.snapshot();
    const res = await run(['ports', 'sync', '--file', 'ports.yaml'], p.dir);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /range of development overlaps the range of production/);
    assert.match(res.stderr, /nothing was written/);
    assert.deepEqual(p.snapshot(), before);
  } finally {
    p.cleanup();
  }
});

test('ports list, next, in-use', async () => {
  const p = makeProject();
  const server: Server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const busy = (server.address() as { port: number }).port;
  try {
    const list = await run(['ports', 'list', '--env', 'production'], p.dir);
    assert.equal(list.code, 0);
    assert.match(list.stdout, /^PORT +INTERNAL +OWNER +KIND +ENV +TARGETS$/m);
    assert.match(list.stdout, /^18000 +3000 +api +component +production +3$/m);
    assert.match(list.stdout, /^15010 +redis +infrastructure +\(all\) +2$/m);
    assert.doesNotMatch(list.stdout, /19000/);
    const listJson = JSON.parse((await run(['ports', 'list', '--json'], p.dir)).stdout);
    assert.equal(listJson.length, 7);

    const bad = await run(['ports', 'list', '--env', 'staging'], p.dir);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--env: "staging" is not an environment of ports.yaml/);

    const next = await run(['ports', 'next', '--env', 'development'], p.dir);
    assert.equal(next.code, 0);
    assert.match(next.stdout, /^190(0[1-9]|[1-9]\d)\n$/);

    // A file whose test range holds the busy port, allocated to api.
    p.write(
      'busy.yaml',
      `version: 1\nenvironments:\n  test: { range: { from: ${busy}, to: ${busy} } }\ncomponents:\n  api: { ports: { test: ${busy} } }\n`,
    );
    const inUse = await run(['ports', 'in-use', '--file', 'busy.yaml'], p.dir);
    assert.equal(inUse.code, 0);
    assert.match(
      inUse.stdout,
      new RegExp(`^${busy} +127\\.0\\.0\\.1 +${process.pid}/\\S+ +allocated +api \\(test\\)$`, 'm'),
    );
    const json = JSON.parse((await run(['ports', 'in-use', '--json', '--file', 'busy.yaml'], p.dir)).stdout);
    assert.deepEqual(json[0].owners, [{ owner: 'api', kind: 'component', env: 'test' }]);
  } finally {
    server.close();
    p.cleanup();
  }
});

test('ports check --agent compares the registered services (PHARE_HTTP_ADDR)', async () => {
  const p = makeProject();
  const agent = createHttpServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ 'api-1': { ID: 'api-1', Service: 'api', Port: 18001 } }));
  });
  await new Promise<void>((r) => agent.listen(0, '127.0.0.1', r));
  const addr = `127.0.0.1:${(agent.address() as { port: number }).port}`;
  try {
    await run(['ports', 'sync'], p.dir);
    const res = await run(['ports', 'check', '--agent'], p.dir, { PHARE_HTTP_ADDR: addr });
    assert.equal(res.code, 1);
    assert.match(res.stdout, /registered service api \(id api-1\) uses port 18001/);
    const flag = await run(
      ['ports', 'check', '--agent', `http://${addr}`, '--env', 'production', '--json'],
      p.dir,
    );
    assert.equal(JSON.parse(flag.stdout).problems[0].expected, '18000 api (production)');
  } finally {
    agent.close();
    p.cleanup();
  }
});

test('a missing ports.yaml is a usage error naming --file', async () => {
  const p = makeProject({});
  try {
    const res = await run(['ports', 'check'], p.dir);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /ports file .*ports\.yaml not found: .* --file <path>/);
  } finally {
    p.cleanup();
  }
});
