/**
 * A small graceful-shutdown helper for services that do not use `phare/health`'s: on SIGTERM/SIGINT,
 * deregister first, wait for callers' discovery caches to see it, let the app close and drain, exit. A second
 * signal or the timeout forces the exit. (With `phare/health`, pass `registration.deregister` as its
 * `beforeShutdown` hook instead.)
 */
import type { Logger } from 'pino';
import { sdkLogger, sleep } from '../shared.ts';

/** Options of {@link gracefulShutdown}. */
export interface GracefulShutdownOptions {
  /** Deregistrations run first, in parallel (e.g. `registration.deregister`). @default [] */
  deregister?: (() => Promise<unknown>) | (() => Promise<unknown>)[];
  /** Wait after deregistering so watchers (blocking queries, DNS TTLs) stop sending traffic, in ms. @default 3000 */
  drainDelayMs?: number;
  /** The app's own close: stop the server, finish in-flight requests, close pools. @default none */
  close?: () => Promise<unknown> | unknown;
  /** Budget of the whole sequence in ms; past it the exit is forced with code 1. @default 25000 */
  timeoutMs?: number;
  /** Signals handled; `[]` installs none (call `shutdown()` yourself). @default ["SIGTERM", "SIGINT"] */
  signals?: NodeJS.Signals[];
  /** Ends the process; tests inject their own. @default process.exit */
  exit?: (code: number) => void;
  logger?: Logger;
}

/** The controller returned by {@link gracefulShutdown}. */
export interface ShutdownController {
  readonly shuttingDown: boolean;
  /** Runs the sequence once; later calls return the same promise. */
  shutdown(reason?: string): Promise<void>;
  /** Removes the signal handlers. */
  dispose(): void;
}

/**
 * Installs the shutdown sequence.
 *
 * @example
 * const registration = await registerService({ name: 'users', port: 8080 });
 * gracefulShutdown({ deregister: registration.deregister, close: () => new Promise((r) => server.close(r)) });
 */
export function gracefulShutdown(options: GracefulShutdownOptions = {}): ShutdownController {
  const log = sdkLogger('shutdown', options.logger);
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const hooks = options.deregister === undefined ? [] : [options.deregister].flat();
  let running: Promise<void> | undefined;
  let exited = false;
  const doExit = (code: number) => {
    if (exited) return;
    exited = true;
    exit(code);
  };

  const shutdown = (reason = 'shutdown') => {
    running ??= (async () => {
      log.info({ reason }, 'shutting down: deregistering');
      const timer = setTimeout(() => {
        log.error({ timeoutMs: options.timeoutMs ?? 25_000 }, 'shutdown timed out; forcing exit');
        doExit(1);
      }, options.timeoutMs ?? 25_000);
      timer.unref();
      try {
        await Promise.all(
          hooks.map((h) =>
            Promise.resolve()
              .then(h)
              .catch((err) => log.warn({ err }, 'deregistration failed')),
          ),
        );
        await sleep(options.drainDelayMs ?? 3_000);
        if (options.close) await Promise.resolve().then(options.close);
        clearTimeout(timer);
        doExit(0);
      } catch (err) {
        clearTimeout(timer);
        log.error({ err }, 'shutdown failed');
        doExit(1);
      }
    })();
    return running;
  };

  const onSignal = (signal: NodeJS.Signals) => {
    if (running) {
      log.warn({ signal }, 'second signal: forcing exit');
      doExit(1);
      return;
    }
    void shutdown(signal);
  };
  for (const s of signals) process.on(s, onSignal);
  return {
    get shuttingDown() {
      return running !== undefined;
    },
    shutdown,
    dispose() {
      for (const s of signals) process.off(s, onSignal);
    },
  };
}
