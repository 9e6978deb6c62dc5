/**
 * The operator's commands (`phare services|catalog|members|health|watch|wait|maint`) as a user runs them: the
 * real CLI as a child process against a real agent, exit codes and `--json` shapes checked.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { NODE_BIN, REPO_ROOT, startAgentInProcess } from '../helpers/agent.ts';

type Agent = Awaited<ReturnType<typeof startAgentInProcess>>;
let agent: Agent;
let addr: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts `phare …`; resolves when it exits. `onStdout` sees output as it comes. */
function phare(args: string[], env: NodeJS.ProcessEnv = {}, onStdout?: (all: string) => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(NODE_BIN, [join(REPO_ROOT, 'bin', 'phare.js'), ...args], {
      env: { ...process.env, PHARE_HTTP_ADDR: addr, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += String(d);
      onStdout?.(stdout);
    });
    child.stderr.on('data', (d) => {
      stderr += String(d);
    });
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function put(path: string, body?: unknown): Promise<void> {
  const res = await fetch(`${agent.url}${path}`, {
    method: 'PUT',
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  assert.equal(res.status, 200, `${path}: ${await res.text()}`);
}

before(async () => {
  agent = await startAgentInProcess();
  addr = agent.url.replace('http://', '');
  await put('/v1/agent/service/register', {
    Name: 'web',
    ID: 'web-1',
    Port: 8080,
    Tags: ['v1'],
    Check: { TTL: '60s', Status: 'passing' },
  });
  await put('/v1/agent/service/register', {
    Name: 'web',
    ID: 'web-2',
    Port: 8081,
    Tags: ['v2'],
    Check: { TTL: '60s' },
  });
  await put('/v1/agent/service/register', { Name: 'api', ID: 'api-1', Port: 9000, Tags: ['v1'] });
});

after(async () => {
  await agent?.close();
});

describe('listings', () => {
  test('services: a table with instance health, --tag filters, --json', async () => {
    const t = await phare(['services']);
    assert.equal(t.code, 0, t.stderr);
    const lines = t.stdout.trim().split('\n');
    assert.match(lines[0] ?? '', /^SERVICE\s+INSTANCES\s+PASSING\s+WARNING\s+CRITICAL\s+TAGS$/);
    assert.match(t.stdout, /^web\s+2\s+1\s+0\s+1\s+v1,v2$/m);
    assert.match(t.stdout, /^api\s+1\s+1\s+0\s+0\s+v1$/m);
    const j = await phare(['services', '--json', '--tag', 'v2']);
    assert.equal(j.code, 0, j.stderr);
    assert.deepEqual(JSON.parse(j.stdout), [
      { name: 'web', tags: ['v1', 'v2'], instances: 2, passing: 1, warning: 0, critical: 1 },
    ]);
  });

  test('catalog nodes, catalog services, members (--json as the API returns them)', async () => {
    const nodes = await phare(['catalog', 'nodes', '--json']);
    assert.equal(nodes.code, 0, nodes.stderr);
    assert.deepEqual(
      (JSON.parse(nodes.stdout) as { Node: string }[]).map((n) => n.Node),
      ['test-node'],
    );
    const table = await phare(['catalog', 'nodes']);
    assert.match(table.stdout, /^NODE\s+ID\s+ADDRESS\s+DC\ntest-node\s+\S+\s+127\.0\.0\.1\s+dc1$/m);
    const services = await phare(['catalog', 'services', '--json']);
    assert.deepEqual(JSON.parse(services.stdout), { api: ['v1'], consul: [], web: ['v1', 'v2'] });
    const members = await phare(['members']);
    assert.equal(members.code, 0, members.stderr);
    assert.match(members.stdout, /^test-node\s+127\.0\.0\.1:\d+\s+alive\s+dc1$/m);
  });

  test('health: instances with the failing checks; --passing; exit 1 when none', async () => {
    const h = await phare(['health', 'web']);
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stdout, /^web-1\s+test-node\s+127\.0\.0\.1:8080\s+passing\s+v1$/m);
    assert.match(h.stdout, /^web-2\s+test-node\s+127\.0\.0\.1:8081\s+critical\s+v2\s+service:web-2: /m);
    const p = await phare(['health', 'web', '--passing', '--json']);
    assert.deepEqual(
      (JSON.parse(p.stdout) as { Service: { ID: string } }[]).map((e) => e.Service.ID),
      ['web-1'],
    );
    const none = await phare(['health', 'nope']);
    assert.equal(none.code, 1);
    assert.equal(none.stderr, 'phare: no instance of "nope"\n');
  });

  test('an unreachable agent: one line naming it, exit 1; a bad address names the variable, exit 2', async () => {
    const down = await phare(['services'], { PHARE_HTTP_ADDR: '127.0.0.1:1' });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /^phare: http:\/\/127\.0\.0\.1:1: .+\n$/);
    const bad = await phare(['services'], { PHARE_HTTP_ADDR: 'http://[zz' });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /PHARE_HTTP_ADDR/);
    const flag = await phare(['services', '--http-addr', `127.0.0.1:${agent.httpAddress?.port ?? 0}`], {
      PHARE_HTTP_ADDR: '127.0.0.1:1',
    });
    assert.equal(flag.code, 0, `--http-addr wins over the environment: ${flag.stderr}`);
  });
});

describe('wait, watch, maint', () => {
  test('wait blocks until a passing instance exists, then exits 0; on timeout exits 1 naming the service', async () => {
    let exited = false;
    const waiting = phare(['wait', 'late', 'api', '--passing', '--timeout', '20s']);
    void waiting.then(() => {
      exited = true;
    });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(exited, false, 'wait returned before "late" had an instance');
    await put('/v1/agent/service/register', { Name: 'late', ID: 'late-1', Port: 7000 });
    const r = await waiting;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^late, api: ready after \d+\.\d s\n$/);

    const t = await phare(['wait', 'web-3-never', '--timeout', '500ms']);
    assert.equal(t.code, 1);
    assert.equal(t.stderr, 'phare wait: timed out after 500ms waiting for an instance of web-3-never\n');
    const bad = await phare(['wait', 'x', '--timeout', 'soon']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--timeout: "soon" is not a duration/);
  });

  test('watch streams each change as it happens (--count stops it), --json lines', async () => {
    let changed = false;
    const watching = phare(['watch', 'web', '--json', '--count', '2'], {}, (out) => {
      if (!changed && out.includes('\n')) {
        changed = true;
        void put('/v1/agent/check/pass/service:web-2');
      }
    });
    const r = await watching;
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { index: number; instances: { Checks: { Status: string }[] }[] });
    assert.equal(lines.length, 2);
    assert.ok((lines[1]?.index ?? 0) > (lines[0]?.index ?? 0));
    const worst = (l: (typeof lines)[number]) => l.instances.flatMap((i) => i.Checks.map((c) => c.Status));
    assert.ok(worst(lines[0] as (typeof lines)[number]).includes('critical'));
    assert.ok(
      !worst(lines[1] as (typeof lines)[number]).includes('critical'),
      'the second line shows the pass',
    );
  });

  test('maint enable/disable: the node, or one service, with a reason', async () => {
    const on = await phare(['maint', 'enable', '--service', 'api-1', '--reason', 'deploy']);
    assert.equal(on.code, 0, on.stderr);
    assert.equal(on.stdout, 'service api-1: maintenance enabled\n');
    const checks = (await (await fetch(`${agent.url}/v1/health/checks/api`)).json()) as {
      CheckID: string;
      Notes: string;
    }[];
    assert.ok(checks.some((c) => c.CheckID === '_service_maintenance:api-1' && c.Notes === 'deploy'));
    assert.equal((await phare(['maint', 'disable', '--service', 'api-1'])).code, 0);
    assert.equal((await phare(['maint', 'enable'])).code, 0);
    const node = (await (await fetch(`${agent.url}/v1/health/node/test-node`)).json()) as {
      CheckID: string;
    }[];
    assert.ok(node.some((c) => c.CheckID === '_node_maintenance'));
    assert.equal((await phare(['maint', 'disable'])).code, 0);
    const after = (await (await fetch(`${agent.url}/v1/health/node/test-node`)).json()) as {
      CheckID: string;
    }[];
    assert.ok(!after.some((c) => c.CheckID === '_node_maintenance'));
    const bad = await phare(['maint', 'sideways']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /expected "enable" or "disable"/);
  });
});
