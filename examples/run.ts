/**
 * `npm run example`: the whole example system on this machine, against a Phare agent.
 *
 *   1. reads the environment's ports from env/<env>.env (written by `phare ports sync` from ports.yaml);
 *      any of them can be overridden from the shell: `API_PORT=9100 npm run example`
 *   2. starts `phare agent --dev` (HTTP + DNS on the environment's ports)
 *   3. starts PostgreSQL in a temp directory (or uses one already answering on PGPORT)
 *   4. starts bus, api and bridge as child processes (ENV=<env>, so each loads config/<env>.yaml)
 *   5. waits until the agent reports all three passing, then prints URLs and a curl walk-through
 *   6. on Ctrl-C: SIGTERM to the services (each drains and deregisters), then the agent and PostgreSQL
 *
 * The environment is `--env <name>`, else $ENV, else development. A second Ctrl-C kills everything at once.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnv, styleText } from 'node:util';
import { type LocalPostgres, postgresAnswers, postgresBinDir, startLocalPostgres } from './lib/postgres.ts';

const HERE = import.meta.dirname;
const ROOT = join(HERE, '..');
const SERVICES = ['bus', 'api', 'bridge'] as const;
type ServiceName = (typeof SERVICES)[number];

const envArg = process.argv.indexOf('--env');
const env = (envArg >= 0 ? process.argv[envArg + 1] : undefined) ?? process.env['ENV'] ?? 'development';

// --- 1. ports -------------------------------------------------------------------------------------------
const fromFile = parseEnv(readFileSync(join(HERE, 'env', `${env}.env`), 'utf8')) as Record<string, string>;
const portOf = (name: string): number => {
  const value = process.env[name] ?? fromFile[name];
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new Error(
      `${name}: expected a port in env/${env}.env or the environment, got ${JSON.stringify(value)}`,
    );
  }
  return port;
};
const ports = {
  agent: portOf('AGENT_HTTP_PORT'),
  dns: portOf('AGENT_DNS_PORT'),
  postgres: portOf('PGPORT'),
  api: portOf('API_PORT'),
  bus: portOf('BUS_PORT'),
  bridge: portOf('BRIDGE_PORT'),
};
const overridden = (name: string) => process.env[name] !== undefined && process.env[name] !== fromFile[name];

/**
 * The services read their ports from their own config/<env>.yaml (kept in sync with env/<env>.env by
 * `phare ports sync`). Only a port overridden in the shell is handed down, as a config env variable.
 */
function serviceEnv(name: ServiceName): NodeJS.ProcessEnv {
  const extra: NodeJS.ProcessEnv = { ENV: env };
  if (overridden('AGENT_HTTP_PORT')) extra['REGISTRY__PORT'] = String(ports.agent);
  const own = { api: 'API_PORT', bus: 'BUS_PORT', bridge: 'BRIDGE_PORT' }[name];
  if (overridden(own)) extra['SERVER__PORT'] = String(ports[name]);
  if (name === 'api' && overridden('PGPORT')) extra['DATABASE__PORT'] = String(ports.postgres);
  return { ...process.env, ...extra };
}

// --- output ---------------------------------------------------------------------------------------------
const color = process.stdout.isTTY;
const paint = (c: Parameters<typeof styleText>[0], s: string) => (color ? styleText(c, s) : s);
const COLORS = { agent: 'gray', postgres: 'gray', bus: 'magenta', api: 'cyan', bridge: 'yellow' } as const;
const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
const say = (s = '') => process.stdout.write(`${s}\n`);

/** Prints a child's output line by line, pino JSON turned into `[api] INFO message key=value`. */
function pipeOutput(name: keyof typeof COLORS, child: ChildProcess): void {
  const prefix = paint(COLORS[name], `[${name}]`.padEnd(10));
  let buffer = '';
  const onData = (chunk: Buffer) => {
    buffer += String(chunk);
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.trim()) say(`${prefix} ${formatLine(line)}`);
      nl = buffer.indexOf('\n');
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
}

function formatLine(line: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof rec !== 'object' || rec === null || !('msg' in rec)) return line;
  const { level, msg, time: _t, pid: _p, hostname: _h, service: _s, component: _c, ...rest } = rec;
  const lvl = LEVELS[level as number] ?? String(level);
  const extras = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const text = `${lvl.padEnd(5)} ${String(msg)}${extras ? ` ${paint('gray', extras)}` : ''}`;
  return Number(level) >= 50 ? paint('red', text) : Number(level) >= 40 ? paint('yellow', text) : text;
}

// --- processes ------------------------------------------------------------------------------------------
const children = new Map<string, ChildProcess>();
let pgServer: LocalPostgres | undefined;
let stopping = false;

function start(name: keyof typeof COLORS, args: string[], childEnv: NodeJS.ProcessEnv): ChildProcess {
  // detached: a terminal's Ctrl-C reaches only this script, which then stops everything in order (a service
  // getting SIGINT from the terminal *and* SIGTERM from us would take the second signal as "exit now").
  // The services import 'phare' like any user; in this checkout the `phare-source` export condition maps
  // that to src/ (an installed package maps it to dist/).
  const child = spawn(process.execPath, ['--conditions=phare-source', ...args], {
    cwd: ROOT,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  children.set(name, child);
  pipeOutput(name, child);
  child.once('exit', (code, signal) => {
    if (stopping) return;
    const how = signal ? `signal ${signal}` : `code ${code}`;
    say(paint('red', `[${name}] exited (${how}).`));
    if (SERVICES.includes(name as ServiceName)) {
      say(`          restart it in another terminal: ENV=${env} node examples/${name}/main.ts`);
    }
  });
  return child;
}

// Whatever happens to this script, leave nothing running behind.
process.on('exit', () => {
  for (const c of children.values()) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  pgServer?.process.kill('SIGKILL');
});

async function agentAnswers(): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${ports.agent}/v1/status/leader`, {
      signal: AbortSignal.timeout(1000),
    });
    return res.ok;
  } catch {
    return false;
  }
}

/** Statuses of each service's checks in the agent: "passing", "critical", ... or "missing". */
async function statuses(): Promise<Record<ServiceName, string>> {
  const out = {} as Record<ServiceName, string>;
  for (const name of SERVICES) {
    try {
      const res = await fetch(`http://127.0.0.1:${ports.agent}/v1/health/checks/${name}`);
      const checks = (await res.json()) as { Status: string }[];
      out[name] =
        checks.length === 0
          ? 'missing'
          : (['critical', 'warning', 'passing'].find((s) => checks.some((c) => c.Status === s)) ?? 'unknown');
    } catch {
      out[name] = 'missing';
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(what: string, timeoutMs: number, ok: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (stopping) return false;
    if (await ok()) return true;
    await sleep(200);
  }
  say(paint('red', `timed out after ${timeoutMs / 1000} s waiting for ${what}`));
  return false;
}

async function main(): Promise<void> {
  say(paint('bold', `Phare example — environment "${env}" (ports from examples/env/${env}.env)`));

  // --- 2. agent
  if (await agentAnswers()) {
    throw new Error(
      `something already answers on 127.0.0.1:${ports.agent} (AGENT_HTTP_PORT); stop it or override the port`,
    );
  }
  const agentArgs = [join(ROOT, 'bin', 'phare.js'), 'agent', '--dev', '--node', `example-${env}`];
  agentArgs.push('--http-addr', `127.0.0.1:${ports.agent}`, '--dns-addr', `127.0.0.1:${ports.dns}`);
  const agentEnv: NodeJS.ProcessEnv = { ...process.env, PHARE_LOG_LEVEL: 'warn' };
  for (const k of Object.keys(agentEnv))
    if (k.startsWith('PHARE_') && k !== 'PHARE_LOG_LEVEL') delete agentEnv[k];
  start('agent', agentArgs, agentEnv);
  if (!(await waitUntil('the agent', 15_000, agentAnswers))) throw new Error('the agent did not start');

  // --- 3. PostgreSQL
  if (await postgresAnswers(ports.postgres)) {
    say(`[postgres] using the PostgreSQL already answering on 127.0.0.1:${ports.postgres}`);
  } else {
    const bin = postgresBinDir();
    if (bin) {
      pgServer = await startLocalPostgres(bin, ports.postgres);
      children.set('postgres', pgServer.process);
      say(`[postgres] started on 127.0.0.1:${ports.postgres} (temp directory, removed on exit)`);
    } else {
      say(
        paint(
          'yellow',
          `[postgres] SKIPPED: no PostgreSQL server found under /usr/lib/postgresql/*/bin and nothing answers on ` +
            `127.0.0.1:${ports.postgres}.\n           Install it (apt-get install postgresql) or start one on that port ` +
            `(user postgres, trust auth). Until then the api stays "starting" (503) and critical in the agent.`,
        ),
      );
    }
  }
  if (stopping) return;

  // --- 4. services: the bus first, since the others connect to it (they would retry until it is up anyway,
  // but the logs read better this way), then api and bridge
  start('bus', [join(HERE, 'bus', 'main.ts')], serviceEnv('bus'));
  await waitUntil('the bus to pass its check', 20_000, async () => (await statuses()).bus === 'passing');
  for (const name of ['api', 'bridge'] as const) start(name, [join(HERE, name, 'main.ts')], serviceEnv(name));

  // --- 5. wait for the agent to see them passing
  let last = '';
  const allPassing = await waitUntil('all services to pass their checks', 60_000, async () => {
    const s = await statuses();
    const line = SERVICES.map((n) => `${n}=${s[n]}`).join(' ');
    if (line !== last) say(paint('gray', `[agent]    ${line}`));
    last = line;
    return SERVICES.every((n) => s[n] === 'passing');
  });
  if (stopping) return;
  printWalkthrough(allPassing);
}

function printWalkthrough(allPassing: boolean): void {
  const pid = (n: string) => children.get(n)?.pid ?? '?';
  const a = `http://127.0.0.1:${ports.agent}`;
  say();
  say(
    paint(
      'bold',
      allPassing ? 'example ready: all services passing' : 'example started (not all passing yet)',
    ),
  );
  say(`  agent   ${a}/ui/   DNS 127.0.0.1:${ports.dns}`);
  say(`  api     http://127.0.0.1:${ports.api}    pid ${pid('api')}`);
  say(`  bus     http://127.0.0.1:${ports.bus}    pid ${pid('bus')}  (ws://127.0.0.1:${ports.bus}/events)`);
  say(`  bridge  http://127.0.0.1:${ports.bridge}    pid ${pid('bridge')}`);
  if (pgServer)
    say(`  postgres 127.0.0.1:${ports.postgres}    pid ${pgServer.process.pid} (stop it with kill -INT)`);
  say();
  say(paint('bold', 'Try it (in another terminal):'));
  say(`  curl -s ${a}/v1/health/service/api?passing | jq '.[].Service | {ID, Port}'   # who is registered`);
  say(
    `  curl -s -XPOST localhost:${ports.api}/notes -d '{"text":"hello phare world"}'      # api -> PostgreSQL -> bus`,
  );
  say(
    `  curl -s localhost:${ports.api}/notes                 # a moment later: words and processedBy, set by the bridge`,
  );
  say(
    `  curl -s localhost:${ports.bridge}/stats                # what the bridge did, and which api instance answered`,
  );
  say(`  curl -s localhost:${ports.api}/health/ready          # readiness: the database check`);
  say(`  dig @127.0.0.1 -p ${ports.dns} api.service.consul SRV +short`);
  say(
    `  kill ${pid('api')}     # graceful: readiness 503 -> deregister -> drain -> exit 0 (watch the agent lines)`,
  );
  say(`  ENV=${env} SERVER__PORT=${ports.api + 1} node examples/api/main.ts   # a second api instance`);
  say();
  say('Ctrl-C stops everything.');
}

// --- 6. stop in order: services drain and deregister while the agent is still up
async function stopAll(code: number): Promise<never> {
  stopping = true;
  say(
    paint(
      'bold',
      '\nstopping: api and bridge, then the bus (each drains and deregisters), then the agent and PostgreSQL',
    ),
  );
  const exitOf = (c: ChildProcess) =>
    c.exitCode !== null || c.signalCode !== null
      ? Promise.resolve(c.exitCode ?? 1)
      : new Promise<number>((r) => c.once('exit', (ec) => r(ec ?? 1)));
  // The bus last, so api and bridge do not spend their drain delay looking for it.
  const codes: number[] = [];
  for (const group of [['api', 'bridge'], ['bus']]) {
    const running = group.map((n) => children.get(n)).filter((c): c is ChildProcess => c !== undefined);
    for (const c of running) c.kill('SIGTERM');
    codes.push(...(await Promise.all(running.map(exitOf))));
  }
  const agent = children.get('agent');
  if (agent) {
    agent.kill('SIGTERM');
    await exitOf(agent);
  }
  await pgServer?.stop();
  const clean = codes.every((c) => c === 0);
  say(clean ? 'stopped cleanly' : `stopped; service exit codes: ${codes.join(', ')}`);
  process.exit(clean ? code : 1);
}

let signals = 0;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (++signals > 1) {
      say('second signal: killing everything');
      process.exit(1); // the 'exit' handler SIGKILLs the children
    }
    void stopAll(0);
  });
}

main().catch((err: Error) => {
  say(paint('red', `example failed: ${err.message}`));
  void stopAll(1);
});
