/**
 * The call's deadline: one point in time for all tries and waits, the timeout of each try within it, and
 * the time left sent to the callee as `x-phare-deadline-ms` (which `phare/health` servers honour).
 */

import { DEADLINE_HEADER } from '../../api/index.ts';
import type { ClientClock } from '../clock.ts';
import type { FlatHeaders } from './try.ts';

/** The header carrying the caller's remaining time in ms (its one home is `src/api`). */
export { DEADLINE_HEADER };

/**
 * undici's `headersTimeout` runs on its fast timers, which tick every ~0.5 s and may fire up to 1 s late;
 * a try only relies on it when that lateness plus a connect cannot push it past the deadline.
 */
const FAST_TIMER_SLACK_MS = 1_000;

/** One try's time: its timeout, whether that is the deadline, whether undici's coarse timer may bound it. */
export interface TryTime {
  timeoutMs: number;
  deadlineBound: boolean;
  cheapTimer: boolean;
}

/** The deadline of one call. */
export class CallDeadline {
  readonly ms: number;
  readonly at: number;
  readonly #clock: ClientClock;
  constructor(clock: ClientClock, ms: number, started: number) {
    this.#clock = clock;
    this.ms = ms;
    this.at = started + ms;
  }

  /** Time left in ms (may be negative). */
  left(): number {
    return this.at - this.#clock.now();
  }

  /** The next try's time, given the per-try timeout and the longest connect (and the time left, if known). */
  tryTime(tryTimeoutMs: number, connectTimeoutMs: number, left = this.left()): TryTime {
    const timeoutMs = Math.min(tryTimeoutMs, left);
    return {
      timeoutMs,
      deadlineBound: timeoutMs === left,
      cheapTimer: left - timeoutMs >= connectTimeoutMs + FAST_TIMER_SLACK_MS,
    };
  }
}

/** The try's headers with its time left appended (a fresh list: undici may keep a queued request's). */
export function withDeadline(flat: FlatHeaders | undefined, timeoutMs: number): FlatHeaders {
  const value = String(Math.max(0, Math.floor(timeoutMs)));
  return flat ? [...flat, DEADLINE_HEADER, value] : [DEADLINE_HEADER, value];
}
