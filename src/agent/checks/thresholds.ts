/**
 * Consul's StatusHandler (agent/checks/check.go): turns raw probe results into reported statuses using
 * `SuccessBeforePassing`, `FailuresBeforeWarning` and `FailuresBeforeCritical` (Consul docs, Health checks).
 * Applies to HTTP/TCP checks, never to TTL checks.
 */
import type { CheckDefinition } from '../catalog/index.ts';
import type { ProbeResult } from './probe.ts';

/**
 * Counts consecutive successes and failures of one check.
 *
 * @example
 * const h = new StatusHandler({ successBeforePassing: 2, failuresBeforeWarning: 1, failuresBeforeCritical: 3 });
 * h.observe({ status: 'critical', output: 'x' }); // reported immediately: counters start at their thresholds
 */
export class StatusHandler {
  readonly #successBeforePassing: number;
  readonly #failuresBeforeWarning: number;
  readonly #failuresBeforeCritical: number;
  #successes: number;
  #failures: number;

  constructor(
    def: Pick<CheckDefinition, 'successBeforePassing' | 'failuresBeforeWarning' | 'failuresBeforeCritical'>,
  ) {
    this.#successBeforePassing = Math.max(0, def.successBeforePassing || 0);
    this.#failuresBeforeCritical = Math.max(0, def.failuresBeforeCritical || 0);
    // Go cannot tell "unset" from 0: Consul defaults FailuresBeforeWarning to FailuresBeforeCritical.
    const warn = Math.max(0, def.failuresBeforeWarning || 0);
    this.#failuresBeforeWarning = warn === 0 ? this.#failuresBeforeCritical : warn;
    // Counters start at their thresholds so the very first result is reported as is.
    this.#successes = this.#successBeforePassing;
    this.#failures = this.#failuresBeforeCritical;
  }

  /**
   * Feeds one probe result; returns what to report, or undefined when a threshold holds the status back
   * (then nothing, not even the output, is reported — as in Consul).
   */
  observe(result: ProbeResult): ProbeResult | undefined {
    if (result.status === 'passing' || result.status === 'warning') {
      this.#successes++;
      this.#failures = 0;
      return this.#successes >= this.#successBeforePassing ? result : undefined;
    }
    this.#failures++;
    this.#successes = 0;
    if (this.#failures >= this.#failuresBeforeCritical) return result;
    if (this.#failures >= this.#failuresBeforeWarning) return { status: 'warning', output: result.output };
    return undefined;
  }
}
