/**
 * A real HTTP backend for health-check tests: answers every request with the status it is switched to.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A switchable backend on 127.0.0.1, port 0. */
export interface Backend {
  /** `http://127.0.0.1:<port>/health` */
  url: string;
  /** Status answered from now on (200 passing, 429 warning, 503 critical). */
  setStatus(status: number): void;
  /** Requests received so far. */
  hits(): number;
  close(): Promise<void>;
}

/**
 * Starts a backend that answers `status` (initially `initial`) with a short text body.
 *
 * @example
 * const b = await startBackend(503);
 * b.setStatus(200);
 */
export async function startBackend(initial = 200): Promise<Backend> {
  let status = initial;
  let hits = 0;
  const server: Server = createServer((req, res) => {
    hits++;
    req.resume();
    res.writeHead(status, { 'Content-Type': 'text/plain', Connection: 'close' });
    res.end(`status ${status}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/health`,
    setStatus: (s) => {
      status = s;
    },
    hits: () => hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
