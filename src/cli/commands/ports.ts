import { resolve } from 'node:path';
import type { Command } from 'commander';
import { PhareError } from '../../api/index.ts';
import {
  agentUrl,
  annotateListeners,
  checkPorts,
  describeAllocation,
  listListeners,
  loadPorts,
  nextFreePort,
  type PortsModel,
  type PortsProblem,
  problemsTable,
  syncPorts,
  table,
} from '../../ports/index.ts';
import type { CliIo, CliState, RegisterCommand } from '../io.ts';

/**
 * `phare ports check|sync|list|next|in-use`: keeps a checked-in `ports.yaml` and the files it feeds in
 * step. Problems exit 1 with a table (or `--json`); bad flags exit 2.
 */
export const register: RegisterCommand = (program: Command, io, state) => {
  const ports = program
    .command('ports')
    .description('check and sync ports.yaml, the one source of truth for ports');
  const fileOpt = (cmd: Command) => cmd.option('-f, --file <path>', 'the ports file', 'ports.yaml');
  const fileOf = (opts: { file: string }) => resolve(io.cwd, opts.file);

  fileOpt(ports.command('check'))
    .description('validate ports.yaml and that every target is in sync (exit 1 on problems)')
    .option('--json', 'print a JSON report (for CI)')
    .option('--agent [url]', 'also compare services registered with the agent (default PHARE_HTTP_ADDR)')
    .option('--env <env>', 'with --agent: the environment the agent runs')
    .action(async (opts: { file: string; json?: boolean; agent?: string | boolean; env?: string }) => {
      const agent =
        opts.agent === undefined
          ? undefined
          : { url: agentUrl(opts.agent === true ? undefined : String(opts.agent), io.env), env: opts.env };
      const report = await checkPorts(fileOf(opts), { agent });
      if (!report.ok) state.code = 1;
      if (opts.json) {
        io.stdout(`${JSON.stringify(report, null, 2)}\n`);
        return;
      }
      const errors = report.problems.filter((p) => p.severity === 'error').length;
      const warnings = report.problems.length - errors;
      if (report.problems.length > 0) io.stdout(problemsTable(report.problems));
      const s = report.summary;
      io.stdout(
        report.ok
          ? `ports ok: ${s.allocations} ports (${s.components} components, ${s.infrastructure} infrastructure, ` +
              `${s.environments} environments), ${s.targets} targets in ${s.files} files in sync` +
              `${agent ? ', agent matches' : ''}${warnings ? `, ${warnings} warning(s)` : ''}\n`
          : `\n${errors} error(s)${warnings ? `, ${warnings} warning(s)` : ''} in ${opts.file}\n`,
      );
    });

  fileOpt(ports.command('sync'))
    .description('write every target from ports.yaml (atomic, locked)')
    .option('--dry-run', 'print a unified diff and write nothing')
    .action(async (opts: { file: string; dryRun?: boolean }) => {
      await withProblems(io, state, async () => {
        const res = await syncPorts(fileOf(opts), { dryRun: opts.dryRun === true });
        if (opts.dryRun) {
          io.stdout(res.diff === '' ? `in sync: ${res.targets} targets, nothing to change\n` : res.diff);
          return;
        }
        io.stdout(
          res.written.length === 0
            ? `in sync: ${res.targets} targets, nothing to change\n`
            : `wrote ${res.written.length} file(s): ${res.written.join(', ')}\n`,
        );
      });
    });

  fileOpt(ports.command('list'))
    .description('list every allocated port')
    .option('--env <env>', 'only this environment (or "infrastructure")')
    .option('--json', 'print JSON')
    .action(async (opts: { file: string; env?: string; json?: boolean }) => {
      const model = loadModel(io, state, fileOf(opts));
      if (!model) return;
      if (opts.env !== undefined) assertEnv(model, opts.env);
      const rows = model.allocations
        .filter(
          (a) =>
            opts.env === undefined ||
            a.env === opts.env ||
            (opts.env === 'infrastructure' ? a.kind === 'infrastructure' : a.env === null),
        )
        .sort((a, b) => a.port - b.port);
      if (opts.json) {
        io.stdout(
          `${JSON.stringify(
            rows.map(({ key: _k, ...a }) => a),
            null,
            2,
          )}\n`,
        );
        return;
      }
      io.stdout(
        table(
          ['PORT', 'INTERNAL', 'OWNER', 'KIND', 'ENV', 'TARGETS'],
          rows.map((a) => [
            String(a.port),
            a.internal === a.port ? '' : String(a.internal),
            a.owner,
            a.kind,
            a.env ?? '(all)',
            String(model.targets.filter((t) => t.allocation === a).length),
          ]),
        ),
      );
    });

  fileOpt(ports.command('next'))
    .description('print the next port free in the range, in the file and on this host')
    .requiredOption('--env <env>', 'environment (or "infrastructure")')
    .action(async (opts: { file: string; env: string }) => {
      const model = loadModel(io, state, fileOf(opts));
      if (!model) return;
      io.stdout(`${await nextFreePort(model, opts.env)}\n`);
    });

  fileOpt(ports.command('in-use'))
    .description('listening TCP sockets, marked with the component that owns each port')
    .option('--all', 'also show listeners outside every range')
    .option('--json', 'print JSON')
    .action(async (opts: { file: string; all?: boolean; json?: boolean }) => {
      const model = loadModel(io, state, fileOf(opts));
      if (!model) return;
      const entries = annotateListeners(model, await listListeners()).filter(
        (e) => opts.all || e.status !== 'outside',
      );
      if (opts.json) {
        const plain = entries.map(({ owners, ...e }) => ({
          ...e,
          owners: owners.map((o) => ({ owner: o.owner, kind: o.kind, env: o.env })),
        }));
        io.stdout(`${JSON.stringify(plain, null, 2)}\n`);
        return;
      }
      if (entries.length === 0) {
        io.stdout('nothing listens on a port in any range of the file\n');
        return;
      }
      io.stdout(
        table(
          ['PORT', 'ADDRESS', 'PROCESS', 'STATUS', 'OWNER'],
          entries.map((e) => [
            String(e.port),
            e.family === 6 ? `[${e.address}]` : e.address,
            e.pid === undefined ? '?' : `${e.pid}/${e.command ?? '?'}`,
            e.status === 'unallocated' ? `not in file (${e.range} range)` : e.status,
            e.owners.map(describeAllocation).join(', '),
          ]),
        ),
      );
    });
};

function assertEnv(model: PortsModel, env: string): void {
  const names = [...Object.keys(model.config.environments), 'infrastructure'];
  if (!names.includes(env)) {
    throw new PhareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `--env: "${env}" is not an environment of ${model.name}; expected one of ${names.join(', ')}`,
    );
  }
}

/** Loads the model, or prints its problems and sets exit 1. */
function loadModel(io: CliIo, state: CliState, file: string): PortsModel | null {
  const { model, problems } = loadPorts(file);
  if (model) return model;
  printProblems(io, state, problems);
  return null;
}

function printProblems(io: CliIo, state: CliState, problems: PortsProblem[]): void {
  io.stderr(problemsTable(problems));
  io.stderr(`\n${problems.length} problem(s); run phare ports check for the full report\n`);
  state.code = 1;
}

/** Runs `fn`; an error that carries problems prints them as a table and exits 1. */
async function withProblems(io: CliIo, state: CliState, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    const problems = (err as { problems?: PortsProblem[] }).problems;
    if (err instanceof PhareError && problems) {
      io.stderr(problemsTable(problems));
      io.stderr(`\n${problems.length} problem(s); nothing was written\n`);
      state.code = 1;
      return;
    }
    if (
      err instanceof PhareError &&
      (err.code === 'PHARE_ERR_LOCKED' || err.code === 'PHARE_ERR_FILE_WRITE')
    ) {
      io.stderr(`phare: ${err.message}\n`);
      state.code = 1;
      return;
    }
    throw err;
  }
}
