/**
 * The Docker engine as the test runner drives it: the `docker` CLI for quick reads (list, inspect, logs,
 * remove) and Compose for `up` / `down -v`. The CLIs rather than the Engine API because Compose itself is a
 * CLI (v1.29 here, `docker compose` v2 elsewhere) and the user's `DOCKER_HOST`, contexts and credentials
 * then work exactly as in their shell.
 */
import { spawn } from 'node:child_process';
import { phareError } from '../api/index.ts';

/** How to reach the engine. */
export interface EngineOptions {
  /**
   * The docker CLI.
   * @default process.env.PHARE_DOCKER_CLI ?? 'docker'
   */
  docker?: string;
  /**
   * The compose command, split on spaces (`docker-compose`, or `docker compose`).
   * @default process.env.PHARE_COMPOSE_CLI ?? 'docker-compose'
   */
  compose?: string;
  /**
   * Environment of the CLIs (DOCKER_HOST and friends).
   * @default process.env
   */
  env?: NodeJS.ProcessEnv;
}

/** Output of one CLI call. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The engine the runner uses. */
export interface Engine {
  /** Runs the docker CLI; rejects with its stderr on a non-zero exit. */
  docker(args: string[]): Promise<string>;
  /** Runs the docker CLI; resolves whatever the exit code. */
  raw(args: string[]): Promise<CliResult>;
  /** Runs compose; resolves whatever the exit code (the caller decides). */
  compose(
    args: string[],
    options?: { cwd?: string; env?: NodeJS.ProcessEnv; signal?: AbortSignal; onOutput?: (s: string) => void },
  ): Promise<CliResult>;
}

function exec(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd?: string,
  signal?: AbortSignal,
  onOutput?: (s: string) => void,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env,
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(signal ? { signal } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      if (onOutput) onOutput(d.toString());
      else stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      onOutput?.(d.toString());
      stderr = (stderr + d.toString()).slice(-64_000);
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (err.name === 'AbortError') resolve({ code: 130, stdout, stderr });
      else
        reject(
          phareError(
            'PHARE_ERR_DOCKER',
            err.code === 'ENOENT'
              ? `${cmd} is not installed or not on PATH (set PHARE_DOCKER_CLI / PHARE_COMPOSE_CLI to its path)`
              : `${cmd}: ${err.message}`,
            { cause: err },
          ),
        );
    });
    child.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/**
 * The engine behind the user's docker CLI and Compose.
 *
 * @example
 * const engine = createEngine({ env: { ...process.env, DOCKER_HOST: 'unix:///tmp/d.sock' } });
 * await engine.docker(['ps', '-q']);
 */
export function createEngine(options: EngineOptions = {}): Engine {
  const env = options.env ?? process.env;
  const docker = options.docker ?? env['PHARE_DOCKER_CLI'] ?? 'docker';
  const [composeCmd, ...composePre] = (options.compose ?? env['PHARE_COMPOSE_CLI'] ?? 'docker-compose').split(
    ' ',
  );
  const cliEnv = { ...env, DOCKER_CLI_HINTS: 'false', COMPOSE_INTERACTIVE_NO_CLI: '1' };
  return {
    async docker(args) {
      const r = await exec(docker, args, cliEnv);
      if (r.code !== 0)
        throw phareError(
          'PHARE_ERR_DOCKER',
          `docker ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}`,
        );
      return r.stdout;
    },
    raw: (args) => exec(docker, args, cliEnv),
    compose(args, o = {}) {
      return exec(
        composeCmd as string,
        [...composePre, ...args],
        { ...cliEnv, ...o.env },
        o.cwd,
        o.signal,
        o.onOutput,
      );
    },
  };
}

/** One container of a project, as `docker inspect` reports it. */
export interface ContainerState {
  id: string;
  name: string;
  service: string;
  status: string;
  exitCode: number;
  /** `healthy`, `unhealthy`, `starting`, or undefined without a healthcheck. */
  health?: string;
  failingStreak: number;
  /** Output of the last health probe. */
  lastHealthOutput?: string;
  restartPolicy: string;
}

/** The containers of a compose project (by Compose's own project label). */
export async function projectContainers(engine: Engine, project: string): Promise<ContainerState[]> {
  const ids = (await engine.docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`]))
    .split('\n')
    .filter(Boolean);
  if (ids.length === 0) return [];
  const raw = JSON.parse(await engine.docker(['inspect', ...ids])) as {
    Id: string;
    Name: string;
    Config: { Labels: Record<string, string> | null };
    State: {
      Status: string;
      ExitCode: number;
      Health?: { Status: string; FailingStreak: number; Log?: { Output: string; ExitCode: number }[] };
    };
    HostConfig: { RestartPolicy?: { Name: string } };
  }[];
  return raw.map((c) => {
    const log = c.State.Health?.Log ?? [];
    const last = log[log.length - 1];
    return {
      id: c.Id,
      name: c.Name.replace(/^\//, ''),
      service: c.Config.Labels?.['com.docker.compose.service'] ?? c.Name,
      status: c.State.Status,
      exitCode: c.State.ExitCode,
      ...(c.State.Health ? { health: c.State.Health.Status } : {}),
      failingStreak: c.State.Health?.FailingStreak ?? 0,
      ...(last ? { lastHealthOutput: `${last.Output.trim()} (exit ${last.ExitCode})` } : {}),
      restartPolicy: c.HostConfig.RestartPolicy?.Name ?? '',
    };
  });
}

/** The last lines of a container's logs (stdout and stderr). */
export async function logsTail(engine: Engine, id: string, lines = 30): Promise<string> {
  // docker logs writes the container's stderr to its own stderr: both are the log
  const r = await engine.raw(['logs', '--tail', String(lines), id]);
  if (r.code !== 0) return `(logs unavailable: ${r.stderr.trim()})`;
  return (r.stdout + r.stderr).trimEnd();
}
