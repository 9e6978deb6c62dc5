/**
 * Small pieces every part of the SDK uses: the default logger, backoff with full jitter, sleeping with an
 * AbortSignal. Kept here so `client/` stays free of imports from `agent/`.
 */
import { type Logger, pino } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { phareError } from '../api/index.ts';

let fallbackLogger: Logger | undefined;

/**
 * The SDK's logger: a child of the caller's (or of pino at `PHARE_LOG_LEVEL`, default "warn", on stderr)
 * bound to `{ component, ...bindings }` — leaving out every key the parent already binds, since pino writes
 * a repeated key twice (`"service":"api",…,"service":"api"`). When the parent has its own `component`, ours
 * becomes a message prefix instead.
 *
 * @example
 * const log = sdkLogger('registration', options.logger, { service: 'users' });
 */
export function sdkLogger(
  component: string,
  logger?: Logger,
  bindings: Record<string, unknown> = {},
): Logger {
  if (!logger) {
    fallbackLogger ??= pino({ level: process.env.PHARE_LOG_LEVEL ?? 'warn' }, pino.destination(2));
    logger = fallbackLogger;
  }
  const bound = logger.bindings();
  const own: Record<string, unknown> = {};
  for (const [k, v] of Object.entries({ component, ...bindings })) if (!(k in bound)) own[k] = v;
  return 'component' in bound ? logger.child(own, { msgPrefix: `${component}: ` }) : logger.child(own);
}

/** What {@link outageReporter} returns. */
export interface OutageReporter {
  /** Failures since the outage began (0 when none). */
  readonly failures: number;
  /** Records a failed try: a warning for the first, then a summary at most every `summaryEveryMs`. */
  failure(err: unknown): void;
  /** The agent answered: ends the outage (logged when there was one). */
  recovered(): void;
}

/**
 * Reports an agent outage without flooding the log: one warning when it begins, then at most one summary
 * per `summaryEveryMs` (tries, time down, last error), and one line when it ends.
 *
 * @example
 * const outage = outageReporter(log, 'registration');
 * try { await register(); outage.recovered(); } catch (err) { outage.failure(err); }
 */
export function outageReporter(
  log: Logger,
  what: string,
  summaryEveryMs = 60_000,
  now: () => number = Date.now,
): OutageReporter {
  let since = 0;
  let failures = 0;
  let lastSummary = 0;
  let inWindow = 0;
  const message = (err: unknown) => (err as Error)?.message ?? String(err);
  return {
    get failures() {
      return failures;
    },
    failure(err) {
      const t = now();
      failures++;
      inWindow++;
      if (failures === 1) {
        since = t;
        lastSummary = t;
        inWindow = 0;
        log.warn({ err: message(err) }, `${what}: agent unreachable; retrying in the background`);
        return;
      }
      if (t - lastSummary >= summaryEveryMs) {
        log.warn(
          { err: message(err), tries: inWindow, downForMs: Math.round(t - since) },
          `${what}: agent still unreachable`,
        );
        lastSummary = t;
        inWindow = 0;
      }
    },
    recovered() {
      if (failures === 0) return;
      log.info({ tries: failures, downForMs: Math.round(now() - since) }, `${what}: agent reachable again`);
      failures = 0;
    },
  };
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
    // `buckets: undefined` would replace prom-client's default buckets with nothing (and throw)
    new Histogram({ name, help, labelNames, ...(buckets ? { buckets } : {}), registers: [registry] })
  );
}
