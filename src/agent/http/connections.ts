/**
 * Connection handling against slow or hostile clients (issue 11 §6: 200 slowloris sockets were held for
 * 75 s and exhausted the agent's file handles).
 *
 * - Headers must arrive within {@link CONNECTION_LIMITS.headersTimeoutMs} and the whole request (headers
 *   and body) within {@link CONNECTION_LIMITS.requestTimeoutMs}; Node answers `408` and closes. Neither
 *   bounds the *response*, so a blocking query may hold its connection for its whole wait (≤ 10 m).
 * - An idle keep-alive connection closes after {@link CONNECTION_LIMITS.keepAliveTimeoutMs}.
 * - At most `maxConnections` sockets are open. At the cap a new connection does not get refused: it
 *   displaces the least recently active connection that has no request in progress (a slowloris socket
 *   still sending headers, or an idle keep-alive one). Only when every connection is serving a request
 *   (blocking queries) is the new one closed. So abuse costs the abuser its sockets, not the agent its
 *   service: `/v1/status/leader` keeps answering.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';

/** Timeouts of the HTTP server, documented in docs/api/README.md#limits. */
export const CONNECTION_LIMITS = {
  /** Time to receive a request's headers from the connection's first byte (Node: `headersTimeout`). */
  headersTimeoutMs: 10_000,
  /** Time to receive a whole request, body included (Node: `requestTimeout`); not the response. */
  requestTimeoutMs: 30_000,
  /** Idle time between requests on a keep-alive connection. */
  keepAliveTimeoutMs: 65_000,
  /** How often Node checks the two request timeouts (its default, 30 s, lets a slowloris live 40 s). */
  checkIntervalMs: 1_000,
} as const;

/** What {@link guardConnections} reports. */
export interface ConnectionStats {
  open: number;
  /** Connections closed to make room for a new one. */
  evicted: number;
  /** New connections closed because every open one was serving a request. */
  refused: number;
}

interface ConnState {
  /** Requests in progress (more than one only with pipelining). */
  busy: number;
}

/**
 * Caps the server's connections at `maxConnections`, displacing the least recently active idle one.
 *
 * @example
 * const stats = guardConnections(app.server, { maxConnections: 4096, logger });
 * stats().open; // sockets open now
 */
export function guardConnections(
  server: Server,
  options: { maxConnections: number; logger: Logger },
): () => ConnectionStats {
  const { maxConnections, logger } = options;
  // Both in order of last activity (a Set iterates in insertion order; re-inserting moves to the end).
  const idle = new Set<Socket>();
  const busy = new Set<Socket>();
  const state = new WeakMap<Socket, ConnState>();
  let evicted = 0;
  let refused = 0;
  let warned = 0;

  const warn = (msg: string) => {
    // at most one line a second: the abuse must not turn into a log flood
    const now = Date.now();
    if (now - warned < 1000) return;
    warned = now;
    logger.warn({ maxConnections, open: idle.size + busy.size, evicted, refused }, msg);
  };

  server.on('connection', (socket: Socket) => {
    if (idle.size + busy.size >= maxConnections) {
      const victim = idle.values().next().value;
      if (victim === undefined) {
        refused++;
        warn('HTTP connection cap reached with every connection serving a request; closing new connection');
        socket.destroy();
        return;
      }
      idle.delete(victim);
      evicted++;
      warn('HTTP connection cap reached; closing the least recently active idle connection');
      victim.destroy();
    }
    state.set(socket, { busy: 0 });
    idle.add(socket);
    socket.once('close', () => {
      idle.delete(socket);
      busy.delete(socket);
    });
  });

  server.on('request', (req, res) => {
    const socket = req.socket;
    const s = state.get(socket);
    if (!s) return;
    s.busy++;
    idle.delete(socket);
    busy.add(socket);
    res.once('close', () => {
      s.busy--;
      if (s.busy > 0 || socket.destroyed) return;
      busy.delete(socket);
      idle.add(socket);
    });
  });

  return () => ({ open: idle.size + busy.size, evicted, refused });
}
