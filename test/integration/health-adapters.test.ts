/** Each framework adapter with the real framework on a loopback port. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { serve } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { pino } from 'pino';
import {
  createHealth,
  expressHealth,
  fastifyHealth,
  type Health,
  type HealthReport,
  healthListener,
  honoHealth,
} from '../../src/health/index.ts';

const logger = pino({ level: 'silent' });

/** A health object whose one check the test steers. */
function steerable(basePath?: string) {
  const state = { mode: 'ok' as 'ok' | 'warn' | 'fail' };
  const health = createHealth({
    logger,
    ...(basePath ? { basePath } : {}),
    checks: {
      dep: {
        minIntervalMs: 0,
        run: () => {
          if (state.mode === 'warn') return { status: 'warning', output: 'slow' };
          if (state.mode === 'fail') throw new Error('down');
          return 'fine';
        },
      },
    },
  });
  return { health, state };
}

/** The behaviour every adapter must show. */
async function exercise(base: string, health: Health, state: { mode: string }, prefix = '/health') {
  let res = await fetch(`${base}${prefix}/ready`);
  assert.equal(res.status, 503, 'not ready before markReady()');
  health.markReady();
  res = await fetch(`${base}${prefix}/ready`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  const body = (await res.json()) as HealthReport;
  assert.deepEqual(body, { status: 'passing', checks: { dep: body.checks['dep'] } });
  assert.equal(body.checks['dep']?.output, 'fine');
  assert.equal(typeof body.checks['dep']?.durationMs, 'number');

  state.mode = 'warn';
  assert.equal((await fetch(`${base}${prefix}/ready`)).status, 429);
  assert.equal((await fetch(`${base}${prefix}`)).status, 429);
  state.mode = 'fail';
  assert.equal((await fetch(`${base}${prefix}/ready`)).status, 503);
  assert.equal((await fetch(`${base}${prefix}/live`)).status, 200);
  assert.equal((await fetch(`${base}${prefix}/startup`)).status, 200);
  state.mode = 'ok';
  assert.equal((await fetch(`${base}${prefix}/ready`)).status, 200);
  res = await fetch(`${base}${prefix}/ready`, { method: 'HEAD' });
  assert.equal(res.status, 200);

  health.markShuttingDown();
  res = await fetch(`${base}${prefix}/ready`);
  assert.equal(res.status, 503);
  assert.equal(((await res.json()) as HealthReport).checks['lifecycle']?.output, 'shutting down');

  // The application's own routes are untouched.
  res = await fetch(`${base}/app`);
  assert.equal(await res.text(), 'app');
}

async function listening(server: Server): Promise<string> {
  if (!server.listening) await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('Express middleware', async () => {
  const { health, state } = steerable();
  const app = express();
  app.use(expressHealth(health));
  app.get('/app', (_req, res) => {
    res.send('app');
  });
  const server = app.listen(0, '127.0.0.1');
  try {
    await exercise(await listening(server), health, state);
  } finally {
    server.close();
  }
});

test('Express middleware mounted under a path keeps the full path', async () => {
  const { health, state } = steerable('/admin/health');
  const app = express();
  app.use('/admin', expressHealth(health));
  app.get('/app', (_req, res) => {
    res.send('app');
  });
  const server = app.listen(0, '127.0.0.1');
  try {
    await exercise(await listening(server), health, state, '/admin/health');
  } finally {
    server.close();
  }
});

test('Fastify plugin', async () => {
  const { health, state } = steerable();
  const app = Fastify();
  await app.register(fastifyHealth, { health });
  app.get('/app', async () => 'app');
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    await exercise(base, health, state);
  } finally {
    await app.close();
  }
});

test('Hono middleware on @hono/node-server', async () => {
  const { health, state } = steerable();
  const app = new Hono();
  app.use(honoHealth(health));
  app.get('/app', (c) => c.text('app'));
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
  try {
    await exercise(await listening(server), health, state);
  } finally {
    server.close();
  }
});

test('node:http: healthListener for a separate health port', async () => {
  const { health, state } = steerable();
  const { createServer } = await import('node:http');
  const server = createServer((req, res) => {
    if (req.url === '/app') return void res.end('app');
    healthListener(health)(req, res);
  }).listen(0, '127.0.0.1');
  try {
    const base = await listening(server);
    await exercise(base, health, state);
    assert.equal((await fetch(`${base}/nope`)).status, 404);
  } finally {
    server.close();
  }
});
