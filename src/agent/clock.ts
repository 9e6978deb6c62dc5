/**
 * Time is injected: domain code (TTL expiry, check scheduling, reaping) takes a Clock so tests can use
 * fake time instead of sleeping.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): ClockTimer;
  clearTimeout(timer: ClockTimer): void;
}

/** An opaque timer handle. */
export type ClockTimer = { unref?: () => unknown } | number | object;

/**
 * The real clock. Timers are unref'd so a pending check never keeps a stopping process alive.
 *
 * @example
 * const t = systemClock.setTimeout(() => console.log('tick'), 1000);
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return t;
  },
  clearTimeout(timer) {
    clearTimeout(timer as NodeJS.Timeout);
  },
};
