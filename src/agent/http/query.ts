/**
 * Query-string conventions (Consul docs, HTTP API overview): presence flags, blocking parameters, consistency
 * modes, `?dc=`, repeatable `?tag=` and `?node-meta=`.
 */
import { parseDuration } from '../../api/index.ts';
import { HttpError } from './errors.ts';

/** Fastify's parsed query: a value, or an array when repeated. */
export type QueryParams = Record<string, string | string[] | undefined>;

/** Blocking parameters, resolved. */
export interface Blocking {
  /** 0 = answer at once. */
  index: number;
  /** How long to wait for a change, jitter included. */
  waitMs: number;
  consistency: 'leader' | 'stale' | 'consistent';
}

const DEFAULT_WAIT_MS = 5 * 60_000;
const MAX_WAIT_MS = 10 * 60_000;

/** The last value of a possibly repeated parameter. */
export function one(q: QueryParams, key: string): string | undefined {
  const v = q[key];
  return Array.isArray(v) ? v[v.length - 1] : v;
}

/** All values of a repeatable parameter. */
export function many(q: QueryParams, key: string): string[] {
  const v = q[key];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** Go's `strconv.ParseBool`, which Consul uses for boolean parameters; undefined if not a boolean. */
export function parseBool(v: string): boolean | undefined {
  return TRUE.has(v) ? true : FALSE.has(v) ? false : undefined;
}

/** A presence flag: `?passing` or `?passing=` on; otherwise Go's ParseBool; other values 400. */
export function flag(q: QueryParams, key: string): boolean {
  const v = one(q, key);
  if (v === undefined) return false;
  if (v === '') return true;
  const b = parseBool(v);
  if (b === undefined) throw new HttpError(400, `Invalid value for ?${key}`);
  return b;
}

/**
 * Reads `?index`, `?wait`, `?stale`, `?consistent`. Wait defaults to 5 m, is capped at 10 m, and gets
 * Consul's jitter: + random [0, wait/16), so clients sizing their timeouts on `wait·17/16` never time out.
 */
export function blocking(q: QueryParams, random: () => number = Math.random): Blocking {
  const stale = flag(q, 'stale');
  const consistent = flag(q, 'consistent');
  if (stale && consistent)
    throw new HttpError(400, 'Cannot specify ?stale with ?consistent, conflicting semantics.');
  if (consistent && flag(q, 'cached'))
    throw new HttpError(400, 'Cannot specify ?cached with ?consistent, conflicting semantics.');
  const consistency = stale ? 'stale' : consistent ? 'consistent' : 'leader';
  const rawIndex = one(q, 'index');
  let index = 0;
  if (rawIndex !== undefined && rawIndex !== '') {
    if (!/^\d+$/.test(rawIndex)) throw new HttpError(400, 'Invalid index');
    index = Number(rawIndex);
    if (!Number.isSafeInteger(index)) throw new HttpError(400, 'Invalid index');
  }
  let waitMs = DEFAULT_WAIT_MS;
  const rawWait = one(q, 'wait');
  if (rawWait !== undefined && rawWait !== '') {
    let w: number;
    try {
      w = parseDuration(rawWait);
    } catch {
      throw new HttpError(400, 'Invalid wait time');
    }
    waitMs = w <= 0 ? DEFAULT_WAIT_MS : Math.min(w, MAX_WAIT_MS);
  }
  waitMs += random() * (waitMs / 16);
  return { index, waitMs, consistency };
}

/** `?dc=`: only our own datacenter exists; another one is Consul's 500 `No path to datacenter`. */
export function checkDatacenter(q: QueryParams, datacenter: string): void {
  const dc = one(q, 'dc');
  if (dc !== undefined && dc !== '' && dc.toLowerCase() !== datacenter.toLowerCase()) {
    throw new HttpError(500, 'No path to datacenter');
  }
}

/** `?node-meta=key:value` (repeatable, AND) as a predicate over node meta. */
export function nodeMetaFilter(q: QueryParams): ((meta: Record<string, string>) => boolean) | undefined {
  const pairs = many(q, 'node-meta').map((p) => {
    const i = p.indexOf(':');
    return i < 0 ? [p, ''] : [p.slice(0, i), p.slice(i + 1)];
  });
  if (pairs.length === 0) return undefined;
  return (meta) => pairs.every(([k, v]) => meta[k as string] === v);
}

/** A stable cache key for a read: path plus every parameter except the blocking ones. */
export function cacheKey(path: string, q: QueryParams): string {
  const keys = Object.keys(q)
    .filter(
      (k) =>
        k !== 'index' &&
        k !== 'wait' &&
        k !== 'stale' &&
        k !== 'consistent' &&
        k !== 'token' &&
        k !== 'cached',
    )
    .sort();
  if (keys.length === 0) return path;
  return `${path}?${keys.map((k) => `${k}=${many(q, k).join('\u0001')}`).join('&')}`;
}
