/**
 * The retry and hedge decisions, as pure functions of what happened and what is left: no I/O, no clock, no
 * state of their own (the random source for jitter comes in with the policy). The client does what they
 * say; their tests need no server and no time.
 *
 * Rules (docs/sdk.md): retry connect errors, timeouts and the policy's statuses (502/503/504); idempotent
 * methods only, unless the call opted in — except a connect error that certainly never reached the service,
 * which is safe for any method; backoff with full jitter (AWS architecture blog); `Retry-After` honoured
 * (RFC 9110 §10.2.3) up to a cap; never sleep past the deadline; every retry — and every hedge — takes a
 * token from the retry budget (Finagle), so neither can amplify an overload.
 */
import { fullJitter } from '../shared.ts';

/** How a try failed, as far as the decision cares. */
export interface FailureInfo {
  kind: 'connect' | 'timeout' | 'status' | 'circuit';
  /** The upstream status, for `status`. */
  status?: number;
  /** The answer's `Retry-After`, in ms. */
  retryAfterMs?: number;
  /** The request certainly never reached the service (refused, connect timeout). */
  notSent: boolean;
  /** The try's timeout was the call's deadline (so the call has no time left). */
  deadlineBound: boolean;
}

/** The retry policy, resolved. */
export interface RetryPolicy {
  /** Retries after the first try (0 = none). */
  maxRetries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  statuses: ReadonlySet<number>;
  nonIdempotent: boolean;
  maxRetryAfterMs: number;
  /** Random source of the jitter. */
  random: () => number;
}

/** Where the call stands. */
export interface AttemptInfo {
  /** Tries made so far (1 after the first). */
  tries: number;
  /** The call is safe to repeat (by method, or declared). */
  idempotent: boolean;
  /** Another instance could take a retry now (so a `Retry-After` need not be waited out). */
  otherInstance: boolean;
  policy: RetryPolicy;
}

/** Read-only view of the retry budget (the caller spends a token when told to). */
export interface BudgetView {
  canRetry(): boolean;
}

/** Time left of the call's deadline. */
export interface DeadlineView {
  leftMs: number;
}

/** What to do after a failed try. */
export type Decision =
  /** A status that is not retried: hand the answer back to the caller. */
  | { action: 'return' }
  /** Try again after `delayMs`; `awayMs` asks that the instance be left alone that long. */
  | { action: 'retry'; delayMs: number; spendsBudget: boolean; awayMs?: number }
  | {
      action: 'fail';
      code:
        | 'PHARE_ERR_DEADLINE_EXCEEDED'
        | 'PHARE_ERR_UPSTREAM'
        | 'PHARE_ERR_RETRY_BUDGET_EXHAUSTED'
        | 'PHARE_ERR_CIRCUIT_OPEN';
    };

/**
 * Decides what follows a failed try.
 *
 * @example
 * decide({ kind: 'connect', notSent: true, deadlineBound: false }, { tries: 1, idempotent: false,
 *   otherInstance: true, policy }, budget, { leftMs: 900 }); // { action: 'retry', delayMs: 0..25, … }
 */
export function decide(
  failure: FailureInfo,
  attempt: AttemptInfo,
  budget: BudgetView,
  deadline: DeadlineView,
): Decision {
  const p = attempt.policy;
  if (failure.kind === 'status' && !p.statuses.has(failure.status ?? 0)) return { action: 'return' };
  if (failure.kind === 'timeout' && (failure.deadlineBound || deadline.leftMs <= 1))
    return { action: 'fail', code: 'PHARE_ERR_DEADLINE_EXCEEDED' };
  const failed = failure.kind === 'circuit' ? 'PHARE_ERR_CIRCUIT_OPEN' : 'PHARE_ERR_UPSTREAM';
  // Connect errors that never reached the service are safe to retry whatever the method; an open circuit
  // sent nothing either.
  const repeatable =
    attempt.idempotent ||
    p.nonIdempotent ||
    failure.kind === 'circuit' ||
    (failure.kind === 'connect' && failure.notSent);
  if (p.maxRetries <= 0 || !repeatable || attempt.tries > p.maxRetries)
    return { action: 'fail', code: failed };
  let delayMs = fullJitter(attempt.tries - 1, p.baseDelayMs, p.maxDelayMs, p.random);
  let awayMs: number | undefined;
  if (failure.retryAfterMs !== undefined) {
    if (failure.retryAfterMs > p.maxRetryAfterMs) return { action: 'fail', code: 'PHARE_ERR_UPSTREAM' };
    awayMs = failure.retryAfterMs;
    // Another instance can take the retry now; only when this one is all we have do we wait it out.
    if (!attempt.otherInstance) delayMs = Math.max(delayMs, failure.retryAfterMs);
  }
  // The wait would outlast the deadline: fail now rather than sleep through it.
  if (delayMs >= deadline.leftMs) return { action: 'fail', code: 'PHARE_ERR_UPSTREAM' };
  const spendsBudget = failure.kind !== 'circuit';
  if (spendsBudget && !budget.canRetry()) return { action: 'fail', code: 'PHARE_ERR_RETRY_BUDGET_EXHAUSTED' };
  return awayMs === undefined
    ? { action: 'retry', delayMs, spendsBudget }
    : { action: 'retry', delayMs, spendsBudget, awayMs };
}

/** The hedging policy, resolved. */
export interface HedgePolicy {
  /** Fixed delay before the hedge, in ms; undefined = the instance's recent p95 latency. */
  afterMs: number | undefined;
  /** Delay used before an instance has enough latency samples, in ms. */
  initialAfterMs: number;
  /** Floor of the p95-based delay, in ms (a hedge after 0.1 ms would double every call). */
  minAfterMs: number;
}

/**
 * When to send a hedge for a try still in flight on `e` (ms after it started), or undefined for none: only
 * for idempotent calls, only while the budget has a token, and never past the deadline.
 *
 * @example
 * hedgeDelay(policy, { tries: 1, idempotent: true, otherInstance: true, policy: retry }, budget, { leftMs: 2000 }, 4.2);
 */
export function hedgeDelay(
  hedge: HedgePolicy,
  attempt: AttemptInfo,
  budget: BudgetView,
  deadline: DeadlineView,
  p95Ms: number | undefined,
): number | undefined {
  if (!attempt.idempotent || !attempt.otherInstance) return undefined;
  const after =
    hedge.afterMs ?? (p95Ms === undefined ? hedge.initialAfterMs : Math.max(hedge.minAfterMs, p95Ms));
  if (after >= deadline.leftMs || !budget.canRetry()) return undefined;
  return after;
}
