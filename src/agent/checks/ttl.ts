/**
 * TTL checks (Consul docs, Health checks): the application reports through pass/warn/fail/update, each report
 * resets a timer of `TTL`; when it runs out the check turns critical with Output `TTL expired` or
 * `TTL expired (last output before timeout follows): <last>`. After expiry the timer stays off until the
 * next report, as Consul's CheckTTL does. Timers follow the injected clock; TTLs may be sub-second.
 */
import type { Clock, ClockTimer } from '../clock.ts';

/**
 * Consul's expiry output (CheckTTL.getExpiredOutput).
 *
 * @example
 * ttlExpiredOutput('');        // 'TTL expired'
 * ttlExpiredOutput('busy');    // 'TTL expired (last output before timeout follows): busy'
 */
export function ttlExpiredOutput(lastOutput: string): string {
  return lastOutput === ''
    ? 'TTL expired'
    : `TTL expired (last output before timeout follows): ${lastOutput}`;
}

interface TtlEntry {
  ttlMs: number;
  lastOutput: string;
  timer?: ClockTimer;
}

/**
 * One timer per TTL check, keyed by check ID.
 *
 * @example
 * const ttl = new TtlTimers(clock, (id, output) => catalog.updateCheck(node, id, 'critical', output));
 * ttl.arm('service:web', 30_000);
 * ttl.touch('service:web', 'ok'); // after every pass/warn/fail/update
 */
export class TtlTimers {
  readonly #clock: Clock;
  readonly #onExpire: (checkId: string, output: string) => void;
  readonly #entries = new Map<string, TtlEntry>();

  constructor(clock: Clock, onExpire: (checkId: string, output: string) => void) {
    this.#clock = clock;
    this.#onExpire = onExpire;
  }

  /** Number of TTL checks tracked. */
  get size(): number {
    return this.#entries.size;
  }

  has(checkId: string): boolean {
    return this.#entries.has(checkId);
  }

  /** Starts (or restarts, forgetting the last output) the timer of a newly registered TTL check. */
  arm(checkId: string, ttlMs: number): void {
    this.remove(checkId);
    const entry: TtlEntry = { ttlMs, lastOutput: '' };
    this.#entries.set(checkId, entry);
    this.#start(checkId, entry);
  }

  /** Records a report and restarts the timer. Returns false if the check is not a tracked TTL check. */
  touch(checkId: string, output: string): boolean {
    const entry = this.#entries.get(checkId);
    if (!entry) return false;
    entry.lastOutput = output;
    this.#start(checkId, entry);
    return true;
  }

  remove(checkId: string): void {
    const entry = this.#entries.get(checkId);
    if (!entry) return;
    if (entry.timer !== undefined) this.#clock.clearTimeout(entry.timer);
    this.#entries.delete(checkId);
  }

  clear(): void {
    for (const id of [...this.#entries.keys()]) this.remove(id);
  }

  #start(checkId: string, entry: TtlEntry): void {
    if (entry.timer !== undefined) this.#clock.clearTimeout(entry.timer);
    entry.timer = this.#clock.setTimeout(() => {
      entry.timer = undefined;
      if (this.#entries.get(checkId) !== entry) return;
      this.#onExpire(checkId, ttlExpiredOutput(entry.lastOutput));
    }, entry.ttlMs);
  }
}
