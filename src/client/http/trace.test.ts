/**
 * Tracing through @opentelemetry/api with a small recording tracer provider registered globally (this file
 * runs in its own process): a span per call and per try, the try's W3C `traceparent` on the wire, the
 * caller's active span as the parent; and nothing at all before a provider is registered.
 */
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import * as otel from '@opentelemetry/api';
import { pino } from 'pino';
import { createDiscovery, staticResolver } from '../discovery/index.ts';
import { createServiceClient } from './client.ts';
import { Tracing } from './trace.ts';

interface Recorded {
  name: string;
  kind: otel.SpanKind;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  attributes: otel.Attributes;
  status: otel.SpanStatus | undefined;
  ended: boolean;
}

const recorded: Recorded[] = [];

/** Context propagation over AsyncLocalStorage, as the OpenTelemetry SDK's context manager does it. */
const storage = new AsyncLocalStorage<otel.Context>();
const contextManager: otel.ContextManager = {
  active: () => storage.getStore() ?? otel.ROOT_CONTEXT,
  with: (ctx, fn, thisArg, ...args) => storage.run(ctx, () => fn.call(thisArg, ...args)),
  bind: (_ctx, target) => target,
  enable() {
    return contextManager;
  },
  disable() {
    return contextManager;
  },
};

/** The smallest tracer that records: enough of the API's Span for the client. */
const tracer: otel.Tracer = {
  startSpan(name, options = {}, ctx = otel.context.active()) {
    const parent = otel.trace.getSpanContext(ctx);
    const sc: otel.SpanContext = {
      traceId: parent?.traceId ?? randomBytes(16).toString('hex'),
      spanId: randomBytes(8).toString('hex'),
      traceFlags: otel.TraceFlags.SAMPLED,
      ...(parent?.traceState ? { traceState: parent.traceState } : {}),
    };
    const r: Recorded = {
      name,
      kind: options.kind ?? otel.SpanKind.INTERNAL,
      traceId: sc.traceId,
      spanId: sc.spanId,
      parentSpanId: parent?.spanId,
      attributes: { ...options.attributes },
      status: undefined,
      ended: false,
    };
    recorded.push(r);
    const span: otel.Span = {
      spanContext: () => sc,
      setAttribute(k, v) {
        r.attributes[k] = v;
        return span;
      },
      setAttributes(a) {
        Object.assign(r.attributes, a);
        return span;
      },
      addEvent: () => span,
      addLink: () => span,
      addLinks: () => span,
      setStatus(s) {
        r.status = s;
        return span;
      },
      updateName: () => span,
      end() {
        r.ended = true;
      },
      isRecording: () => true,
      recordException() {},
    };
    return span;
  },
  startActiveSpan(name: string, ...rest: unknown[]) {
    const fn = rest.at(-1) as (s: otel.Span) => unknown;
    const span = this.startSpan(name);
    return otel.context.with(otel.trace.setSpan(otel.context.active(), span), () => fn(span));
  },
} as otel.Tracer;

test('no provider registered: no spans and no trace headers (the zero-cost path)', () => {
  assert.equal(Tracing.available, true);
  assert.equal(new Tracing(true).call('svc', 'GET', '/'), undefined);
});

test('a span per call and per try; each try carries its own traceparent; the active span is the parent', async () => {
  const seen: (string | undefined)[] = [];
  let first = true;
  const s = createServer((req, res) => {
    seen.push(req.headers.traceparent as string | undefined);
    req.resume();
    // the first try fails with 503, so the call has two tries
    res.statusCode = first ? 503 : 200;
    first = false;
    res.end('x');
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  otel.context.setGlobalContextManager(contextManager);
  otel.trace.setGlobalTracerProvider({ getTracer: () => tracer });
  const discovery = createDiscovery({
    resolver: staticResolver({ services: { svc: [url] } }),
    logger: pino({ level: 'silent' }),
  });
  const http = createServiceClient({ discovery, logger: pino({ level: 'silent' }) });
  try {
    const outer = tracer.startSpan('incoming request');
    const res = await otel.context.with(otel.trace.setSpan(otel.context.active(), outer), () =>
      http.get('svc', '/users/1', { headers: { traceparent: '00-caller-should-be-replaced-01' } }),
    );
    await res.body.dump();
    outer.end();
    const [, call, try1, try2] = recorded;
    assert.ok(call && try1 && try2, JSON.stringify(recorded));
    assert.equal(call.name, 'GET svc');
    assert.equal(call.parentSpanId, recorded[0]?.spanId, 'the caller’s active span is the parent');
    assert.equal(call.ended, true);
    for (const [i, t] of [try1, try2].entries()) {
      assert.equal(t.kind, otel.SpanKind.CLIENT);
      assert.equal(t.parentSpanId, call.spanId);
      assert.equal(t.attributes['http.request.resend_count'], i);
      assert.equal(seen[i], `00-${t.traceId}-${t.spanId}-01`, 'the try’s own traceparent, once');
      assert.equal(t.ended, true);
    }
    assert.equal(try1.attributes['http.response.status_code'], 503);
    assert.equal(try1.status?.code, otel.SpanStatusCode.ERROR);
    assert.equal(try2.attributes['http.response.status_code'], 200);
    // tracing: false turns it off
    const off = createServiceClient({ discovery, tracing: false, logger: pino({ level: 'silent' }) });
    const before = recorded.length;
    await (await off.get('svc', '/')).body.dump();
    assert.equal(recorded.length, before);
    await off.close();
  } finally {
    otel.trace.disable();
    otel.context.disable();
    await http.close();
    await discovery.close();
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});
