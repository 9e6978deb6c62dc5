/**
 * The root `phare.yaml` (zod, the project's one schema library): the monorepo's components, for any
 * language. npm workspaces need no `phare.yaml`; it is for components npm does not know (the seeds' Python
 * services) or to override a workspace's commands. Loaded with line numbers so every mistake is reported as
 * `phare.yaml:7: components[1].test.integration: expected a string, got 3`.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { parseDuration, phareError } from '../api/index.ts';

/** The test categories, in the order a component runs them. */
export const CATEGORIES = ['unit', 'integration', 'e2e'] as const;
/** One test category. */
export type Category = (typeof CATEGORIES)[number];

const NAME = /^[a-z0-9][a-z0-9_.-]*$/;

const command = z.string().min(1).meta({ description: 'shell command, run in the component folder (sh -c)' });

const duration = z
  .string()
  .refine((s) => {
    try {
      return parseDuration(s) > 0;
    } catch {
      return false;
    }
  }, 'a duration such as 90s or 2m')
  .meta({ description: 'a duration: 90s, 2m, 500ms' });

const componentSchema = z
  .strictObject({
    path: z.string().min(1).meta({ description: 'folder of the component, relative to phare.yaml' }),
    name: z
      .string()
      .regex(NAME, 'a component name: lower case letters, digits, ".", "-" or "_"')
      .optional()
      .meta({ description: 'component name; @default the folder name' }),
    test: z
      .strictObject({ unit: command.optional(), integration: command.optional(), e2e: command.optional() })
      .optional()
      .meta({ description: 'test command per category' }),
    depends_on: z
      .array(z.string().min(1))
      .optional()
      .meta({ description: 'components this one depends on (for --affected)' }),
    env: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name'), z.string())
      .optional()
      .meta({ description: 'extra environment for the test commands' }),
    wait_timeout: duration
      .optional()
      .meta({ description: 'how long to wait for healthy services; @default 120s' }),
  })
  .meta({ description: 'A component: a folder with its own test commands and, optionally, compose files' });

/** The root `phare.yaml`. */
export const phareFileSchema = z
  .strictObject({
    $schema: z.string().optional(),
    version: z.literal(1).optional().meta({ description: 'format version; always 1' }),
    ports: z.string().min(1).optional().meta({ description: 'path of ports.yaml; @default ports.yaml' }),
    components: z
      .array(z.preprocess((v) => (typeof v === 'string' ? { path: v } : v), componentSchema))
      .optional()
      .meta({ description: 'the components: a folder path, or an object with path, test, depends_on, …' }),
  })
  .meta({
    title: 'Phare phare.yaml',
    description: 'The components of a monorepo and how each one is tested',
  });

/** A parsed `phare.yaml`. */
export type PhareFile = z.infer<typeof phareFileSchema>;
/** One component entry of `phare.yaml` (object form). */
export type ComponentSpec = z.infer<typeof componentSchema>;

function keyString(keys: readonly PropertyKey[]): string {
  let out = '';
  for (const k of keys) {
    if (typeof k === 'number') out += `[${k}]`;
    else out += out === '' ? String(k) : `.${String(k)}`;
  }
  return out;
}

function shortJson(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * Parses `phare.yaml` text; throws PHARE_ERR_INVALID_CONFIG naming the file, line and field of every mistake.
 *
 * @example
 * const file = parsePhareFile('components:\n  - path: api\n    test: { unit: pytest }\n', 'phare.yaml');
 */
export function parsePhareFile(source: string, name: string): PhareFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const line = e?.linePos?.[0]?.line;
    throw phareError(
      'PHARE_ERR_INVALID_CONFIG',
      `${name}${line ? `:${line}` : ''}: not valid YAML: ${e?.message.split('\n')[0] ?? ''}`,
    );
  }
  const parsed = phareFileSchema.safeParse(doc.toJS() ?? {}, { reportInput: true });
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    const path = [...issue.path];
    if (issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined) path.push(issue.keys[0]);
    const node = doc.getIn(path.map(String), true) as { range?: [number] } | undefined;
    const line = node?.range ? lineCounter.linePos(node.range[0]).line : undefined;
    const input = (issue as { input?: unknown }).input;
    let what = issue.message;
    if (issue.code === 'unrecognized_keys') what = `unknown key (expected one of the keys the schema lists)`;
    else if (issue.code === 'invalid_type')
      what = `expected ${issue.expected}, got ${input === undefined ? 'nothing' : shortJson(input)}`;
    else if (input !== undefined) what = `${issue.message}, got ${shortJson(input)}`;
    return `${name}${line ? `:${line}` : ''}: ${keyString(path) || '(root)'}: ${what}`;
  });
  throw phareError('PHARE_ERR_INVALID_CONFIG', lines.join('\n'));
}

/**
 * Reads and validates `phare.yaml`.
 *
 * @example
 * const file = loadPhareFile('/repo/phare.yaml');
 */
export function loadPhareFile(path: string): PhareFile {
  let source: string;
  try {
    source = readFileSync(path, 'utf8');
  } catch (err) {
    throw phareError(
      'PHARE_ERR_INVALID_CONFIG',
      `${path}: cannot read (${(err as NodeJS.ErrnoException).code})`,
      {
        cause: err,
      },
    );
  }
  return parsePhareFile(source, 'phare.yaml');
}
