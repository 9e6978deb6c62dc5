/**
 * `phare run --name NAME --port PORT [--check-http PATH|--check-tcp|--check-ttl DURATION] -- CMD …`: runs any
 * program (a Python or Go service as well as Node) registered with the agent for as long as it lives — Phare
 * for services that cannot use the SDK. Built on the SDK's `registerService` like any user: it keeps the
 * registration (TTL heartbeats while the child lives, or a watch that registers again when the agent forgets
 * it), deregisters before `phare run` exits, forwards SIGINT/SIGTERM/SIGHUP to the child and exits with the
 * child's code (128 + the signal number when a signal killed it, as a shell reports it).
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Command } from 'commander';
import { parseDuration } from '../../api/index.ts';
import { PhareError, type RegisterServiceOptions, type Registration, registerService } from '../../index.ts';
import type { CliIo, CliState, RegisterCommand } from '../io.ts';

interface RunOpts {
  name: string;
  port: string;
  id?: string;
  address?: string;
  tags?: string;
  checkHttp?: string;
  checkTcp?: boolean;
  checkTtl?: string;
  checkInterval: string;
  deregisterCriticalAfter?: string;
  httpAddr?: string;
}

/** How long deregistration may hold up a signal or the exit (the agent may be gone). */
const DEREGISTER_BUDGET_MS = 3_000;

function invalid(message: string): PhareError {
  return new PhareError('PHARE_ERR_INVALID_ARGUMENT', message);
}

function durationMs(raw: string, flag: string): number {
  let ms: number;
  try {
    ms = parseDuration(raw);
  } catch {
    throw invalid(`${flag}: ${JSON.stringify(raw)} is not a duration; expected e.g. 10s, 1m, 500ms`);
  }
  if (!(ms > 0)) throw invalid(`${flag}: expected a duration > 0, got ${JSON.stringify(raw)}`);
  return ms;
}

/** The registration the flags describe; every mistake is named by its flag before anything starts. */
export function registrationOptions(opts: RunOpts, env: NodeJS.ProcessEnv): RegisterServiceOptions {
  const port = Number(opts.port);
  if (!/^\d+$/.test(opts.port) || port < 1 || port > 65535)
    throw invalid(`--port: expected a port number 1-65535, got ${JSON.stringify(opts.port)}`);
  const checks = [opts.checkHttp !== undefined, opts.checkTcp === true, opts.checkTtl !== undefined];
  if (checks.filter(Boolean).length > 1)
    throw invalid('--check-http, --check-tcp and --check-ttl: give at most one');
  const intervalMs = durationMs(opts.checkInterval, '--check-interval');
  let check: RegisterServiceOptions['check'] = false;
  if (opts.checkHttp !== undefined) check = { http: opts.checkHttp, intervalMs };
  else if (opts.checkTcp) check = { tcp: true, intervalMs };
  else if (opts.checkTtl !== undefined) check = { ttlMs: durationMs(opts.checkTtl, '--check-ttl') };
  return {
    name: opts.name,
    port,
    ...(opts.id ? { id: opts.id } : {}),
    ...(opts.address ? { address: opts.address } : {}),
    tags: (opts.tags ?? '')
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean),
    check,
    ...(opts.deregisterCriticalAfter ? { deregisterCriticalAfter: opts.deregisterCriticalAfter } : {}),
    consul: { ...(opts.httpAddr ? { address: opts.httpAddr } : {}), env },
    env,
  };
}

/** Deregisters, but never holds the exit up longer than the budget (an agent that is gone). */
async function deregisterBounded(registration: Registration, io: CliIo): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      registration.deregister(),
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          io.stderr(
            `phare run: deregistering ${registration.id} took over ${DEREGISTER_BUDGET_MS} ms; exiting\n`,
          );
          resolve();
        }, DEREGISTER_BUDGET_MS);
      }),
    ]);
  } catch (err) {
    io.stderr(
      `phare run: deregistering ${registration.id} failed: ${err instanceof Error ? err.message : String(err)}\n`,
    );
  } finally {
    clearTimeout(timer);
  }
}

async function run(argv: string[], opts: RunOpts, io: CliIo, state: CliState): Promise<void> {
  const [cmd, ...args] = argv;
  if (!cmd)
    throw invalid(
      'run: expected the command to run after --, e.g. phare run --name web --port 8000 -- python3 app.py',
    );
  const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  // Handlers first: a signal that arrives while registering must not kill phare run with the service left
  // registered.
  let early: NodeJS.Signals | undefined;
  let onSignal: (signal: NodeJS.Signals) => void = (signal) => {
    early ??= signal;
  };
  const handler = (signal: NodeJS.Signals) => onSignal(signal);
  for (const s of SIGNALS) process.on(s, handler);
  try {
    // Register before starting: a refused definition stops here, before a child exists. An unreachable agent
    // does not stop the service: the SDK registers it in the background once the agent answers.
    const registration = await registerService(registrationOptions(opts, io.env));
    io.stderr(
      `phare run: ${registration.registered ? 'registered' : 'registering (agent unreachable, retrying)'} ${registration.id}\n`,
    );
    if (early) {
      await deregisterBounded(registration, io);
      state.code = 128 + (constants.signals[early] ?? 0);
      return;
    }
    const child = spawn(cmd, args, { cwd: io.cwd, env: io.env, stdio: 'inherit' });
    let stopping = false;
    onSignal = (signal) => {
      if (stopping) {
        // A second signal goes straight through.
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        return;
      }
      stopping = true;
      // Out of the registry before the child stops serving, so no new caller is sent to a closing instance
      // (the same order as createGracefulShutdown's beforeShutdown). A terminal's Ctrl-C has reached the
      // child already (same process group); it is not sent twice to a child that is gone.
      void deregisterBounded(registration, io).then(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      });
    };
    const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>(
      (resolve) => {
        child.once('error', (error) => resolve({ code: null, signal: null, error }));
        child.once('exit', (code, signal) => resolve({ code, signal }));
      },
    );
    await deregisterBounded(registration, io);
    if (result.error) {
      const e = result.error as NodeJS.ErrnoException;
      io.stderr(`phare run: cannot start ${JSON.stringify(cmd)}: ${e.code ?? e.message}\n`);
      state.code = e.code === 'ENOENT' ? 127 : 126; // what a shell answers
    } else if (result.signal) {
      state.code = 128 + (constants.signals[result.signal] ?? 0);
    } else {
      state.code = result.code ?? 1;
    }
  } finally {
    for (const s of SIGNALS) process.off(s, handler);
  }
}

export const register: RegisterCommand = (program: Command, io, state) => {
  program
    .command('run')
    .description(
      'run a program registered with the agent while it lives: deregistered before exit, signals forwarded, its exit code returned',
    )
    .argument('<command...>', 'the program and its arguments, after --')
    .requiredOption('--name <name>', 'service name')
    .requiredOption('--port <port>', 'the port the program listens on')
    .option('--id <id>', 'instance ID (default: NAME-HOSTNAME-PORT)')
    .option('--address <addr>', "the address others reach it at (default: the agent's node address)")
    .option('--tags <a,b>', 'comma-separated tags')
    .option('--check-http <path>', 'an HTTP check the agent runs against this path (or URL)')
    .option('--check-tcp', 'a TCP check the agent runs against the port')
    .option('--check-ttl <duration>', 'a TTL check phare run keeps passing while the program lives')
    .option('--check-interval <duration>', 'interval of the HTTP or TCP check', '10s')
    .option(
      '--deregister-critical-after <duration>',
      'the agent removes the instance after it stayed critical this long',
    )
    .option('--http-addr <addr>', 'the agent (default: PHARE_HTTP_ADDR, CONSUL_HTTP_ADDR, 127.0.0.1:8500)')
    .action((argv: string[], opts: RunOpts) => run(argv, opts, io, state));
};
