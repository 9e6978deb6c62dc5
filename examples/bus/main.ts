/**
 * bus — a tiny WebSocket event bus. Clients connect to ws://<bus>/events and send
 *   { "type": "subscribe", "topics": ["notes.created"] }     ("*" subscribes to everything)
 *   { "type": "publish", "topic": "notes.created", "data": {...} }
 * and subscribers receive { "type": "event", "topic", "data", "seq", "publishedAt" }.
 * HTTP: GET /stats, POST /publish/<topic> (curl-friendly publishing), and the health kit's /health/*.
 *
 * Lifecycle (the same in all three services): load config -> listen -> register with the agent (HTTP check
 * on /health/ready) -> ready. On SIGTERM: readiness 503 -> deregister -> close WebSockets with 1001 so
 * clients reconnect elsewhere -> drain delay -> close the listener -> exit 0.
 */
import { createServer } from 'node:http';
import type { Registration } from 'phare';
import { createGracefulShutdown, createHealth, eventLoopDelayCheck } from 'phare/health';
import { WebSocket, WebSocketServer } from 'ws';
import { createLogger } from '../lib/logger.ts';
import { listenAndRegister } from '../lib/serve.ts';
import { loadBusConfig } from './config.ts';

const config = loadBusConfig();
const log = createLogger('bus', config.log.level);

const health = createHealth({
  logger: log,
  checks: { eventLoop: eventLoopDelayCheck({ maxDelayMs: 1000 }) },
});

const stats = { connections: 0, published: 0, delivered: 0, topics: {} as Record<string, number> };
const subscriptions = new Map<WebSocket, Set<string>>();
let seq = 0;
let draining = false;

function publish(topic: string, data: unknown): number {
  const event = JSON.stringify({
    type: 'event',
    topic,
    data,
    seq: ++seq,
    publishedAt: new Date().toISOString(),
  });
  stats.published++;
  stats.topics[topic] = (stats.topics[topic] ?? 0) + 1;
  let delivered = 0;
  for (const [ws, topics] of subscriptions) {
    if ((topics.has(topic) || topics.has('*')) && ws.readyState === WebSocket.OPEN) {
      ws.send(event);
      delivered++;
    }
  }
  stats.delivered += delivered;
  log.debug({ topic, seq, delivered }, 'published');
  return delivered;
}

const wss = new WebSocketServer({ noServer: true, maxPayload: config.bus.maxPayloadBytes });
wss.on('connection', (ws) => {
  subscriptions.set(ws, new Set());
  stats.connections = subscriptions.size;
  ws.on('message', (raw) => {
    let msg: { type?: string; topic?: unknown; topics?: unknown; data?: unknown };
    try {
      msg = JSON.parse(String(raw));
    } catch {
      ws.send(JSON.stringify({ type: 'error', error: 'frames must be JSON' }));
      return;
    }
    if (msg.type === 'subscribe' && Array.isArray(msg.topics)) {
      const set = subscriptions.get(ws);
      for (const t of msg.topics) if (typeof t === 'string') set?.add(t);
      ws.send(JSON.stringify({ type: 'subscribed', topics: [...(set ?? [])] }));
    } else if (msg.type === 'publish' && typeof msg.topic === 'string') {
      publish(msg.topic, msg.data);
    } else {
      ws.send(
        JSON.stringify({
          type: 'error',
          error: 'expected {type:"subscribe",topics} or {type:"publish",topic,data}',
        }),
      );
    }
  });
  ws.on('close', () => {
    subscriptions.delete(ws);
    stats.connections = subscriptions.size;
  });
  ws.on('error', (err) => log.debug({ err: err.message }, 'client socket error'));
});

const server = createServer((req, res) => {
  if (health.handle(req, res)) return;
  const url = new URL(req.url ?? '/', 'http://bus');
  if (req.method === 'GET' && url.pathname === '/stats') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ ...stats, seq }));
    return;
  }
  const m = /^\/publish\/([\w.-]+)$/.exec(url.pathname);
  if (req.method === 'POST' && m) {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      let data: unknown = body;
      try {
        data = body ? JSON.parse(body) : null;
      } catch {
        // not JSON: publish the text as it is
      }
      const delivered = publish(m[1] as string, data);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ seq, delivered }));
    });
    return;
  }
  res.statusCode = 404;
  res.end();
});

server.on('upgrade', (req, socket, head) => {
  const path = new URL(req.url ?? '/', 'http://bus').pathname;
  if (path !== config.bus.path || draining) {
    // While draining, refuse new subscribers: a client whose discovery cache is behind retries elsewhere.
    socket.end(
      `HTTP/1.1 ${draining ? '503 Service Unavailable' : '404 Not Found'}\r\nconnection: close\r\n\r\n`,
    );
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

let registration: Registration | undefined;
const graceful = createGracefulShutdown({
  server,
  health,
  logger: log,
  drainDelayMs: config.shutdown.drainDelayMs,
  timeoutMs: config.shutdown.timeoutMs,
  beforeShutdown: [
    () => registration?.deregister(),
    // WebSockets outlive HTTP's Connection: close, and server.close() would wait for them: tell every
    // client to go away now (1001), once the registry no longer hands out this instance.
    () => {
      draining = true;
      for (const ws of wss.clients) ws.close(1001, 'bus shutting down');
    },
  ],
  onShutdown: () => wss.close(),
});

await listenAndRegister({
  name: 'bus',
  server,
  config,
  log,
  graceful,
  onRegistered: (r) => {
    registration = r;
  },
});
health.markReady();
