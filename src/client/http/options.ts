/**
 * The service client's options: what `createServiceClient()` and each call take, checked and resolved to
 * their defaults once (a bad value is refused at creation, naming the option), and the per-call helpers
 * that turn a call's options into a request (headers in undici's flat form, the query string).
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { phareError } from '../../api/index.ts';
import type { BalancerFactory, OnAllUnhealthy, OutlierOptions } from '../balancer/index.ts';
import { type HealthFilter, leastRequest, peakEwma } from '../balancer/index.ts';
import { type ClientClock, systemClock } from '../clock.ts';
import type { Discovery } from '../discovery/index.ts';
import type { BreakerOptions } from './breaker.ts';
import type { RetryBudgetOptions } from './budget.ts';
import { DEADLINE_HEADER } from './deadline.ts';
import type { HedgePolicy, RetryPolicy } from './decide.ts';
import type { ServiceClientHooks } from './observe.ts';
import type { FlatHeaders } from './try.ts';

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

/**
 * Hedged requests for idempotent calls (Dean & Barroso, "The Tail at Scale"): when a try has not answered
 * after `afterMs` — or, without it, the recent p95 latency of the service's fastest instance — one more try goes to another
 * instance; the first answer wins. The other try is left to finish on its own (bounded by its try timeout,
 * its answer drained) so that its instance's latency and failures still count: a slow or hung instance is
 * then avoided by the balancer and ejected, rather than hidden by hedges. A hedge takes a token from the same
 * retry budget as retries, so hedging cannot amplify an overload. Without an explicit `balancer`, a hedging
 * client balances with {@link peakEwma}: hedges cut the tail a slow instance makes, latency-aware picks keep
 * calls off it in the first place.
 */
export interface HedgeOptions {
  /**
   * Fixed hedge delay in ms. @default the p95 latency of the service's fastest instance over its last 64
   * answers (a service-wide p95 is the slow instance's latency when one of three is slow, and a slow
   * instance's own p95 would never send a hedge away from it)
   */
  afterMs?: number;
  /** Delay while an instance has fewer than 16 answers, in ms. @default 50 */
  initialAfterMs?: number;
  /** Floor of the p95-based delay in ms. @default 1 */
  minAfterMs?: number;
}

/** Options of `createServiceClient()`. */
export interface ServiceClientOptions {
  /** Where instances come from. */
  discovery: Discovery;
  /** Load-balancing strategy. @default leastRequest (P2C); peakEwma when `hedge` is on */
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
  /** Retry budget (retries and hedges). @default { percent: 20, minPerSecond: 10, windowMs: 10000 } */
  retryBudget?: Omit<RetryBudgetOptions, 'now'>;
  /** Hedged requests for idempotent calls: true for the defaults, or options. @default false */
  hedge?: HedgeOptions | boolean;
  /** Outlier ejection, or false to turn it off. @default {} */
  outlier?: Omit<OutlierOptions, 'now'> | false;
  /** Circuit breaker per instance, or false. @default {} */
  breaker?: BreakerOptions | false;
  /** Connections per instance pool. @default 64 */
  connections?: number;
  /** Keep-alive of idle connections in ms. @default 4000 */
  keepAliveTimeoutMs?: number;
  /** Headers sent with every request. @default {} */
  headers?: Record<string, string>;
  hooks?: ServiceClientHooks;
  /**
   * Spans per call and per try, with W3C `traceparent`/`tracestate` on each try, through
   * `@opentelemetry/api` when the application has it and registered a tracer provider. @default true
   */
  tracing?: boolean;
  /** prom-client registry for `phare_client_*` metrics. @default none */
  metrics?: Registry;
  /** Clock for deadlines, backoff, budgets, ejection and hedging. @default systemClock */
  clock?: ClientClock;
  /** Random source for backoff jitter. @default Math.random */
  random?: () => number;
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
  /** Hedge this call (idempotent calls only). @default the client's `hedge` */
  hedge?: boolean;
}

/** A client's options, checked and resolved to their defaults. */
export interface ClientSettings {
  clock: ClientClock;
  balancerFactory: BalancerFactory;
  healthFilter: HealthFilter;
  onAllUnhealthy: OnAllUnhealthy;
  deadlineDefault: number;
  tryTimeoutDefault: number;
  connectTimeout: number;
  policy: RetryPolicy;
  hedge: HedgePolicy | undefined;
}

/** Checks `options` and resolves their defaults; throws PHARE_ERR_INVALID_ARGUMENT naming a bad one. */
export function clientSettings(options: ServiceClientOptions): ClientSettings {
  if (!options?.discovery)
    throw phareError('PHARE_ERR_INVALID_ARGUMENT', 'createServiceClient: options.discovery is required');
  const clock = options.clock ?? systemClock;
  const balancerFactory = options.balancer ?? (options.hedge ? peakEwma : leastRequest);
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
  const retry = options.retry === false ? undefined : (options.retry ?? {});
  const policy: RetryPolicy = {
    maxRetries: retry ? (retry.maxRetries ?? 2) : 0,
    baseDelayMs: retry?.baseDelayMs ?? 25,
    maxDelayMs: retry?.maxDelayMs ?? 1_000,
    statuses: new Set(retry?.statuses ?? [502, 503, 504]),
    nonIdempotent: retry?.nonIdempotent === true,
    maxRetryAfterMs: retry?.maxRetryAfterMs ?? 5_000,
    random: options.random ?? Math.random,
  };
  const hedgeOptions = options.hedge === true ? {} : options.hedge || undefined;
  const hedge: HedgePolicy | undefined = hedgeOptions && {
    afterMs: hedgeOptions.afterMs === undefined ? undefined : positive('hedge.afterMs', hedgeOptions.afterMs),
    initialAfterMs: positive('hedge.initialAfterMs', hedgeOptions.initialAfterMs ?? 50),
    minAfterMs: positive('hedge.minAfterMs', hedgeOptions.minAfterMs ?? 1),
  };
  return {
    clock,
    balancerFactory,
    healthFilter,
    onAllUnhealthy,
    deadlineDefault,
    tryTimeoutDefault,
    connectTimeout,
    policy,
    hedge,
  };
}

/** `{ name: value }` as undici's flat header list. */
export function flatten(headers: Record<string, string | string[]>): FlatHeaders {
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

export function queryString(q: Record<string, string | number | boolean | undefined>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(q))
    if (v !== undefined) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}
