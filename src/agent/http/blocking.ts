/**
 * Blocking reads (consul-api.md §2.1): park until the topics' index passes `?index`, then answer with the
 * query-meta headers. Bodies are serialized once per (query, index) and served from a bounded cache —
 * serializing a 50-instance answer per request costs ~7× the throughput (perf.md B1).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Catalog } from '../catalog/index.ts';
import { blocking, cacheKey, flag, type Query } from './query.ts';

const CACHE_MAX = 4096;

interface Cached {
  index: number;
  body: Buffer;
}

/** Per-agent cache of serialized read bodies, keyed by path+query and invalidated by index. */
export class BodyCache {
  readonly #map = new Map<string, Cached>();
  get(key: string, index: number): Buffer | undefined {
    const c = this.#map.get(key);
    return c && c.index === index ? c.body : undefined;
  }
  set(key: string, index: number, body: Buffer): void {
    this.#map.delete(key);
    this.#map.set(key, { index, body });
    if (this.#map.size > CACHE_MAX) {
      const oldest = this.#map.keys().next().value as string;
      this.#map.delete(oldest);
    }
  }
  get size(): number {
    return this.#map.size;
  }
}

/** Serializes like Consul: compact, or with `?pretty` 4-space indent and a trailing newline. */
export function serialize(value: unknown, pretty: boolean): Buffer {
  return Buffer.from(pretty ? `${JSON.stringify(value, null, 4)}\n` : JSON.stringify(value));
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
): Promise<void> {
  const q = req.query as Query;
  const b = blocking(q);
  if (b.index > 0 && catalog.indexOf(topics) <= b.index) {
    // Stop waiting when the client goes away (answer nothing) or the agent shuts down (answer now).
    const gone = new AbortController();
    const onClose = () => gone.abort();
    reply.raw.once('close', onClose);
    await catalog.waitForChange(topics, b.index, b.waitMs, AbortSignal.any([gone.signal, closing]));
    reply.raw.off('close', onClose);
    if (gone.signal.aborted) return;
  }
  const index = catalog.indexOf(topics);
  const key =
    cacheKey(req.routeOptions.url ?? '', q) + `#${(req.params as Record<string, string>)['*'] ?? ''}`;
  let body = cache.get(key, index);
  if (!body) {
    body = serialize(build(), flag(q, 'pretty'));
    cache.set(key, index, body);
  }
  // Phare extension: when this index was made, so a client can measure change-to-update latency.
  const changedAt = catalog.indexTime(index);
  if (changedAt !== undefined) reply.header('X-Phare-Index-Time', String(changedAt));
  reply
    .header('X-Consul-Index', String(Math.max(1, index)))
    .header('X-Consul-KnownLeader', 'true')
    .header('X-Consul-LastContact', '0')
    .header('X-Consul-Effective-Consistency', b.consistency)
    .header('X-Consul-Query-Backend', 'blocking-query')
    .header('Content-Type', 'application/json')
    .send(body);
}
