// A read-through cache: the key scheme (pure, unit-tested) and Redis calls (integration-tested).

/** The Redis key of a note. */
export function noteKey(id) {
  if (!Number.isInteger(id) || id < 1) throw new Error('id: expected a positive integer');
  return `notes:${id}`;
}

/** Reads a note through the cache: Redis first, `load` on a miss (the result kept for `ttlSeconds`). */
export async function cachedNote(redis, id, load, ttlSeconds = 60) {
  const key = noteKey(id);
  const hit = await redis.get(key);
  if (hit !== null) return { value: hit, hit: true };
  const value = await load(id);
  await redis.set(key, value, 'EX', ttlSeconds);
  return { value, hit: false };
}
