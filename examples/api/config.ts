/**
 * The api's config schema. `npx phare config print --dir examples/api/config --schema examples/api/config.ts`
 * prints the merged config with where each value came from (the password redacted).
 */
import { join } from 'node:path';
import { loadConfig, secret } from 'phare/config';
import { z } from 'zod';
import { logSection, registrySection, serverSection, shutdownSection, wsUrl } from '../lib/schema.ts';

export const schema = z.strictObject({
  server: serverSection,
  registry: registrySection,
  shutdown: shutdownSection,
  log: logSection,
  database: z.strictObject({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535),
    user: z.string().min(1),
    /** Never in a checked-in file: set PGPASSWORD (or DATABASE__PASSWORD) or local.yaml. */
    password: secret(z.string()).optional().meta({ env: 'PGPASSWORD' }),
    name: z.string().min(1),
    poolSize: z.number().int().min(1).max(100).default(5),
  }),
  bus: z.strictObject({
    /** Where `notes.created` events go. */
    url: wsUrl(),
  }),
});

/** default.yaml < <env>.yaml < local.yaml < environment variables, validated by `schema`. */
export const loadApiConfig = () => loadConfig({ dir: join(import.meta.dirname, 'config'), schema });
