/**
 * What the client tells the outside about each call: prom-client metrics (`phare_client_*`), the caller's
 * hooks, and debug/info log lines. One object, so the call path has one place to report to.
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { PhareError } from '../../api/index.ts';
import type { Instance } from '../discovery/index.ts';
import { getOrCreateCounter, getOrCreateHistogram } from '../shared.ts';

/** Context handed to hooks. */
export interface RequestInfo {
  service: string;
  method: string;
  path: string;
}

/** Observability hooks (all optional, called synchronously; keep them cheap). */
export interface ServiceClientHooks {
  onTry?(info: RequestInfo & { instance: Instance; attempt: number; hedge: boolean }): void;
  onRetry?(
    info: RequestInfo & { instance: Instance; attempt: number; reason: string; delayMs: number },
  ): void;
  /** A hedge was sent to `instance` because the try on `slow` had not answered after `afterMs`. */
  onHedge?(info: RequestInfo & { instance: Instance; slow: Instance; afterMs: number }): void;
  onEject?(info: { service: string; instance: Instance; ejectedForMs: number; timesEjected: number }): void;
  onResponse?(
    info: RequestInfo & { instance: Instance; statusCode: number; attempts: number; durationMs: number },
  ): void;
  onError?(info: RequestInfo & { error: PhareError | Error; attempts: number; durationMs: number }): void;
}

type Metrics = ReturnType<typeof clientMetrics>;

/** Reports calls to metrics, hooks and the log. */
export class Observer {
  readonly hooks: ServiceClientHooks;
  /** Someone reads call durations (metrics or onResponse): only then is the clock read for them. */
  readonly wantsDuration: boolean;
  readonly #metrics: Metrics | undefined;
  readonly #log: Logger;
  constructor(hooks: ServiceClientHooks | undefined, registry: Registry | undefined, log: Logger) {
    this.hooks = hooks ?? {};
    this.#metrics = registry ? clientMetrics(registry) : undefined;
    this.wantsDuration = this.#metrics !== undefined || this.hooks.onResponse !== undefined;
    this.#log = log;
  }

  response(
    info: RequestInfo,
    instance: Instance,
    statusCode: number,
    attempts: number,
    durationMs: number,
  ): void {
    if (this.#metrics) {
      this.#metrics.requests.inc({
        service: info.service,
        instance: instance.url,
        outcome: String(statusCode),
      });
      this.#metrics.duration.observe({ service: info.service }, durationMs / 1000);
    }
    this.hooks.onResponse?.({ ...info, instance, statusCode, attempts, durationMs });
  }

  error(
    info: RequestInfo,
    instance: Instance | undefined,
    error: PhareError | Error,
    outcome: string,
    attempts: number,
    durationMs: number,
  ): void {
    this.#metrics?.requests.inc({ service: info.service, instance: instance?.url ?? '', outcome });
    this.#metrics?.duration.observe({ service: info.service }, durationMs / 1000);
    this.hooks.onError?.({ ...info, error, attempts, durationMs });
  }

  retry(info: RequestInfo, instance: Instance, attempt: number, reason: string, delayMs: number): void {
    this.#metrics?.retries.inc({ service: info.service, reason });
    this.hooks.onRetry?.({ ...info, instance, attempt, reason, delayMs });
    this.#log.debug({ upstream: info.service, instance: instance.url, reason, delayMs }, 'retrying');
  }

  hedge(info: RequestInfo, instance: Instance, slow: Instance, afterMs: number): void {
    this.#metrics?.hedges.inc({ service: info.service });
    this.hooks.onHedge?.({ ...info, instance, slow, afterMs });
  }

  eject(service: string, instance: Instance, ejectedForMs: number, timesEjected: number, kind: string): void {
    this.#metrics?.ejections.inc({ service, instance: instance.url });
    this.hooks.onEject?.({ service, instance, ejectedForMs, timesEjected });
    this.#log.info({ upstream: service, instance: instance.url, ms: ejectedForMs, kind }, 'instance ejected');
  }
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
    hedges: getOrCreateCounter(registry, 'phare_client_hedges_total', 'Hedged tries by service', ['service']),
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
