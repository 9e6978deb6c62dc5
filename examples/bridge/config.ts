/**
 * The bridge's config schema. `npx phare config print --dir examples/bridge/config --schema examples/bridge/config.ts`
 * prints the merged config with where each value came from.
 */
import { join } from 'node:path';
import { loadConfig, serviceUrl } from 'phare/config';
import { z } from 'zod';
import { logSection, registrySection, serverSection, shutdownSection, wsUrl } from '../lib/schema.ts';

export const schema = z.strictObject({
  server: serverSection,
  registry: registrySection,
  shutdown: shutdownSection,
  log: logSection,
  bus: z.strictObject({ url: wsUrl() }),
  api: z.strictObject({
    /** `phare://api` (resolved through the agent at call time) or a plain `http://host:port`. */
    url: serviceUrl(),
    /** Budget of one call, all retries included. */
    deadlineMs: z.number().int().min(100).default(5000),
  }),
});

/** default.yaml < <env>.yaml < local.yaml < environment variables, validated by `schema`. */
export const loadBridgeConfig = () => loadConfig({ dir: join(import.meta.dirname, 'config'), schema });
