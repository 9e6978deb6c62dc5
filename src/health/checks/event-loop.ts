/**
 * Event-loop delay check (the signal `@fastify/under-pressure` sheds load on). Samples with
 * `perf_hooks.monitorEventLoopDelay` and reports the chosen percentile since the previous run.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { phareError } from '../../api/index.ts';
import type { CheckOptions, CheckSpec } from '../types.ts';

/** Options of {@link eventLoopDelayCheck}. */
export interface EventLoopDelayCheckOptions extends CheckOptions {
  /** Delay above which the check fails. @default 1000 */
  maxDelayMs?: number;
  /** Delay above which the check warns (429) without failing. @default none */
  warnDelayMs?: number;
  /** Percentile of the samples compared with the thresholds. @default 99 */
  percentile?: number;
  /** Sampling resolution of the histogram. @default 20 */
  resolutionMs?: number;
}

/**
 * Checks the event-loop delay. Joins the `live` probe by default: a process whose loop stalls for seconds
 * cannot serve, and a restart is the remedy. Set `probes: ['ready']` to shed load instead.
 *
 * @example
 * const health = createHealth({ checks: { loop: eventLoopDelayCheck({ maxDelayMs: 500, warnDelayMs: 100 }) } });
 */
export function eventLoopDelayCheck(options: EventLoopDelayCheckOptions = {}): CheckSpec {
  const { maxDelayMs = 1000, warnDelayMs, percentile = 99, resolutionMs = 20, ...rest } = options;
  if (!(maxDelayMs > 0)) {
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `eventLoopDelayCheck maxDelayMs: expected a positive number, got ${maxDelayMs}`,
    );
  }
  if (!(percentile > 0 && percentile <= 100)) {
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `eventLoopDelayCheck percentile: expected 0 < p <= 100, got ${percentile}`,
    );
  }
  const histogram = monitorEventLoopDelay({ resolution: Math.max(1, Math.round(resolutionMs)) });
  histogram.enable();
  return {
    probes: ['live'],
    ...rest,
    run() {
      // The histogram records in nanoseconds and includes the sampling interval itself; subtract it.
      const raw = histogram.count > 0 ? histogram.percentile(percentile) / 1e6 : 0;
      const delayMs = Math.max(0, raw - resolutionMs);
      histogram.reset();
      const output = `event loop delay p${percentile} ${delayMs.toFixed(1)} ms (max ${maxDelayMs} ms)`;
      if (delayMs > maxDelayMs) throw new Error(output);
      if (warnDelayMs !== undefined && delayMs > warnDelayMs) return { status: 'warning', output };
      return output;
    },
    close() {
      histogram.disable();
    },
  };
}
