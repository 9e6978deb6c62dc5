/**
 * Reading a zod schema's structure: which keys exist (for unknown-key errors and environment names),
 * which values are secret, which environment variable a key declares, and what type an environment
 * string should become. Uses zod 4's `_zod.def`, the introspection surface its own JSON-schema export uses.
 */
import type { z } from 'zod';

/** Metadata a config schema may carry through zod's `.meta()`. */
export interface ConfigMeta {
  /** An environment variable that sets this key (in addition to `SECTION__KEY`). */
  env?: string;
  /** The value is redacted when the config is printed or quoted in an error. */
  secret?: boolean;
}

type Def = { type: string; [k: string]: unknown };
const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch', 'nonoptional']);

/** A schema with its wrappers (optional, default, pipe input…) removed, and the metadata met on the way. */
export interface Unwrapped {
  base: z.ZodType;
  type: string;
  meta: ConfigMeta;
}

/** Removes wrappers; a pipe is read from its input side, which is what files and variables contain. */
export function unwrap(schema: z.ZodType): Unwrapped {
  const meta: ConfigMeta = {};
  let cur = schema;
  for (let i = 0; i < 50; i++) {
    const m = (cur as { meta?: () => unknown }).meta?.() as ConfigMeta | undefined;
    if (m) {
      if (m.env !== undefined && meta.env === undefined) meta.env = m.env;
      if (m.secret) meta.secret = true;
    }
    const def = defOf(cur);
    if (WRAPPERS.has(def.type)) cur = def['innerType'] as z.ZodType;
    else if (def.type === 'pipe') cur = def['in'] as z.ZodType;
    else if (def.type === 'lazy') cur = (def['getter'] as () => z.ZodType)();
    else break;
  }
  return { base: cur, type: defOf(cur).type, meta };
}

/** The known keys of an object schema, or undefined when `schema` is not an object. */
export function objectShape(u: Unwrapped): Record<string, z.ZodType> | undefined {
  return u.type === 'object' ? (defOf(u.base)['shape'] as Record<string, z.ZodType>) : undefined;
}

/**
 * Whether an object schema accepts keys outside its shape. Config objects are strict by policy (typos
 * are the commonest config bug), so only an explicit `z.looseObject` / `.catchall(x)` opens one.
 */
export function extraKeys(u: Unwrapped): z.ZodType | undefined {
  const catchall = defOf(u.base)['catchall'] as z.ZodType | undefined;
  if (!catchall) return undefined;
  return defOf(catchall).type === 'never' ? undefined : catchall;
}

/** The schema of `key` inside `u` (object key, record value, array element), or undefined if unknown. */
export function childSchema(u: Unwrapped, key: string | number): z.ZodType | undefined {
  const shape = objectShape(u);
  if (shape) return Object.hasOwn(shape, String(key)) ? shape[String(key)] : extraKeys(u);
  if (u.type === 'record') return defOf(u.base)['valueType'] as z.ZodType;
  if (u.type === 'array') return defOf(u.base)['element'] as z.ZodType;
  return undefined;
}

/** True when the value at `path` (or any object above it) is marked secret. */
export function isSecretPath(schema: z.ZodType | undefined, path: readonly (string | number)[]): boolean {
  let cur = schema;
  for (let i = 0; ; i++) {
    if (!cur) return false;
    const u = unwrap(cur);
    if (u.meta.secret) return true;
    if (i === path.length) return false;
    cur = childSchema(u, path[i] as string | number);
  }
}

/** A leaf of the schema's object tree: where environment variables may point. */
export interface SchemaLeaf {
  path: string[];
  type: string;
  meta: ConfigMeta;
}

/** Every key reachable through object shapes; objects are descended, anything else is a leaf. */
export function schemaLeaves(schema: z.ZodType): { leaves: SchemaLeaf[]; objects: string[][] } {
  const leaves: SchemaLeaf[] = [];
  const objects: string[][] = [];
  const walk = (s: z.ZodType, path: string[], depth: number) => {
    const u = unwrap(s);
    const shape = objectShape(u);
    if (shape && depth < 20) {
      objects.push(path);
      for (const [k, child] of Object.entries(shape)) walk(child, [...path, k], depth + 1);
      return;
    }
    leaves.push({ path, type: u.type, meta: u.meta });
  };
  walk(schema, [], 0);
  return { leaves, objects };
}

/**
 * Turns an environment string into the type the schema expects, so `DATABASE__POOL_SIZE=10` validates
 * as a number. When the string does not convert, it is returned unchanged and validation reports it.
 */
export function coerceEnv(raw: string, type: string): unknown {
  const s = raw.trim();
  switch (type) {
    case 'number':
      return s !== '' && Number.isFinite(Number(s)) ? Number(s) : raw;
    case 'bigint':
      return /^-?\d+$/.test(s) ? BigInt(s) : raw;
    case 'boolean': {
      const l = s.toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(l)) return true;
      if (['false', '0', 'no', 'off'].includes(l)) return false;
      return raw;
    }
    case 'array':
    case 'tuple':
      if (s.startsWith('[')) return parseJson(raw);
      return s === '' ? [] : s.split(',').map((x) => x.trim());
    case 'object':
    case 'record':
      return s.startsWith('{') ? parseJson(raw) : raw;
    case 'null':
      return s === 'null' || s === '' ? null : raw;
    default:
      return raw;
  }
}

function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/**
 * Marks a schema as secret: its value is redacted by `printConfig` and never quoted in errors.
 *
 * @example
 * const schema = z.strictObject({ db: z.strictObject({ password: secret(z.string()) }) });
 */
export function secret<S extends z.ZodType>(schema: S): S {
  const prev = ((schema as { meta?: () => unknown }).meta?.() ?? {}) as Record<string, unknown>;
  return schema.meta({ ...prev, secret: true }) as S;
}
