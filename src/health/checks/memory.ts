/** Memory check: resident set size and/or V8 heap use against thresholds. */
import { phareError } from '../../api/index.ts';
import type { CheckOptions, CheckSpec } from '../types.ts';

/** Options of {@link memoryCheck}; at least one threshold is required. */
export interface MemoryCheckOptions extends CheckOptions {
  /** Fails above this resident set size. @default none */
  maxRssBytes?: number;
  /** Fails above this V8 heap use. @default none */
  maxHeapUsedBytes?: number;
  /** Warns (429) above this fraction of a threshold. @default none */
  warnRatio?: number;
}

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

/**
 * Checks memory use. Joins the `live` probe by default (a leaking process is restarted); set
 * `probes: ['ready']` to shed load instead.
 *
 * @example
 * const health = createHealth({ checks: { memory: memoryCheck({ maxRssBytes: 512 * 2 ** 20, warnRatio: 0.8 }) } });
 */
export function memoryCheck(options: MemoryCheckOptions): CheckSpec {
  const { maxRssBytes, maxHeapUsedBytes, warnRatio, ...rest } = options;
  if (maxRssBytes === undefined && maxHeapUsedBytes === undefined) {
    throw phareError('PHARE_ERR_INVALID_ARGUMENT', 'memoryCheck: set maxRssBytes and/or maxHeapUsedBytes');
  }
  for (const [name, v] of [
    ['maxRssBytes', maxRssBytes],
    ['maxHeapUsedBytes', maxHeapUsedBytes],
  ] as const) {
    if (v !== undefined && !(v > 0)) {
      throw phareError(
        'PHARE_ERR_INVALID_ARGUMENT',
        `memoryCheck ${name}: expected a positive number of bytes, got ${v}`,
      );
    }
  }
  if (warnRatio !== undefined && !(warnRatio > 0 && warnRatio < 1)) {
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `memoryCheck warnRatio: expected 0 < ratio < 1, got ${warnRatio}`,
    );
  }
  return {
    probes: ['live'],
    ...rest,
    run() {
      const parts: string[] = [];
      let over = false;
      let near = false;
      const measure = (label: string, value: number, max: number | undefined) => {
        if (max === undefined) return;
        parts.push(`${label} ${mib(value)} (max ${mib(max)})`);
        if (value > max) over = true;
        else if (warnRatio !== undefined && value > max * warnRatio) near = true;
      };
      measure('rss', process.memoryUsage.rss(), maxRssBytes);
      if (maxHeapUsedBytes !== undefined) {
        measure('heap used', process.memoryUsage().heapUsed, maxHeapUsedBytes);
      }
      const output = parts.join(', ');
      if (over) throw new Error(output);
      return { status: near ? 'warning' : 'passing', output };
    },
  };
}
