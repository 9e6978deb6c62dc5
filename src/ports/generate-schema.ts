/**
 * Regenerates `schema/ports.schema.json` from the zod schema:
 *   npx node src/ports/generate-schema.ts
 * `schema.test.ts` fails when the checked-in file is stale.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { portsJsonSchema } from './schema.ts';

/** Where the checked-in JSON Schema lives. */
export const SCHEMA_PATH = fileURLToPath(new URL('../../schema/ports.schema.json', import.meta.url));

/**
 * The exact text of the checked-in JSON Schema file.
 *
 * @example
 * writeFileSync(SCHEMA_PATH, portsJsonSchemaText());
 */
export function portsJsonSchemaText(): string {
  return `${JSON.stringify(portsJsonSchema(), null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(SCHEMA_PATH, portsJsonSchemaText());
  process.stdout.write(`wrote ${SCHEMA_PATH}\n`);
}
