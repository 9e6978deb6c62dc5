/**
 * The agent's logs as operators see them: human lines on a real terminal (a pty from `script`), JSON lines
 * when stderr is a pipe or with `--log-json`, each key once per line, and the lifecycle events at info —
 * service registered/deregistered and why, check status changes (from → to, with output), and in a cluster
 * over a real etcd another agent joining and failing (kill -9).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { resolveAgentConfig } from '../../src/agent/config/index.ts';
import { startAgent } from '../../src/agent/index.ts';
import { NODE_BIN, REPO_ROOT, tempDir, waitFor } from '../helpers/agent.ts';
import { clusterFlags, spawnClusterAgent } from '../helpers/cluster.ts';
import { ETCD_SKIP, startEtcdCluster } from '../helpers/etcd.ts';
import { dependencySkip } from '../helpers/requires.ts';

const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** `phare agent …` with its output collected; `tty` runs it on a pseudo-terminal (util-linux `script`). */
function agentProcess(args: string[], tty: boolean, env: NodeJS.ProcessEnv = {}) {
  const argv = [
    join(REPO_ROOT, 'bin', 'phare.js'),
    'agent',
    '--dev',
    '--http-addr',
    '127.0.0.1:0',
    '--dns-addr',
    '',
    ...args,
  ];
  const quoted = [NODE_BIN, ...argv].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = tty
    ? spawn('script', ['-qfec', quoted, '/dev/null'], {
        env: { ...process.env, ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
      })
    : spawn(NODE_BIN, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d) => {
    out += String(d);
  });
  child.stderr?.on('data', (d) => {
    out += String(d);
  });
  return {
    child,
    output: () => out,
    url: (): Promise<string> =>
      waitFor(
        () => /HTTP API: (http:\/\/[^/\s]+)\//.exec(out)?.[1] ?? '',
        15_000,
        `the agent's banner:\n${out}`,
      ),
  };
}

async function put(url: string, body?: unknown): Promise<void> {
  const res = await fetch(url, {
    method: 'PUT',
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  assert.equal(res.status, 200, `${url}: ${await res.text()}`);
}

/** Registers web-1 with a critical TTL check, passes it with a note, then deregisters it. */
async function lifecycle(url: string): Promise<void> {
  await put(`${url}/v1/agent/service/register`, {
    Name: 'web',
    ID: 'web-1',
    Port: 8080,
    Address: '127.0.0.1',
    Check: { CheckID: 'web-ttl', TTL: '60s' },
  });
  await put(`${url}/v1/agent/check/pass/web-ttl?note=${encodeURIComponent('all good')}`);
  await put(`${url}/v1/agent/service/deregister/web-1`);
}

/** Every object's keys in a JSON text, to find one written twice (JSON.parse keeps only the last). */
function duplicateKeys(text: string): string[] {
  const dups: string[] = [];
  const stack: Set<string>[] = [];
  const re = /"((?:[^"\\]|\\.)*)"(\s*:)?|[{}[\]]/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m[0] === '{') stack.push(new Set());
    else if (m[0] === '}') stack.pop();
    else if (m[2]) {
      const keys = stack.at(-1);
      if (keys?.has(m[1] as string)) dups.push(m[1] as string);
      keys?.add(m[1] as string);
    }
  }
  return dups;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour codes are what we strip
const stripAnsi = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '').replace(/\r/g, '');

describe('agent logs', () => {
  test('on a terminal: human lines (time, level, component: message), no JSON', async () => {
    const a = agentProcess([], true);
    const url = await a.url();
    await lifecycle(url);
    await waitFor(
      () => /service deregistered/.test(a.output()),
      10_000,
      `the deregistration line:\n${a.output()}`,
    );
    const text = stripAnsi(a.output());
    a.child.kill('SIGTERM');
    const lines = text.split('\n');
    assert.ok(!lines.some((l) => l.startsWith('{"level"')), `no JSON line on a terminal:\n${text}`);
    assert.match(text, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: agent started/m);
    assert.match(
      text,
      /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: catalog: service registered: web \(web-1\) at 127\.0\.0\.1:8080 — PUT \/v1\/agent\/service\/register from 127\.0\.0\.1/m,
    );
    assert.match(text, /^\[[\d:.]+\] INFO: catalog: check web-ttl \(web-1\) critical → passing: all good/m);
    assert.match(
      text,
      /^\[[\d:.]+\] INFO: catalog: service deregistered: web \(web-1\) at 127\.0\.0\.1:8080 — PUT \/v1\/agent\/service\/deregister/m,
    );
  });

  test('on a terminal with --log-json, and on a pipe: JSON lines, each key once, lifecycle events with why', async () => {
    for (const tty of [true, false]) {
      const a = agentProcess(tty ? ['--log-json'] : [], tty);
      const url = await a.url();
      await lifecycle(url);
      await waitFor(
        () => /"service-deregistered"/.test(a.output()),
        10_000,
        `the deregistration line:\n${a.output()}`,
      );
      a.child.kill('SIGTERM');
      const records = stripAnsi(a.output())
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => {
          assert.deepEqual(duplicateKeys(l), [], `a key written twice: ${l}`);
          return JSON.parse(l) as Record<string, unknown>;
        });
      const ev = (name: string) => {
        const r = records.find((x) => x['event'] === name);
        assert.ok(r, `no ${name} line (tty=${tty}):\n${a.output()}`);
        assert.equal(r['level'], 30, 'lifecycle events are at info');
        assert.equal(r['component'], 'catalog');
        return r;
      };
      assert.deepEqual(
        { ...ev('service-registered'), time: 0, pid: 0, hostname: '' },
        {
          level: 30,
          time: 0,
          pid: 0,
          hostname: '',
          component: 'catalog',
          event: 'service-registered',
          service: 'web',
          serviceId: 'web-1',
          address: '127.0.0.1',
          port: 8080,
          tags: [],
          why: 'PUT /v1/agent/service/register from 127.0.0.1',
          msg: 'service registered: web (web-1) at 127.0.0.1:8080 — PUT /v1/agent/service/register from 127.0.0.1',
        },
      );
      const status = ev('check-status');
      assert.equal(status['checkId'], 'web-ttl');
      assert.equal(status['from'], 'critical');
      assert.equal(status['to'], 'passing');
      assert.equal(status['output'], 'all good');
      assert.match(String(ev('service-deregistered')['why']), /^PUT \/v1\/agent\/service\/deregister from /);
    }
  });

  test('a cluster: another agent joining and failing (kill -9) is logged at info with why; check changes only by the agent that runs the check', {
    skip: dependencySkip(ETCD_SKIP),
  }, async () => {
    const etcd = await startEtcdCluster();
    const lines: Record<string, unknown>[] = [];
    const dirA = tempDir('phare-logs-a-');
    const dirB = tempDir('phare-logs-b-');
    const prefix = `/logs-${process.pid}`;
    const a = await startAgent({
      config: resolveAgentConfig({
        flags: { ...clusterFlags(etcd, prefix, 'a', dirA.path), 'log-level': 'info' },
        env: {},
      }),
      logger: pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) }),
      cluster: { aeIntervalMs: 2000, reapIntervalMs: 250, probeIntervalMs: 200 },
    });
    try {
      const b = await spawnClusterAgent(etcd, prefix, 'b', dirB.path);
      children.push(b.child);
      const joined = await waitFor(
        () => lines.find((l) => l['event'] === 'agent-alive' && l['member'] === 'b'),
        10_000,
        'b joined',
      ).then((l) => l ?? {});
      assert.equal(joined['level'], 30);
      assert.match(String(joined['msg']), /^agent b \(127\.0\.0\.1\) joined: Agent alive and reachable$/);
      // A's own check turning critical (its TTL ran out) is in A's log, as Consul's agent logs its checks …
      const reg = (url: string, body: unknown) =>
        fetch(`${url}/v1/agent/service/register`, { method: 'PUT', body: JSON.stringify(body) });
      assert.equal(
        (await reg(a.httpUrl, { ID: 'web-1', Name: 'web', Check: { TTL: '1s', Status: 'passing' } })).status,
        200,
      );
      const critical = await waitFor(
        () => lines.find((l) => l['event'] === 'check-status' && l['checkId'] === 'service:web-1'),
        10_000,
        "A's TTL check turned critical",
      ).then((l) => l ?? {});
      assert.deepEqual([critical['from'], critical['to'], critical['node']], ['passing', 'critical', 'a']);
      // … while a check B runs changing is B's to log (Consul's agents log their own checks only); A's log
      // would otherwise repeat every check transition of the whole cluster.
      assert.equal(
        (await reg(b.url, { ID: 'db-1', Name: 'db', Check: { TTL: '30s', Status: 'passing' } })).status,
        200,
      );
      assert.equal((await fetch(`${b.url}/v1/agent/check/fail/service:db-1`, { method: 'PUT' })).status, 200);
      await waitFor(
        async () => {
          const r = await fetch(`${a.httpUrl}/v1/health/checks/db`);
          const checks = (await r.json()) as { Status: string }[];
          return checks[0]?.Status === 'critical';
        },
        10_000,
        "B's check critical on A",
      );
      assert.equal(
        lines.find((l) => l['checkId'] === 'service:db-1' || l['serviceId'] === 'db-1'),
        undefined,
        "A does not log B's service or check",
      );
      b.child.kill('SIGKILL');
      const failed = await waitFor(
        () => lines.find((l) => l['event'] === 'agent-failed' && l['member'] === 'b'),
        15_000,
        'b failed',
      ).then((l) => l ?? {});
      assert.equal(failed['level'], 30);
      assert.match(
        String(failed['msg']),
        /^agent b \(127\.0\.0\.1\) failed: Agent not live or unreachable — its lease expired/,
      );
      assert.match(String(failed['why']), /lease expired/);
    } finally {
      await a.close();
      await etcd.close();
      dirA.remove();
      dirB.remove();
    }
  });
});
