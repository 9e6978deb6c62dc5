/**
 * Tracing through `@opentelemetry/api`, an optional peer dependency: when the application has it and has
 * registered a tracer provider, each call gets a span (`phare.call`, INTERNAL) and each try a CLIENT span
 * under it, and each try carries W3C Trace Context headers (`traceparent`, `tracestate`; w3.org/TR/
 * trace-context) for its own span, so the callee's server span is the try's child. Attribute names follow
 * OpenTelemetry's HTTP client semantic conventions (`http.request.method`, `server.address`,
 * `http.response.status_code`, `http.request.resend_count`).
 *
 * Zero cost without it: the module is looked for once at load; without it — or with it and no provider
 * registered — a call does one property check and allocates nothing.
 */
import type * as OtelApi from '@opentelemetry/api';
import type { Instance } from '../discovery/index.ts';
import type { FlatHeaders } from './try.ts';

type Otel = typeof OtelApi;
let otel: Otel | undefined;
try {
  otel = await import('@opentelemetry/api');
} catch {
  otel = undefined;
}
// The no-op provider an unset global delegates to, to tell "nothing registered" apart cheaply.
const NOOP_PROVIDER = otel ? new otel.ProxyTracerProvider().getDelegate() : undefined;

/** One try's span. */
export interface TrySpan {
  /** The try's headers with `traceparent` (and `tracestate`) for this span appended. */
  headers(flat: FlatHeaders | undefined): FlatHeaders;
  end(statusCode: number | undefined, err?: unknown): void;
}

/** One call's span. */
export interface CallTrace {
  startTry(instance: Instance, method: string, attempt: number, hedge: boolean): TrySpan;
  end(err?: unknown): void;
}

/**
 * The tracing layer of one client.
 *
 * @example
 * const tracing = new Tracing(true);
 * const call = tracing.call('users', 'GET', '/users/42'); // undefined unless a tracer provider is registered
 */
export class Tracing {
  readonly #enabled: boolean;
  #tracer: OtelApi.Tracer | undefined;
  constructor(enabled: boolean) {
    this.#enabled = enabled && otel !== undefined;
  }

  /** True when `@opentelemetry/api` could be loaded. */
  static get available(): boolean {
    return otel !== undefined;
  }

  /** A span for a call, or undefined when tracing is off or nothing records spans. */
  call(service: string, method: string, path: string): CallTrace | undefined {
    if (!this.#enabled) return undefined;
    const api = otel as Otel;
    const provider = api.trace.getTracerProvider() as OtelApi.TracerProvider & { getDelegate?(): unknown };
    if (provider.getDelegate?.() === NOOP_PROVIDER) return undefined;
    this.#tracer ??= api.trace.getTracer('phare');
    const tracer = this.#tracer;
    const parent = api.context.active();
    const span = tracer.startSpan(
      `${method} ${service}`,
      {
        kind: api.SpanKind.INTERNAL,
        attributes: { 'phare.service': service, 'http.request.method': method, 'url.path': path },
      },
      parent,
    );
    const ctx = api.trace.setSpan(parent, span);
    return {
      startTry(instance, m, attempt, hedge) {
        const s = tracer.startSpan(
          m,
          {
            kind: api.SpanKind.CLIENT,
            attributes: {
              'http.request.method': m,
              'server.address': instance.address,
              'server.port': instance.port,
              'url.full': instance.url + path,
              'http.request.resend_count': attempt - 1,
              'phare.hedge': hedge,
              'phare.instance': instance.id,
            },
          },
          ctx,
        );
        return {
          headers(flat) {
            const sc = s.spanContext();
            const out = flat ? withoutTraceHeaders(flat) : [];
            const flags = (sc.traceFlags & 0xff).toString(16).padStart(2, '0');
            out.push('traceparent', `00-${sc.traceId}-${sc.spanId}-${flags}`);
            const state = sc.traceState?.serialize();
            if (state) out.push('tracestate', state);
            return out;
          },
          end(statusCode, err) {
            if (statusCode !== undefined) s.setAttribute('http.response.status_code', statusCode);
            if (err !== undefined || (statusCode !== undefined && statusCode >= 500)) {
              s.setStatus({
                code: api.SpanStatusCode.ERROR,
                message: err ? String((err as Error).message ?? err) : undefined,
              });
            }
            s.end();
          },
        };
      },
      end(err) {
        if (err !== undefined) {
          span.recordException(err as Error);
          span.setStatus({ code: api.SpanStatusCode.ERROR, message: String((err as Error).message ?? err) });
        }
        span.end();
      },
    };
  }
}

/** Removes the caller's `traceparent`/`tracestate` when a try span replaces them (one of each per request). */
export function withoutTraceHeaders(flat: FlatHeaders): FlatHeaders {
  const out: FlatHeaders = [];
  for (let i = 0; i < flat.length; i += 2) {
    const name = (flat[i] as string).toLowerCase();
    if (name !== 'traceparent' && name !== 'tracestate') out.push(flat[i] as string, flat[i + 1] as string);
  }
  return out;
}
