/**
 * Time is injected (docs/architecture conventions: an injected clock): the SDK's time-dependent parts — backoff, retry budgets, outlier
 * ejection, hedging, the peak-EWMA balancer — take a clock, so their tests run on fake time. Structurally
 * the agent's `Clock`, so one fake clock serves both.
 */

/** A clock: epoch milliseconds and timers. */
export interface ClientClock {
  /** Milliseconds since the epoch (fractional allowed). */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
}

// Read once: the getter costs as much as the clock read itself.
const origin = performance.timeOrigin;

/**
 * The real clock: `performance.now()` on the epoch scale (sub-millisecond, monotonic — latencies on
 * loopback are well under a millisecond), Node timers.
 *
 * @example
 * createServiceClient({ discovery, clock: systemClock });
 */
export const systemClock: ClientClock = {
  now: () => origin + performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
};

/**
 * Resolves after `ms` on `clock`, or rejects with the signal's reason when it aborts first.
 *
 * @example
 * await sleepOn(clock, 250, controller.signal);
 */
export function sleepOn(clock: ClientClock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clock.clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
