/**
 * Redis check: `PING` through the service's own `ioredis` or `redis` (node-redis) client, duck-typed so
 * the health kit never imports a driver.
 */
import type { CheckOptions, CheckSpec } from '../types.ts';

/** What the check needs of an `ioredis` or `redis` client. */
export interface RedisLike {
  ping(): Promise<string>;
  /** ioredis: `ready`, `connecting`, `reconnecting`, `end`, … */
  status?: string;
  /** node-redis v4+: true while connected. */
  isReady?: boolean;
}

// ioredis queues commands while it reconnects, so a PING would only time out; report the state at once.
const DOWN_STATES = new Set(['reconnecting', 'end', 'close']);

/**
 * Checks a Redis connection with `PING` (expects `PONG`). Fails at once, without waiting for the timeout,
 * when the client itself knows it is disconnected.
 *
 * @example
 * const redis = new Redis(process.env.REDIS_URL);
 * const health = createHealth({ checks: { cache: redisCheck(redis, { critical: false }) } });
 */
export function redisCheck(client: RedisLike, options: CheckOptions = {}): CheckSpec {
  return {
    ...options,
    async run() {
      if (typeof client.status === 'string' && DOWN_STATES.has(client.status)) {
        throw new Error(`redis connection is ${client.status}`);
      }
      if (client.isReady === false) throw new Error('redis client is not connected');
      const reply = await client.ping();
      if (reply !== 'PONG') throw new Error(`PING answered ${JSON.stringify(reply)}, expected "PONG"`);
      return 'PING: PONG';
    },
  };
}
