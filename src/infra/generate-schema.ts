/**
 * Regenerates `schema/phare.schema.json` (the JSON Schema of `phare.yaml`, for editors) from the zod schema:
 *   npx node src/infra/generate-schema.ts
 * `infra.test.ts` fails when the checked-in file is stale.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { phareFileSchema } from './schema.ts';

/** Where the checked-in JSON Schema lives. */
export const SCHEMA_PATH = fileURLToPath(new URL('../../schema/phare.schema.json', import.meta.url));

/**
 * The exact text of the checked-in JSON Schema file.
 *
 * @example
 * writeFileSync(SCHEMA_PATH, phareJsonSchemaText());
 */
export function phareJsonSchemaText(): string {
  const schema = z.toJSONSchema(phareFileSchema, { target: 'draft-2020-12', io: 'input' }) as unknown as {
    properties: { components: { items: unknown } };
  };
  // a component may also be just its folder (zod's preprocess step has no JSON Schema of its own)
  const items = schema.properties.components.items;
  schema.properties.components.items = {
    anyOf: [{ type: 'string', minLength: 1, description: 'folder' }, items],
  };
  return `${JSON.stringify(schema, null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(SCHEMA_PATH, phareJsonSchemaText());
  process.stdout.write(`wrote ${SCHEMA_PATH}\n`);
}
