/**
 * Blocking reads (Consul docs, Blocking Queries): park until the topics' index passes `?index` (or, for the agent's
 * hash-blocking service read, until the content hash changes), then answer with the query-meta headers.
 * There is one way to park — {@link park} — so every blocking read ends at once when the agent shuts down.
 * Bodies are serialized once per (query, index) and served from a bounded cache — serializing a
 * 50-instance answer per request costs ~7× the throughput (BENCHMARKS.md). That cache is also what `?cached`
 * reports on (`X-Cache`, `Age`), as Consul's agent cache does.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Catalog } from '../catalog/index.ts';
import type { AclFilter } from './context.ts';
import type { FastReads } from './fast-read.ts';
import { type Blocking, blocking, cacheKey, flag, type QueryParams } from './query.ts';

const CACHE_MAX = 4096;

/** A serialized answer and when it was built (epoch ms). */
export interface Cached {
  index: number;
  body: Buffer;
  at: number;
  /** ACLs left items out of this answer (`X-Consul-Results-Filtered-By-ACLs`). */
  filtered: boolean;
}

/**
 * Per-agent cache of serialized read bodies, keyed by the read (path+query, see {@link BodyCache.keyOf}) and
 * then by who reads it (the authorizer's cacheId: tokens whose filtering differs get their own body), and
 * invalidated by index.
 */
export class BodyCache {
  readonly #map = new Map<string, Map<string, Cached>>();
  #size = 0;
  /** Raw request URL → its read key; the same few URLs come back on every poll. */
  readonly #keys = new Map<string, string>();

  /**
   * The read key of a request: the route, its wildcard tail and every query parameter but the blocking
   * ones ({@link cacheKey}), worked out once per distinct URL (bounded; past it, it starts over).
   */
  keyOf(req: FastifyRequest): string {
    let key = this.#keys.get(req.url);
    if (key === undefined) {
      key =
        cacheKey(req.routeOptions.url ?? '', req.query as QueryParams) +
        `#${(req.params as Record<string, string>)['*'] ?? ''}`;
      if (this.#keys.size >= CACHE_MAX) this.#keys.clear();
      this.#keys.set(req.url, key);
    }
    return key;
  }

  get(key: string, index: number, reader = ''): Cached | undefined {
    const c = this.#map.get(key)?.get(reader);
    return c && c.index === index ? c : undefined;
  }

  set(key: string, index: number, body: Buffer, at = Date.now(), filtered = false, reader = ''): void {
    let byReader = this.#map.get(key);
    if (byReader === undefined) {
      byReader = new Map();
      this.#map.set(key, byReader);
    } else {
      // refreshed reads move to the back, so the oldest read is the first to go
      this.#map.delete(key);
      this.#map.set(key, byReader);
    }
    if (!byReader.has(reader)) this.#size++;
    byReader.set(reader, { index, body, at, filtered });
    while (this.#size > CACHE_MAX) {
      const [oldest, readers] = this.#map.entries().next().value as [string, Map<string, Cached>];
      this.#map.delete(oldest);
      this.#size -= readers.size;
    }
  }

  /** Cached bodies (over every read and reader). */
  get size(): number {
    return this.#size;
  }
}

/** Serializes like Consul: compact, or with `?pretty` 4-space indent and a trailing newline. */
export function serialize(value: unknown, pretty: boolean): Buffer {
  return Buffer.from(pretty ? `${JSON.stringify(value, null, 4)}\n` : JSON.stringify(value));
}

/** Where a blocking read's index comes from and how it waits for the next one. */
export interface IndexSource {
  /** The index of the data the read covers. */
  current(): number;
  /** Resolves once `current()` passes `minIndex`, after `timeoutMs` or on `signal`. Never rejects. */
  wait(minIndex: number, timeoutMs: number, signal: AbortSignal): Promise<void>;
}

/**
 * Parks a read until its source passes `?index` (no `?index`: at once). Resolves with the blocking
 * parameters, or undefined when the client went away while it waited (answer nothing then); an agent
 * shutting down releases it at once.
 */
export async function parkRead(
  source: IndexSource,
  closing: AbortSignal,
  req: FastifyRequest,
  reply: FastifyReply,
): Promise<Blocking | undefined> {
  const b = blocking(req.query as QueryParams);
  if (b.index > 0 && source.current() <= b.index && !(await waitPast(source, b, closing, reply)))
    return undefined;
  return b;
}

/**
 * The waiting half of {@link parkRead}, for a read that checked `source.current() <= b.index` itself (so an
 * answer that needs no waiting stays synchronous): resolves true once the source passed the index or the
 * wait ran out, false when the client went away meanwhile.
 */
export async function waitPast(
  source: IndexSource,
  b: Blocking,
  closing: AbortSignal,
  reply: FastifyReply,
): Promise<boolean> {
  const gone = new AbortController();
  const onClose = () => gone.abort();
  reply.raw.once('close', onClose);
  await source.wait(b.index, b.waitMs, AbortSignal.any([gone.signal, closing]));
  reply.raw.off('close', onClose);
  return !gone.signal.aborted;
}

/** The query-meta headers of a blocking-capable read (Consul docs, HTTP API overview: blocking queries); the index is never 0. */
export function setQueryMeta(
  reply: FastifyReply,
  index: number,
  consistency: Blocking['consistency'],
  leader?: { knownLeader: boolean; lastContactMs: number },
): void {
  queryMeta(reply, index, leader)
    .header('x-consul-effective-consistency', consistency)
    .header('x-consul-query-backend', 'blocking-query');
}

/**
 * Parks a request until `changed()` holds, `waitMs` passes, the client goes away or the agent shuts down
 * (`closing`), waking on changes to `topics`. Resolves false if the client went away (answer nothing),
 * true otherwise (answer now, with whatever the state is).
 *
 * @example
 * if (!(await park(catalog, closing, reply, [Topic.service('web')], () => catalog.index > 7, 60_000))) return;
 */
export async function park(
  catalog: Catalog,
  closing: AbortSignal,
  reply: FastifyReply,
  topics: readonly string[],
  changed: () => boolean,
  waitMs: number,
): Promise<boolean> {
  if (changed() || closing.aborted) return true;
  const gone = new AbortController();
  const onClose = () => gone.abort();
  reply.raw.once('close', onClose);
  const signal = AbortSignal.any([gone.signal, closing]);
  const deadline = Date.now() + waitMs;
  try {
    while (!signal.aborted && !changed()) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      const before = catalog.indexOf(topics);
      await catalog.waitForChange(topics, before, left, signal);
      // woken with nothing new and time left: the catalog closed; never spin on it
      if (catalog.indexOf(topics) === before && Date.now() < deadline && !signal.aborted) break;
    }
  } finally {
    reply.raw.off('close', onClose);
  }
  return !gone.signal.aborted;
}

/**
 * The query-meta headers of an answer at `index` (Consul docs, HTTP API overview); also sent on 404s of reads.
 *
 * @example
 * queryMeta(reply, catalog.index).code(404).send('Not found');
 */
export function queryMeta(
  reply: FastifyReply,
  index: number,
  leader: { knownLeader: boolean; lastContactMs: number } = { knownLeader: true, lastContactMs: 0 },
): FastifyReply {
  // Over etcd these say whether etcd has a leader: reads keep serving the cache either way. Header names are
  // written lower-case, as fastify sends them anyway: its header() lower-cases every name it is given, and an
  // already lower-case literal costs no new string (a measurable share of a small cached read's CPU).
  // Clients match them case-insensitively (HTTP field names are, RFC 9110 §5.1).
  return reply
    .header('x-consul-index', String(Math.max(1, index)))
    .header('x-consul-knownleader', String(leader.knownLeader))
    .header('x-consul-lastcontact', String(leader.lastContactMs));
}

/** Options of {@link indexedRead}. */
export interface IndexedReadOptions {
  /** The endpoint is served by Consul's agent cache, so `?cached` answers `X-Cache` and `Age`. @default false */
  cacheable?: boolean;
  /**
   * The request's read filter: `build()` asks it what the token may read; answers are cached per token
   * (its authorizer's cacheId) with whether something was left out. @default no filtering
   */
  acl?: AclFilter;
  /** Where a plain read that answered from the cache is remembered for the fast path (fast-read.ts). @default none */
  fast?: FastReads;
}

/**
 * Answers a blocking-capable read: waits if `?index` is given, then sends `build()`'s result (from the
 * cache when the index has not moved) with `X-Consul-Index` and friends.
 */
export async function indexedRead(
  catalog: Catalog,
  cache: BodyCache,
  closing: AbortSignal,
  req: FastifyRequest,
  reply: FastifyReply,
  topics: readonly string[],
  build: () => unknown,
  options: IndexedReadOptions = {},
): Promise<void> {
  const q = req.query as QueryParams;
  const b = blocking(q);
  const cached = options.cacheable === true && flag(q, 'cached');
  // `?consistent` (Consul docs, Consistency Modes): confirm through etcd's quorum that this agent's cache has
  // every write acknowledged anywhere, then read it like any other; `?stale` and the default read the cache
  // as it is (KV and session reads do the same for their space: kv.catchUp).
  if (b.consistency === 'consistent') await catalog.consistentRead();
  if (b.index > 0) {
    const stillThere = await park(
      catalog,
      closing,
      reply,
      topics,
      () => catalog.indexOf(topics) > b.index,
      b.waitMs,
    );
    if (!stillThere) return;
  }
  const index = catalog.indexOf(topics);
  const key = cache.keyOf(req);
  const reader = options.acl?.authz.cacheId ?? '';
  const now = Date.now();
  let hit = cache.get(key, index, reader);
  // Cache-Control: max-age=N asks for an answer no older than N seconds (Consul's agent cache)
  if (hit && cached && now - hit.at > maxAgeMs(req)) hit = undefined;
  let body = hit?.body;
  let filtered = hit?.filtered ?? false;
  if (!body) {
    if (options.acl) options.acl.filtered = false;
    body = serialize(build(), flag(q, 'pretty'));
    filtered = options.acl?.filtered ?? false;
    cache.set(key, index, body, now, filtered, reader);
  }
  options.acl?.mark(reply, filtered);
  if (cached) {
    reply.header('X-Cache', hit ? 'HIT' : 'MISS');
    if (hit) reply.header('Age', String(Math.floor((now - hit.at) / 1000)));
  }
  // Phare extension: when this index was made, so a client can measure change-to-update latency.
  const changedAt = catalog.indexTime(index);
  if (changedAt !== undefined) reply.header('X-Phare-Index-Time', String(changedAt));
  queryMeta(reply, index, catalog.leaderState())
    .header('x-consul-effective-consistency', b.consistency)
    .header('x-consul-query-backend', 'blocking-query')
    .header('content-type', 'application/json')
    .send(body);
  // Nothing but these headers: the same URL may be answered by the fast path (`?cached` adds X-Cache).
  if (options.fast && !cached) {
    const filtering = options.acl !== undefined;
    options.fast.remember(req, b, (authz) => {
      const at = catalog.indexOf(topics);
      const c = cache.get(key, at, filtering ? authz.cacheId : '');
      if (c === undefined) return undefined;
      return { index: at, body: c.body, filtered: c.filtered, indexTime: catalog.indexTime(at) };
    });
  }
}

function maxAgeMs(req: FastifyRequest): number {
  const m = /(?:^|,)\s*max-age=(\d+)/.exec(String(req.headers['cache-control'] ?? ''));
  return m ? Number(m[1]) * 1000 : Number.POSITIVE_INFINITY;
}
