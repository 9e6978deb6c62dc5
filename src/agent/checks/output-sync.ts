/**
 * Deferred writes of output-only check changes, as Consul's `check_update_interval` (Consul docs, Agent
 * configuration: "checks that change output but not status are synced at most once per interval"): a probe
 * whose status is unchanged but whose output differs updates the agent's view at once, and the store gets it
 * later — after half an interval plus a random share of one (Consul's stagger, so 10,000 checks whose output
 * changes do not all write together). A status change writes at once and carries the output with it, which
 * cancels the deferred write. A check whose output does not change costs no write at all, so 10,000 steady
 * checks cost the store (and a shared etcd) nothing.
 */
import type { Clock, ClockTimer } from '../clock.ts';

/** Options of {@link OutputSync}. */
export interface OutputSyncOptions {
  clock: Clock;
  /** `--check-update-interval`; 0 writes every output change at once. @default 300000 (5 min, Consul's) */
  intervalMs: number;
  /** Writes a check's current output to the store (errors are the callee's to log). */
  flush: (checkId: string) => void;
  /** @default Math.random */
  random?: () => number;
}

/** Consul's default `check_update_interval`. */
export const DEFAULT_CHECK_UPDATE_INTERVAL_MS = 5 * 60_000;

/**
 * Which checks have output the store does not have yet, and when each is written.
 *
 * @example
 * const sync = new OutputSync({ clock, intervalMs: 300_000, flush: (id) => void catalog.persistCheck(node, id) });
 * sync.defer('service:web-1'); // output changed, status did not: written within 2.5–7.5 min
 * sync.cancel('service:web-1'); // its status changed: that write carried the output
 */
export class OutputSync {
  readonly #clock: Clock;
  readonly #intervalMs: number;
  readonly #flush: (checkId: string) => void;
  readonly #random: () => number;
  /** check ID -> when its output is written (epoch ms on the clock). */
  readonly #due = new Map<string, number>();
  #timer: ClockTimer | undefined;

  constructor(o: OutputSyncOptions) {
    this.#clock = o.clock;
    this.#intervalMs = o.intervalMs;
    this.#flush = o.flush;
    this.#random = o.random ?? Math.random;
  }

  /** Checks with a write pending. */
  get size(): number {
    return this.#due.size;
  }

  /** The output of `checkId` changed without its status: write it once its time comes (or now, with 0). */
  defer(checkId: string): void {
    if (this.#intervalMs === 0) {
      this.#flush(checkId);
      return;
    }
    if (this.#due.has(checkId)) return; // the pending write will carry the latest output
    const d = this.#intervalMs;
    this.#due.set(checkId, this.#clock.now() + Math.floor(d / 2 + this.#random() * d));
    this.#arm();
  }

  /** The check was written anyway (a status change) or went away: nothing to write. */
  cancel(checkId: string): void {
    this.#due.delete(checkId);
  }

  /** Forgets every pending write (the engine stops; the view keeps the outputs, anti-entropy or the next status change writes them). */
  clear(): void {
    this.#due.clear();
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * One timer for all of them, ticking at a tenth of the interval (between 10 ms and 5 s) while writes are
   * pending: a sweep of the pending map is cheap next to a timer per check.
   */
  #arm(): void {
    if (this.#timer !== undefined || this.#due.size === 0) return;
    const tick = Math.min(5000, Math.max(10, Math.floor(this.#intervalMs / 10)));
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      const now = this.#clock.now();
      for (const [id, due] of this.#due) {
        if (due > now) continue;
        this.#due.delete(id);
        this.#flush(id);
      }
      this.#arm();
    }, tick);
  }
}
