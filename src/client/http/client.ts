/**
 * `createServiceClient()`: call services by name. A thin composition of layers, each in its own file and
 * tested alone:
 *
 *   pick      — the watched discovery set (memory only on the hot path) joined with per-instance state
 *               (balancer/endpoints.ts): registry health as a hard filter, then outlier ejection, open
 *               circuits and instances this call already tried, and a balancer pick (P2C least request by
 *               default);
 *   options   — the client's and each call's options, checked and resolved once (options.ts);
 *   pools     — the connections to each instance, its breaker and recent latencies (pool.ts);
 *   try       — one request bounded by its timeout and guarded by the breaker (try.ts, breaker.ts), its
 *               answer read by our own undici handler (reply.ts) and handed back as an Answer (answer.ts);
 *   decide    — what follows a failed try, and when to hedge: pure functions (decide.ts);
 *   deadline  — one deadline for all tries and waits, sent along as `x-phare-deadline-ms` (deadline.ts);
 *   observe   — metrics, hooks and logs (observe.ts); tracing through @opentelemetry/api if present
 *               (trace.ts).
 *
 * Time comes from an injected clock, so backoff, budgets, ejection and hedging run on fake time in tests.
 */
import { type PhareError, phareError } from '../../api/index.ts';
import type { Balancer, Endpoint } from '../balancer/index.ts';
import { OutlierDetector, ServiceEndpoints } from '../balancer/index.ts';
import { sleepOn } from '../clock.ts';
import type { Instance, ServiceSet } from '../discovery/index.ts';
import { sdkLogger } from '../shared.ts';
import { Answer, type ServiceResponse } from './answer.ts';
import { samplingBreaker } from './breaker.ts';
import { RetryBudget } from './budget.ts';
import { IDEMPOTENT, notSent, retryAfterMs } from './classify.ts';
import { CallDeadline, withDeadline } from './deadline.ts';
import { type AttemptInfo, decide, type FailureInfo, type HedgePolicy, hedgeDelay } from './decide.ts';
import { Observer, type RequestInfo } from './observe.ts';
import {
  clientSettings,
  flatten,
  queryString,
  type ServiceClientOptions,
  type ServiceRequestOptions,
} from './options.ts';
import { type Attachment, InstancePools, ServiceLatency } from './pool.ts';
import type { TryReply } from './reply.ts';
import { type CallTrace, Tracing, type TrySpan } from './trace.ts';
import { type FlatHeaders, TryFailure, type TryRequest, TryRunner } from './try.ts';

export type { ServiceResponse } from './answer.ts';
export type { BreakerOptions } from './breaker.ts';
export { DEADLINE_HEADER } from './deadline.ts';
export type { RequestInfo, ServiceClientHooks } from './observe.ts';
export type {
  HedgeOptions,
  RetryOptions,
  ServiceClientOptions,
  ServiceRequestOptions,
} from './options.ts';

/** A call whose method the verb fixes (`get`, `post`, …). */
type VerbCall = (
  service: string,
  path: string,
  options?: Omit<ServiceRequestOptions, 'method'>,
) => Promise<ServiceResponse>;

/** The service client. */
export interface ServiceClient {
  request(service: string, path: string, options?: ServiceRequestOptions): Promise<ServiceResponse>;
  get: VerbCall;
  post: VerbCall;
  put: VerbCall;
  patch: VerbCall;
  delete: VerbCall;
  /** Closes every pool (the discovery is the caller's to close). */
  close(): Promise<void>;
}

interface ServiceState {
  endpoints: ServiceEndpoints;
  balancer: Balancer;
  budget: RetryBudget;
  /** Recent answer latencies per instance (the hedge delay: the fastest instance's p95). */
  latency: ServiceLatency;
}

/** One try's result with the instance it went to. */
interface Outcome {
  e: Endpoint;
  r: TryReply | TryFailure;
}

/** Tries shorter than this keep a precise timer: a fast timer's lateness would be a large share of them. */
const MIN_FAST_TRY_MS = 2_000;

/**
 * Creates a service client.
 *
 * @example
 * const discovery = createDiscovery();
 * const http = createServiceClient({ discovery, hedge: true });
 * const res = await http.get('users', '/users/42', { deadlineMs: 2000 });
 * const user = await res.json();
 */
export function createServiceClient(options: ServiceClientOptions): ServiceClient {
  const settings = clientSettings(options);
  const discovery = options.discovery;
  const { clock, balancerFactory, healthFilter, onAllUnhealthy, policy, hedge } = settings;
  const { deadlineDefault, tryTimeoutDefault, connectTimeout } = settings;
  const now = () => clock.now();
  const outlier = new OutlierDetector({
    ...(options.outlier === false ? { maxEjectionPercent: 0, panicThresholdPercent: 0 } : options.outlier),
    now,
  });
  const breakerOptions = options.breaker === false ? undefined : (options.breaker ?? {});
  const pools = new InstancePools({
    connections: options.connections ?? 64,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? 4_000,
    connectTimeoutMs: connectTimeout,
    breaker: breakerOptions ? samplingBreaker(breakerOptions) : undefined,
  });
  // Shorter tries keep a precise timer of their own (a fast timer's up to 1 s lateness would matter).
  const runner = new TryRunner(clock, Math.max(connectTimeout, MIN_FAST_TRY_MS));
  const observer = new Observer(options.hooks, options.metrics, sdkLogger('service-client', options.logger));
  const tracing = new Tracing(options.tracing ?? true);
  const services = new Map<string, ServiceState>();
  let closed = false;

  const stateOf = (key: string): ServiceState => {
    let s = services.get(key);
    if (!s) {
      s = {
        endpoints: new ServiceEndpoints(),
        balancer: balancerFactory({ now }),
        budget: new RetryBudget({ ...options.retryBudget, now }),
        latency: new ServiceLatency(),
      };
      services.set(key, s);
    }
    return s;
  };

  const resolveSet = (service: string, tag: string | undefined, signal: AbortSignal | undefined) => {
    const p = discovery.set(service, tag);
    if (!signal) return p;
    return Promise.race([
      p,
      new Promise<never>((_, reject) => {
        if (signal.aborted) reject(signal.reason);
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      }),
    ]);
  };

  const ejectCheck = (
    e: Endpoint,
    kind: 'connect' | 'timeout' | 'status',
    state: ServiceState,
    service: string,
  ) => {
    if (outlier.failure(e, kind, state.endpoints.all))
      observer.eject(service, e.instance, e.ejectedUntil - outlier.now(), e.timesEjected, kind);
  };

  /** Everything a call carries from try to try. */
  interface Call {
    info: RequestInfo;
    ro: ServiceRequestOptions;
    state: ServiceState;
    path: string;
    flat: FlatHeaders | undefined;
    body: string | Uint8Array | null | undefined;
    /** When the call began (clock ms). */
    started: number;
    deadline: CallDeadline;
    propagate: boolean;
    tryTimeoutMs: number;
    signal: AbortSignal | undefined;
    trace: CallTrace | undefined;
    attempts: number;
    idempotent: boolean;
    hedging: boolean;
  }

  /**
   * One try on `e`, reported to the balancer, the latency window and the trace. Without any of them (the
   * default client) the runner's promise is handed back as is: no extra async layer on the hot path.
   */
  const tryOn = (
    c: Call,
    e: Endpoint,
    a: Attachment,
    isHedge: boolean,
    left?: number,
  ): Promise<TryReply | TryFailure> => {
    const req = prepare(c, e, isHedge, left);
    const span = c.trace?.startTry(e.instance, c.info.method, c.attempts, isHedge);
    if (span) req.headers = span.headers(req.headers);
    // Each clock read costs (a clock_gettime per call on some VMs): read it only for whoever uses latencies.
    const t = timed(c.state);
    const started = t ? clock.now() : 0;
    const p = runner.run(e, a, req);
    return t || span ? measured(c, e, p, t ? started : undefined, span) : p;
  };

  /** Someone watches each try's latency: the hedge delay, or a latency-aware balancer. */
  const timed = (s: ServiceState) => hedge !== undefined || s.balancer.observe !== undefined;

  /** The next try of `c` on `e`, counted and told to the `onTry` hook; `left` is the time left if known. */
  const prepare = (c: Call, e: Endpoint, isHedge: boolean, left?: number): TryRequest => {
    c.attempts++;
    observer.hooks.onTry?.({ ...c.info, instance: e.instance, attempt: c.attempts, hedge: isHedge });
    const t = c.deadline.tryTime(c.tryTimeoutMs, connectTimeout, left);
    return {
      method: c.info.method,
      path: c.path,
      headers: c.propagate ? withDeadline(c.flat, t.timeoutMs) : c.flat,
      body: c.body,
      timeoutMs: t.timeoutMs,
      deadlineBound: t.deadlineBound,
      deadlineAt: c.deadline.at,
      cheapTimer: t.cheapTimer,
      signal: c.signal,
    };
  };

  /** A try's end told to whoever watches latencies (`started` given) and to its span. */
  const measured = async (
    c: Call,
    e: Endpoint,
    p: Promise<TryReply | TryFailure>,
    started: number | undefined,
    span: TrySpan | undefined,
  ): Promise<TryReply | TryFailure> => {
    let r: TryReply | TryFailure;
    try {
      r = await p;
    } catch (err) {
      span?.end(undefined, err);
      throw err;
    }
    const ms = started === undefined ? 0 : clock.now() - started;
    if (r instanceof TryFailure) {
      if (started !== undefined) {
        const answered = r.kind === 'status' && (r.res?.statusCode ?? 500) < 500;
        if (answered) c.state.latency.record(e, ms);
        c.state.balancer.observe?.(e, ms, answered);
      }
      span?.end(r.res?.statusCode, r.res ? undefined : (r.err ?? r.kind));
    } else {
      if (started !== undefined) {
        c.state.latency.record(e, ms);
        c.state.balancer.observe?.(e, ms, true);
      }
      span?.end(r.statusCode);
    }
    return r;
  };

  /** The try on `e` as an outcome naming its instance (for the hedge race). */
  const outcomeOf = (c: Call, e: Endpoint, a: Attachment, isHedge: boolean): Promise<Outcome> =>
    tryOn(c, e, a, isHedge).then((r) => ({ e, r }));

  /** True when the outcome is an answer to hand back (any status the policy does not retry). */
  const final = (r: TryReply | TryFailure) =>
    !(r instanceof TryFailure) || (r.kind === 'status' && !policy.statuses.has(r.res?.statusCode ?? 0));

  /**
   * A try that may be hedged: when it has not answered by the hedge delay, a second try goes to another
   * instance; the first final answer is the call's. The other try is not aborted: it runs to its own end
   * (bounded by its try timeout), its answer drained, its outcome counted for its instance. Aborting an
   * HTTP/1.1 request closes its connection while the server usually finishes the work anyway, and a try that
   * is always aborted teaches nothing: a slow instance's latency would never reach the balancer, and a hung
   * one would never time out into outlier ejection, so it would keep drawing calls that all need hedges.
   */
  const hedged = async (
    c: Call,
    e: Endpoint,
    tried: Set<Endpoint>,
    attempt: AttemptInfo,
  ): Promise<Outcome> => {
    const a = pools.of(e);
    const delay = hedgeDelay(
      hedge as HedgePolicy,
      attempt,
      c.state.budget,
      { leftMs: c.deadline.left() },
      c.state.latency.p95(c.state.endpoints.all),
    );
    if (delay === undefined) return outcomeOf(c, e, a, false);
    const sent = clock.now();
    const first = outcomeOf(c, e, a, false);
    let timer: unknown;
    const fired = await Promise.race([
      first.then(() => false),
      new Promise<boolean>((resolve) => {
        // Node's timers count from the event loop's cached time, which lags the send by however long this
        // tick has run, and round to whole ms: re-arm for whatever is left (a timer is late, never early),
        // or a busy process would hedge early — and answers cluster within a millisecond of the p95.
        const wait = (ms: number) => {
          timer = clock.setTimeout(() => {
            const left = delay - (clock.now() - sent);
            if (left > 0) wait(left);
            else resolve(true);
          }, ms);
        };
        wait(delay);
      }),
    ]);
    clock.clearTimeout(timer);
    if (!fired) return first;
    tried.add(e);
    const { list } = c.state.endpoints.candidates(outlier, tried, pools.usableFilter);
    const other = list.length > 0 ? (c.state.balancer.pick(list) ?? list[0]) : undefined;
    if (other === undefined || other === e || !c.state.budget.tryRetry()) return first;
    observer.hedge(c.info, other.instance, e.instance, delay);
    const second = outcomeOf(c, other, pools.of(other), true);
    const winner = await Promise.race([first, second]);
    const loser = winner.e === e ? second : first;
    if (final(winner.r)) {
      void loser.then((o) => detached(c, o)).catch(() => {});
      return winner;
    }
    // The first to finish failed: count it against its instance, then the other try is the call's.
    noteFailure(c, winner);
    return loser;
  };

  /** The end of a hedge race's losing try: its outcome counts for its instance, its answer is drained. */
  const detached = (c: Call, o: Outcome): void => {
    if (final(o.r))
      void answerOf(c, o.e, o.r)
        .dump()
        .catch(() => {});
    else noteFailure(c, o);
  };

  /** A final answer's effect on its instance (a success, or a 5xx towards ejection); the answer itself. */
  const answerOf = (c: Call, e: Endpoint, r: TryReply | TryFailure): TryReply => {
    const res = r instanceof TryFailure ? (r.res as TryReply) : r;
    if (res.statusCode < 500) outlier.success(e);
    else ejectCheck(e, 'status', c.state, c.info.service);
    return res;
  };

  /** A failed try's effect on its instance (ejection streaks) and on its answer's body. */
  const noteFailure = (c: Call, o: Outcome): void => {
    const r = o.r as TryFailure;
    if (r.kind !== 'circuit') ejectCheck(o.e, r.kind, c.state, c.info.service);
    void r.res?.dump().catch(() => {});
  };

  const fail = (c: Call, instance: Instance | undefined, err: PhareError | Error, outcome: string): never => {
    observer.error(c.info, instance, err, outcome, c.attempts, clock.now() - (c.deadline.at - c.deadline.ms));
    c.trace?.end(err);
    throw err;
  };

  /** A call's state, before its first try (counts the call in its service's retry budget). */
  const begin = (
    service: string,
    path: string,
    ro: ServiceRequestOptions,
    verbMethod: string | undefined,
  ): Call => {
    if (closed)
      throw phareError('PHARE_ERR_INVALID_ARGUMENT', `service client: request to "${service}" after close()`);
    const method = verbMethod ?? (ro.method ?? 'GET').toUpperCase();
    const started = clock.now();
    let headers: Record<string, string | string[]> | undefined = options.headers
      ? { ...options.headers, ...ro.headers }
      : ro.headers;
    let body = ro.body;
    if (ro.json !== undefined) {
      body = JSON.stringify(ro.json);
      headers = { 'content-type': 'application/json', ...headers };
    }
    const state = stateOf(ro.tag ? `${service}\u0000${ro.tag}` : service);
    state.budget.request(started);
    const idempotent = ro.idempotent ?? IDEMPOTENT.has(method);
    return {
      info: { service, method, path },
      ro,
      state,
      path: ro.query ? path + queryString(ro.query) : path,
      // Flat once per call; each try appends its own deadline header.
      flat: headers ? flatten(headers) : undefined,
      body,
      started,
      deadline: new CallDeadline(clock, ro.deadlineMs ?? deadlineDefault, started),
      propagate:
        ro.propagateDeadline ??
        options.propagateDeadline ??
        (ro.deadlineMs !== undefined || options.deadlineMs !== undefined),
      tryTimeoutMs: ro.tryTimeoutMs ?? tryTimeoutDefault,
      signal: ro.signal,
      trace: tracing.call(service, method, path),
      attempts: 0,
      idempotent,
      hedging: hedge !== undefined && idempotent && (ro.hedge ?? true),
    };
  };

  /**
   * A call. The common one — an instance picked from memory, its first try answered below 500 — runs without
   * async machinery of its own: the try goes out through undici's callback API and the answer resolves the
   * one promise handed back, as many promise hops as a bare `pool.request()` (each `await` layer costs a
   * promise and a microtask turn per call, a measurable share of a loopback call). Everything else — a first
   * call for a service, no instance, hedging, tracing, a latency-aware balancer, a failed first try — goes
   * through {@link loop}, the general path, which decides exactly as it would have from the start.
   */
  function call(
    service: string,
    path: string,
    ro: ServiceRequestOptions,
    verbMethod: string | undefined,
  ): Promise<ServiceResponse> {
    let c: Call;
    try {
      c = begin(service, path, ro, verbMethod);
    } catch (err) {
      return Promise.reject(err);
    }
    const state = c.state;
    if (c.hedging || c.trace !== undefined || timed(state) || !(c.deadline.ms > 0)) return loop(c, undefined);
    const set = discovery.peek(service, ro.tag);
    if (set === undefined || set.all.length === 0) return loop(c, undefined);
    state.endpoints.sync(set, healthFilter, pools.release, onAllUnhealthy);
    const { list } = state.endpoints.candidates(outlier, undefined, pools.usableFilter);
    if (list.length === 0) return loop(c, undefined);
    const e = state.balancer.pick(list, pools.warm) ?? (list[0] as Endpoint);
    return new Promise<ServiceResponse>((resolve, reject) => {
      // Until something awaits, no time has passed that matters: the whole deadline is left.
      runner.send(
        e,
        pools.of(e),
        prepare(c, e, false, c.deadline.ms),
        (r) => {
          try {
            resolve(r instanceof TryFailure ? loop(c, { e, r }) : answered(c, e, r));
          } catch (err) {
            reject(err);
          }
        },
        reject,
      );
    });
  }

  /** A final answer handed back: counted for its instance, reported, the call's span ended. */
  const answered = (c: Call, e: Endpoint, r: TryReply | TryFailure): Answer => {
    const res = answerOf(c, e, r);
    observer.response(
      c.info,
      e.instance,
      res.statusCode,
      c.attempts,
      observer.wantsDuration ? clock.now() - c.started : 0,
    );
    c.trace?.end();
    return new Answer(res, e.instance, c.attempts);
  };

  /**
   * The general path of a call: pick, try (or hedge), and on a failed try what decide() says — retry
   * elsewhere after a backoff, or fail. `first` is a first try already made by {@link call}'s fast path.
   */
  async function loop(c: Call, first: Outcome | undefined): Promise<ServiceResponse> {
    const { service, method, path } = c.info;
    const { ro, state, idempotent, hedging } = c;
    let tried: Set<Endpoint> | undefined;
    let instance: Instance | undefined;
    // Until something awaits, no time has passed that matters: the first try's time left is the whole
    // deadline, without another clock read.
    let fresh = true;

    for (;;) {
      let e: Endpoint;
      let r: TryReply | TryFailure;
      if (first !== undefined) {
        e = first.e;
        r = first.r;
        first = undefined;
        fresh = false;
      } else {
        // The watched set straight from memory; only the first call for a service waits.
        let set: ServiceSet | undefined = discovery.peek(service, ro.tag);
        if (set === undefined) {
          fresh = false;
          try {
            set = await resolveSet(service, ro.tag, ro.signal);
          } catch (err) {
            return fail(c, instance, err as Error, 'discovery');
          }
        }
        if (set.all.length === 0) {
          return fail(
            c,
            instance,
            phareError(
              'PHARE_ERR_SERVICE_NOT_FOUND',
              `service "${service}": no instance is registered with ${discovery.resolver.kind}`,
            ),
            'not_found',
          );
        }
        state.endpoints.sync(set, healthFilter, pools.release, onAllUnhealthy);
        const { list } = state.endpoints.candidates(outlier, tried, pools.usableFilter);
        if (list.length === 0) {
          return fail(
            c,
            instance,
            phareError(
              'PHARE_ERR_NO_HEALTHY_INSTANCE',
              `service "${service}": ${set.all.length} instance(s) registered, none ${healthFilter === 'passing' ? 'passing' : 'passing or warning'} (set onAllUnhealthy: 'try-all' to call them anyway)`,
            ),
            'no_healthy',
          );
        }
        const picked = state.balancer.pick(list, pools.warm) ?? (list[0] as Endpoint);
        instance = picked.instance;
        const left = fresh ? c.deadline.ms : c.deadline.left();
        fresh = false;
        if (left <= 0) {
          return fail(
            c,
            instance,
            phareError(
              'PHARE_ERR_DEADLINE_EXCEEDED',
              `${method} ${service}${path}: deadline of ${c.deadline.ms}ms exceeded after ${c.attempts} tries`,
            ),
            'deadline',
          );
        }
        e = picked;
        if (hedging) {
          tried ??= new Set<Endpoint>();
          const attempt: AttemptInfo = {
            tries: c.attempts + 1,
            idempotent,
            otherInstance: list.length > 1,
            policy,
          };
          const o = await hedged(c, picked, tried, attempt);
          e = o.e;
          r = o.r;
        } else r = await tryOn(c, picked, pools.of(picked), false, left);
      }
      instance = e.instance;

      if (final(r)) return answered(c, e, r);

      // A failed try: what now is decide()'s to say.
      const failure = r as TryFailure;
      const upstreamStatus = failure.res?.statusCode;
      const retryAfter = failure.res ? retryAfterMs(failure.res.headers['retry-after']) : undefined;
      noteFailure(c, { e, r });
      const kind = failure.kind;
      const info: FailureInfo = {
        kind,
        notSent: kind === 'connect' && notSent(failure.err),
        deadlineBound: failure.deadlineBound,
      };
      if (upstreamStatus !== undefined) info.status = upstreamStatus;
      if (retryAfter !== undefined) info.retryAfterMs = retryAfter;
      const t = outlier.now();
      const d = decide(
        info,
        {
          tries: c.attempts,
          idempotent,
          otherInstance: state.endpoints.healthy.some((x) => x !== e && x.retryAfterUntil <= t),
          policy,
        },
        state.budget,
        { leftMs: c.deadline.left() },
      );
      const reason = kind === 'status' ? String(upstreamStatus) : kind;
      const tries = `${c.attempts} tr${c.attempts === 1 ? 'y' : 'ies'}`;
      const upstream = () =>
        kind === 'circuit'
          ? phareError(
              'PHARE_ERR_CIRCUIT_OPEN',
              `service "${service}": every instance has an open circuit breaker`,
              {
                cause: failure.err,
              },
            )
          : phareError(
              'PHARE_ERR_UPSTREAM',
              `${method} ${service}${path}: ${upstreamStatus ? `answered ${upstreamStatus}` : `${reason} error (${(failure.err as Error)?.message ?? failure.err})`} after ${tries} (last instance ${e.instance.url})`,
              { cause: failure.err, status: upstreamStatus ?? 502 },
            );
      if (d.action === 'fail') {
        if (d.code === 'PHARE_ERR_DEADLINE_EXCEEDED') {
          return fail(
            c,
            instance,
            phareError(
              'PHARE_ERR_DEADLINE_EXCEEDED',
              `${method} ${service}${path}: deadline of ${c.deadline.ms}ms exceeded (${tries}, last instance ${e.instance.url})`,
              { cause: failure.err },
            ),
            'deadline',
          );
        }
        if (d.code === 'PHARE_ERR_RETRY_BUDGET_EXHAUSTED') {
          return fail(
            c,
            instance,
            phareError(
              'PHARE_ERR_RETRY_BUDGET_EXHAUSTED',
              `${method} ${service}${path}: retry budget spent (${reason} from ${e.instance.url}); the service is failing for many calls`,
              { cause: upstream() },
            ),
            'budget',
          );
        }
        return fail(c, instance, upstream(), d.code === 'PHARE_ERR_CIRCUIT_OPEN' ? 'circuit' : 'upstream');
      }
      if (d.action === 'return') continue; // not reached: final() covered it
      if (d.awayMs !== undefined) e.retryAfterUntil = t + d.awayMs;
      if (d.spendsBudget) state.budget.spend();
      tried ??= new Set<Endpoint>();
      tried.add(e);
      observer.retry(c.info, e.instance, c.attempts, reason, d.delayMs);
      if (d.delayMs > 0) {
        try {
          await sleepOn(clock, d.delayMs, ro.signal);
        } catch (err) {
          return fail(c, instance, err as Error, 'aborted');
        }
      }
    }
  }

  const none: Omit<ServiceRequestOptions, 'method'> = {};
  return {
    request: (service, path, o = none) => call(service, path, o, undefined),
    get: (service, path, o = none) => call(service, path, o, 'GET'),
    post: (service, path, o = none) => call(service, path, o, 'POST'),
    put: (service, path, o = none) => call(service, path, o, 'PUT'),
    patch: (service, path, o = none) => call(service, path, o, 'PATCH'),
    delete: (service, path, o = none) => call(service, path, o, 'DELETE'),
    async close() {
      if (closed) return;
      closed = true;
      const all = [...services.values()].flatMap((s) => s.endpoints.all);
      services.clear();
      await pools.close(all);
    },
  };
}
