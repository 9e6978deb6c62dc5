/**
 * A fake {@link Clock} for tests of TTLs, scheduling, reaping and backoff: time moves only when the test
 * says so, and timers fire in due order with `now()` equal to their due time.
 */
import type { Clock, ClockTimer } from '../../src/agent/clock.ts';

interface FakeTimer {
  id: number;
  at: number;
  fn: () => void;
}

/**
 * @example
 * const clock = new FakeClock();
 * clock.setTimeout(() => fired = true, 1000);
 * clock.advance(999); // not yet
 * clock.advance(1);   // fired
 */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Map<number, FakeTimer>();

  /** @param start epoch ms the clock starts at. @default 2025-01-01T00:00:00Z */
  constructor(start = Date.UTC(2025, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    const id = ++this.#seq;
    this.#timers.set(id, { id, at: this.#now + Math.max(0, ms), fn });
    return { id };
  }

  clearTimeout(timer: ClockTimer): void {
    const id = (timer as { id?: number } | undefined)?.id;
    if (id !== undefined) this.#timers.delete(id);
  }

  /** Timers not yet fired. */
  get pending(): number {
    return this.#timers.size;
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due on the way (including timers set by
   * those callbacks), each with `now()` at its due time.
   */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let next: FakeTimer | undefined;
      for (const t of this.#timers.values()) {
        if (t.at <= target && (next === undefined || t.at < next.at || (t.at === next.at && t.id < next.id)))
          next = t;
      }
      if (!next) break;
      this.#timers.delete(next.id);
      this.#now = Math.max(this.#now, next.at);
      next.fn();
    }
    this.#now = target;
  }

  /** Like {@link advance} in steps of `stepMs`, letting promise callbacks and I/O run between steps. */
  async tick(ms: number, stepMs = ms): Promise<void> {
    let left = ms;
    do {
      const step = stepMs > 0 ? Math.min(stepMs, left) : left;
      this.advance(step);
      left -= step;
      await new Promise((r) => setImmediate(r));
    } while (left > 0);
  }
}
