/**
 * Retry budget (Finagle "retry budgets", finagle.github.io/blog/2016/02/08/retry-budgets; Envoy
 * `retry_budget`): retries may add at most `percent` % on top of the requests of the last `windowMs`, plus
 * a floor of `minPerSecond` retries per second for low traffic. During an outage every request fails, the
 * budget runs out, and retries stop multiplying the load on the service that is already down.
 */
import { phareError } from '../../api/index.ts';

/** Options of {@link RetryBudget}. */
export interface RetryBudgetOptions {
  /** Retries allowed as a percentage of requests in the window. @default 20 */
  percent?: number;
  /** Retries per second always allowed (low-traffic floor). @default 10 */
  minPerSecond?: number;
  /** Sliding window in ms. @default 10000 */
  windowMs?: number;
  /** Clock. @default Date.now */
  now?: () => number;
}

const SLOTS = 10;

/** A sliding-window retry budget (10 slots). */
export class RetryBudget {
  readonly #percent: number;
  readonly #floor: number;
  readonly #slotMs: number;
  readonly #now: () => number;
  readonly #requests = new Float64Array(SLOTS);
  readonly #retries = new Float64Array(SLOTS);
  #slot = 0;
  #slotStart = 0;

  constructor(options: RetryBudgetOptions = {}) {
    const percent = options.percent ?? 20;
    const minPerSecond = options.minPerSecond ?? 10;
    const windowMs = options.windowMs ?? 10_000;
    if (!(percent >= 0))
      throw phareError('PHARE_ERR_INVALID_ARGUMENT', `retryBudget.percent: expected >= 0, got ${percent}`);
    if (!(minPerSecond >= 0)) {
      throw phareError(
        'PHARE_ERR_INVALID_ARGUMENT',
        `retryBudget.minPerSecond: expected >= 0, got ${minPerSecond}`,
      );
    }
    if (!(windowMs > 0))
      throw phareError('PHARE_ERR_INVALID_ARGUMENT', `retryBudget.windowMs: expected > 0, got ${windowMs}`);
    this.#percent = percent / 100;
    this.#floor = (minPerSecond * windowMs) / 1000;
    this.#slotMs = windowMs / SLOTS;
    this.#now = options.now ?? Date.now;
    this.#slotStart = this.#now();
  }

  #advance(now = this.#now()): number {
    let steps = Math.floor((now - this.#slotStart) / this.#slotMs);
    if (steps <= 0) return this.#slot;
    this.#slotStart += steps * this.#slotMs;
    if (steps > SLOTS) steps = SLOTS;
    for (let i = 0; i < steps; i++) {
      this.#slot = (this.#slot + 1) % SLOTS;
      this.#requests[this.#slot] = 0;
      this.#retries[this.#slot] = 0;
    }
    return this.#slot;
  }

  /** Counts one original request (at `now`, when the caller has read the clock already). */
  request(now?: number): void {
    const slot = this.#advance(now);
    this.#requests[slot] = (this.#requests[slot] ?? 0) + 1;
  }

  /** True when one more retry fits the budget (takes nothing). */
  canRetry(): boolean {
    this.#advance();
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < SLOTS; i++) {
      requests += this.#requests[i] as number;
      retries += this.#retries[i] as number;
    }
    return retries + 1 <= this.#floor + this.#percent * requests;
  }

  /** Counts one retry (or hedge) against the budget. */
  spend(): void {
    const slot = this.#advance();
    this.#retries[slot] = (this.#retries[slot] ?? 0) + 1;
  }

  /** Takes one retry from the budget; false when it is spent. */
  tryRetry(): boolean {
    if (!this.canRetry()) return false;
    this.spend();
    return true;
  }
}
