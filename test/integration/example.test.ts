/**
 * The example system (examples/): `examples/run.ts` with ENV=test starts a real agent, a real PostgreSQL and
 * the three services with their config/test.yaml layers; a note flows api -> PostgreSQL -> bus -> bridge ->
 * api (by name, through the agent); Ctrl-C (SIGINT) stops everything with exit 0. Plus: examples/ports.yaml
 * passes `phare ports check`, and every service's config is valid in every environment.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseEnv } from 'node:util';
import { main } from '../../src/cli/main.ts';
import { NODE_BIN, REPO_ROOT, waitFor } from '../helpers/agent.ts';
import { POSTGRES_SKIP } from '../helpers/postgres.ts';
import { freePort } from '../helpers/server-process.ts';

const EXAMPLES = join(REPO_ROOT, 'examples');

function captureIo(env: NodeJS.ProcessEnv = {}) {
  let out = '';
  let err = '';
  return {
    io: {
      stdout: (s: string) => {
        out += s;
      },
      stderr: (s: string) => {
        err += s;
      },
      env,
      cwd: REPO_ROOT,
    },
    out: () => out,
    err: () => err,
  };
}

test('examples/ports.yaml passes `phare ports check` (configs, env files and compose in sync)', async () => {
  const cap = captureIo();
  const code = await main(['ports', 'check', '--file', join(EXAMPLES, 'ports.yaml')], cap.io);
  assert.equal(code, 0, `${cap.out()}${cap.err()}`);
  assert.match(cap.out(), /ports ok/);
});

test('every service config is valid in every environment', async () => {
  for (const service of ['api', 'bus', 'bridge']) {
    for (const env of ['development', 'test', 'production']) {
      const cap = captureIo();
      const dir = join(EXAMPLES, service, 'config');
      const schema = join(EXAMPLES, service, 'config.ts');
      const code = await main(['config', 'print', '--env', env, '--dir', dir, '--schema', schema], cap.io);
      assert.equal(code, 0, `${service} (${env}): ${cap.err()}`);
    }
  }
});

/** True when 127.0.0.1:port can be bound right now. */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

async function getJson<T>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: (await res.json()) as T };
}

test('npm run example (ENV=test): all three services pass in the agent, a note flows api -> bus -> bridge -> api, Ctrl-C stops all', {
  skip: POSTGRES_SKIP,
  timeout: 90_000,
}, async () => {
  const PORT_VARS = ['AGENT_HTTP_PORT', 'AGENT_DNS_PORT', 'PGPORT', 'API_PORT', 'BUS_PORT', 'BRIDGE_PORT'];
  const fileVars = parseEnv(readFileSync(join(EXAMPLES, 'env', 'test.env'), 'utf8')) as Record<
    string,
    string
  >;
  const ports: Record<string, number> = {};
  for (const v of PORT_VARS) ports[v] = Number(fileVars[v]);
  // The test range is reserved by ports.yaml, so normally the checked-in test ports are used as they are.
  // If another run holds them (two suites at once on one host), run.ts's overrides move everything.
  const overrides: Record<string, string> = {};
  const free = await Promise.all(PORT_VARS.map((v) => canListen(ports[v] as number)));
  if (free.includes(false)) {
    for (const v of PORT_VARS) {
      ports[v] = await freePort();
      overrides[v] = String(ports[v]);
    }
  }
  const env: NodeJS.ProcessEnv = { ...process.env, ENV: 'test', ...overrides };
  for (const k of Object.keys(env))
    if (/^(PHARE_|CONSUL_|SERVER__|REGISTRY__|DATABASE__)/.test(k)) delete env[k];

  let output = '';
  const child: ChildProcess = spawn(NODE_BIN, ['--conditions=phare-source', join(EXAMPLES, 'run.ts')], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d) => {
    output += String(d);
  });
  child.stderr?.on('data', (d) => {
    output += String(d);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  after(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGINT');
    const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(t);
  });
  const fail = (what: string) => new Error(`${what}\n--- run.ts output ---\n${output}`);

  await waitFor(
    () => {
      if (child.exitCode !== null) throw fail(`run.ts exited with ${child.exitCode}`);
      return output.includes('example ready: all services passing');
    },
    60_000,
    'run.ts to report all services passing',
  ).catch((err) => {
    throw err instanceof Error && err.message.includes('run.ts output') ? err : fail(String(err));
  });

  // Each service is registered and passing in the agent.
  const agent = `http://127.0.0.1:${ports['AGENT_HTTP_PORT']}`;
  for (const service of ['api', 'bus', 'bridge']) {
    const { body } = await getJson<{ Service: { Service: string; Port: number } }[]>(
      `${agent}/v1/health/service/${service}?passing`,
    );
    assert.equal(body.length, 1, `${service} passing in the agent`);
  }
  const api = `http://127.0.0.1:${ports['API_PORT']}`;
  const bridge = `http://127.0.0.1:${ports['BRIDGE_PORT']}`;

  // api -> PostgreSQL -> bus -> bridge -> (phare://api) -> api
  const created = await fetch(`${api}/notes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ text: 'three little words' }),
  });
  assert.equal(created.status, 201);
  const note = (await created.json()) as { id: number; processedBy: string | null };
  assert.equal(note.processedBy, null);
  const processed = await waitFor(
    async () => {
      const { body } = await getJson<{ words: number | null; processedBy: string | null }>(
        `${api}/notes/${note.id}`,
      );
      return body.processedBy ? body : undefined;
    },
    15_000,
    'the bridge to process the note',
  ).catch((err) => {
    throw fail(String(err));
  });
  assert.equal(processed?.words, 3);
  assert.match(processed?.processedBy ?? '', /^bridge@/);
  const { body: stats } = await getJson<{
    processed: number;
    failed: number;
    lastProcessed: { instance: string };
  }>(`${bridge}/stats`);
  assert.ok(stats.processed >= 1, JSON.stringify(stats));
  assert.equal(stats.failed, 0, JSON.stringify(stats));
  assert.match(stats.lastProcessed.instance, /^api-/);

  // Ctrl-C: services drain and deregister, then the agent and PostgreSQL stop; exit 0, nothing left.
  child.kill('SIGINT');
  const code = await Promise.race([
    exited,
    new Promise<string>((r) => setTimeout(() => r('timeout'), 30_000).unref()),
  ]);
  assert.equal(code, 0, fail('run.ts did not stop cleanly').message);
  assert.match(output, /stopped cleanly/);
  for (const v of ['AGENT_HTTP_PORT', 'PGPORT', 'API_PORT', 'BUS_PORT', 'BRIDGE_PORT']) {
    assert.equal(await canListen(ports[v] as number), true, `${v} ${ports[v]} is free again`);
  }
});
