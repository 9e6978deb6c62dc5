/**
 * Layered config: `default.yaml` < `{env}.yaml` < `local.yaml` < environment variables, validated by a zod
 * schema. Every value remembers the layer (file:line or variable) it came from, for errors and for
 * `phare config print`. The result is deeply frozen.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { type Document, isMap, isPair, isScalar, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { phareError } from '../api/index.ts';
import {
  childSchema,
  coerceEnv,
  extraKeys,
  isSecretPath,
  objectShape,
  type SchemaLeaf,
  schemaLeaves,
  unwrap,
} from './schema.ts';
import { didYouMean } from './suggest.ts';

/** Where a value came from. */
export interface ConfigSource {
  /** `default`, the environment name (e.g. `production`), `local`, `env` (variables) or `schema` (a schema default). */
  layer: string;
  /** The file, relative to the working directory, for file layers. */
  file?: string;
  line?: number;
  column?: number;
  /** The environment variable, for the `env` layer. */
  variable?: string;
}

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions<S extends z.ZodType | undefined = undefined> {
  /** Directory holding `default.yaml`, `{env}.yaml`, `local.yaml`. @default "./config" */
  dir?: string;
  /** Environment name. @default $ENV, then $NODE_ENV, then "development" */
  env?: string;
  /**
   * The zod schema. Objects are strict (unknown keys are errors) unless declared `z.looseObject`.
   * Without a schema the merged files are returned unvalidated (what `phare config print` does).
   */
  schema?: S;
  /** Environment variables. @default process.env */
  envVars?: Record<string, string | undefined>;
  /** Only variables starting with this prefix are read as `PREFIX` + `SECTION__KEY`. @default "" */
  envPrefix?: string;
}

/** Deeply read-only. */
export type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends Map<unknown, unknown> | Set<unknown> | Date | ((...a: never[]) => unknown)
    ? T
    : T extends object
      ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
      : T;

/** What {@link loadConfig} keeps about a loaded config, reachable from the frozen object. */
export interface ConfigInfo {
  env: string;
  dir: string;
  /** Files that existed and were read, lowest precedence first. */
  files: string[];
  /** Source of every key path (dot-joined), objects and leaves. */
  sources: ReadonlyMap<string, ConfigSource>;
  schema: z.ZodType | undefined;
}

const INFO = new WeakMap<object, ConfigInfo>();

type Path = (string | number)[];
type Plain = Record<string, unknown>;

const isPlain = (v: unknown): v is Plain =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

/** One parsed layer. */
interface Layer {
  layer: string;
  file?: string;
  data: Plain;
  /** Position of the value (or of its key) at `path` in the file. */
  locate?: (path: Path, key: boolean) => { line: number; column: number } | undefined;
  variables?: Map<string, string>;
}

/**
 * Loads, merges and validates the config; throws PHARE_ERR_INVALID_CONFIG listing every problem with its
 * file, line, key, what was expected and what was found.
 *
 * @example
 * import { z } from 'zod';
 * import { loadConfig, secret, serviceUrl } from 'phare/config';
 * const schema = z.strictObject({
 *   http: z.strictObject({ port: z.number().int().default(3000).meta({ env: 'PORT' }) }),
 *   database: z.strictObject({ url: secret(z.string()).meta({ env: 'DATABASE_URL' }), poolSize: z.number().default(10) }),
 *   billing: z.strictObject({ url: serviceUrl() }),
 * });
 * const config = loadConfig({ dir: 'config', schema });
 * config.database.poolSize; // number, frozen
 */
export function loadConfig<S extends z.ZodType>(
  options: LoadConfigOptions<S> & { schema: S },
): DeepReadonly<z.output<S>>;
export function loadConfig(options?: LoadConfigOptions): DeepReadonly<Plain>;
export function loadConfig(options: LoadConfigOptions<z.ZodType | undefined> = {}): unknown {
  const vars = options.envVars ?? process.env;
  const env = options.env ?? nonEmpty(vars['ENV']) ?? nonEmpty(vars['NODE_ENV']) ?? 'development';
  if (!/^[A-Za-z0-9][\w.-]*$/.test(env) || env === 'default' || env === 'local') {
    throw phareError(
      'PHARE_ERR_INVALID_CONFIG',
      `config env: expected a name like "production" (letters, digits, "_", ".", "-"; not "default" or "local"), got ${JSON.stringify(env)}`,
    );
  }
  const dir = resolve(options.dir ?? 'config');
  if (options.dir !== undefined && !(existsSync(dir) && statSync(dir).isDirectory())) {
    throw phareError('PHARE_ERR_INVALID_CONFIG', `config dir: ${options.dir} is not a directory`);
  }
  const schema = options.schema;
  const problems: string[] = [];

  const layers: Layer[] = [];
  for (const name of ['default', env, 'local']) {
    const layer = readYamlLayer(dir, name, problems);
    if (layer) layers.push(layer);
  }

  const filesRead = layers.map((l) => l.file).filter((f): f is string => f !== undefined);
  const fail = (): never => {
    const count = `${problems.length} problem${problems.length > 1 ? 's' : ''}`;
    throw phareError(
      'PHARE_ERR_INVALID_CONFIG',
      `config (env "${env}", ${filesRead.length ? filesRead.join(', ') : `no files in ${rel(dir)}`}): ${count}\n` +
        problems.map((p) => `  - ${p}`).join('\n'),
    );
  };
  // A file that does not parse would only add noise ("section missing") to the validation below.
  if (problems.length > 0) fail();

  const merged: Plain = {};
  const sources = new Map<string, ConfigSource>();
  for (const layer of layers) mergeLayer(merged, layer.data, layer, [], sources);

  const envLayer = readEnvLayer(vars, options.envPrefix ?? '', schema, merged, problems);
  if (envLayer) mergeLayer(merged, envLayer.data, envLayer, [], sources);

  const at = (path: Path): string => {
    // The nearest recorded source of the path or an ancestor.
    for (let i = path.length; i >= 0; i--) {
      const src = sources.get(key(path.slice(0, i)));
      if (src) return `${describeSource(src)} `;
    }
    return '';
  };

  let result: unknown = merged;
  if (schema) {
    // An unknown key is best pointed at by the position of the key itself, not of its value.
    const keyAt = (path: Path): string => {
      const src = sources.get(key(path));
      const layer = src?.file ? layers.find((l) => l.file === src.file) : undefined;
      const pos = layer?.locate?.(path, true);
      return pos && src?.file ? `${src.file}:${pos.line}:${pos.column} ` : at(path);
    };
    checkUnknownKeys(merged, schema, [], (path, k, known) => {
      const hint = didYouMean(k, known);
      problems.push(
        `${keyAt([...path, k])}${dotted([...path, k])}: unknown key${hint ? `; did you mean "${hint}"?` : ''}` +
          (known.length ? ` (known: ${known.join(', ')})` : ''),
      );
    });
    const parsed = schema.safeParse(merged);
    if (parsed.success) result = parsed.data;
    else {
      for (const issue of parsed.error.issues) {
        // Unknown keys were reported above, with positions and suggestions.
        if (issue.code === 'unrecognized_keys') {
          const missed = issue.keys.filter(
            (k) => !problems.some((p) => p.includes(`${dotted([...issue.path, k])}: unknown key`)),
          );
          for (const k of missed)
            problems.push(
              `${at([...(issue.path as Path), k])}${dotted([...(issue.path as Path), k])}: unknown key`,
            );
          continue;
        }
        const path = issue.path as Path;
        const found = getIn(merged, path);
        const secretValue = isSecretPath(schema, path);
        const what =
          issue.code === 'invalid_type'
            ? `expected ${issue.expected}`
            : issue.message.replace(/^Invalid input: /, '');
        const where = found === undefined ? '' : at(path);
        const hint = found === undefined ? missingHint(path, schema, options.envPrefix ?? '') : '';
        problems.push(
          `${where}${dotted(path) || '(root)'}: ${what}, found ${describeValue(found, secretValue)}${hint}`,
        );
      }
    }
  }

  if (problems.length > 0) fail();

  // Values the schema filled in (defaults) came from no layer.
  recordSchemaDefaults(result, [], sources);
  if (!isPlain(result)) {
    throw phareError('PHARE_ERR_INVALID_ARGUMENT', 'loadConfig schema: expected an object schema at the top');
  }
  const frozen = deepFreeze(result);
  INFO.set(frozen, {
    env,
    dir,
    files: filesRead,
    sources,
    schema,
  });
  return frozen;
}

/**
 * What {@link loadConfig} knows about a config object it returned: env, files read, and the source of
 * every key.
 *
 * @example
 * const config = loadConfig({ schema });
 * configInfo(config).sources.get('database.url'); // { layer: 'env', variable: 'DATABASE_URL' }
 */
export function configInfo(config: object): ConfigInfo {
  const info = INFO.get(config);
  if (!info) {
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      'configInfo: expected the object returned by loadConfig()',
    );
  }
  return info;
}

/**
 * The source of one key path, e.g. `configSource(config, 'database.url')`; undefined if unknown.
 *
 * @example
 * describeSource(configSource(config, 'http.port')!); // "config/production.yaml:2:9"
 */
export function configSource(config: object, path: string): ConfigSource | undefined {
  return configInfo(config).sources.get(path);
}

/**
 * A short human description of a source: `config/default.yaml:3:7`, `env DATABASE_URL`, `schema default`.
 *
 * @example
 * describeSource({ layer: 'env', variable: 'PORT' }); // "env PORT"
 */
export function describeSource(src: ConfigSource): string {
  if (src.variable) return `env ${src.variable}`;
  if (src.file) return `${src.file}${src.line ? `:${src.line}:${src.column ?? 1}` : ''}`;
  return src.layer === 'schema' ? 'schema default' : src.layer;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

// Paths in messages are relative to the working directory when inside it, else absolute.
const rel = (p: string) => {
  const r = relative(process.cwd(), p);
  return r === '' ? '.' : r.startsWith('..') ? p : r;
};
const key = (path: Path) => path.join('.');
const dotted = (path: readonly PropertyKey[]) =>
  path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('');

function readYamlLayer(dir: string, name: string, problems: string[]): Layer | undefined {
  const candidates = [`${name}.yaml`, `${name}.yml`].map((f) => join(dir, f)).filter((f) => existsSync(f));
  if (candidates.length === 0) return undefined;
  if (candidates.length > 1) {
    problems.push(`${rel(candidates[0] as string)}: both ${name}.yaml and ${name}.yml exist; keep one`);
  }
  const path = candidates[0] as string;
  const file = rel(path);
  const lineCounter = new LineCounter();
  const doc = parseDocument(readFileSync(path, 'utf8'), {
    lineCounter,
    prettyErrors: true,
    uniqueKeys: true,
  });
  for (const err of doc.errors) {
    const pos = err.linePos?.[0];
    const message = (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
    problems.push(`${file}${pos ? `:${pos.line}:${pos.col}` : ''}: YAML: ${message}`);
  }
  if (doc.errors.length > 0) return undefined;
  const data = doc.toJS({ maxAliasCount: 100 }) as unknown;
  if (data !== null && data !== undefined && !isPlain(data)) {
    problems.push(
      `${file}:1:1: expected a mapping of sections (key: value) at the top, found ${describeValue(data, false)}`,
    );
    return undefined;
  }
  const layerName = name;
  return {
    layer: layerName,
    file,
    data: (data ?? {}) as Plain,
    locate: (p, wantKey) => locate(doc, lineCounter, p, wantKey),
  };
}

function locate(doc: Document, lc: LineCounter, path: Path, wantKey: boolean) {
  let offset: number | undefined;
  if (wantKey && path.length > 0) {
    const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
    if (isMap(parent)) {
      const last = path[path.length - 1];
      const pair = parent.items.find(
        (it) => isPair(it) && isScalar(it.key) && String(it.key.value) === String(last),
      );
      const k = pair?.key as { range?: [number, number, number] } | undefined;
      offset = k?.range?.[0];
    }
  }
  if (offset === undefined) {
    const node = doc.getIn(path, true) as { range?: [number, number, number] } | undefined;
    offset = node?.range?.[0];
  }
  if (offset === undefined) return undefined;
  const pos = lc.linePos(offset);
  return { line: pos.line, column: pos.col };
}

/**
 * The environment layer: variables declared in the schema (`.meta({ env })`), then `SECTION__KEY`
 * names. Names match keys ignoring case and `_` (so `POOL_SIZE` is `poolSize` and `pool_size`). A
 * variable whose first segment names a known section but whose rest matches nothing is an error: it is
 * almost certainly a typo that would otherwise be silently ignored.
 */
function readEnvLayer(
  vars: Record<string, string | undefined>,
  prefix: string,
  schema: z.ZodType | undefined,
  merged: Plain,
  problems: string[],
): Layer | undefined {
  const norm = (s: string) => s.replace(/_/g, '').toUpperCase();
  const leaves: SchemaLeaf[] = schema ? schemaLeaves(schema).leaves : fileLeaves(merged);
  const data: Plain = {};
  const variables = new Map<string, string>();
  const set = (path: string[], value: unknown, variable: string) => {
    let cur = data;
    for (const seg of path.slice(0, -1)) {
      if (!isPlain(cur[seg])) cur[seg] = {};
      cur = cur[seg] as Plain;
    }
    cur[path[path.length - 1] as string] = value;
    variables.set(key(path), variable);
  };

  const byNormPath = new Map<string, SchemaLeaf>();
  for (const leaf of leaves) if (leaf.path.length >= 2) byNormPath.set(leaf.path.map(norm).join('__'), leaf);
  const sections = new Map<string, string[]>();
  for (const leaf of leaves) {
    if (leaf.path.length < 2) continue;
    const s = norm(leaf.path[0] as string);
    const list = sections.get(s) ?? [];
    list.push(
      leaf.path
        .slice(1)
        .map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase())
        .join('__'),
    );
    sections.set(s, list);
  }

  for (const [name, raw] of Object.entries(vars)) {
    if (raw === undefined || !name.startsWith(prefix)) continue;
    const body = name.slice(prefix.length);
    if (!body.includes('__')) continue;
    const segments = body.split('__');
    const leaf = byNormPath.get(segments.map(norm).join('__'));
    if (leaf) {
      set(leaf.path, coerceEnv(raw, leaf.type), name);
      continue;
    }
    const known = sections.get(norm(segments[0] as string));
    if (known && schema) {
      const hint = didYouMean(segments.slice(1).join('__'), known);
      const section = (segments[0] as string).toUpperCase();
      problems.push(
        `env ${name}: no config key matches${hint ? `; did you mean ${prefix}${section}__${hint}?` : ''}`,
      );
    }
  }
  // Declared names win over SECTION__KEY: they are the explicit contract (DATABASE_URL, PORT).
  for (const leaf of leaves) {
    const name = leaf.meta.env;
    if (!name || vars[name] === undefined) continue;
    set(leaf.path, coerceEnv(vars[name] as string, leaf.type), name);
  }
  if (variables.size === 0) return undefined;
  return { layer: 'env', data, variables };
}

/** Without a schema, the keys present in the files are what variables may override. */
function fileLeaves(merged: Plain): SchemaLeaf[] {
  const out: SchemaLeaf[] = [];
  const walk = (v: unknown, path: string[]) => {
    if (isPlain(v) && Object.keys(v).length > 0) {
      for (const [k, c] of Object.entries(v)) walk(c, [...path, k]);
      return;
    }
    const type =
      typeof v === 'number'
        ? 'number'
        : typeof v === 'boolean'
          ? 'boolean'
          : Array.isArray(v)
            ? 'array'
            : 'string';
    out.push({ path, type, meta: {} });
  };
  walk(merged, []);
  return out;
}

function mergeLayer(
  target: Plain,
  src: Plain,
  layer: Layer,
  path: string[],
  sources: Map<string, ConfigSource>,
) {
  for (const [k, v] of Object.entries(src)) {
    const p = [...path, k];
    if (isPlain(v) && isPlain(target[k])) {
      record(p, layer, sources, true);
      mergeLayer(target[k] as Plain, v, layer, p, sources);
      continue;
    }
    // Replacing a value: forget the sources of whatever was below it.
    const prefix = `${key(p)}.`;
    for (const s of [...sources.keys()]) if (s.startsWith(prefix)) sources.delete(s);
    target[k] = isPlain(v) ? structuredClone(v) : v;
    recordTree(v, p, layer, sources);
  }
}

function recordTree(v: unknown, path: string[], layer: Layer, sources: Map<string, ConfigSource>) {
  record(path, layer, sources, isPlain(v));
  if (isPlain(v)) for (const [k, c] of Object.entries(v)) recordTree(c, [...path, k], layer, sources);
}

function record(path: string[], layer: Layer, sources: Map<string, ConfigSource>, isObject: boolean) {
  const src: ConfigSource = { layer: layer.layer };
  if (layer.file) {
    src.file = layer.file;
    const pos = layer.locate?.(path, isObject);
    if (pos) {
      src.line = pos.line;
      src.column = pos.column;
    }
  }
  const variable = layer.variables?.get(key(path));
  if (variable) src.variable = variable;
  else if (layer.variables) {
    // An object only partly set by variables keeps its file source if it had one.
    if (sources.has(key(path))) return;
  }
  sources.set(key(path), src);
}

function recordSchemaDefaults(v: unknown, path: string[], sources: Map<string, ConfigSource>) {
  if (path.length > 0 && !sources.has(key(path))) sources.set(key(path), { layer: 'schema' });
  if (isPlain(v)) for (const [k, c] of Object.entries(v)) recordSchemaDefaults(c, [...path, k], sources);
}

function checkUnknownKeys(
  value: unknown,
  schema: z.ZodType,
  path: Path,
  report: (path: Path, key: string, known: string[]) => void,
) {
  const u = unwrap(schema);
  const shape = objectShape(u);
  if (shape && isPlain(value)) {
    const open = extraKeys(u) !== undefined;
    for (const [k, v] of Object.entries(value)) {
      if (Object.hasOwn(shape, k)) checkUnknownKeys(v, shape[k] as z.ZodType, [...path, k], report);
      else if (!open) report(path, k, Object.keys(shape));
    }
    return;
  }
  if (u.type === 'record' && isPlain(value)) {
    for (const [k, v] of Object.entries(value)) {
      const child = childSchema(u, k);
      if (child) checkUnknownKeys(v, child, [...path, k], report);
    }
  } else if (u.type === 'array' && Array.isArray(value)) {
    value.forEach((v, i) => {
      const child = childSchema(u, i);
      if (child) checkUnknownKeys(v, child, [...path, i], report);
    });
  }
}

function missingHint(path: Path, schema: z.ZodType, prefix: string): string {
  if (path.length === 0) return '';
  let cur: z.ZodType | undefined = schema;
  for (const p of path) cur = cur ? childSchema(unwrap(cur), p) : undefined;
  const declared = cur ? unwrap(cur).meta.env : undefined;
  const names =
    path.every((p) => typeof p === 'string') && path.length >= 2
      ? [
          `${prefix}${(path as string[]).map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('__')}`,
        ]
      : [];
  if (declared) names.unshift(declared);
  return ` (set it in a YAML layer${names.length ? ` or env ${names.join(' / ')}` : ''})`;
}

function getIn(v: unknown, path: Path): unknown {
  let cur = v;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[p];
  }
  return cur;
}

/** `string "ten"`, `number 3`, `nothing`; secrets never show their value. */
export function describeValue(v: unknown, secretValue: boolean): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  const type = Array.isArray(v) ? 'array' : typeof v;
  if (secretValue) return `a ${type} (secret, not shown)`;
  if (type === 'object' || type === 'array') {
    const json = JSON.stringify(v);
    return `${type} ${json.length > 60 ? `${json.slice(0, 57)}...` : json}`;
  }
  const text = typeof v === 'string' ? JSON.stringify(v) : String(v);
  return `${type} ${text.length > 60 ? `${text.slice(0, 57)}...` : text}`;
}

function deepFreeze<T>(v: T): T {
  if (Array.isArray(v) || isPlain(v)) {
    for (const c of Object.values(v as object)) deepFreeze(c);
    Object.freeze(v);
  }
  return v;
}
