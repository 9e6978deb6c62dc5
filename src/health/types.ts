/**
 * Shared types of the health kit. Statuses use Consul's words (passing / warning / critical) so a probe
 * endpoint maps one-to-one onto a Consul or Phare HTTP check (200 / 429 / 503).
 */

import type { CheckStatus } from '../api/index.ts';

/** A check's or a probe's status, in Consul's words: the health kit's name for the API's `CheckStatus`. */
export type HealthStatus = CheckStatus;

/**
 * The probes a check takes part in, with Kubernetes semantics: `live` failing restarts the process,
 * `ready` failing takes it out of rotation, `startup` gates the other two while the service starts.
 */
export type ProbeName = 'live' | 'ready' | 'startup';

/** What a check function may return: nothing (passing), a message (passing), or an explicit outcome. */
// biome-ignore lint/suspicious/noConfusingVoidType: a check written as `async () => {}` returns void, meaning passing
export type CheckReturn = void | undefined | string | { status?: HealthStatus; output?: string };

/**
 * A check: any async function. It receives an AbortSignal that fires on timeout so work can be cancelled
 * (an HTTP request, a socket). Throwing (or rejecting) means failure; the error message becomes the output.
 */
export type CheckFunction = (signal: AbortSignal) => Promise<CheckReturn> | CheckReturn;

/** A check with its options. Built-in check factories return this shape; spread it to override fields. */
export interface CheckSpec {
  /** The check itself. */
  run: CheckFunction;
  /** Time allowed for one run; a slower run counts as a failure. @default 1000 */
  timeoutMs?: number;
  /** A failing critical check makes the probe critical (503); a non-critical one only warns (429). @default true */
  critical?: boolean;
  /**
   * The check runs at most once per interval; probes in between get the cached result, so a probe storm
   * cannot hammer a database. @default 1000
   */
  minIntervalMs?: number;
  /** Probes this check takes part in. @default ['ready'] */
  probes?: readonly ProbeName[];
  /** Releases what the check holds (an event-loop histogram). Called by `health.close()`. */
  close?: () => void;
}

/** Common options every built-in check factory accepts. */
export type CheckOptions = Omit<CheckSpec, 'run' | 'close'>;

/** One check's result as it appears in a probe body. */
export interface CheckResult {
  status: HealthStatus;
  /** Human-readable detail: the error message on failure, a measurement on success. */
  output: string;
  /** How long the run took (of the cached run, when the result came from the cache). */
  durationMs: number;
}

/** The JSON body of every probe endpoint. */
export interface HealthReport {
  status: HealthStatus;
  checks: Record<string, CheckResult>;
}

/** The lifecycle a service goes through; readiness fails outside `running`. */
export type HealthPhase = 'starting' | 'running' | 'stopping';
