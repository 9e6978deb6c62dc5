/**
 * Small pieces every part of the SDK uses: the default logger, backoff with full jitter, sleeping with an
 * AbortSignal. Kept here so `client/` stays free of imports from `agent/`.
 */
import { type Logger, pino } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { phareError } from '../api/index.ts';

let fallbackLogger: Logger | undefined;

/** The SDK's logger when the caller gives none: pino at `PHARE_LOG_LEVEL` (default "warn") on stderr. */
export function sdkLogger(component: string, logger?: Logger): Logger {
  if (logger) return logger.child({ component });
  fallbackLogger ??= pino({ level: process.env.PHARE_LOG_LEVEL ?? 'warn' }, pino.destination(2));
  return fallbackLogger.child({ component });
}

/**
 * Exponential backoff with full jitter (AWS architecture blog "Exponential Backoff And Jitter"): a random
 * delay in [0, min(cap, base × 2^attempt)]. Full jitter spreads a crowd of clients that failed together.
 *
 * @example
 * const delay = fullJitter(3, 100, 10_000); // somewhere in [0, 800]
 */
export function fullJitter(
  attempt: number,
  baseMs: number,
  capMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/**
 * Resolves after `ms`, or rejects with the signal's reason when it aborts first.
 *
 * @example
 * await sleep(250, controller.signal);
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Checks a number option at construction and names it in the error, as the design asks. */
export function checkNonNegative(name: string, value: number | undefined): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `${name}: expected a non-negative number, got ${JSON.stringify(value)}`,
    );
  }
}

/** Reuses a metric already registered under the name (several clients may share one registry). */
export function getOrCreateGauge(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
): Gauge {
  return (
    (registry.getSingleMetric(name) as Gauge | undefined) ??
    new Gauge({ name, help, labelNames, registers: [registry] })
  );
}

/** Reuses a metric already registered under the name. */
export function getOrCreateCounter(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
): Counter {
  return (
    (registry.getSingleMetric(name) as Counter | undefined) ??
    new Counter({ name, help, labelNames, registers: [registry] })
  );
}

/** Reuses a histogram already registered under the name. */
export function getOrCreateHistogram(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  buckets?: number[],
): Histogram {
  return (
    (registry.getSingleMetric(name) as Histogram | undefined) ??
    new Histogram({ name, help, labelNames, buckets, registers: [registry] })
  );
}
