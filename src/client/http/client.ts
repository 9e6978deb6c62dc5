/**
 * `createServiceClient()`: call services by name. Each request runs three layers:
 *
 *   resolve  — the watched discovery set (memory only on the hot path) joined with per-instance state, and a
 *              balancer pick (P2C least request by default) among healthy, non-ejected, closed-circuit
 *              instances not yet tried by this request;
 *   retry    — per-try timeout inside an overall deadline, exponential backoff with full jitter, retries
 *              only for connect errors, timeouts and 502/503/504, idempotent methods unless opted in,
 *              `Retry-After` honoured, and a retry budget so retries cannot amplify an outage;
 *   outlier  — each try's outcome feeds Envoy-style outlier ejection and a cockatiel circuit breaker per
 *              instance.
 *
 * Transport: one undici `Pool` per instance (keep-alive), created on first use and closed when the instance
 * leaves the set. The time left is sent as `x-phare-deadline-ms`, which `phare/health` servers honour.
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
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { type Dispatcher, Pool } from 'undici';
import { type PhareError, phareError } from '../../api/index.ts';
import { type HealthFilter, type OnAllUnhealthy, ServiceEndpoints } from '../balancer/endpoints.ts';
import { leastRequest } from '../balancer/least-request.ts';
import { type FailureKind, OutlierDetector, type OutlierOptions } from '../balancer/outlier.ts';
import type { Balancer, BalancerFactory, Endpoint } from '../balancer/types.ts';
import type { Discovery, ServiceSet } from '../discovery/discovery.ts';
import type { Instance } from '../discovery/types.ts';
import { fullJitter, getOrCreateCounter, getOrCreateHistogram, sdkLogger, sleep } from '../shared.ts';
import { RetryBudget, type RetryBudgetOptions } from './budget.ts';
import { IDEMPOTENT, notSent, retryAfterMs } from './classify.ts';

/** The header carrying the caller's remaining time in ms (same as `phare/health`'s DEADLINE_HEADER). */
export const DEADLINE_HEADER = 'x-phare-deadline-ms';

/** Retry policy. */
export interface RetryOptions {
  /** Retries after the first try. @default 2 */
  maxRetries?: number;
  /** Backoff base in ms (full jitter over base × 2^n). @default 25 */
  baseDelayMs?: number;
  /** Backoff cap in ms. @default 1000 */
  maxDelayMs?: number;
  /** Statuses that are retried. @default [502, 503, 504] */
  statuses?: number[];
  /** Retry non-idempotent methods (POST, PATCH) too. @default false */
  nonIdempotent?: boolean;
  /** Longest `Retry-After` waited for, in ms; longer ones fail the try at once. @default 5000 */
  maxRetryAfterMs?: number;
}

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

/** Context handed to hooks. */
export interface RequestInfo {
  service: string;
  method: string;
  path: string;
}

/** Observability hooks (all optional, called synchronously; keep them cheap). */
export interface ServiceClientHooks {
  onTry?(info: RequestInfo & { instance: Instance; attempt: number }): void;
  onRetry?(
    info: RequestInfo & { instance: Instance; attempt: number; reason: string; delayMs: number },
  ): void;
  onEject?(info: { service: string; instance: Instance; ejectedForMs: number; timesEjected: number }): void;
  onResponse?(
    info: RequestInfo & { instance: Instance; statusCode: number; attempts: number; durationMs: number },
  ): void;
  onError?(info: RequestInfo & { error: PhareError | Error; attempts: number; durationMs: number }): void;
}

/** Options of {@link createServiceClient}. */
export interface ServiceClientOptions {
  /** Where instances come from. */
  discovery: Discovery;
  /** Load-balancing strategy. @default leastRequest (P2C) */
  balancer?: BalancerFactory;
  /**
   * Registry health is a hard filter: only passing instances take traffic, or passing and warning ones
   * when this is false. Critical instances never do (see `onAllUnhealthy`). @default true
   */
  passingOnly?: boolean;
  /**
   * When every instance of a service fails the health filter: `'fail'` the call with
   * PHARE_ERR_NO_HEALTHY_INSTANCE (what Consul's `?passing` and DNS give), or `'try-all'` — send to the
   * unhealthy instances anyway, for a service you would rather try than lose. @default 'fail'
   */
  onAllUnhealthy?: OnAllUnhealthy;
  /** Overall deadline per call in ms (all tries and backoff). @default 30000 */
  deadlineMs?: number;
  /**
   * Send the time left to the callee as `x-phare-deadline-ms` (phare/health servers honour it).
   * @default true when a deadline is set explicitly (here or per call), false for the built-in 30 s safety
   * net — the header costs the callee a header parse per request, worth it only for a deadline you chose
   */
  propagateDeadline?: boolean;
  /**
   * Timeout of one try in ms (bounded by the time left). A try of at least 2 s that does not run into the
   * deadline is timed by undici's `headersTimeout` from when it is written, so it may end up to ~1 s later
   * (after a connect of at most `connectTimeoutMs`); the deadline itself is always kept. @default 10000
   */
  tryTimeoutMs?: number;
  /** TCP connect timeout in ms. @default 2000 */
  connectTimeoutMs?: number;
  /** Retry policy, or false for none. @default {} (the defaults above) */
  retry?: RetryOptions | false;
  /** Retry budget. @default { percent: 20, minPerSecond: 10, windowMs: 10000 } */
  retryBudget?: RetryBudgetOptions;
  /** Outlier ejection, or false to turn it off. @default {} */
  outlier?: OutlierOptions | false;
  /** Circuit breaker per instance, or false. @default {} */
  breaker?: BreakerOptions | false;
  /** Connections per instance pool. @default 64 */
  connections?: number;
  /** Keep-alive of idle connections in ms. @default 4000 */
  keepAliveTimeoutMs?: number;
  /** Headers sent with every request. @default {} */
  headers?: Record<string, string>;
  hooks?: ServiceClientHooks;
  /** prom-client registry for `phare_client_*` metrics. @default none */
  metrics?: Registry;
  logger?: Logger;
}

/** Options of one call. */
export interface ServiceRequestOptions {
  method?: string;
  headers?: Record<string, string | string[]>;
  /** Request body (must be a string or bytes to be retried). */
  body?: string | Uint8Array | null;
  /** A value sent as JSON (sets `content-type`). */
  json?: unknown;
  /** Added to the path as a query string. */
  query?: Record<string, string | number | boolean | undefined>;
  /** Cancels the call. */
  signal?: AbortSignal;
  /** Overrides the client's deadline (e.g. from the incoming request's `x-phare-deadline-ms`). */
  deadlineMs?: number;
  /** Overrides the client's `propagateDeadline`. @default true when `deadlineMs` is given here */
  propagateDeadline?: boolean;
  /** Overrides the per-try timeout. */
  tryTimeoutMs?: number;
  /** Only instances with this tag. */
  tag?: string;
  /** Declares this call safe to repeat (a POST with an idempotency key). @default by method */
  idempotent?: boolean;
}

/** An answer. The body must be consumed (`json()`, `text()`, `body.dump()`). */
export interface ServiceResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  /** The instance that answered. */
  instance: Instance;
  /** Tries made (1 = no retry). */
  attempts: number;
  json<T = unknown>(): Promise<T>;
  text(): Promise<string>;
}

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

interface Attachment {
  pool: InstancePool;
  breaker: CircuitBreakerPolicy | undefined;
  /** The breaker's sampling window, fed directly on the closed-circuit fast path. */
  sampling: SamplingBreaker | undefined;
}

interface ServiceState {
  endpoints: ServiceEndpoints;
  balancer: Balancer;
  budget: RetryBudget;
}

/** A try that brought no answer to hand back (an answer with a 5xx status carries `res`). */
class TryFailure {
  readonly kind: FailureKind | 'circuit';
  readonly err: unknown;
  readonly res: Dispatcher.ResponseData | undefined;
  readonly deadline: boolean;
  constructor(kind: FailureKind | 'circuit', err: unknown, res?: Dispatcher.ResponseData, deadline = false) {
    this.kind = kind;
    this.err = err;
    this.res = res;
    this.deadline = deadline;
  }
}

class RetryableStatus extends Error {
  readonly res: Dispatcher.ResponseData;
  constructor(res: Dispatcher.ResponseData) {
    super(`status ${res.statusCode}`);
    this.res = res;
  }
}

/** A header list in undici's flat form, `[name, value, …]`. */
type FlatHeaders = string[];

/** The timed-out error a try rejects with (the same text whichever timer fired). */
function tryTimedOut(timeoutMs: number, cause?: unknown): Error {
  return new Error(`try timed out after ${timeoutMs}ms`, cause === undefined ? undefined : { cause });
}

/**
 * undici's `headersTimeout` runs on its fast timers, which tick every ~0.5 s and may fire up to 1 s late;
 * a try only relies on it when that lateness plus a connect cannot push it past the deadline.
 */
const FAST_TIMER_SLACK_MS = 1_000;
/** Tries shorter than this keep a precise timer: a fast timer's lateness would be a large share of them. */
const MIN_FAST_TRY_MS = 2_000;

/**
 * An undici Pool that knows whether its next request would wait in its queue (every connection busy): the
 * return value of `dispatch` says so, its `drain` event says it is over. A try that might wait there needs
 * its own timer, as undici's `headersTimeout` only starts once the request is written.
 */
class InstancePool extends Pool {
  saturated = false;
  constructor(url: string, options: Pool.Options) {
    super(url, options);
    this.on('drain', () => {
      this.saturated = false;
    });
  }
  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const ok = super.dispatch(options, handler);
    this.saturated = !ok;
    return ok;
  }
}

/**
 * Creates a service client.
 *
 * @example
 * const discovery = createDiscovery();
 * const http = createServiceClient({ discovery });
 * const res = await http.get('users', '/users/42', { deadlineMs: 2000 });
 * const user = await res.json();
 */
export function createServiceClient(options: ServiceClientOptions): ServiceClient {
  if (!options?.discovery)
    throw phareError('PHARE_ERR_INVALID_ARGUMENT', 'createServiceClient: options.discovery is required');
  const discovery = options.discovery;
  const balancerFactory = options.balancer ?? leastRequest;
  const healthFilter: HealthFilter = (options.passingOnly ?? true) ? 'passing' : 'passing+warning';
  const onAllUnhealthy = options.onAllUnhealthy ?? 'fail';
  if (onAllUnhealthy !== 'fail' && onAllUnhealthy !== 'try-all') {
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `createServiceClient.onAllUnhealthy: expected 'fail' or 'try-all', got ${JSON.stringify(onAllUnhealthy)}`,
    );
  }
  const deadlineDefault = positive('deadlineMs', options.deadlineMs ?? 30_000);
  const tryTimeoutDefault = positive('tryTimeoutMs', options.tryTimeoutMs ?? 10_000);
  const connectTimeout = positive('connectTimeoutMs', options.connectTimeoutMs ?? 2_000);
  const connections = options.connections ?? 64;
  // Shorter tries keep a precise timer of their own (a fast timer's up to 1 s lateness would matter).
  const minFastTryMs = Math.max(connectTimeout, MIN_FAST_TRY_MS);
  const retry = options.retry === false ? undefined : (options.retry ?? {});
  const maxRetries = retry ? (retry.maxRetries ?? 2) : 0;
  const baseDelay = retry?.baseDelayMs ?? 25;
  const maxDelay = retry?.maxDelayMs ?? 1_000;
  const retryStatuses = new Set(retry?.statuses ?? [502, 503, 504]);
  const maxRetryAfter = retry?.maxRetryAfterMs ?? 5_000;
  const outlier = new OutlierDetector(
    options.outlier === false ? { maxEjectionPercent: 0, panicThresholdPercent: 0 } : options.outlier,
  );
  const breakerOptions = options.breaker === false ? undefined : (options.breaker ?? {});
  const hooks = options.hooks ?? {};
  const log = sdkLogger('service-client', options.logger);
  const services = new Map<string, ServiceState>();
  const metrics = options.metrics ? clientMetrics(options.metrics) : undefined;
  let closed = false;

  const stateOf = (key: string): ServiceState => {
    let s = services.get(key);
    if (!s) {
      s = {
        endpoints: new ServiceEndpoints(),
        balancer: balancerFactory(),
        budget: new RetryBudget(options.retryBudget),
      };
      services.set(key, s);
    }
    return s;
  };

  const attachment = (e: Endpoint): Attachment => {
    let a = e.attachment as Attachment | undefined;
    if (!a) {
      const sampling = breakerOptions
        ? new SamplingBreaker({
            threshold: breakerOptions.threshold ?? 0.5,
            duration: breakerOptions.durationMs ?? 10_000,
            minimumRps: breakerOptions.minimumRps ?? 5,
          })
        : undefined;
      a = {
        pool: new InstancePool(e.instance.url, {
          connections,
          keepAliveTimeout: options.keepAliveTimeoutMs ?? 4_000,
          connect: { timeout: connectTimeout },
          // Per try, when the fast path uses it (see tryOnce); off otherwise.
          headersTimeout: 0,
          bodyTimeout: 0,
        }),
        breaker:
          breakerOptions && sampling
            ? circuitBreaker(handleAll, {
                halfOpenAfter: breakerOptions.halfOpenAfterMs ?? 5_000,
                breaker: sampling,
              })
            : undefined,
        sampling,
      };
      e.attachment = a;
    }
    return a;
  };
  const release = (e: Endpoint) => {
    const a = e.attachment as Attachment | undefined;
    if (a) void a.pool.close().catch(() => {});
  };
  const usable = breakerOptions
    ? (e: Endpoint) => {
        const b = (e.attachment as Attachment | undefined)?.breaker;
        return !b || b.state !== CircuitState.Open;
      }
    : undefined;

  const resolveSet = async (
    service: string,
    tag: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<ServiceSet> => {
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

  /**
   * Records a failed try in a closed circuit the way cockatiel's `execute` would have (sampling window,
   * opening, events) by replaying the failure through it; the request itself ran outside `execute`.
   */
  const breakerFailure = async (b: CircuitBreakerPolicy, err: unknown): Promise<void> => {
    if (b.state !== CircuitState.Closed) return;
    await b
      .execute(() => {
        throw err;
      })
      .catch(() => {});
  };

  /**
   * One try. Fast path (closed circuit, the common case): the pool request is awaited directly — no
   * cockatiel wrapper promises — and its outcome is fed to the breaker's sampling window. A circuit that is
   * not closed (half-open probes, open, isolated) goes through cockatiel's `execute`.
   *
   * Timeout: one timer per try at most, and no AbortController in the common case. When the pool has a
   * free connection and the deadline leaves room for a connect plus a late fast timer after the try,
   * undici's own per-request `headersTimeout` bounds the try once it is written (the connect is bounded by
   * `connectTimeoutMs`) and the caller's signal, if any, goes to undici as is. Otherwise (a short try, a
   * deadline-bound try, a saturated pool) an AbortController with one `setTimeout` bounds it from the start,
   * queueing in the pool included.
   */
  async function tryOnce(
    e: Endpoint,
    method: string,
    path: string,
    headers: FlatHeaders | undefined,
    body: string | Uint8Array | null | undefined,
    timeoutMs: number,
    deadlineBound: boolean,
    cheapTimer: boolean,
    userSignal: AbortSignal | undefined,
  ): Promise<Dispatcher.ResponseData | TryFailure> {
    const a = attachment(e);
    const b = a.breaker;
    if (b !== undefined && b.state !== CircuitState.Closed)
      return guardedTry(a, b, e, method, path, headers, body, timeoutMs, deadlineBound, userSignal);
    const fast = cheapTimer && timeoutMs >= minFastTryMs && !a.pool.saturated;
    let ac: AbortController | undefined;
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    let onUserAbort: (() => void) | undefined;
    if (!fast) {
      const c = new AbortController();
      ac = c;
      timer = setTimeout(() => {
        timedOut = true;
        c.abort(tryTimedOut(timeoutMs));
      }, timeoutMs);
      if (userSignal) {
        onUserAbort = () => c.abort(userSignal.reason);
        // an already aborted signal fires no event: abort now, as undici does when handed the signal
        if (userSignal.aborted) c.abort(userSignal.reason);
        else userSignal.addEventListener('abort', onUserAbort, { once: true });
      }
    }
    e.active++;
    let res: Dispatcher.ResponseData;
    try {
      res = await a.pool.request({
        path,
        method: method as Dispatcher.HttpMethod,
        headers,
        body: body ?? undefined,
        // the caller's signal goes to undici as is when no controller of ours is needed
        signal: ac ? ac.signal : userSignal,
        headersTimeout: fast ? Math.ceil(timeoutMs) : undefined,
      });
    } catch (caught) {
      e.active--;
      let err = caught;
      if (fast && (caught as { code?: string })?.code === 'UND_ERR_HEADERS_TIMEOUT') {
        timedOut = true;
        err = tryTimedOut(timeoutMs, caught);
      }
      if (timer) clearTimeout(timer);
      if (onUserAbort) userSignal?.removeEventListener('abort', onUserAbort);
      if (b) await breakerFailure(b, err);
      if (timedOut) return new TryFailure('timeout', err, undefined, deadlineBound);
      if (userSignal?.aborted) throw userSignal.reason ?? err;
      return new TryFailure('connect', err);
    }
    e.active--;
    if (timer) clearTimeout(timer);
    if (onUserAbort) userSignal?.removeEventListener('abort', onUserAbort);
    if (res.statusCode >= 500) {
      // 5xx counts against the instance (breaker, outlier) even when it is not one we retry.
      const err = new RetryableStatus(res);
      if (b) await breakerFailure(b, err);
      return new TryFailure('status', err, res);
    }
    // What cockatiel's execute does on success in the closed state.
    a.sampling?.success(CircuitState.Closed);
    return res;
  }

  /** A try through cockatiel's `execute` (half-open probes, open or isolated circuits). */
  async function guardedTry(
    a: Attachment,
    b: CircuitBreakerPolicy,
    e: Endpoint,
    method: string,
    path: string,
    headers: FlatHeaders | undefined,
    body: string | Uint8Array | null | undefined,
    timeoutMs: number,
    deadlineBound: boolean,
    userSignal: AbortSignal | undefined,
  ): Promise<Dispatcher.ResponseData | TryFailure> {
    const ac = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort(tryTimedOut(timeoutMs));
    }, timeoutMs);
    const onUserAbort = () => ac.abort(userSignal?.reason);
    userSignal?.addEventListener('abort', onUserAbort, { once: true });
    const send = async () => {
      const res = await a.pool.request({
        path,
        method: method as Dispatcher.HttpMethod,
        headers,
        body: body ?? undefined,
        signal: ac.signal,
      });
      if (res.statusCode >= 500) throw new RetryableStatus(res);
      return res;
    };
    e.active++;
    try {
      return await b.execute(send);
    } catch (err) {
      if (err instanceof RetryableStatus) return new TryFailure('status', err, err.res);
      if (err instanceof BrokenCircuitError || err instanceof IsolatedCircuitError)
        return new TryFailure('circuit', err);
      if (timedOut) return new TryFailure('timeout', err, undefined, deadlineBound);
      if (userSignal?.aborted) throw userSignal.reason ?? err;
      return new TryFailure('connect', err);
    } finally {
      e.active--;
      clearTimeout(timer);
      userSignal?.removeEventListener('abort', onUserAbort);
    }
  }

  function fail(
    service: string,
    method: string,
    path: string,
    started: number,
    attempts: number,
    instance: Instance | undefined,
    err: PhareError | Error,
    outcome: string,
  ): never {
    metrics?.requests.inc({ service, instance: instance?.url ?? '', outcome });
    metrics?.duration.observe({ service }, (performance.now() - started) / 1000);
    hooks.onError?.({ service, method, path, error: err, attempts, durationMs: performance.now() - started });
    throw err;
  }

  async function call(
    service: string,
    path: string,
    ro: ServiceRequestOptions,
    verbMethod: string | undefined,
  ): Promise<ServiceResponse> {
    if (closed)
      throw phareError('PHARE_ERR_INVALID_ARGUMENT', `service client: request to "${service}" after close()`);
    const method = verbMethod ?? (ro.method ?? 'GET').toUpperCase();
    const started = performance.now();
    const deadlineMs = ro.deadlineMs ?? deadlineDefault;
    const deadlineAt = started + deadlineMs;
    const propagate =
      ro.propagateDeadline ??
      options.propagateDeadline ??
      (ro.deadlineMs !== undefined || options.deadlineMs !== undefined);
    const tryTimeoutMs = ro.tryTimeoutMs ?? tryTimeoutDefault;
    const idempotent = ro.idempotent ?? IDEMPOTENT.has(method);
    let headers: Record<string, string | string[]> | undefined = options.headers
      ? { ...options.headers, ...ro.headers }
      : ro.headers;
    let body = ro.body;
    if (ro.json !== undefined) {
      body = JSON.stringify(ro.json);
      headers = { 'content-type': 'application/json', ...headers };
    }
    // Flat once per call; each try appends its own deadline header (undici may keep the list of a queued
    // request, so tries never share one).
    const flat = headers ? flatten(headers) : undefined;
    const fullPath = ro.query ? path + queryString(ro.query) : path;
    const key = ro.tag ? `${service}\u0000${ro.tag}` : service;
    const state = stateOf(key);
    state.budget.request();
    let tried: Set<Endpoint> | undefined;
    let attempts = 0;
    let instance: Instance | undefined;

    for (;;) {
      // The watched set straight from memory; only the first call for a service waits.
      let set = discovery.peek(service, ro.tag);
      if (set === undefined) {
        try {
          set = await resolveSet(service, ro.tag, ro.signal);
        } catch (err) {
          return fail(service, method, path, started, attempts, instance, err as Error, 'discovery');
        }
      }
      if (set.all.length === 0) {
        return fail(
          service,
          method,
          path,
          started,
          attempts,
          instance,
          phareError(
            'PHARE_ERR_SERVICE_NOT_FOUND',
            `service "${service}": no instance is registered with ${discovery.resolver.kind}`,
          ),
          'not_found',
        );
      }
      state.endpoints.sync(set, healthFilter, release, onAllUnhealthy);
      const { list } = state.endpoints.candidates(outlier, tried, usable);
      if (list.length === 0) {
        return fail(
          service,
          method,
          path,
          started,
          attempts,
          instance,
          phareError(
            'PHARE_ERR_NO_HEALTHY_INSTANCE',
            `service "${service}": ${set.all.length} instance(s) registered, none ${healthFilter === 'passing' ? 'passing' : 'passing or warning'} (set onAllUnhealthy: 'try-all' to call them anyway)`,
          ),
          'no_healthy',
        );
      }
      const e = state.balancer.pick(list) ?? (list[0] as Endpoint);
      instance = e.instance;
      const left = deadlineAt - performance.now();
      if (left <= 0) {
        return fail(
          service,
          method,
          path,
          started,
          attempts,
          instance,
          phareError(
            'PHARE_ERR_DEADLINE_EXCEEDED',
            `${method} ${service}${path}: deadline of ${deadlineMs}ms exceeded after ${attempts} tries`,
          ),
          'deadline',
        );
      }
      const timeout = Math.min(tryTimeoutMs, left);
      attempts++;
      hooks.onTry?.({ service, method, path, instance: e.instance, attempt: attempts });
      let tryHeaders: FlatHeaders | undefined = flat;
      if (propagate) {
        const deadlineValue = String(Math.max(0, Math.floor(timeout)));
        tryHeaders = flat ? [...flat, DEADLINE_HEADER, deadlineValue] : [DEADLINE_HEADER, deadlineValue];
      }
      const r = await tryOnce(
        e,
        method,
        fullPath,
        tryHeaders,
        body,
        timeout,
        timeout === left,
        left - timeout >= connectTimeout + FAST_TIMER_SLACK_MS,
        ro.signal,
      );

      if (
        !(r instanceof TryFailure) ||
        (r.kind === 'status' && r.res && !retryStatuses.has(r.res.statusCode))
      ) {
        const res = r instanceof TryFailure ? (r.res as Dispatcher.ResponseData) : r;
        if (res.statusCode < 500) outlier.success(e);
        else ejectCheck(e, 'status', state, service);
        if (metrics) {
          metrics.requests.inc({ service, instance: e.instance.url, outcome: String(res.statusCode) });
          metrics.duration.observe({ service }, (performance.now() - started) / 1000);
        }
        hooks.onResponse?.({
          service,
          method,
          path,
          instance: e.instance,
          statusCode: res.statusCode,
          attempts,
          durationMs: performance.now() - started,
        });
        const resBody = res.body;
        return {
          statusCode: res.statusCode,
          headers: res.headers,
          body: resBody,
          instance: e.instance,
          attempts,
          json: () => resBody.json() as Promise<never>,
          text: () => resBody.text(),
        };
      }

      // A failed try.
      let retryAfter: number | undefined;
      let upstreamStatus: number | undefined;
      if (r.res) {
        upstreamStatus = r.res.statusCode;
        retryAfter = retryAfterMs(r.res.headers['retry-after']);
        await r.res.body.dump().catch(() => {});
      }
      if (r.kind !== 'circuit') ejectCheck(e, r.kind, state, service);
      const reason = r.kind === 'status' ? String(upstreamStatus) : r.kind;
      const upstream = () =>
        r.kind === 'circuit'
          ? phareError(
              'PHARE_ERR_CIRCUIT_OPEN',
              `service "${service}": every instance has an open circuit breaker`,
              { cause: r.err },
            )
          : phareError(
              'PHARE_ERR_UPSTREAM',
              `${method} ${service}${path}: ${upstreamStatus ? `answered ${upstreamStatus}` : `${reason} error (${(r.err as Error)?.message ?? r.err})`} after ${attempts} tr${attempts === 1 ? 'y' : 'ies'} (last instance ${e.instance.url})`,
              { cause: r.err, status: upstreamStatus ?? 502 },
            );
      const failNow = (err: PhareError | Error, outcome: string): never =>
        fail(service, method, path, started, attempts, instance, err, outcome);
      if (r.kind === 'timeout' && (r.deadline || deadlineAt - performance.now() <= 1)) {
        return failNow(
          phareError(
            'PHARE_ERR_DEADLINE_EXCEEDED',
            `${method} ${service}${path}: deadline of ${deadlineMs}ms exceeded (${attempts} tr${attempts === 1 ? 'y' : 'ies'}, last instance ${e.instance.url})`,
            { cause: r.err },
          ),
          'deadline',
        );
      }
      // Connect errors that never reached the service are safe to retry whatever the method.
      const retryable =
        retry !== undefined &&
        (idempotent ||
          retry.nonIdempotent === true ||
          r.kind === 'circuit' ||
          (r.kind === 'connect' && notSent(r.err)));
      if (!retryable || attempts > maxRetries)
        return failNow(upstream(), r.kind === 'circuit' ? 'circuit' : 'upstream');
      tried ??= new Set<Endpoint>();
      tried.add(e);
      let delay = fullJitter(attempts - 1, baseDelay, maxDelay);
      if (retryAfter !== undefined) {
        if (retryAfter > maxRetryAfter) return failNow(upstream(), 'upstream');
        e.retryAfterUntil = outlier.now() + retryAfter;
        // Another instance can take the retry now; only when this one is all we have do we wait it out.
        const others = state.endpoints.healthy.some((x) => x !== e && x.retryAfterUntil <= outlier.now());
        if (!others) delay = Math.max(delay, retryAfter);
      }
      if (delay >= deadlineAt - performance.now()) {
        // The wait would outlast the deadline: fail now rather than sleep through it.
        return failNow(upstream(), 'upstream');
      }
      if (r.kind !== 'circuit' && !state.budget.tryRetry()) {
        return failNow(
          phareError(
            'PHARE_ERR_RETRY_BUDGET_EXHAUSTED',
            `${method} ${service}${path}: retry budget spent (${reason} from ${e.instance.url}); the service is failing for many calls`,
            { cause: upstream() },
          ),
          'budget',
        );
      }
      metrics?.retries.inc({ service, reason });
      hooks.onRetry?.({
        service,
        method,
        path,
        instance: e.instance,
        attempt: attempts,
        reason,
        delayMs: delay,
      });
      log.debug({ upstream: service, instance: e.instance.url, reason, delay }, 'retrying');
      if (delay > 0) {
        try {
          await sleep(delay, ro.signal);
        } catch (err) {
          return failNow(err as Error, 'aborted');
        }
      }
    }
  }

  function ejectCheck(e: Endpoint, kind: FailureKind, state: ServiceState, service: string) {
    if (outlier.failure(e, kind, state.endpoints.all)) {
      const ms = e.ejectedUntil - outlier.now();
      metrics?.ejections.inc({ service, instance: e.instance.url });
      hooks.onEject?.({ service, instance: e.instance, ejectedForMs: ms, timesEjected: e.timesEjected });
      log.info({ upstream: service, instance: e.instance.url, ms, kind }, 'instance ejected');
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
      const closing: Promise<unknown>[] = [];
      for (const s of services.values()) {
        for (const e of s.endpoints.all) {
          const a = e.attachment as Attachment | undefined;
          if (a) closing.push(a.pool.close().catch(() => {}));
        }
      }
      services.clear();
      await Promise.all(closing);
    },
  };
}

/** `{ name: value }` as undici's flat header list. */
function flatten(headers: Record<string, string | string[]>): FlatHeaders {
  const out: FlatHeaders = [];
  for (const name in headers) {
    const v = headers[name];
    // Ours replaces a caller's deadline header, as the object spread it replaces did.
    if (v === undefined || name === DEADLINE_HEADER) continue;
    if (typeof v === 'string') out.push(name, v);
    else for (const x of v) out.push(name, x);
  }
  return out;
}

function positive(name: string, v: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `createServiceClient.${name}: expected a positive number of ms, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function queryString(q: Record<string, string | number | boolean | undefined>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(q))
    if (v !== undefined) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

function clientMetrics(registry: Registry) {
  return {
    requests: getOrCreateCounter(
      registry,
      'phare_client_requests_total',
      'Calls by service, instance and outcome (status code or error kind)',
      ['service', 'instance', 'outcome'],
    ),
    retries: getOrCreateCounter(registry, 'phare_client_retries_total', 'Retries by service and reason', [
      'service',
      'reason',
    ]),
    ejections: getOrCreateCounter(
      registry,
      'phare_client_ejections_total',
      'Outlier ejections by service and instance',
      ['service', 'instance'],
    ),
    duration: getOrCreateHistogram(
      registry,
      'phare_client_request_duration_seconds',
      'Call duration including retries',
      ['service'],
    ),
  };
}
