/**
 * Consul's ACL rule language (developer.hashicorp.com/consul/docs/security/acl/acl-rules): a policy's `Rules`
 * are HCL or JSON, e.g.
 *
 *     service_prefix "web-" { policy = "write" }
 *     key_prefix "" { policy = "read" }
 *     acl = "read"
 *
 * HCL is parsed by `js-hcl-parser`, a build of hashicorp/hcl v1 — the parser Consul itself decodes rules
 * with — so the accepted syntax and the parse errors (`At 1:25: object expected closing RBRACE got: EOF`) are
 * Consul's. Rules starting with `{` are JSON (HCL v1 reads JSON the same way); both forms of a block are
 * accepted: `{"service": {"web": {"policy": "write"}}}` and the list form HCL produces.
 */
import { createRequire } from 'node:module';

/** Resources named by a segment (`service "web"`), each with a `_prefix` form. */
export const SEGMENT_RESOURCES = [
  'service',
  'node',
  'key',
  'session',
  'agent',
  'query',
  'event',
  'identity',
] as const;
export type SegmentResource = (typeof SEGMENT_RESOURCES)[number];

/** Resources with one level for the whole datacenter (`acl = "write"`). */
export const GLOBAL_RESOURCES = ['acl', 'operator', 'keyring', 'mesh', 'peering'] as const;
export type GlobalResource = (typeof GLOBAL_RESOURCES)[number];

/** A rule's level. `list` exists for keys only (listing with `?keys`/`?recurse`). */
export type Level = 'read' | 'write' | 'deny' | 'list';

/** Rules of one segment resource: exact names and prefixes. */
export interface SegmentRules {
  exact: Map<string, Level>;
  prefix: Map<string, Level>;
}

/** A parsed policy (or several merged). */
export interface Rules {
  segments: Record<SegmentResource, SegmentRules>;
  global: Partial<Record<GlobalResource, Level>>;
}

/** A rule text Consul would refuse; the message says where and what. */
export class RulesError extends Error {
  override name = 'RulesError';
}

/** Empty rules. */
export function emptyRules(): Rules {
  const segments = {} as Record<SegmentResource, SegmentRules>;
  for (const r of SEGMENT_RESOURCES) segments[r] = { exact: new Map(), prefix: new Map() };
  return { segments, global: {} };
}

/**
 * Consul's merge order when several policies name the same segment: deny over write over list over read
 * (acl/policy_merger.go `takesPrecedenceOver`).
 */
const RANK: Record<Level, number> = { deny: 3, write: 2, list: 1, read: 0 };

function mergeLevel(a: Level | undefined, b: Level): Level {
  return a === undefined || RANK[b] > RANK[a] ? b : a;
}

/** Merges `src` into `into` (Consul's policy merger). */
export function mergeRules(into: Rules, src: Rules): Rules {
  for (const r of SEGMENT_RESOURCES) {
    for (const kind of ['exact', 'prefix'] as const) {
      const to = into.segments[r][kind];
      for (const [name, level] of src.segments[r][kind]) to.set(name, mergeLevel(to.get(name), level));
    }
  }
  for (const [g, level] of Object.entries(src.global) as [GlobalResource, Level][])
    into.global[g] = mergeLevel(into.global[g], level);
  return into;
}

let hcl: { parse(text: string): string } | undefined;
/** Loaded on first use: it is a 1.6 MB compiled parser (about 0.2 s), needed only when a policy is written. */
function hclParser(): { parse(text: string): string } {
  hcl ??= createRequire(import.meta.url)('js-hcl-parser') as { parse(text: string): string };
  return hcl;
}

/** Parses rules text (HCL or JSON) to its raw tree. */
function parseTree(text: string): Record<string, unknown> {
  const trimmed = text.trim();
  if (trimmed === '') return {};
  if (trimmed.startsWith('{')) {
    try {
      const v = JSON.parse(trimmed) as unknown;
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('expected a JSON object');
      return v as Record<string, unknown>;
    } catch (err) {
      throw new RulesError(`Failed to parse ACL rules: ${(err as Error).message}`);
    }
  }
  const out = hclParser().parse(text);
  // js-hcl-parser returns the JSON text, or "unable to parse JSON: <hcl error>" instead of throwing
  if (!out.startsWith('{'))
    throw new RulesError(`Failed to parse ACL rules: ${out.replace(/^unable to parse JSON: /, '')}`);
  return JSON.parse(out) as Record<string, unknown>;
}

/** The (name, body) pairs of a block, from either form (`{name: body}` or `[{name: [body]}]`). */
function blocks(v: unknown, where: string): [string, unknown][] {
  if (Array.isArray(v)) return v.flatMap((x) => blocks(x, where));
  if (v === null || typeof v !== 'object')
    throw new RulesError(
      `Failed to parse ACL rules: ${where}: expected blocks such as ${where} "name" { policy = "read" }`,
    );
  return Object.entries(v as Record<string, unknown>);
}

function levelOf(v: unknown, where: string, resource: string): Level {
  const body = Array.isArray(v) ? (v.length === 1 ? v[0] : undefined) : v;
  const raw = typeof body === 'string' ? body : (body as { policy?: unknown } | undefined)?.policy;
  const allowed = resource === 'key' ? ['read', 'write', 'deny', 'list'] : ['read', 'write', 'deny'];
  if (typeof raw !== 'string' || !allowed.includes(raw))
    throw new RulesError(
      `Invalid ${where} policy: ${JSON.stringify(raw ?? null)}: expected ${allowed.join(', ')}`,
    );
  return raw as Level;
}

/**
 * Parses a policy's `Rules` (HCL or JSON). Throws {@link RulesError} with Consul's wording for syntax
 * errors; unknown resources are refused (a misspelt `servce` would otherwise grant nothing, silently).
 *
 * @example
 * const r = parseRules('service_prefix "web-" { policy = "write" }');
 * r.segments.service.prefix.get('web-'); // 'write'
 */
export function parseRules(text: string): Rules {
  const tree = parseTree(text);
  const rules = emptyRules();
  for (const [key, value] of Object.entries(tree)) {
    const isPrefix = key.endsWith('_prefix');
    const base = isPrefix ? key.slice(0, -'_prefix'.length) : key;
    if ((SEGMENT_RESOURCES as readonly string[]).includes(base)) {
      const r = base as SegmentResource;
      const into = rules.segments[r][isPrefix ? 'prefix' : 'exact'];
      for (const [name, body] of blocks(value, key)) {
        const level = levelOf(body, `${key} "${name}"`, r);
        into.set(name, mergeLevel(into.get(name), level));
      }
      continue;
    }
    if (!isPrefix && (GLOBAL_RESOURCES as readonly string[]).includes(key)) {
      rules.global[key as GlobalResource] = levelOf(value, key, key);
      continue;
    }
    // Consul Enterprise scopes: accepted elsewhere, meaningless in one open-source datacenter.
    if (
      key === 'namespace' ||
      key === 'namespace_prefix' ||
      key === 'partition' ||
      key === 'partition_prefix'
    )
      throw new RulesError(
        `Invalid rules: ${key} blocks are Consul Enterprise rules; Phare has one default namespace`,
      );
    const known = [...SEGMENT_RESOURCES.flatMap((r) => [r, `${r}_prefix`]), ...GLOBAL_RESOURCES];
    throw new RulesError(
      `Invalid rules: unknown resource ${JSON.stringify(key)} (expected one of ${known.join(', ')})`,
    );
  }
  return rules;
}
