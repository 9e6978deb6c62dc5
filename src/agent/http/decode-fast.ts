/**
 * A hand-written decoder for the common shape of `PUT /v1/agent/service/register`: the registration every SDK
 * and `consul services register` sends (exact field names, plain values, a `Check` or `Checks` of the usual
 * kinds). It returns what the zod schema (decode.ts `serviceRegisterSchema`) returns for such a body, in a
 * fraction of the time — the schema walks some eighty optional fields per object, and on the cluster's write
 * path that was the receiving agent's largest single cost (BENCHMARKS.md, issue 12). For **anything else** it
 * answers `undefined` and the caller decodes with the schema, so every unusual spelling (case-folded or
 * snake_case keys), every wrong type and every error text stays the schema's. It never throws.
 *
 * test/decode-fast.test.ts checks that both decoders agree on every body it produces, valid and not.
 */
import { durationFromJson } from '../../api/index.ts';
import type { ServiceBody } from './decode.ts';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

function strings(v: unknown): string[] | undefined {
  if (!Array.isArray(v)) return undefined;
  for (const s of v) if (typeof s !== 'string') return undefined;
  return v.slice();
}

function stringMap(v: unknown): Record<string, string> | undefined {
  if (!isObject(v)) return undefined;
  const out: Record<string, string> = {};
  for (const k in v) {
    if (!Object.hasOwn(v, k)) continue;
    const s = v[k];
    if (typeof s !== 'string') return undefined;
    out[k] = s;
  }
  return out;
}

/** Check fields by kind of value; a field not listed sends the body to the schema. */
const CHECK_STRING = new Set([
  'CheckID',
  'ID',
  'Name',
  'Notes',
  'Status',
  'ServiceID',
  'HTTP',
  'Method',
  'Body',
  'TCP',
  'TLSServerName',
]);
const CHECK_INT = new Set([
  'SuccessBeforePassing',
  'FailuresBeforeWarning',
  'FailuresBeforeCritical',
  'OutputMaxSize',
]);
const CHECK_BOOL = new Set(['TLSSkipVerify', 'DisableRedirects']);
const CHECK_DURATION = new Set(['TTL', 'Interval', 'Timeout', 'DeregisterCriticalServiceAfter']);

function check(v: unknown): Json | undefined {
  if (!isObject(v)) return undefined;
  const out: Json = {};
  for (const k in v) {
    if (!Object.hasOwn(v, k)) continue;
    const x = v[k];
    if (CHECK_STRING.has(k)) {
      if (typeof x !== 'string') return undefined;
    } else if (CHECK_INT.has(k)) {
      if (!isInt(x)) return undefined;
    } else if (CHECK_BOOL.has(k)) {
      if (typeof x !== 'boolean') return undefined;
    } else if (CHECK_DURATION.has(k)) {
      if (typeof x !== 'string' && typeof x !== 'number') return undefined;
      let ms: number;
      try {
        ms = durationFromJson(x);
      } catch {
        return undefined; // the schema words the error
      }
      out[k] = ms;
      continue;
    } else {
      return undefined;
    }
    out[k] = x;
  }
  return out;
}

/**
 * The decoded registration, exactly as the schema would decode it, when `json` has the common shape; else
 * `undefined` (decode it with the schema).
 *
 * @example
 * fastServiceBody({ Name: 'web', Port: 80, Check: { TTL: '10s' } }); // { Name: 'web', Port: 80, Check: { TTL: 10000 } }
 * fastServiceBody({ name: 'web' }); // undefined: a folded key, the schema binds it
 */
export function fastServiceBody(json: unknown): ServiceBody | undefined {
  if (!isObject(json)) return undefined;
  const out: Json = {};
  for (const k in json) {
    if (!Object.hasOwn(json, k)) continue;
    const x = json[k];
    switch (k) {
      case 'Name':
      case 'ID':
      case 'Address':
      case 'Kind':
      case 'SocketPath':
        if (typeof x !== 'string') return undefined;
        out[k] = x;
        break;
      case 'Port':
        if (!isInt(x)) return undefined;
        out[k] = x;
        break;
      case 'EnableTagOverride':
        if (typeof x !== 'boolean') return undefined;
        out[k] = x;
        break;
      case 'Tags': {
        const t = strings(x);
        if (!t) return undefined;
        out[k] = t;
        break;
      }
      case 'Meta': {
        const m = stringMap(x);
        if (!m) return undefined;
        out[k] = m;
        break;
      }
      case 'Weights': {
        if (!isObject(x)) return undefined;
        const w: Json = {};
        for (const f in x) {
          if (!Object.hasOwn(x, f)) continue;
          if ((f !== 'Passing' && f !== 'Warning') || !isInt(x[f])) return undefined;
          w[f] = x[f];
        }
        // Go's zero values for a missing weight, as the schema's defaults
        w['Passing'] ??= 0;
        w['Warning'] ??= 0;
        out[k] = w;
        break;
      }
      case 'Check': {
        const c = check(x);
        if (!c) return undefined;
        out[k] = c;
        break;
      }
      case 'Checks': {
        if (!Array.isArray(x)) return undefined;
        const cs: Json[] = [];
        for (const item of x) {
          const c = check(item);
          if (!c) return undefined;
          cs.push(c);
        }
        out[k] = cs;
        break;
      }
      default:
        return undefined;
    }
  }
  return out as ServiceBody;
}
