/**
 * What every catalog/health read starts with: the path's name, `?dc=`, `?filter=`, `?node-meta=`, `?tag=` —
 * and how it answers (blocking, cached per index).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServiceRecord } from '../catalog/index.ts';
import { compileFilter } from '../filter/index.ts';
import { type IndexedReadOptions, indexedRead } from './blocking.ts';
import { AclFilter, authz, type RouteContext, tail } from './context.ts';
import { HttpError } from './errors.ts';
import { checkDatacenter, many, nodeMetaFilter, one, type QueryParams } from './query.ts';

/** The parsed common parameters of a read. */
export interface ReadRequest {
  /** The wildcard tail of the path (service, node or state name). */
  name: string;
  q: QueryParams;
  /** `?filter=`, compiled (a parse error is a 400 before any waiting). */
  filter: ((item: unknown) => boolean) | undefined;
  /** `?node-meta=k:v` (AND). */
  nodeMeta: ((meta: Record<string, string>) => boolean) | undefined;
  /** `?tag=` (AND). */
  tags: string[];
  /** What the token may read: `build()` asks it, and the answer is marked when it left something out. */
  acl: AclFilter;
  /** Answers with `build()`'s result once the topics pass `?index` (see indexedRead). */
  answer(topics: readonly string[], build: () => unknown, options?: IndexedReadOptions): Promise<void>;
}

/**
 * Parses a read's common parameters. With `missing`, an empty path name is a 400 with that text
 * (`Missing service name`), as in Consul.
 */
export function readRequest(
  req: FastifyRequest,
  reply: FastifyReply,
  ctx: RouteContext,
  missing?: string,
): ReadRequest {
  const name = tail(req);
  if (missing && name === '') throw new HttpError(400, missing);
  const q = req.query as QueryParams;
  checkDatacenter(q, ctx.config.datacenter);
  const expr = one(q, 'filter');
  const acl = new AclFilter(authz(req, ctx));
  return {
    name,
    q,
    acl,
    filter: expr ? compileFilter(expr) : undefined,
    nodeMeta: nodeMetaFilter(q),
    tags: many(q, 'tag'),
    answer: (topics, build, options) =>
      indexedRead(ctx.catalog, ctx.cache, ctx.closing, req, reply, topics, build, {
        ...options,
        acl,
        fast: ctx.fast,
      }),
  };
}

/** `?tag=` (repeatable, AND; case-insensitive as in Consul's state store). */
export function hasTags(s: ServiceRecord, tags: readonly string[]): boolean {
  if (tags.length === 0) return true;
  const lower = s.tags.map((t) => t.toLowerCase());
  return tags.every((t) => lower.includes(t.toLowerCase()));
}
