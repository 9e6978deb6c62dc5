/**
 * `phare` CLI: argv -> command -> exit code. Each command lives in `commands/<name>.ts` and exports a
 * `register(program, io)` function; this file only wires them.
 */
import { Command, CommanderError } from 'commander';
import { PhareError, phareVersion } from '../api/index.ts';
import type { CliIo, RegisterCommand } from './io.ts';

/**
 * Commands known to the CLI, in help order. Loaded on demand: `phare agent` does not pay for loading
 * `ports` or `config` (cold start matters for the agent).
 */
const COMMANDS: Record<string, () => Promise<{ register: RegisterCommand }>> = {
  agent: () => import('./commands/agent.ts'),
  config: () => import('./commands/config.ts'),
  doctor: () => import('./commands/doctor.ts'),
  infra: () => import('./commands/infra.ts'),
  kv: () => import('./commands/kv.ts'),
  ports: () => import('./commands/ports.ts'),
  services: () => import('./commands/registry.ts'),
  catalog: () => import('./commands/registry.ts'),
  members: () => import('./commands/registry.ts'),
  health: () => import('./commands/registry.ts'),
  watch: () => import('./commands/registry.ts'),
  wait: () => import('./commands/registry.ts'),
  maint: () => import('./commands/registry.ts'),
  run: () => import('./commands/run.ts'),
  test: () => import('./commands/test.ts'),
};

/**
 * Runs the CLI and resolves to the process exit code. Long-running commands (the agent) resolve when
 * they stop.
 *
 * @example
 * process.exitCode = await main(['agent', '--dev']);
 */
export async function main(argv: string[], io: CliIo = defaultIo()): Promise<number> {
  const program = new Command('phare')
    .description('Service discovery for TypeScript microservices')
    .version(phareVersion(), '-V, --version', 'print the version of phare')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s) });
  const state = { code: 0 };
  const first = argv[0];
  const names = first !== undefined && Object.hasOwn(COMMANDS, first) ? [first] : Object.keys(COMMANDS);
  const registered = new Set<RegisterCommand>(); // one module may hold several commands
  for (const name of names) {
    const { register } = await (COMMANDS[name] as () => Promise<{ register: RegisterCommand }>)();
    if (registered.has(register)) continue;
    registered.add(register);
    register(program, io, state);
  }
  // `phare kv` mirrors Consul's CLI, whose long flags take one dash (`-recurse`): read them as `--recurse`.
  const args = first === 'kv' ? argv.map((a) => (/^-[a-z][a-z-]+(=.*)?$/.test(a) ? `-${a}` : a)) : argv;
  try {
    await program.parseAsync(args, { from: 'user' });
    return state.code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof PhareError) {
      io.stderr(`phare: ${err.message}\n`);
      return err.code === 'PHARE_ERR_INVALID_ARGUMENT' || err.code === 'PHARE_ERR_INVALID_CONFIG' ? 2 : 1;
    }
    io.stderr(`phare: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

function defaultIo(): CliIo {
  return {
    stdout: (s) => void process.stdout.write(s),
    stderr: (s) => void process.stderr.write(s),
    env: process.env,
    cwd: process.cwd(),
  };
}
