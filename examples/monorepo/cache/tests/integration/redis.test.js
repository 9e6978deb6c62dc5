// Runs against the Redis of cache/docker-compose.test.yaml (REDIS_URL from phare test).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import Redis from 'ioredis';
import { cachedNote } from '../../src/cache.js';

const redis = new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: 1 });
after(() => redis.quit());

test('a miss loads and stores, the next read is a hit with a TTL', async () => {
  let loads = 0;
  const load = async (id) => `note ${id} (load ${++loads})`;
  assert.deepEqual(await cachedNote(redis, 1, load), { value: 'note 1 (load 1)', hit: false });
  assert.deepEqual(await cachedNote(redis, 1, load), { value: 'note 1 (load 1)', hit: true });
  assert.ok((await redis.ttl('notes:1')) > 0);
});
