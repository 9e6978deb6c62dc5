import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { SCHEMA_PATH } from './generate-schema.ts';
import { portsJsonSchema } from './schema.ts';

test('schema/ports.schema.json is the JSON Schema generated from the zod schema', () => {
  // Compared as data, not text: the formatter may re-wrap the checked-in file.
  const checkedIn = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8'));
  assert.deepEqual(checkedIn, portsJsonSchema(), 'stale: run npx node src/ports/generate-schema.ts');
});

test('the JSON Schema offers the target types and forbids unknown keys', () => {
  const text = JSON.stringify(portsJsonSchema());
  for (const type of ['yaml', 'json', 'dotenv', 'compose-port', 'compose-env'])
    assert.ok(text.includes(`"const":"${type}"`));
  assert.equal((portsJsonSchema() as { additionalProperties?: unknown }).additionalProperties, false);
});
