/**
 * Graceful shutdown in the order that loses no request (kubernetes.io "Pod termination"; terminus and
 * lightship do parts of it):
 *
 *   signal -> readiness 503 -> beforeShutdown hooks (the SDK deregisters here) -> drain delay (callers'
 *   caches and load balancers catch up; requests still arriving are served, each answered with
 *   `Connection: close`) -> stop accepting (server.close) -> finish in-flight requests, close idle
 *   keep-alive connections -> onShutdown hooks (close pools) -> exit.
 *
 * A timeout forces the exit; a second signal forces it at once. Calling shutdown twice is harmless.
 *
 * This is Phare's one graceful shutdown: the SDK's registration plugs in as a beforeShutdown step
 * (`beforeShutdown: registration.deregister`, or `addBeforeShutdown` once the registration exists).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Logger, pino } from 'pino';
import { phareError } from '../api/index.ts';
import type { Health } from './health.ts';

/** A step run during shutdown. Errors are logged and do not stop the sequence. */
export type ShutdownHook = () => Promise<unknown> | unknown;

/** What shutdown needs of a server: `node:http`/`https` servers (and `fastify.server`) fit. */
export interface ShutdownServer {
  close(callback?: (err?: Error) => void): unknown;
  closeIdleConnections?(): void;
  closeAllConnections?(): void;
  prependListener(event: 'request', listener: (req: IncomingMessage, res: ServerResponse) => void): unknown;
  removeListener(event: 'request', listener: (req: IncomingMessage, res: ServerResponse) => void): unknown;
}

/** Options of {@link createGracefulShutdown}. */
export interface GracefulShutdownOptions {
  /** The server to drain (use `app.server` for Fastify). */
  server?: ShutdownServer;
  /** Several servers (an API port and a health port). @default [] */
  servers?: ShutdownServer[];
  /** Readiness turns critical as the first step. @default none */
  health?: Health;
  /**
   * Time between deregistration and closing the listener, during which requests from callers that have
   * not yet seen the change are still served. Must exceed the callers' discovery refresh. @default 5000
   */
  drainDelayMs?: number;
  /**
   * The whole sequence's budget; past it, open connections are destroyed and the process exits with 1.
   * Below Kubernetes' default 30 s grace period so this exit, not SIGKILL, ends the process. @default 25000
   */
  timeoutMs?: number;
  /** Run after readiness fails, before the drain delay: deregister from the registry here. @default [] */
  beforeShutdown?: ShutdownHook | ShutdownHook[];
  /** Run after the servers closed: close database pools, flush logs. @default [] */
  onShutdown?: ShutdownHook | ShutdownHook[];
  /** Called when a signal arrives, before anything else (for logging). @default none */
  onSignal?: (signal: string) => void;
  /** Signals that start the shutdown; `[]` installs no handler (call `shutdown()` yourself). @default ["SIGTERM", "SIGINT"] */
  signals?: NodeJS.Signals[];
  /** Ends the process; tests inject their own. @default process.exit */
  exit?: (code: number) => void;
  /** @default a pino logger at "info" on stderr */
  logger?: Logger;
}

/** A running graceful-shutdown controller. */
export interface GracefulShutdown {
  /** True once shutdown began. */
  readonly shuttingDown: boolean;
  /** Starts the sequence (idempotent: later calls return the same promise). Resolves after `exit` was called. */
  shutdown(reason?: string): Promise<void>;
  /** Adds a beforeShutdown hook after creation — how the SDK plugs its deregistration in. */
  addBeforeShutdown(hook: ShutdownHook): void;
  /** Adds an onShutdown hook after creation. */
  addOnShutdown(hook: ShutdownHook): void;
  /** Removes the signal handlers (for tests and for handing over to another controller). */
  dispose(): void;
}

const asList = (h: ShutdownHook | ShutdownHook[] | undefined): ShutdownHook[] =>
  h === undefined ? [] : Array.isArray(h) ? [...h] : [h];

/**
 * Installs SIGTERM/SIGINT handling that drains the given servers without losing requests.
 *
 * @example
 * const server = http.createServer((req, res) => health.handle(req, res) || app(req, res)).listen(3000);
 * const graceful = createGracefulShutdown({ server, health, drainDelayMs: 5000, onShutdown: () => pool.end() });
 * const registration = await registerService({ name: 'users', port: 3000, check: { http: '/health/ready' } });
 * graceful.addBeforeShutdown(registration.deregister);
 */
export function createGracefulShutdown(options: GracefulShutdownOptions): GracefulShutdown {
  const servers = [...(options.server ? [options.server] : []), ...(options.servers ?? [])];
  const drainDelayMs = options.drainDelayMs ?? 5000;
  const timeoutMs = options.timeoutMs ?? 25000;
  for (const [name, v] of [
    ['drainDelayMs', drainDelayMs],
    ['timeoutMs', timeoutMs],
  ] as const) {
    if (!Number.isFinite(v) || v < 0) {
      throw phareError(
        'PHARE_ERR_INVALID_ARGUMENT',
        `gracefulShutdown.${name}: expected a number >= 0, got ${v}`,
      );
    }
  }
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const parent = options.logger ?? pino({ level: 'info' }, pino.destination(2));
  // pino writes a repeated key twice: when the app's logger has a component already, ours is a prefix.
  const logger =
    'component' in parent.bindings()
      ? parent.child({}, { msgPrefix: 'shutdown: ' })
      : parent.child({ component: 'shutdown' });
  const before = asList(options.beforeShutdown);
  const after = asList(options.onShutdown);

  let running: Promise<void> | undefined;
  let exited = false;
  // Set when the sequence is cut short, so a waiting step returns at once (matters when `exit` is injected
  // and the process lives on, as in tests).
  let cutShort: (() => void) | undefined;
  const doExit = (code: number) => {
    if (exited) return;
    exited = true;
    cutShort?.();
    exit(code);
  };

  // Responses written while draining carry `Connection: close`, so keep-alive clients move to a fresh
  // connection (to another instance) instead of reusing one this process is about to close.
  const markClose = (_req: IncomingMessage, res: ServerResponse) => {
    if (!res.headersSent) res.setHeader('connection', 'close');
  };

  const runHooks = async (stage: string, hooks: ShutdownHook[]) => {
    let ok = true;
    for (const hook of hooks) {
      try {
        await hook();
      } catch (err) {
        ok = false;
        logger.error({ err, stage }, `${stage} hook failed; continuing shutdown`);
      }
    }
    return ok;
  };

  const closeServer = (server: ShutdownServer) =>
    new Promise<void>((resolve) => {
      // close() stops accepting and calls back once every connection ended; idle keep-alive connections
      // would hold it open until their keepAliveTimeout, so close those now and as in-flight ones finish.
      const sweep = setInterval(() => server.closeIdleConnections?.(), 100);
      server.close((err) => {
        clearInterval(sweep);
        if (err && (err as NodeJS.ErrnoException).code !== 'ERR_SERVER_NOT_RUNNING') {
          logger.warn({ err }, 'server close reported an error');
        }
        resolve();
      });
      server.closeIdleConnections?.();
    });

  const sequence = async (reason: string) => {
    const started = Date.now();
    logger.info({ reason, drainDelayMs, timeoutMs }, 'graceful shutdown started');
    const force = setTimeout(() => {
      logger.error({ timeoutMs }, 'graceful shutdown timed out; closing all connections and exiting');
      for (const s of servers) s.closeAllConnections?.();
      doExit(1);
    }, timeoutMs);
    let ok = true;
    try {
      options.health?.markShuttingDown();
      for (const s of servers) s.prependListener('request', markClose);
      ok = (await runHooks('beforeShutdown', before)) && ok;
      if (drainDelayMs > 0 && !exited) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, drainDelayMs);
          cutShort = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      if (exited) return;
      logger.info('drain delay over; closing listeners and idle connections');
      await Promise.all(servers.map(closeServer));
      ok = (await runHooks('onShutdown', after)) && ok;
      logger.info({ ms: Date.now() - started }, 'graceful shutdown complete');
    } catch (err) {
      ok = false;
      logger.error({ err }, 'graceful shutdown failed');
    } finally {
      clearTimeout(force);
      for (const s of servers) s.removeListener('request', markClose);
    }
    options.health?.close();
    doExit(ok ? 0 : 1);
  };

  const shutdown = (reason = 'shutdown() called') => {
    running ??= sequence(reason);
    return running;
  };

  const onSignal = (signal: NodeJS.Signals) => {
    try {
      options.onSignal?.(signal);
    } catch (err) {
      logger.warn({ err }, 'onSignal threw');
    }
    if (running) {
      // A second signal means the operator wants out now (Ctrl-C twice).
      logger.warn({ signal }, 'second signal during shutdown; exiting now');
      for (const s of servers) s.closeAllConnections?.();
      doExit(1);
      return;
    }
    void shutdown(signal);
  };
  for (const sig of signals) process.on(sig, onSignal);

  return {
    get shuttingDown() {
      return running !== undefined;
    },
    shutdown,
    addBeforeShutdown(hook) {
      before.push(hook);
    },
    addOnShutdown(hook) {
      after.push(hook);
    },
    dispose() {
      for (const sig of signals) process.removeListener(sig, onSignal);
    },
  };
}
