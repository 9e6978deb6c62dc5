/**
 * One try: one request to one instance, bounded by its timeout, guarded by the instance's breaker, ending in
 * an answer or a {@link TryFailure}. No retry logic here (decide.ts), no choice of instance (client.ts).
 *
 * Fast path (closed circuit, the common case): the request is awaited directly — no cockatiel wrapper
 * promises — and its outcome is reported to the breaker. A circuit that is not closed goes through the
 * breaker's `execute` (half-open probes, refusals). Requests go out through undici's dispatch API with the
 * handler of reply.ts: a small answer is read whole before the try ends (so a cut or stalled body is a failed
 * try), any other is handed back at its headers.
 *
 * Timeout: one timer per try at most, and no AbortController in the common case. When the pool has a free
 * connection and the deadline leaves room for a connect plus a late fast timer after the try, undici's own
 * per-request `headersTimeout` bounds the try once it is written (the connect is bounded by
 * `connectTimeoutMs`) and the caller's signal, if any, goes to undici as is. Otherwise (a short try, a
 * deadline-bound try, a saturated pool) an AbortController with one timer bounds it from the start, queueing
 * in the pool included. On the fast path a small answer's body, when it does not come with its headers, is
 * bounded by the try's timeout and the call's deadline (reply.ts).
 */
import type { Dispatcher } from 'undici';
import type { Endpoint } from '../balancer/index.ts';
import type { ClientClock } from '../clock.ts';
import type { Attachment } from './pool.ts';
import { ReplyHandler, type TryReply } from './reply.ts';

/** A header list in undici's flat form, `[name, value, …]`. */
export type FlatHeaders = string[];

/** How a try ended without an answer to hand back (a 5xx answer carries `res`). */
export type TryFailureKind = 'connect' | 'timeout' | 'status' | 'circuit';

/** A try that brought no answer to hand back. */
export class TryFailure {
  readonly kind: TryFailureKind;
  readonly err: unknown;
  readonly res: TryReply | undefined;
  /** The try's timeout was the call's deadline. */
  readonly deadlineBound: boolean;
  constructor(kind: TryFailureKind, err: unknown, res?: TryReply, deadlineBound = false) {
    this.kind = kind;
    this.err = err;
    this.res = res;
    this.deadlineBound = deadlineBound;
  }
}

/** One try's request. */
export interface TryRequest {
  method: string;
  path: string;
  headers: FlatHeaders | undefined;
  body: string | Uint8Array | null | undefined;
  timeoutMs: number;
  /** The timeout is the call's deadline. */
  deadlineBound: boolean;
  /** The call's deadline (clock ms): with `timeoutMs`, the bound of a small answer's body on the fast path. */
  deadlineAt: number;
  /** The deadline leaves room for undici's coarse `headersTimeout` (see the header). */
  cheapTimer: boolean;
  /** The caller's signal: aborting it rejects the try with its reason. */
  signal: AbortSignal | undefined;
}

class FailedStatus extends Error {
  readonly res: TryReply;
  constructor(res: TryReply) {
    super(`status ${res.statusCode}`);
    this.res = res;
  }
}

/** The timed-out error a try fails with (the same text whichever timer fired). */
function timedOut(timeoutMs: number, cause?: unknown): Error {
  return new Error(`try timed out after ${timeoutMs}ms`, cause === undefined ? undefined : { cause });
}

/** A fast try's own timeout fired: undici's `headersTimeout`, or the bound of a small answer's body. */
function isFastTimeout(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'PHARE_BODY_TIMEOUT';
}

/** Runs tries; `minFastTryMs` is the shortest try left to undici's coarse timer. */
export class TryRunner {
  readonly #clock: ClientClock;
  readonly #minFastTryMs: number;
  constructor(clock: ClientClock, minFastTryMs: number) {
    this.#clock = clock;
    this.#minFastTryMs = minFastTryMs;
  }

  /** One try on `e` (whose attachment is `a`). Rejects only with the caller's abort reason. */
  async run(e: Endpoint, a: Attachment, r: TryRequest): Promise<TryReply | TryFailure> {
    const b = a.breaker;
    if (b !== undefined && !b.closed) return this.#guarded(e, a, r);
    const fast = r.cheapTimer && r.timeoutMs >= this.#minFastTryMs && !a.pool.saturated;
    let ac: AbortController | undefined;
    let timer: unknown;
    let expired = false;
    let unlink: (() => void) | undefined;
    if (!fast) {
      const c = new AbortController();
      ac = c;
      timer = this.#clock.setTimeout(() => {
        expired = true;
        c.abort(timedOut(r.timeoutMs));
      }, r.timeoutMs);
      unlink = link(c, r.signal);
    }
    e.active++;
    let res: TryReply;
    try {
      // the caller's signal goes to the handler as is when no controller of ours is needed
      res = await this.#request(a, r, ac ? ac.signal : r.signal, fast);
    } catch (caught) {
      e.active--;
      let err = caught;
      if (fast && isFastTimeout(caught)) {
        expired = true;
        err = timedOut(r.timeoutMs, caught);
      }
      if (timer !== undefined) this.#clock.clearTimeout(timer);
      unlink?.();
      if (r.signal?.aborted) throw r.signal.reason ?? err;
      if (b) await b.failure(err);
      if (expired) return new TryFailure('timeout', err, undefined, r.deadlineBound);
      return new TryFailure('connect', err);
    }
    e.active--;
    if (timer !== undefined) this.#clock.clearTimeout(timer);
    unlink?.();
    if (res.statusCode >= 500) {
      // 5xx counts against the instance (breaker, outlier) even when it is not one we retry.
      if (b) await b.failure(new FailedStatus(res));
      return new TryFailure('status', undefined, res);
    }
    b?.success();
    return res;
  }

  /**
   * {@link run} in callback form, for a call that has no promise of its own to spend: the fast path (closed
   * circuit, undici's `headersTimeout` as the try's timer) goes out through undici's dispatch API with
   * reply.ts's handler, so the try costs no promise at all; any other try runs as {@link run}. `done` gets
   * the outcome `run` would resolve with, `aborted` the caller's abort reason (what `run` would reject
   * with). Neither is ever called twice.
   */
  send(
    e: Endpoint,
    a: Attachment,
    r: TryRequest,
    done: (outcome: TryReply | TryFailure) => void,
    aborted: (reason: unknown) => void,
  ): void {
    const b = a.breaker;
    if (
      (b !== undefined && !b.closed) ||
      !(r.cheapTimer && r.timeoutMs >= this.#minFastTryMs && !a.pool.saturated)
    ) {
      this.run(e, a, r).then(done, aborted);
      return;
    }
    e.active++;
    this.#dispatch(a, r, r.signal, true, (caught, res) => {
      e.active--;
      if (res === undefined) {
        let err: unknown = caught;
        let expired = false;
        if (isFastTimeout(caught)) {
          expired = true;
          err = timedOut(r.timeoutMs, caught);
        }
        if (r.signal?.aborted) return aborted(r.signal.reason ?? err);
        const failure = expired
          ? new TryFailure('timeout', err, undefined, r.deadlineBound)
          : new TryFailure('connect', err);
        if (b) void b.failure(err).then(() => done(failure));
        else done(failure);
        return;
      }
      if (res.statusCode >= 500) {
        // 5xx counts against the instance (breaker, outlier) even when it is not one we retry.
        const failure = new TryFailure('status', undefined, res);
        if (b) void b.failure(new FailedStatus(res)).then(() => done(failure));
        else done(failure);
        return;
      }
      b?.success();
      done(res);
    });
  }

  /**
   * Sends `r` on `a`'s pool; `done` gets the reply or the error. `fast`: undici's `headersTimeout` times the
   * try, and a small answer's body is bounded as reply.ts says.
   */
  #dispatch(
    a: Attachment,
    r: TryRequest,
    signal: AbortSignal | undefined,
    fast: boolean,
    done: (err: unknown, reply: TryReply | undefined) => void,
  ): void {
    a.pool.dispatch(
      {
        path: r.path,
        method: r.method as Dispatcher.HttpMethod,
        headers: r.headers,
        body: r.body ?? undefined,
        headersTimeout: fast ? Math.ceil(r.timeoutMs) : undefined,
      },
      new ReplyHandler(r.method, signal, fast ? r : undefined, this.#clock, done),
    );
  }

  /** {@link #dispatch} as a promise. */
  #request(a: Attachment, r: TryRequest, signal: AbortSignal | undefined, fast: boolean): Promise<TryReply> {
    return new Promise((resolve, reject) => {
      this.#dispatch(a, r, signal, fast, (err, reply) => {
        if (reply !== undefined) resolve(reply);
        else reject(err);
      });
    });
  }

  /** A try through the breaker's `execute` (half-open probes, open or isolated circuits). */
  async #guarded(e: Endpoint, a: Attachment, r: TryRequest): Promise<TryReply | TryFailure> {
    const b = a.breaker as NonNullable<Attachment['breaker']>;
    const ac = new AbortController();
    let expired = false;
    const timer = this.#clock.setTimeout(() => {
      expired = true;
      ac.abort(timedOut(r.timeoutMs));
    }, r.timeoutMs);
    const unlink = link(ac, r.signal);
    const send = async () => {
      const res = await this.#request(a, r, ac.signal, false);
      if (res.statusCode >= 500) throw new FailedStatus(res);
      return res;
    };
    e.active++;
    try {
      return await b.execute(send);
    } catch (err) {
      if (err instanceof FailedStatus) return new TryFailure('status', undefined, err.res);
      if (b.refused(err)) return new TryFailure('circuit', err);
      if (r.signal?.aborted) throw r.signal.reason ?? err;
      if (expired) return new TryFailure('timeout', err, undefined, r.deadlineBound);
      return new TryFailure('connect', err);
    } finally {
      e.active--;
      this.#clock.clearTimeout(timer);
      unlink();
    }
  }
}

/** Aborts `c` when the caller's signal aborts (with its reason); returns the unlinking function. */
function link(c: AbortController, signal: AbortSignal | undefined): () => void {
  if (signal === undefined) return noop;
  // an already aborted signal fires no event: abort now, as undici does when handed the signal
  if (signal.aborted) {
    c.abort(signal.reason);
    return noop;
  }
  const onAbort = () => c.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

const noop = () => {};
