import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import type { z } from 'zod';
import { phareError } from '../../api/index.ts';
import { loadConfig, printConfig } from '../../config/index.ts';
import type { RegisterCommand } from '../io.ts';

/**
 * `phare config print`: the merged layered config of a service with the source of every value, secrets
 * redacted. With `--schema` the config is validated (and the schema's secret marks apply); without, the
 * files and variables are merged as they are.
 */
export const register: RegisterCommand = (program: Command, io) => {
  const config = program.command('config').description('layered service configuration (phare/config)');
  config
    .command('print')
    .description('print the merged config with where each value came from (secrets redacted)')
    .option('--env <name>', 'environment name (default: $ENV, then $NODE_ENV, then "development")')
    .option('--dir <dir>', 'directory of default.yaml, <env>.yaml, local.yaml', 'config')
    .option(
      '--schema <module>',
      'module exporting the zod schema: file.ts (export "schema" or default) or file.ts#name',
    )
    .option('--env-prefix <prefix>', 'prefix of SECTION__KEY environment variables', '')
    .action(async (opts: { env?: string; dir: string; schema?: string; envPrefix: string }) => {
      const schema = opts.schema ? await importSchema(resolve(io.cwd, opts.schema)) : undefined;
      const base = {
        dir: resolve(io.cwd, opts.dir),
        envVars: io.env,
        envPrefix: opts.envPrefix,
        ...(opts.env ? { env: opts.env } : {}),
      };
      const loaded = schema ? (loadConfig({ ...base, schema }) as object) : loadConfig(base);
      io.stdout(printConfig(loaded));
    });
};

async function importSchema(spec: string): Promise<z.ZodType> {
  const hash = spec.lastIndexOf('#');
  const file = hash > 0 ? spec.slice(0, hash) : spec;
  const name = hash > 0 ? spec.slice(hash + 1) : undefined;
  if (!existsSync(file)) throw phareError('PHARE_ERR_INVALID_ARGUMENT', `--schema: ${file} does not exist`);
  const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const candidate = name ? mod[name] : (mod['schema'] ?? mod['default']);
  const looksLikeZod =
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof (candidate as z.ZodType).safeParse === 'function';
  if (!looksLikeZod) {
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `--schema: ${file} has no zod schema export ${name ? `"${name}"` : '"schema" or default'}`,
    );
  }
  return candidate as z.ZodType;
}
