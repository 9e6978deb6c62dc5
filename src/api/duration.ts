/**
 * Durations: milliseconds in code, Go duration strings on the wire (Consul's format: "10s", "1m30s", "500ms").
 *
 * Consul decodes durations with Go's `time.ParseDuration`, and also accepts a JSON number meaning
 * nanoseconds (`lib/json.go`). We match both so bodies written for Consul work unchanged.
 */

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * The longest duration Phare accepts for a timer-driven field (TTL, Interval, Timeout,
 * DeregisterCriticalServiceAfter): 596h, just under Node's timer limit of 2^31−1 ms (≈ 24.8 days), past
 * which `setTimeout` fires at once. Consul (Go timers) has no such limit; Phare answers 400 instead.
 */
export const MAX_TIMER_DURATION_MS = 596 * 3_600_000;

/** Error thrown for a string that is not a Go duration; the message matches Go's `time.ParseDuration`. */
export class DurationError extends Error {
  constructor(input: string) {
    super(`time: invalid duration ${JSON.stringify(input)}`);
    this.name = 'DurationError';
  }
}

/**
 * Parses a Go duration string ("1h2m", "1.5s", "300ms", "-2s", "0") into milliseconds.
 *
 * @example
 * parseDuration('1m30s'); // 90000
 * parseDuration('250ms'); // 250
 * @throws {DurationError} when the string is not a valid Go duration.
 */
export function parseDuration(input: string): number {
  let s = input;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw new DurationError(input);
  let total = 0;
  const re = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;
  while (s.length > 0) {
    const m = re.exec(s);
    if (!m) throw new DurationError(input);
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    s = s.slice(m[0].length);
  }
  return sign * total;
}

/**
 * Reads a duration from a decoded JSON value: a Go duration string, or a number of nanoseconds.
 *
 * @example
 * durationFromJson('10s'); // 10000
 * durationFromJson(5e9);   // 5000
 */
export function durationFromJson(value: string | number): number {
  return typeof value === 'number' ? value / 1e6 : parseDuration(value);
}

/**
 * Formats milliseconds the way Go's `time.Duration.String()` does, which is what Consul echoes back.
 *
 * @example
 * formatDuration(90_000); // "1m30s"
 * formatDuration(500);    // "500ms"
 * formatDuration(3_600_000); // "1h0m0s"
 */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const neg = ms < 0;
  let rest = Math.abs(ms);
  let out: string;
  if (rest < 1) {
    const us = rest * 1000;
    out = us >= 1 ? `${trimNum(us)}µs` : `${trimNum(us * 1000)}ns`;
  } else if (rest < 1000) {
    out = `${trimNum(rest)}ms`;
  } else {
    const h = Math.floor(rest / 3_600_000);
    rest -= h * 3_600_000;
    const m = Math.floor(rest / 60_000);
    rest -= m * 60_000;
    const s = `${trimNum(rest / 1000)}s`;
    out = h > 0 ? `${h}h${m}m${s}` : m > 0 ? `${m}m${s}` : s;
  }
  return neg ? `-${out}` : out;
}

function trimNum(n: number): string {
  return String(Number(n.toFixed(9)));
}
