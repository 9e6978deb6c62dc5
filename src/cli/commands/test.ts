/**
 * `phare test [COMPONENT…] [--unit|--integration|--e2e] [--affected [--base REF]] [--parallel N]
 * [--junit FILE]`: each component's tests, each against only the infrastructure its own
 * `docker-compose.test.yaml` declares (none: on the host). See docs/test-runner.md.
 */
import type { Command } from 'commander';
import { PhareError } from '../../api/index.ts';
import {
  affectedComponents,
  type Category,
  loadMonorepo,
  runTests,
  selectComponents,
} from '../../infra/index.ts';
import type { CliIo, CliState, RegisterCommand } from '../io.ts';

interface TestOpts {
  unit?: boolean;
  integration?: boolean;
  e2e?: boolean;
  affected?: boolean;
  base: string;
  parallel: string;
  junit?: string;
  root?: string;
  agent?: string;
}

function invalid(message: string): PhareError {
  return new PhareError('PHARE_ERR_INVALID_ARGUMENT', message);
}

async function test(names: string[], opts: TestOpts, io: CliIo, state: CliState): Promise<void> {
  const parallel = Number(opts.parallel);
  if (!/^\d+$/.test(opts.parallel) || parallel < 1)
    throw invalid(
      `--parallel: expected a number of components at a time >= 1, got ${JSON.stringify(opts.parallel)}`,
    );
  const repo = loadMonorepo(io.cwd, opts.root ? { root: opts.root } : {});
  let components = selectComponents(repo, names);
  if (opts.affected) {
    const a = await affectedComponents(repo, opts.base);
    io.stderr(
      `phare test: changed since ${opts.base} (${a.mergeBase.slice(0, 10)}): ${a.changed.join(', ') || 'no component'}; ` +
        `affected with dependents: ${a.affected.join(', ') || 'none'}\n`,
    );
    components = components.filter((c) => a.affected.includes(c.name));
    if (components.length === 0) {
      io.stdout('phare test: no affected component; nothing to run\n');
      return;
    }
  }
  const categories = (['unit', 'integration', 'e2e'] as const).filter((c) => opts[c]) as Category[];
  // Ctrl-C (or SIGTERM from CI) stops the commands and tears the infrastructure down before exiting
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1)
      io.stderr(`\nphare test: ${sig}: stopping the tests and removing their infrastructure\n`);
    else io.stderr('phare test: still removing the infrastructure (down -v); it takes a moment\n');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const report = await runTests({
      repo,
      components,
      categories,
      parallel,
      ...(opts.junit ? { junit: opts.junit } : {}),
      ...(opts.agent ? { agent: opts.agent } : {}),
      env: io.env,
      signal: controller.signal,
      stdout: io.stdout,
      stderr: io.stderr,
    });
    state.code = report.code;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export const register: RegisterCommand = (program: Command, io: CliIo, state: CliState) => {
  program
    .command('test')
    .description(
      "run each component's tests against only its own infrastructure (docker-compose.test.yaml), or on the host",
    )
    .argument('[components...]', 'components to test (default: all)')
    .option('--unit', 'unit tests only (always on the host)')
    .option('--integration', 'integration tests only')
    .option('--e2e', 'e2e tests only (always against infrastructure)')
    .option('--affected', 'only components changed since --base, and the components that depend on them')
    .option('--base <ref>', 'git branch or commit --affected compares with', 'main')
    .option('--parallel <n>', 'components tested at a time', '1')
    .option('--junit <file>', 'write a JUnit XML report')
    .option('--root <dir>', 'monorepo root (default: the nearest folder with phare.yaml or npm workspaces)')
    .option('--agent <url>', 'Phare/Consul agent to wait on for services labelled phare.service')
    .action((names: string[], opts: TestOpts) => test(names, opts, io, state));
};
