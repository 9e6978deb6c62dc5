/**
 * The process's open-file limit, which sizes the agent's socket budgets (HTTP connections, probes in
 * flight): running out of descriptors fails every read and write at once (issue 11 §6), so budgets stay
 * well under it. Node raises the soft limit to the hard one at start, so this is the real ceiling.
 */
import { readFileSync } from 'node:fs';

/**
 * The soft `RLIMIT_NOFILE` of this process, from `/proc/self/limits`; undefined where that file does not
 * exist (not Linux) or says `unlimited`.
 *
 * @example
 * openFileLimit(); // 1048576 on most Linux machines, 1024 under `ulimit -n 1024`
 */
export function openFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Descriptors kept free for the store, logs, DNS and the rest of the process. */
const RESERVED_FDS = 64;

/**
 * A share of the descriptors left after the reserve, clamped to `[min, max]`: HTTP connections take half,
 * health probes an eighth (their scheduler may reach three times its cap while targets hang).
 *
 * @example
 * fdBudget(0.5, 16, 4096); // 4096 with a large limit; 480 under a 1,024 limit
 */
export function fdBudget(share: number, min: number, max: number, limit = openFileLimit()): number {
  if (limit === undefined) return max;
  return Math.max(min, Math.min(max, Math.floor((limit - RESERVED_FDS) * share)));
}
