/**
 * The bus's config schema. `npx phare config print --dir examples/bus/config --schema examples/bus/config.ts`
 * prints the merged config with where each value came from.
 */
import { join } from 'node:path';
import { loadConfig } from 'phare/config';
import { z } from 'zod';
import { logSection, registrySection, serverSection, shutdownSection } from '../lib/schema.ts';

export const schema = z.strictObject({
  server: serverSection,
  registry: registrySection,
  shutdown: shutdownSection,
  log: logSection,
  bus: z.strictObject({
    /** WebSocket path clients connect to. */
    path: z.string().startsWith('/').default('/events'),
    /** Largest accepted frame. */
    maxPayloadBytes: z
      .number()
      .int()
      .min(1024)
      .default(64 * 1024),
  }),
});

/** default.yaml < <env>.yaml < local.yaml < environment variables, validated by `schema`. */
export const loadBusConfig = () => loadConfig({ dir: join(import.meta.dirname, 'config'), schema });
