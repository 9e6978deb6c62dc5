import type { Command } from 'commander';

/** What a command may touch of the outside world; tests pass their own. */
export interface CliIo {
  stdout(s: string): void;
  stderr(s: string): void;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** Shared state a command sets (its exit code). */
export interface CliState {
  code: number;
}

/** A command module's entry point. */
export type RegisterCommand = (program: Command, io: CliIo, state: CliState) => void;
