/**
 * The circuit breaker per instance, as a strategy the try layer drives: cockatiel's SamplingBreaker (a
 * failure ratio over a sliding window, with a minimum rate) behind a small interface. A closed circuit —
 * the common case — costs nothing extra per try: the try runs directly and reports its outcome to the
 * sampling window; only a circuit that is not closed (half-open probes, open) goes through cockatiel's
 * `execute`, which lets the probe through or refuses.
 */
import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  CircuitState,
  circuitBreaker,
  handleAll,
  IsolatedCircuitError,
  SamplingBreaker,
} from 'cockatiel';

/** Circuit breaker per instance (cockatiel SamplingBreaker). */
export interface BreakerOptions {
  /** Failure ratio that opens the circuit. @default 0.5 */
  threshold?: number;
  /** Sampling window in ms. @default 10000 */
  durationMs?: number;
  /** Requests per second below which the circuit never opens. @default 5 */
  minimumRps?: number;
  /** Time before a half-open probe, in ms. @default 5000 */
  halfOpenAfterMs?: number;
}

/** One instance's breaker, as the try layer uses it. */
export interface Breaker {
  /** True while closed: the try runs directly and reports with success()/failure(). */
  readonly closed: boolean;
  /** False while open (pickers skip the instance when another is usable). */
  usable(): boolean;
  success(): void;
  failure(err: unknown): Promise<void>;
  /** Runs a try through the breaker when it is not closed (a half-open probe, or a refusal). */
  execute<T>(fn: () => Promise<T>): Promise<T>;
  /** True for the breaker's own refusal (open or isolated circuit). */
  refused(err: unknown): boolean;
}

/**
 * Makes one breaker per instance; `onOpen` is told each time the circuit opens (true) or stops being open
 * (false), so the client knows whether any circuit is open without asking every instance on every call.
 */
export type BreakerFactory = (onOpen?: (open: boolean) => void) => Breaker;

/**
 * A SamplingBreaker per instance.
 *
 * @example
 * const make = samplingBreaker({ threshold: 0.5, durationMs: 10_000 });
 * const breaker = make();
 */
export function samplingBreaker(options: BreakerOptions = {}): BreakerFactory {
  return (onOpen) => {
    const sampling = new SamplingBreaker({
      threshold: options.threshold ?? 0.5,
      duration: options.durationMs ?? 10_000,
      minimumRps: options.minimumRps ?? 5,
    });
    const policy: CircuitBreakerPolicy = circuitBreaker(handleAll, {
      halfOpenAfter: options.halfOpenAfterMs ?? 5_000,
      breaker: sampling,
    });
    let open = false;
    const breaker: Breaker = {
      closed: true,
      usable: () => policy.state !== CircuitState.Open,
      // What cockatiel's execute does on success in the closed state.
      success: () => sampling.success(CircuitState.Closed),
      // Records a failure the way cockatiel's execute would have (sampling window, opening, events) by
      // replaying it through the policy; the request itself ran outside `execute`.
      async failure(err) {
        if (policy.state !== CircuitState.Closed) return;
        await policy
          .execute(() => {
            throw err;
          })
          .catch(() => {});
      },
      execute: (fn) => policy.execute(fn),
      refused: (err) => err instanceof BrokenCircuitError || err instanceof IsolatedCircuitError,
    };
    // `closed` is a plain field kept in step with the policy's state (cockatiel emits every transition), so
    // the try layer's check on every try is one property read rather than cockatiel's state getter.
    policy.onStateChange((state) => {
      (breaker as { closed: boolean }).closed = state === CircuitState.Closed;
      const now = state === CircuitState.Open;
      if (now === open) return;
      open = now;
      onOpen?.(now);
    });
    return breaker;
  };
}
