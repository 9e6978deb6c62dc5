/**
 * A client of the example's event bus, used by the api (to publish) and the bridge (to subscribe).
 *
 * Why it looks the way it does:
 * - The bus URL may be a service name (`phare://bus/events`): it is resolved through discovery on every
 *   (re)connect, so a restarted or moved bus is found again, and a bus that deregistered on shutdown is not.
 * - The connection is kept up forever with exponential backoff and full jitter; the bus closes sockets with
 *   1001 "going away" when it shuts down, and the client simply reconnects (to another instance if any).
 * - Publishing while disconnected queues (bounded) and flushes on reconnect. Events are best effort — the
 *   bridge also catches up from the api after each reconnect, so a lost event is only a delay.
 */

import type { Discovery } from 'phare';
import { parsePhareUrl } from 'phare/config';
import type { Logger } from 'pino';
import WebSocket from 'ws';

/** A message the bus delivers to subscribers. */
export interface BusEvent {
  type: 'event';
  topic: string;
  data: unknown;
  seq: number;
  publishedAt: string;
}

export interface BusClientOptions {
  /** `ws://127.0.0.1:9010/events` or `phare://bus/events`. */
  url: string;
  /** Resolves `phare://` names. */
  discovery: Discovery;
  /** Topics to subscribe to (none: publish only). */
  topics?: string[];
  onEvent?: (event: BusEvent) => void;
  /** Called after each (re)connection, once subscribed. */
  onConnect?: () => void;
  /** Messages kept while disconnected; older ones are dropped past this. */
  maxQueue?: number;
  logger: Logger;
}

export interface BusClient {
  readonly connected: boolean;
  /** The URL of the current connection, if any. */
  readonly endpoint: string | undefined;
  publish(topic: string, data: unknown): void;
  close(): Promise<void>;
}

/** Opens (and keeps open) a connection to the bus. */
export function connectBus(options: BusClientOptions): BusClient {
  const log = options.logger.child({ component: 'bus-client' });
  const maxQueue = options.maxQueue ?? 1000;
  const queue: string[] = [];
  let socket: WebSocket | undefined;
  let endpoint: string | undefined;
  let closed = false;
  let attempt = 0;
  let retryTimer: NodeJS.Timeout | undefined;

  const resolve = async (): Promise<string> => {
    const ref = parsePhareUrl(options.url);
    if (!ref) return options.url;
    const base = await options.discovery.url(ref.service); // http://address:port of a passing instance
    return base.replace(/^http/, 'ws') + ref.path;
  };

  const scheduleReconnect = () => {
    if (closed) return;
    attempt++;
    const delay = Math.round(Math.random() * Math.min(5000, 100 * 2 ** attempt));
    retryTimer = setTimeout(() => void open(), delay);
  };

  const open = async () => {
    if (closed) return;
    let url: string;
    try {
      url = await resolve();
    } catch (err) {
      // Once per outage at warn; the retries after it are routine.
      log[attempt === 0 ? 'warn' : 'debug'](
        { err: (err as Error).message, attempt },
        'bus not found; retrying',
      );
      scheduleReconnect();
      return;
    }
    if (closed) return;
    const ws = new WebSocket(url, { handshakeTimeout: 3000 });
    socket = ws;
    ws.on('open', () => {
      attempt = 0;
      endpoint = url;
      log.info({ url }, 'connected to the bus');
      if (options.topics?.length) ws.send(JSON.stringify({ type: 'subscribe', topics: options.topics }));
      while (queue.length > 0 && ws.readyState === WebSocket.OPEN) ws.send(queue.shift() as string);
    });
    ws.on('message', (raw) => {
      let msg: { type?: string };
      try {
        msg = JSON.parse(String(raw));
      } catch {
        return;
      }
      if (msg.type === 'subscribed') options.onConnect?.();
      else if (msg.type === 'event') options.onEvent?.(msg as BusEvent);
    });
    ws.on('error', (err) => log.debug({ err: err.message, url }, 'bus socket error'));
    ws.on('close', (code, reason) => {
      if (socket === ws) {
        socket = undefined;
        endpoint = undefined;
      }
      if (closed) return;
      log.warn({ url, code, reason: String(reason) }, 'bus connection closed; reconnecting');
      scheduleReconnect();
    });
    // A publisher with no subscriptions is "connected" as soon as the socket opens.
    if (!options.topics?.length) ws.once('open', () => options.onConnect?.());
  };

  void open();

  return {
    get connected() {
      return socket?.readyState === WebSocket.OPEN;
    },
    get endpoint() {
      return endpoint;
    },
    publish(topic, data) {
      const frame = JSON.stringify({ type: 'publish', topic, data });
      if (socket?.readyState === WebSocket.OPEN) {
        socket.send(frame);
        return;
      }
      queue.push(frame);
      if (queue.length > maxQueue) {
        queue.shift();
        log.warn({ maxQueue }, 'bus unreachable and queue full; dropped the oldest event');
      }
    },
    async close() {
      closed = true;
      clearTimeout(retryTimer);
      const ws = socket;
      if (!ws || ws.readyState === WebSocket.CLOSED) return;
      await new Promise<void>((done) => {
        ws.once('close', () => done());
        ws.close(1000, 'client closing');
        // A peer that never answers the close frame must not hold the shutdown.
        setTimeout(() => {
          ws.terminate();
          done();
        }, 1000).unref();
      });
    },
  };
}
