/**
 * Runs one named check: timeout, criticality, a minimum interval between runs (cached result) and
 * single-flight (concurrent probes share one run), so a probe storm cannot hammer a dependency.
 */
import { phareError } from '../api/index.ts';
import type { CheckFunction, CheckResult, CheckReturn, CheckSpec, HealthStatus, ProbeName } from './types.ts';

/** Defaults shared by every check. */
export const CHECK_DEFAULTS = {
  timeoutMs: 1000,
  critical: true,
  minIntervalMs: 1000,
  probes: ['ready'] as readonly ProbeName[],
} as const;

const PROBES: readonly ProbeName[] = ['live', 'ready', 'startup'];

/** A check spec with every default filled in. */
export interface ResolvedCheck {
  readonly name: string;
  readonly run: CheckFunction;
  readonly timeoutMs: number;
  readonly critical: boolean;
  readonly minIntervalMs: number;
  readonly probes: readonly ProbeName[];
  readonly close?: () => void;
}

/** Validates a check definition; errors name the check and the field. */
export function resolveCheck(name: string, def: CheckFunction | CheckSpec): ResolvedCheck {
  const where = `health.checks.${name}`;
  if (!/^[A-Za-z0-9][\w.:-]*$/.test(name)) {
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `${where}: a check name is letters, digits, "_", ".", ":" or "-"`,
    );
  }
  const spec: CheckSpec = typeof def === 'function' ? { run: def } : def;
  if (spec === null || typeof spec !== 'object' || typeof spec.run !== 'function') {
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `${where}: expected an async function or { run }, got ${typeof def}`,
    );
  }
  const timeoutMs = spec.timeoutMs ?? CHECK_DEFAULTS.timeoutMs;
  const minIntervalMs = spec.minIntervalMs ?? CHECK_DEFAULTS.minIntervalMs;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `${where}.timeoutMs: expected a positive number, got ${timeoutMs}`,
    );
  }
  if (!Number.isFinite(minIntervalMs) || minIntervalMs < 0) {
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `${where}.minIntervalMs: expected a number >= 0, got ${minIntervalMs}`,
    );
  }
  const probes = spec.probes ?? CHECK_DEFAULTS.probes;
  for (const p of probes) {
    if (!PROBES.includes(p)) {
      throw phareError(
        'PHARE_ERR_INVALID_ARGUMENT',
        `${where}.probes: expected some of ${PROBES.join(', ')}, got ${JSON.stringify(p)}`,
      );
    }
  }
  return {
    name,
    run: spec.run,
    timeoutMs,
    critical: spec.critical ?? CHECK_DEFAULTS.critical,
    minIntervalMs,
    probes: [...probes],
    ...(spec.close ? { close: spec.close } : {}),
  };
}

/** Turns anything thrown into a one-line message (Node's AggregateError from a dual-stack connect has none). */
export function errorMessage(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) {
    return [...new Set(err.errors.map(errorMessage))].join('; ');
  }
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    if (err.message) return err.message;
    return typeof code === 'string' ? code : err.name;
  }
  return String(err);
}

/** Holds one check's cached result and in-flight run. */
export class CheckRunner {
  readonly check: ResolvedCheck;
  readonly #now: () => number;
  #last: { result: CheckResult; at: number } | undefined;
  #inflight: Promise<CheckResult> | undefined;

  constructor(check: ResolvedCheck, now: () => number) {
    this.check = check;
    this.#now = now;
  }

  /** The last result, if any run finished. */
  get last(): CheckResult | undefined {
    return this.#last?.result;
  }

  /** Returns the cached result when it is younger than `minIntervalMs`, else runs (or joins a run). */
  get(): Promise<CheckResult> {
    const last = this.#last;
    if (last && this.#now() - last.at < this.check.minIntervalMs) return Promise.resolve(last.result);
    if (this.#inflight) return this.#inflight;
    const run = this.#runOnce().then((result) => {
      this.#last = { result, at: this.#now() };
      this.#inflight = undefined;
      return result;
    });
    this.#inflight = run;
    return run;
  }

  async #runOnce(): Promise<CheckResult> {
    const { check } = this;
    const started = performance.now();
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => {
        controller.abort(new DOMException(`check ${check.name} timed out`, 'TimeoutError'));
        resolve('timeout');
      }, check.timeoutMs);
      // A pending check must never keep a stopping process alive.
      timer.unref();
    });
    const attempt = (async () => check.run(controller.signal))();
    // The check may ignore the signal and reject later; that late rejection is expected, not unhandled.
    attempt.catch(() => {});
    try {
      const outcome = await Promise.race([attempt, timedOut]);
      const durationMs = Math.round(performance.now() - started);
      if (outcome === 'timeout') {
        return this.#fail(`timed out after ${check.timeoutMs} ms`, durationMs);
      }
      return this.#fromReturn(outcome, durationMs);
    } catch (err) {
      return this.#fail(errorMessage(err), Math.round(performance.now() - started));
    } finally {
      clearTimeout(timer);
    }
  }

  #fail(output: string, durationMs: number): CheckResult {
    // Consul semantics: a non-critical dependency failing degrades the service, it does not remove it.
    return { status: this.check.critical ? 'critical' : 'warning', output, durationMs };
  }

  #fromReturn(value: CheckReturn | 'timeout', durationMs: number): CheckResult {
    if (value === undefined || value === null) return { status: 'passing', output: 'ok', durationMs };
    if (typeof value === 'string') return { status: 'passing', output: value, durationMs };
    if (typeof value === 'object') {
      const status: HealthStatus = value.status ?? 'passing';
      const output = value.output ?? (status === 'passing' ? 'ok' : status);
      if (status === 'critical') return this.#fail(output, durationMs);
      if (status === 'warning' || status === 'passing') return { status, output, durationMs };
      return this.#fail(`check returned an unknown status ${JSON.stringify(status)}`, durationMs);
    }
    return { status: 'passing', output: String(value), durationMs };
  }
}

export { worstStatus } from '../api/index.ts';
