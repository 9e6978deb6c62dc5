/**
 * The lifecycle both real-server test helpers share (PostgreSQL, Redis): a child process on a free loopback
 * port whose output is kept for assertion messages, started until ready, stopped with a signal (SIGKILL after
 * a grace period), restartable on the same port, retried on a new port when another process took the free one
 * first, and removed with its directory on close.
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';

/** What differs between servers. */
export interface ServerProcessOptions {
  /** Temp directory of the server; removed on close or on a failed start. */
  dir: string;
  /** Spawns the server on `port` (stdio piped). */
  spawn(port: number): ChildProcess;
  /** Resolves once the server answers; throws (with `log()` in the message) if it cannot. */
  ready(child: ChildProcess, port: number, log: () => string): Promise<void>;
  /** Signal of a normal stop. */
  stopSignal: NodeJS.Signals;
  /** SIGKILL after this long. */
  stopGraceMs: number;
  /** What the server logs when its port was taken between `freePort()` and its bind. */
  portTaken: RegExp;
}

/** A started server process. */
export interface ServerProcess {
  readonly port: number;
  readonly running: boolean;
  stop(): Promise<void>;
  /** Starts it again on the same port; resolves once ready. No-op while running. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
  log(): string;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/**
 * Starts a server process (up to three ports tried).
 *
 * @example
 * const p = await startServerProcess({ dir, spawn: (port) => spawn(bin, ['--port', String(port)]), ready, … });
 */
export async function startServerProcess(o: ServerProcessOptions): Promise<ServerProcess> {
  let port = await freePort();
  let child: ChildProcess | undefined;
  let logText = '';
  const log = () => logText;

  const launch = async () => {
    logText += `--- start on port ${port}\n`;
    const c = o.spawn(port);
    live.add(c);
    c.stdout?.on('data', (d) => {
      logText += String(d);
    });
    c.stderr?.on('data', (d) => {
      logText += String(d);
    });
    c.once('exit', () => live.delete(c));
    child = c;
    await o.ready(c, port, log);
  };

  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill(o.stopSignal);
    const timer = setTimeout(() => c.kill('SIGKILL'), o.stopGraceMs);
    await exited;
    clearTimeout(timer);
  };

  // A port found free can be taken before the server binds it (another test); retry with a new one.
  for (let attempt = 0; ; attempt++) {
    try {
      await launch();
      break;
    } catch (err) {
      await stop();
      if (attempt >= 2 || !o.portTaken.test(logText)) {
        rmSync(o.dir, { recursive: true, force: true });
        throw err;
      }
      port = await freePort();
    }
  }

  const isRunning = () => child !== undefined && child.exitCode === null && child.signalCode === null;
  return {
    get port() {
      return port;
    },
    get running() {
      return isRunning();
    },
    stop,
    async start() {
      if (isRunning()) return;
      await launch();
    },
    async close() {
      await stop();
      rmSync(o.dir, { recursive: true, force: true });
    },
    log,
  };
}

/** A free loopback port (the OS picks it; the tiny race before the server binds is retried above). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
