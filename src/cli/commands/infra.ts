/**
 * `phare infra up|down|ps|logs COMPONENT [--env development|test]` — one component's infrastructure alone
 * (the seeds' `make dev`), with the URLs and connection strings printed; `phare infra split` — a root
 * compose file into each component's own; `phare infra reap` — what killed `phare test` runs left behind.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { Command } from 'commander';
import { PhareError } from '../../api/index.ts';
import {
  type Component,
  createEngine,
  type InfraEnv,
  infraSource,
  loadMonorepo,
  type Monorepo,
  readComposeFile,
  reap,
  selectComponents,
  splitCompose,
  startStack,
} from '../../infra/index.ts';
import { table } from '../../ports/index.ts';
import type { CliIo, CliState, RegisterCommand } from '../io.ts';

interface EnvOpts {
  env: string;
  root?: string;
}

function invalid(message: string): PhareError {
  return new PhareError('PHARE_ERR_INVALID_ARGUMENT', message);
}

function envOf(raw: string): InfraEnv {
  if (raw !== 'development' && raw !== 'test')
    throw invalid(`--env: expected development or test, got ${JSON.stringify(raw)}`);
  return raw;
}

/** The stable project name `phare infra` uses (so up, ps, logs and down meet). */
const projectOf = (comp: Component, env: InfraEnv) => `${comp.name}-${env === 'test' ? 'test' : 'dev'}`;

function target(io: CliIo, name: string, opts: EnvOpts): { repo: Monorepo; comp: Component; env: InfraEnv } {
  const env = envOf(opts.env);
  const repo = loadMonorepo(io.cwd, opts.root ? { root: opts.root } : {});
  const [comp] = selectComponents(repo, [name]);
  return { repo, comp: comp as Component, env };
}

function composeBase(repo: Monorepo, comp: Component, env: InfraEnv): string[] {
  const project = projectOf(comp, env);
  const written = join(tmpdir(), 'phare-infra', `${project}.yaml`);
  const source = infraSource(repo, comp, env);
  const file = existsSync(written) ? written : source?.file;
  if (!file)
    throw invalid(
      `${comp.name} has no ${env === 'test' ? 'docker-compose.test.yaml' : 'docker-compose.yaml'}`,
    );
  return ['-p', project, '-f', file, '--project-directory', source?.services ? repo.root : comp.dir];
}

async function up(
  name: string,
  opts: EnvOpts & { timeout?: string },
  io: CliIo,
  state: CliState,
): Promise<void> {
  const { repo, comp, env } = target(io, name, opts);
  const source = infraSource(repo, comp, env);
  if (!source) {
    io.stdout(
      `${comp.name} has no ${env === 'test' ? 'docker-compose.test.yaml' : 'docker-compose.yaml'}: it needs no infrastructure\n`,
    );
    return;
  }
  if (source.deprecated) io.stderr(`phare infra: warning: ${source.deprecated}\n`);
  const engine = createEngine({ env: io.env });
  const stack = await startStack({
    engine,
    repo,
    component: comp,
    source,
    env,
    project: projectOf(comp, env),
    // it outlives this process on purpose: no runner labels, so no reaper removes it
    reapable: false,
    processEnv: io.env,
    log: (l) => io.stderr(`phare infra: ${l}\n`),
  });
  io.stdout(`${comp.name} (${env}) is up as compose project ${stack.project}:\n`);
  io.stdout(
    table(
      ['SERVICE', 'URL'],
      stack.endpoints.map((e) => [e.service, e.url ?? `${e.host}:${e.ports[0]?.host}`]),
    ),
  );
  const vars = Object.entries(stack.env).filter(([k]) => /URL$|^PG/.test(k));
  if (vars.length) io.stdout(`\n${vars.map(([k, v]) => `export ${k}=${JSON.stringify(v)}`).join('\n')}\n`);
  io.stdout(`\nstop it with: phare infra down ${comp.name}${env === 'test' ? ' --env test' : ''}\n`);
  state.code = 0;
}

async function down(
  name: string,
  opts: EnvOpts & { volumes?: boolean },
  io: CliIo,
  state: CliState,
): Promise<void> {
  const { repo, comp, env } = target(io, name, opts);
  const engine = createEngine({ env: io.env });
  const volumes = opts.volumes || env === 'test';
  const r = await engine.compose(
    [...composeBase(repo, comp, env), 'down', ...(volumes ? ['-v'] : []), '--remove-orphans'],
    {
      env: io.env,
      onOutput: io.stderr,
    },
  );
  state.code = r.code === 0 ? 0 : 1;
}

async function ps(name: string, opts: EnvOpts, io: CliIo, state: CliState): Promise<void> {
  const { comp, env } = target(io, name, opts);
  const engine = createEngine({ env: io.env });
  io.stdout(
    await engine.docker([
      'ps',
      '-a',
      '--filter',
      `label=com.docker.compose.project=${projectOf(comp, env)}`,
      '--format',
      'table {{.Label "com.docker.compose.service"}}\t{{.Names}}\t{{.Status}}\t{{.Ports}}',
    ]),
  );
  state.code = 0;
}

async function logs(
  name: string,
  services: string[],
  opts: EnvOpts & { follow?: boolean; tail: string },
  io: CliIo,
  state: CliState,
): Promise<void> {
  const { repo, comp, env } = target(io, name, opts);
  const engine = createEngine({ env: io.env });
  const r = await engine.compose(
    [
      ...composeBase(repo, comp, env),
      'logs',
      '--no-color',
      '--tail',
      opts.tail,
      ...(opts.follow ? ['-f'] : []),
      ...services,
    ],
    { env: io.env, onOutput: io.stdout },
  );
  state.code = r.code === 0 ? 0 : 1;
}

async function split(
  opts: { file?: string; env?: string; dryRun?: boolean; force?: boolean; root?: string },
  io: CliIo,
  state: CliState,
): Promise<void> {
  const repo = loadMonorepo(io.cwd, opts.root ? { root: opts.root } : {});
  const env = envOf(opts.env ?? (opts.file && !/test/.test(opts.file) ? 'development' : 'test'));
  const file = opts.file ? join(io.cwd, opts.file) : repo.rootCompose[env];
  if (!file || !existsSync(file))
    throw invalid(
      `--file: no root compose file ${opts.file ?? (env === 'test' ? 'docker-compose.test.yaml' : 'docker-compose.yaml')} in ${repo.root}`,
    );
  const report = splitCompose(readComposeFile(file), file, repo.components, {
    env,
    ...(opts.dryRun ? { dryRun: true } : {}),
    ...(opts.force ? { force: true } : {}),
  });
  const rel = (p: string) => relative(repo.root, p) || '.';
  for (const w of report.written) {
    io.stdout(`${opts.dryRun ? 'would write' : 'wrote'} ${rel(w.path)}: ${w.services.join(', ')}\n`);
    if (opts.dryRun) io.stdout(`${report.contents.get(w.path)}\n`);
  }
  for (const s of report.skipped) io.stdout(`skipped ${rel(s.path)}: ${s.reason}\n`);
  for (const n of report.notes) io.stdout(`note: ${n}\n`);
  for (const u of report.unplaced) io.stdout(`could not place ${u.service}: ${u.reason}\n`);
  if (!opts.dryRun && report.written.length)
    io.stdout(
      `\n${rel(file)} is still read by phare test (with a deprecation warning) until you delete it; ` +
        'components with their own file use theirs\n',
    );
  state.code = report.unplaced.length || report.skipped.length ? 1 : 0;
}

async function reapNow(opts: { project?: string[] }, io: CliIo, state: CliState): Promise<void> {
  const engine = createEngine({ env: io.env });
  const r = await reap(engine, opts.project?.length ? { projects: opts.project } : {});
  io.stdout(
    r.projects.length
      ? `removed ${r.projects.join(', ')}: ${r.containers} containers, ${r.networks} networks, ${r.volumes} volumes\n`
      : 'nothing left behind\n',
  );
  state.code = 0;
}

export const register: RegisterCommand = (program: Command, io: CliIo, state: CliState) => {
  const infra = program
    .command('infra')
    .description("one component's infrastructure (its compose files) alone; split a root compose file");
  const envOpt = [
    '--env <env>',
    'development (docker-compose.yaml) or test (docker-compose.test.yaml)',
    'development',
  ] as const;
  const rootOpt = [
    '--root <dir>',
    'monorepo root (default: the nearest folder with phare.yaml or npm workspaces)',
  ] as const;
  infra
    .command('up')
    .description("start a component's infrastructure, wait until healthy, print URLs and connection strings")
    .argument('<component>')
    .option(...envOpt)
    .option(...rootOpt)
    .action((name: string, opts: EnvOpts) => up(name, opts, io, state));
  infra
    .command('down')
    .description("stop and remove a component's infrastructure (volumes too with --volumes, always for test)")
    .argument('<component>')
    .option(...envOpt)
    .option('-v, --volumes', 'remove its volumes too')
    .option(...rootOpt)
    .action((name: string, opts: EnvOpts & { volumes?: boolean }) => down(name, opts, io, state));
  infra
    .command('ps')
    .description("a component's containers")
    .argument('<component>')
    .option(...envOpt)
    .option(...rootOpt)
    .action((name: string, opts: EnvOpts) => ps(name, opts, io, state));
  infra
    .command('logs')
    .description("a component's service logs")
    .argument('<component>')
    .argument('[services...]')
    .option(...envOpt)
    .option('-f, --follow', 'follow the logs')
    .option('--tail <n>', 'lines per service', 'all')
    .option(...rootOpt)
    .action((name: string, services: string[], opts: EnvOpts & { follow?: boolean; tail: string }) =>
      logs(name, services, opts, io, state),
    );
  infra
    .command('split')
    .description("write each component's own compose file from a root one (profiles, build contexts)")
    .option(
      '--file <path>',
      'root compose file (default: docker-compose.test.yaml, else docker-compose.yaml)',
    )
    .option('--env <env>', 'what the root file is for: test or development (default: from its name)')
    .option('--dry-run', 'print the files instead of writing them')
    .option('--force', "overwrite a component's existing file")
    .option(...rootOpt)
    .action((opts: { file?: string; env?: string; dryRun?: boolean; force?: boolean; root?: string }) =>
      split(opts, io, state),
    );
  infra
    .command('reap')
    .description('remove the containers, networks and volumes of phare test runs whose runner is gone')
    .option('--project <name...>', 'remove exactly these runs, even if their runner lives')
    .action((opts: { project?: string[] }) => reapNow(opts, io, state));
};
