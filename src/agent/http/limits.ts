/**
 * Request size limits (issue 11 §5): every request body is bounded so that decoding, validating and
 * applying it — and every later read that merges it (`catalog/services` merges the tags of all
 * instances) — costs at most a few milliseconds of event-loop time. A 100,000-tag service (870 KB) once
 * froze the agent for 8 s per change.
 *
 * The check runs on the parsed JSON *before* the schema decoder, in one iterative walk, so an oversized
 * array never reaches the (per-element, much slower) schema. Consul's own limits are kept where it has them
 * (service/node Meta: 64 pairs, keys ≤ 128 chars, values ≤ 512 chars — see validate.ts); the rest are
 * Phare's and listed in docs/api/README.md#limits.
 */
import { HttpError } from './http-error.ts';

/** The limits, documented in docs/api/README.md#limits. */
export const REQUEST_LIMITS = {
  /** Bytes in a request body (413 beyond). */
  bodyBytes: 512 * 1024,
  /** Tags of one service (`Tags`, and `ServiceTags` where a body echoes them). */
  tags: 256,
  /** Checks in one registration (`Check` + `Checks`). */
  checks: 64,
  /** Entries of `Meta` / `NodeMeta`: Consul's limit, enforced with Consul's text by validate.ts. */
  meta: 64,
  /** Header names of an HTTP check, and values per name. */
  headers: 64,
  /** Any other array or object. */
  entries: 256,
  /** Nesting depth of the body. */
  depth: 16,
  /** JSON values (strings, numbers, objects, arrays…) in the whole body. */
  values: 10_000,
} as const;

/**
 * Folded field name (as decode.ts matches keys: case-insensitive, `_` ignored) → its entry limit. Meta is
 * not here: up to `entries` it reaches validate.ts, which answers Consul's own 64-pair text.
 */
const FIELD_LIMITS = new Map<string, number>([
  ['tags', REQUEST_LIMITS.tags],
  ['servicetags', REQUEST_LIMITS.tags],
  ['checks', REQUEST_LIMITS.checks],
  ['header', REQUEST_LIMITS.headers],
]);

const fold = (key: string) => key.toLowerCase().replace(/_/g, '');

/**
 * Throws a 400 naming the field and the limit when a parsed body is larger than {@link REQUEST_LIMITS}
 * allows. Linear in the body, iterative (no recursion on hostile nesting).
 *
 * @example
 * checkBodyLimits({ Name: 'web', Tags: Array(300).fill('x') });
 * // HttpError 400: Request decode failed: Tags has 300 entries; the limit is 256 (docs/api/README.md#limits)
 */
export function checkBodyLimits(json: unknown): void {
  if (json === null || typeof json !== 'object') return;
  const stack: { value: object; path: string; depth: number; field: string }[] = [
    { value: json, path: '', depth: 1, field: '' },
  ];
  let values = 1;
  while (stack.length > 0) {
    const { value, path, depth, field } = stack.pop() as (typeof stack)[number];
    const isArray = Array.isArray(value);
    const keys = isArray ? undefined : Object.keys(value);
    const n = isArray ? value.length : (keys as string[]).length;
    // A header's value list is bounded like the header names.
    const limit = FIELD_LIMITS.get(field) ?? REQUEST_LIMITS.entries;
    if (n > limit) tooBig(`${path || 'body'} has ${n} entries; the limit is ${limit}`);
    values += n;
    if (values > REQUEST_LIMITS.values) {
      tooBig(`the body has more than ${REQUEST_LIMITS.values} JSON values`);
    }
    for (let i = 0; i < n; i++) {
      const key = isArray ? '' : ((keys as string[])[i] as string);
      const v = isArray ? (value as unknown[])[i] : (value as Record<string, unknown>)[key];
      if (v === null || typeof v !== 'object') continue;
      const here = isArray ? `${path}[${i}]` : path ? `${path}.${key}` : key;
      if (depth + 1 > REQUEST_LIMITS.depth)
        tooBig(`${here} is nested deeper than ${REQUEST_LIMITS.depth} levels`);
      // Header values: `Header.X: [..]` is limited like the names.
      const childField = field === 'header' ? 'header' : isArray ? field : fold(key);
      stack.push({ value: v, path: here, depth: depth + 1, field: childField });
    }
  }
}

function tooBig(what: string): never {
  throw new HttpError(400, `Request decode failed: ${what} (docs/api/README.md#limits)`);
}
