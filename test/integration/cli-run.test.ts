/**
 * `phare run` as a user runs it: the real CLI as a child process, running a real Python or Node program,
 * against a real agent — registration while it lives, its check turning passing, signal forwarding,
 * deregistration before exit, exit codes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { NODE_BIN, REPO_ROOT, startAgentInProcess, waitFor } from '../helpers/agent.ts';

type Agent = Awaited<ReturnType<typeof startAgentInProcess>>;
let agent: Agent;
let addr: string;

before(async () => {
  agent = await startAgentInProcess();
  addr = agent.url.replace('http://', '');
});
const children: Running[] = [];
after(async () => {
  // a failed assertion must not leave a phare run (and its child) behind
  for (const c of children) c.kill('SIGKILL');
  await agent?.close();
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

interface Running {
  pid: number;
  out(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
}

function phareRun(args: string[]): Running {
  const child = spawn(NODE_BIN, [join(REPO_ROOT, 'bin', 'phare.js'), 'run', ...args], {
    env: { ...process.env, PHARE_HTTP_ADDR: addr, PHARE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => {
    out += String(d);
  });
  child.stderr.on('data', (d) => {
    out += String(d);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const running: Running = { pid: child.pid as number, out: () => out, exited, kill: (s) => child.kill(s) };
  children.push(running);
  return running;
}

/** The agent's view of one instance: its checks' statuses, or undefined when not registered. */
async function instance(id: string): Promise<string[] | undefined> {
  const res = await fetch(`${agent.url}/v1/agent/health/service/id/${id}`);
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  const body = (await res.json()) as { Checks: { CheckID: string; Status: string }[] };
  // the instance's own checks (the node's serfHealth is there too)
  return body.Checks.filter((c) => c.CheckID !== 'serfHealth').map((c) => c.Status);
}

test('a Python http.server under phare run: registered, its HTTP check passes; SIGTERM reaches it, the service is removed, 128+15 returned', async () => {
  const port = await freePort();
  const id = `py-${port}`;
  const r = phareRun([
    '--name',
    'py',
    '--id',
    id,
    '--port',
    String(port),
    '--tags',
    'python,demo',
    '--check-http',
    '/',
    '--check-interval',
    '200ms',
    '--',
    'python3',
    '-m',
    'http.server',
    '--bind',
    '127.0.0.1',
    String(port),
  ]);
  await waitFor(
    async () => (await instance(id))?.every((s) => s === 'passing'),
    20_000,
    `${id} passing (output: ${r.out()})`,
  );
  const svc = (await (await fetch(`${agent.url}/v1/agent/service/${id}`)).json()) as {
    Service: string;
    Port: number;
    Tags: string[];
  };
  assert.deepEqual([svc.Service, svc.Port, svc.Tags], ['py', port, ['python', 'demo']]);
  r.kill('SIGTERM');
  const { code } = await r.exited;
  // http.server has no SIGTERM handler: it died of the forwarded signal, and phare run says so as a shell does
  assert.equal(code, 143, r.out());
  assert.equal(await instance(id), undefined);
  // the Python server is gone too (nothing answers on its port)
  await assert.rejects(fetch(`http://127.0.0.1:${port}/`));
});

test('on SIGTERM the service is deregistered before the child hears the signal; its own exit code is returned', async () => {
  const port = await freePort();
  const id = `node-${port}`;
  // On SIGTERM the child asks the agent about itself, prints the answer and exits 0 (a graceful stop).
  const program = `
    const http = require('node:http');
    const s = http.createServer((q, a) => a.end('ok')).listen(${port}, '127.0.0.1');
    process.on('SIGTERM', async () => {
      const r = await fetch('${agent.url}/v1/agent/service/${id}');
      console.log('agent says ' + r.status);
      s.close(() => process.exit(0));
    });
    console.log('handler installed');`;
  const r = phareRun([
    '--name',
    'node',
    '--id',
    id,
    '--port',
    String(port),
    '--check-ttl',
    '10s',
    '--',
    NODE_BIN,
    '-e',
    program,
  ]);
  await waitFor(
    async () => r.out().includes('handler installed') && (await instance(id))?.[0] === 'passing',
    20_000,
    `${id} passing (${r.out()})`,
  );
  r.kill('SIGTERM');
  const { code } = await r.exited;
  assert.equal(code, 0, r.out());
  assert.match(r.out(), /agent says 404/);
  assert.equal(await instance(id), undefined);
});

test('a child that exits 3 by itself: phare run exits 3 and the service is gone', async () => {
  const port = await freePort();
  const id = `short-${port}`;
  const r = phareRun([
    '--name',
    'short',
    '--id',
    id,
    '--port',
    String(port),
    '--check-ttl',
    '5s',
    '--',
    NODE_BIN,
    '-e',
    // exits once it has seen itself registered and passing
    `const f = async () => { const r = await fetch('${agent.url}/v1/agent/health/service/id/${id}'); if (r.status === 200) process.exit(3); setTimeout(f, 50); }; f();`,
  ]);
  const { code } = await r.exited;
  assert.equal(code, 3, r.out());
  assert.equal(await instance(id), undefined);
});

test('bad usage is named by its flag and starts nothing; a missing program is 127 and leaves no registration', async () => {
  const bad = phareRun(['--name', 'x', '--port', 'http', '--', NODE_BIN, '-e', 'console.log("started")']);
  assert.equal((await bad.exited).code, 2);
  assert.match(bad.out(), /--port: expected a port number 1-65535, got "http"/);
  assert.doesNotMatch(bad.out(), /started/);

  const both = phareRun(['--name', 'x', '--port', '1', '--check-tcp', '--check-ttl', '5s', '--', 'true']);
  assert.equal((await both.exited).code, 2);
  assert.match(both.out(), /give at most one/);

  const missing = phareRun([
    '--name',
    'ghost',
    '--id',
    'ghost-1',
    '--port',
    '4999',
    '--',
    'no-such-program-phare',
  ]);
  assert.equal((await missing.exited).code, 127, missing.out());
  assert.match(missing.out(), /cannot start "no-such-program-phare": ENOENT/);
  assert.equal(await instance('ghost-1'), undefined);
});
