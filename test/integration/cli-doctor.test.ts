/**
 * `phare doctor` against a real agent (with DNS) and a deliberately broken setup, as the real CLI in a child
 * process: a healthy instance, a dead one, a port held by another program (python3's http.server, which
 * answers 404 on the check path), a service whose ports.yaml port that program holds so it never came up,
 * a registered port that disagrees with ports.yaml, a name DNS cannot resolve (every instance critical) and
 * a failing node check. Checks each line's verdict, the summary, exit codes and the `--json` shape.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { NODE_BIN, REPO_ROOT, startAgentInProcess, tempDir, waitFor } from '../helpers/agent.ts';
import { freePort } from '../helpers/server-process.ts';

type Agent = Awaited<ReturnType<typeof startAgentInProcess>>;
let agent: Agent;
let addr: string;
let healthy: Server;
let healthyPort: number;
let squatter: ChildProcess;
let squatterPort: number;
let deadPort: number;
let ordersPort: number;
const dir = tempDir('phare-doctor-');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function phare(args: string[], cwd = dir.path, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(NODE_BIN, [join(REPO_ROOT, 'bin', 'phare.js'), ...args], {
      cwd,
      env: { ...process.env, PHARE_HTTP_ADDR: addr, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += String(d);
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

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

interface Finding {
  verdict: 'ok' | 'warn' | 'fail';
  check: string;
  service: string | null;
  instance: string | null;
  message: string;
  hint?: string;
}

function find(findings: Finding[], where: Partial<Finding>): Finding {
  const f = findings.find((x) => Object.entries(where).every(([k, v]) => x[k as keyof Finding] === v));
  assert.ok(f, `no finding ${JSON.stringify(where)} in\n${JSON.stringify(findings, null, 2)}`);
  return f;
}

before(async () => {
  agent = await startAgentInProcess({ flags: { 'dns-addr': '127.0.0.1:0' } });
  addr = agent.url.replace('http://', '');
  healthy = createServer((req, res) => {
    res.writeHead(req.url === '/health' ? 200 : 404).end('ok');
  });
  await new Promise<void>((r) => healthy.listen(0, '127.0.0.1', r));
  healthyPort = (healthy.address() as { port: number }).port;
  deadPort = await freePort();
  ordersPort = await freePort();
  // another program on the port a service was registered with (and on billing's ports.yaml port)
  squatterPort = await freePort();
  squatter = spawn('python3', ['-m', 'http.server', String(squatterPort), '--bind', '127.0.0.1'], {
    stdio: 'ignore',
  });
  await waitFor(() => listening(squatterPort), 10_000, 'python3 http.server');

  writeFileSync(
    join(dir.path, 'ports.yaml'),
    `version: 1
environments:
  development:
    range: { from: 1024, to: 65535 }
components:
  orders:
    ports: { development: ${ordersPort + 1 === squatterPort ? ordersPort + 2 : ordersPort + 1} }
  billing:
    ports: { development: ${squatterPort} }
`,
  );

  await put('/v1/agent/service/register', {
    Name: 'web',
    ID: 'web-1',
    Port: healthyPort,
    Address: '127.0.0.1',
    Check: { HTTP: `http://127.0.0.1:${healthyPort}/health`, Interval: '1s' },
  });
  await put('/v1/agent/service/register', {
    Name: 'web',
    ID: 'web-2',
    Port: deadPort,
    Address: '127.0.0.1',
    Check: { HTTP: `http://127.0.0.1:${deadPort}/health`, Interval: '1s' },
  });
  await put('/v1/agent/service/register', {
    Name: 'api',
    ID: 'api-1',
    Port: squatterPort,
    Address: '127.0.0.1',
    Check: { HTTP: `http://127.0.0.1:${squatterPort}/health`, Interval: '1s' },
  });
  // on a port ports.yaml does not give it; passing, so only the ports line fails
  await put('/v1/agent/service/register', {
    Name: 'orders',
    ID: 'orders-1',
    Port: healthyPort,
    Address: '127.0.0.1',
    Check: { TTL: '60s', Status: 'passing' },
  });
  // every instance critical: DNS leaves it out
  await put('/v1/agent/service/register', {
    Name: 'db',
    ID: 'db-1',
    Port: healthyPort,
    Address: '127.0.0.1',
    Check: { TTL: '60s', Status: 'critical', Notes: 'no heartbeat' },
  });
  await waitFor(
    async () => {
      const checks = (await (await fetch(`${agent.url}/v1/agent/checks`)).json()) as Record<
        string,
        { Status: string; Output: string }
      >;
      // critical is also a check's state before its first probe: wait for the probes' own output
      const probed = (id: string, status: string) =>
        checks[id]?.Status === status && (checks[id]?.Output ?? '') !== '';
      return (
        probed('service:web-1', 'passing') &&
        probed('service:web-2', 'critical') &&
        probed('service:api-1', 'critical')
      );
    },
    15_000,
    'the HTTP checks to run',
  );
});

after(async () => {
  squatter?.kill('SIGKILL');
  await new Promise<void>((r) => (healthy ? healthy.close(() => r()) : r()));
  await agent?.close();
  dir.remove();
});

describe('phare doctor', () => {
  test('the broken setup: every problem on its own line with a hint, a summary, exit 1, and --json', async () => {
    const run = await phare(['doctor', '--json']);
    assert.equal(run.code, 1, run.stderr);
    const report = JSON.parse(run.stdout) as {
      ok: boolean;
      agent: Record<string, unknown>;
      services: { name: string; instances: { id: string; port: number; status: string }[] }[];
      findings: Finding[];
      summary: { ok: number; warn: number; fail: number };
    };
    assert.equal(report.ok, false);
    // the agent: reachable, and which one
    assert.equal(report.agent.reachable, true);
    assert.equal(report.agent.address, agent.url);
    assert.equal(report.agent.source, 'PHARE_HTTP_ADDR');
    assert.equal(report.agent.node, 'test-node');
    assert.equal(report.agent.store, 'memory');
    // Phare's own version, and the Consul API version it speaks
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.match(
      find(report.findings, { check: 'agent' }).message,
      new RegExp(`^phare ${pkg.version.replaceAll('.', '\\.')} \\(Consul API \\d+\\.\\d+\\.\\d+\\) at `),
    );
    assert.equal(report.agent.dns, `${agent.dnsAddress?.host}:${agent.dnsAddress?.port}`);
    assert.deepEqual(
      report.services.map((s) => s.name),
      ['api', 'db', 'orders', 'web'],
      'every registered service but the agent itself',
    );
    const f = report.findings;
    // a healthy instance: connects, its HTTP endpoint answers 200, its check passes
    assert.equal(find(f, { instance: 'web-1', check: 'tcp' }).verdict, 'ok');
    assert.match(find(f, { instance: 'web-1', check: 'http' }).message, /→ 200 OK/);
    assert.equal(find(f, { instance: 'web-1', check: 'check' }).verdict, 'ok');
    assert.match(
      find(f, { service: 'web', check: 'dns' }).message,
      new RegExp(`web\\.service\\.consul → 1 answer \\(port ${healthyPort}\\)`),
    );
    // a dead instance: refused, nothing listens, its check's output says why
    const dead = find(f, { instance: 'web-2', check: 'tcp' });
    assert.equal(dead.verdict, 'fail');
    assert.match(dead.message, /connection refused — nothing on this host listens on that port/);
    assert.ok(dead.hint);
    assert.equal(find(f, { instance: 'web-2', check: 'http' }).verdict, 'fail');
    const deadCheck = find(f, { instance: 'web-2', check: 'check' });
    assert.equal(deadCheck.verdict, 'fail');
    assert.match(deadCheck.message, /critical: .*connection refused/);
    // a port held by another program: it connects, but the check path is 404 and the holder is named
    assert.equal(find(f, { instance: 'api-1', check: 'tcp' }).verdict, 'ok');
    const api404 = find(f, { instance: 'api-1', check: 'http' });
    assert.equal(api404.verdict, 'fail');
    assert.match(api404.message, /→ 404/);
    assert.match(api404.hint ?? '', /another program on that port/);
    const holder = find(f, { instance: 'api-1', check: 'holder' });
    // ports.yaml gives that port to billing: api sits on another component's port
    assert.equal(holder.verdict, 'fail');
    assert.match(
      holder.message,
      new RegExp(
        `^port ${squatterPort} is held by pid ${squatter.pid} \\(python3\\), and ports\\.yaml gives ${squatterPort} to billing`,
      ),
    );
    // a registered port that disagrees with ports.yaml (found in the working directory)
    const ports = find(f, { instance: 'orders-1', check: 'ports' });
    assert.equal(ports.verdict, 'fail');
    assert.match(
      ports.message,
      new RegExp(`registered on port ${healthyPort}, but ports\\.yaml gives orders \\d+ \\(`),
    );
    assert.match(ports.hint ?? '', /phare ports sync/);
    assert.equal(find(f, { instance: 'orders-1', check: 'check' }).verdict, 'ok');
    // a name DNS cannot resolve: every instance critical, so the agent's DNS leaves it out, and says why
    const db = find(f, { service: 'db', check: 'dns' });
    assert.equal(db.verdict, 'fail');
    assert.match(
      db.message,
      /db\.service\.consul does not resolve \(ENOTFOUND\): DNS answers only healthy instances/,
    );
    // the system resolver is asked too (this host knows none of these names)
    assert.match(find(f, { service: 'web', check: 'resolver' }).message, /system resolver/);
    // the summary counts the lines
    const count = (v: string) => f.filter((x) => x.verdict === v).length;
    assert.deepEqual(report.summary, { ok: count('ok'), warn: count('warn'), fail: count('fail') });
  });

  test('a service that never came up because another process holds its ports.yaml port', async () => {
    const run = await phare(['doctor', 'billing', '--json']);
    assert.equal(run.code, 1, run.stderr);
    const { findings } = JSON.parse(run.stdout) as { findings: Finding[] };
    assert.equal(find(findings, { service: 'billing', check: 'catalog' }).verdict, 'fail');
    const held = find(findings, { service: 'billing', check: 'holder' });
    assert.equal(held.verdict, 'fail');
    assert.match(
      held.message,
      new RegExp(
        `billing's port ${squatterPort} \\(.*\\) is held by pid ${squatter.pid} \\(python3\\): billing cannot bind it`,
      ),
    );
    assert.match(held.hint ?? '', new RegExp(`kill ${squatter.pid}`));
  });

  test('the human report: grouped by service and instance, hints under failures, a summary', async () => {
    const run = await phare(['doctor', 'web']);
    assert.equal(run.code, 1, run.stderr);
    const out = run.stdout;
    assert.match(
      out,
      new RegExp(
        `^ok    agent    phare \\S+ \\(Consul API \\S+\\) at ${agent.url.replace(/\./g, '\\.')} \\(from PHARE_HTTP_ADDR\\): node test-node, dc dc1, store memory, DNS 127\\.0\\.0\\.1:\\d+$`,
        'm',
      ),
    );
    assert.match(out, /^web$/m);
    assert.match(
      out,
      new RegExp(`^  web-2 on test-node at 127\\.0\\.0\\.1:${deadPort} \\(critical\\)$`, 'm'),
    );
    assert.match(out, /^ {4}FAIL {2}tcp {6}127\.0\.0\.1:\d+: connection refused/m);
    assert.match(out, /^ {19}→ is web running/m);
    assert.match(out, /^problems found: \d+ ok, \d+ warnings?, \d+ failures?$/m);
  });

  test('a healthy service exits 0 (no ports.yaml here); an unreachable agent fails naming where its address came from', async () => {
    const elsewhere = tempDir('phare-doctor-empty-');
    try {
      const run = await phare(['doctor', 'orders'], elsewhere.path);
      assert.equal(run.code, 0, run.stdout);
      assert.match(run.stdout, /^healthy: \d+ ok, \d+ warnings?, 0 failures$/m);
      assert.doesNotMatch(run.stdout, /ports\.yaml/);
      // without ports.yaml, a holder while the checks fail is a warning naming the process
      const api = await phare(['doctor', 'api', '--json'], elsewhere.path);
      const holder = find((JSON.parse(api.stdout) as { findings: Finding[] }).findings, { check: 'holder' });
      assert.equal(holder.verdict, 'warn');
      assert.match(
        holder.message,
        new RegExp(
          `^port ${squatterPort} is held by pid ${squatter.pid} \\(python3\\) while api-1's checks fail`,
        ),
      );
    } finally {
      elsewhere.remove();
    }
    const port = await freePort();
    const down = await phare(['doctor', '--json'], dir.path, { PHARE_HTTP_ADDR: `127.0.0.1:${port}` });
    assert.equal(down.code, 1);
    const report = JSON.parse(down.stdout) as {
      ok: boolean;
      agent: { reachable: boolean };
      findings: Finding[];
    };
    assert.equal(report.agent.reachable, false);
    const f = find(report.findings, { check: 'agent' });
    assert.equal(f.verdict, 'fail');
    assert.match(
      f.message,
      new RegExp(
        `no agent answers at http://127\\.0\\.0\\.1:${port} \\(from PHARE_HTTP_ADDR\\): ECONNREFUSED`,
      ),
    );
    assert.match(f.hint ?? '', /fix PHARE_HTTP_ADDR/);
  });

  test('a failing node check is named as the cause of every service on the node being critical', async () => {
    await put('/v1/agent/check/register', {
      CheckID: 'worker',
      Name: 'worker',
      TTL: '60s',
      Status: 'critical',
    });
    try {
      const run = await phare(['doctor', 'orders', '--json']);
      assert.equal(run.code, 1);
      const { findings } = JSON.parse(run.stdout) as { findings: Finding[] };
      const node = findings.find((x) => x.check === 'check' && /node check/.test(x.message));
      assert.ok(node, run.stdout);
      assert.equal(node.verdict, 'fail');
      assert.match(
        node.message,
        /^node check "worker" is critical → every service on node test-node is critical/,
      );
    } finally {
      await put('/v1/agent/check/deregister/worker');
    }
  });
});
