/**
 * The health kit against real PostgreSQL and Redis processes (Debian packages), including dependencies
 * that stop mid-test and come back.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';
import { pino } from 'pino';
import { createHealth, type HealthReport, postgresCheck, redisCheck } from '../../src/health/index.ts';
import { POSTGRES_SKIP, type PostgresServer, startPostgres } from '../helpers/postgres.ts';
import { REDIS_SKIP, type RedisServer, startRedis } from '../helpers/redis.ts';

const skip = POSTGRES_SKIP || REDIS_SKIP;
const logger = pino({ level: 'silent' });

/** Polls `url` until its status is `want`; returns the last body (asserts with it on timeout). */
async function until(url: string, want: number, timeoutMs = 30_000): Promise<HealthReport> {
  const deadline = Date.now() + timeoutMs;
  let last: { status: number; body: HealthReport } | undefined;
  while (Date.now() < deadline) {
    const res = await fetch(url);
    last = { status: res.status, body: (await res.json()) as HealthReport };
    if (res.status === want) return last.body;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${url} never answered ${want}; last ${last?.status} ${JSON.stringify(last?.body)}`);
}

describe('health checks against real PostgreSQL and Redis', { skip }, () => {
  let db: PostgresServer;
  let cache: RedisServer;
  before(async () => {
    [db, cache] = await Promise.all([startPostgres(), startRedis()]);
  });
  after(async () => {
    await Promise.all([db?.close(), cache?.close()]);
  });

  test('a pg.Pool and an ioredis client: passing, database stops (503) and returns (200), cache stops (429)', async () => {
    const pool = new pg.Pool({ connectionString: db.url, max: 2, connectionTimeoutMillis: 1000 });
    // Without a listener, pg crashes the process when the server terminates an idle connection.
    pool.on('error', () => {});
    const redis = new Redis({
      host: cache.host,
      port: cache.port,
      maxRetriesPerRequest: 1,
      retryStrategy: () => 100,
      lazyConnect: false,
    });
    redis.on('error', () => {});
    const health = createHealth({
      logger,
      checks: {
        db: postgresCheck(pool, { minIntervalMs: 100 }),
        cache: redisCheck(redis, { critical: false, minIntervalMs: 100 }),
      },
    });
    const server = createServer((req, res) => {
      if (!health.handle(req, res)) res.writeHead(404).end();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const ready = `http://127.0.0.1:${(server.address() as AddressInfo).port}/health/ready`;
    try {
      let body = await until(ready, 503);
      assert.match(body.checks['lifecycle']?.output ?? '', /starting/);
      health.markReady();
      body = await until(ready, 200);
      assert.deepEqual(
        { db: body.checks['db']?.output, cache: body.checks['cache']?.output },
        { db: 'SELECT 1: ok', cache: 'PING: PONG' },
      );

      await db.stop();
      body = await until(ready, 503);
      assert.equal(body.checks['db']?.status, 'critical');
      assert.equal(body.checks['cache']?.status, 'passing');
      assert.notEqual(body.checks['db']?.output, '');

      await db.start();
      body = await until(ready, 200);
      assert.equal(body.checks['db']?.status, 'passing');

      await cache.stop();
      body = await until(ready, 429);
      assert.equal(body.checks['cache']?.status, 'warning');
      await cache.start();
      await until(ready, 200);

      // Liveness never depended on either.
      await db.stop();
      assert.equal((await fetch(ready.replace('/ready', '/live'))).status, 200);
      await db.start();
    } finally {
      server.close();
      redis.disconnect();
      await pool.end().catch(() => {});
    }
  });
});
