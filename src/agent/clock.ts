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

/** Node's setTimeout limit (2^31−1 ms, ≈ 24.8 days): a longer delay fires after 1 ms with a warning. */
const NODE_TIMER_MAX_MS = 2_147_483_647;

/** A delay past Node's limit, run as a chain of shorter timers. */
class LongTimer {
  current: NodeJS.Timeout | undefined;
  constructor(fn: () => void, ms: number) {
    const at = Date.now() + ms;
    const step = () => {
      const left = at - Date.now();
      if (left <= 0) {
        this.current = undefined;
        fn();
        return;
      }
      this.current = setTimeout(step, Math.min(left, NODE_TIMER_MAX_MS));
      this.current.unref();
    };
    step();
  }
}

/**
 * The real clock. Timers are unref'd so a pending check never keeps a stopping process alive. Delays past
 * Node's timer limit are chained instead of overflowing (issue 11 §8: a 600 h TTL expired at once); the
 * HTTP API rejects such durations anyway, but records loaded from an older data dir may carry them.
 *
 * @example
 * const t = systemClock.setTimeout(() => console.log('tick'), 1000);
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    if (ms > NODE_TIMER_MAX_MS) return new LongTimer(fn, ms);
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return t;
  },
  clearTimeout(timer) {
    if (timer instanceof LongTimer) {
      clearTimeout(timer.current);
      timer.current = undefined;
    } else clearTimeout(timer as NodeJS.Timeout);
  },
};
