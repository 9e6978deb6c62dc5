/**
 * Instance pools: one {@link InstancePool} (keep-alive connections) per instance, made on first use and closed when the
 * instance leaves the discovery set, plus the instance's breaker. All of it hangs off
 * the balancer's {@link Endpoint} as its attachment.
 */
import { AsyncResource } from 'node:async_hooks';
import { buildConnector, Client, Dispatcher, errors } from 'undici';
import type { Endpoint } from '../balancer/index.ts';
import type { Breaker, BreakerFactory } from './breaker.ts';

const { ClientClosedError, ClientDestroyedError } = errors;

/**
 * The connections to one instance: undici `Client`s (one keep-alive HTTP/1.1 connection each), at most
 * `connections` of them, the one whose answer ended last reused first; a request beyond that waits here
 * in arrival order for the next answer to end.
 *
 * Why not an undici `Pool` (BENCHMARKS.md, SDK round 2 stop 12): a Pool counts a connection free only at the
 * Client's `drain`, which undici emits a full event-loop turn after the answer ended (a setImmediate, so a
 * server that closes a keep-alive socket anyway is seen first). A caller that sends its next request as
 * soon as it has read an answer therefore never finds that connection free: the request waits in the
 * Pool's queue (one pool to one URL, every connection busy) or takes another, idle connection — 10 pools
 * with ~3 busy connections each kept ~15 sockets open apiece, and every request woke an idle socket: a
 * socket ref, a keep-alive timer cleared, and after the answer an unref and a keep-alive timer armed again.
 * Here a connection is free again when its answer ends: the next request waits in that Client's own queue
 * for the same turn (undici still checks the idle socket before writing, and sends a request it had not
 * written yet over a new connection if the socket closed meanwhile), so the busy connections stay busy,
 * the rest reach their keep-alive timeout, and the per-request timer work is gone.
 *
 * `saturated` says whether the next request would wait here (every connection busy, none may be added): a
 * try that might wait needs its own timer, as undici's `headersTimeout` only starts once it is written.
 */
export class InstancePool extends Dispatcher {
  readonly #url: string;
  readonly #options: Client.Options;
  readonly #max: number;
  /** Connections with no request of ours in flight, the one that ended last at the end. */
  readonly #idle: Client[] = [];
  readonly #all: Client[] = [];
  /** Requests waiting for a connection, oldest first, each in its caller's async context. */
  #queue: Queued[] = [];
  #queueHead = 0;
  #closing: Promise<void> | undefined;
  /** Resolves close() once no request waits here any more. */
  #onEmpty: (() => void) | undefined;
  #destroyed = false;
  readonly #onIdle: (() => void) | undefined;

  /** `onIdle` is told each time a connection becomes free with no request waiting for it. */
  constructor(url: string, options: Client.Options & { connections: number; onIdle?: () => void }) {
    super();
    const { connections, connect, onIdle, ...rest } = options;
    this.#onIdle = onIdle;
    this.#url = url;
    this.#max = Math.max(1, connections);
    // One connector for all connections, as a Pool shares it (and its TLS session cache).
    this.#options = {
      ...rest,
      pipelining: 1,
      connect: typeof connect === 'function' ? connect : buildConnector({ ...connect }),
    };
  }

  /** The next request would wait for a connection. */
  get saturated(): boolean {
    return this.#idle.length === 0 && this.#all.length >= this.#max;
  }

  /** Connections made so far (each keeps at most one socket). */
  get connections(): number {
    return this.#all.length;
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (this.#closing !== undefined || this.#destroyed) {
      handler.onResponseError?.(
        null as never,
        this.#destroyed ? new ClientDestroyedError() : new ClientClosedError(),
      );
      return false;
    }
    let c = this.#idle.pop();
    if (c === undefined) {
      if (this.#all.length >= this.#max) {
        this.#queue.push(new Queued(options, handler));
        return false;
      }
      c = new Client(this.#url, this.#options);
      this.#all.push(c);
    }
    c.dispatch(options, new Tracked(this, c, handler));
    return !this.saturated;
  }

  /**
   * `c`'s request was answered to its end: the oldest waiting request goes to it, else it is idle. Called
   * from inside undici's handling of the answer; a waiting request is handed over after that returns, so
   * undici sees an idle socket (and checks it) as for any new request.
   */
  ended(c: Client): void {
    if (this.#destroyed) return;
    const q = this.#next();
    if (q === undefined) {
      this.#idle.push(c);
      this.#onIdle?.();
    } else queueMicrotask(() => q.runInAsyncScope(this.#handOver, this, c, q));
  }

  /**
   * `c`'s request failed (or was refused at once, or upgraded): `c` is dropped. undici fails whatever else a
   * Client holds when the error was not the socket's own (an abort, a timeout), so no other request may
   * be queued on it; a fresh Client takes the next one.
   */
  failed(c: Client): void {
    const i = this.#all.indexOf(c);
    if (i < 0) return;
    this.#all.splice(i, 1);
    // after undici's own handling of the failure has returned (this runs inside it)
    queueMicrotask(() => c.destroy().catch(() => {}));
    if (this.#destroyed) return;
    const q = this.#next();
    if (q === undefined) return;
    const fresh = new Client(this.#url, this.#options);
    this.#all.push(fresh);
    queueMicrotask(() => q.runInAsyncScope(this.#handOver, this, fresh, q));
  }

  /** The oldest waiting request, taken off the queue. */
  #next(): Queued | undefined {
    if (this.#queueHead >= this.#queue.length) return undefined;
    const q = this.#queue[this.#queueHead] as Queued;
    this.#queue[this.#queueHead++] = undefined as never;
    if (this.#queueHead === this.#queue.length) {
      this.#queue = [];
      this.#queueHead = 0;
    }
    return q;
  }

  #handOver(c: Client, q: Queued): void {
    if (this.#destroyed) q.handler.onResponseError?.(null as never, new ClientDestroyedError());
    else c.dispatch(q.options, new Tracked(this, c, q.handler));
    // close() closes the connections once the last waiting request is on one
    if (this.#queueHead >= this.#queue.length) this.#onEmpty?.();
  }

  /** Closes gracefully: requests in flight and waiting are answered first. */
  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    this.#closing ??= new Promise<void>((resolve) => {
      if (this.#queueHead >= this.#queue.length) resolve();
      else this.#onEmpty = resolve;
    }).then(async () => {
      await Promise.all(this.#all.map((c) => c.close()));
    });
    if (callback === undefined) return this.#closing;
    this.#closing.then(callback, callback);
  }

  /** Closes at once: requests in flight and waiting fail with `err`. */
  override destroy(err?: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
    const err = typeof a === 'function' ? null : (a ?? null);
    const callback = typeof a === 'function' ? a : b;
    this.#destroyed = true;
    const reason = err ?? new ClientDestroyedError();
    const waiting = this.#queue.slice(this.#queueHead);
    this.#queue = [];
    this.#queueHead = 0;
    this.#onEmpty?.();
    for (const q of waiting) q.handler.onResponseError?.(null as never, reason);
    const done = Promise.all(this.#all.map((c) => c.destroy(reason))).then(() => {});
    if (callback === undefined) return done;
    done.then(callback, callback);
  }
}

/** A request waiting for a connection, handed over later in the async context it arrived in (as a Pool does). */
class Queued extends AsyncResource {
  readonly options: Dispatcher.DispatchOptions;
  readonly handler: Dispatcher.DispatchHandler;
  constructor(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) {
    super('PHARE_INSTANCE_POOL_QUEUED');
    this.options = options;
    this.handler = handler;
  }
}

type Controller = Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseEnd']>>[0];

/** What a {@link Tracked} forwards to once its request is over: nothing. */
const SPENT: Dispatcher.DispatchHandler = Object.freeze({});

/**
 * The caller's handler, passed through, telling the pool when its request ended — once: answered to its
 * end, or failed (an error, undici's refusal of bad options included — it calls onResponseError at once —
 * or an upgrade, which takes the socket).
 *
 * Once the request is over it lets go of the caller's handler (and, through it, of the answer's body). V8
 * pretenures the objects of an allocation site whose objects tend to survive a scavenge — allocates them
 * straight in the old generation — and a dead old-generation object still counts as a root for every
 * scavenge until the next full GC: a Tracked that kept its handler kept each finished answer's body
 * stream, chunks and listeners alive through the next scavenge and promoted them. Measured under the SDK
 * benchmark's load (BENCHMARKS.md, SDK round 2 stop 14): ~2.5 MB promoted per scavenge and GC at 4–8 % of
 * the client's CPU with the reference kept, none and ~1 % without — what an undici `Pool`, which hands the
 * caller's handler to its Client as is, costs.
 */
class Tracked implements Dispatcher.DispatchHandler {
  readonly #pool: InstancePool;
  readonly #c: Client;
  #h: Dispatcher.DispatchHandler;
  #ended = false;
  constructor(pool: InstancePool, c: Client, h: Dispatcher.DispatchHandler) {
    this.#pool = pool;
    this.#c = c;
    this.#h = h;
  }
  #end(answered: boolean): void {
    if (this.#ended) return;
    this.#ended = true;
    if (answered) this.#pool.ended(this.#c);
    else this.#pool.failed(this.#c);
  }
  onRequestStart(controller: Controller, context: unknown): void {
    this.#h.onRequestStart?.(controller, context);
  }
  onRequestUpgrade(controller: Controller, statusCode: number, headers: never, socket: never): void {
    const h = this.#h;
    this.#h = SPENT;
    this.#end(false);
    h.onRequestUpgrade?.(controller, statusCode, headers, socket);
  }
  onResponseStart(controller: Controller, statusCode: number, headers: never, statusMessage?: string): void {
    this.#h.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }
  onRequestSent(): void {
    (this.#h as { onRequestSent?: () => void }).onRequestSent?.();
  }
  onBodySent(chunk: Buffer): void {
    (this.#h as { onBodySent?: (chunk: Buffer) => void }).onBodySent?.(chunk);
  }
  onResponseStarted(): void {
    (this.#h as { onResponseStarted?: () => void }).onResponseStarted?.();
  }
  onResponseData(controller: Controller, chunk: Buffer): void {
    this.#h.onResponseData?.(controller, chunk);
  }
  onResponseEnd(controller: Controller, trailers: never): void {
    // Let go only once it returned: when it throws, undici hands the error to onResponseError below,
    // which still reaches the caller's handler.
    this.#h.onResponseEnd?.(controller, trailers);
    this.#h = SPENT;
    this.#end(true);
  }
  onResponseError(controller: Controller, err: Error): void {
    const h = this.#h;
    this.#h = SPENT;
    this.#end(false);
    h.onResponseError?.(controller, err);
  }
}

const SAMPLES = 64;

/**
 * Recent latencies of one service (the last 64 answers), for the hedge delay: the p95 is recomputed at
 * most every 16 samples, so recording stays O(1) on the hot path.
 */
export class LatencyWindow {
  readonly #ms = new Float64Array(SAMPLES);
  #n = 0;
  #p95: number | undefined;
  #dirty = 0;

  record(ms: number): void {
    this.#ms[this.#n % SAMPLES] = ms;
    this.#n++;
    this.#dirty++;
  }

  /** The p95 of the recent answers, or undefined before 16 of them. */
  p95(): number | undefined {
    if (this.#n < 16) return undefined;
    if (this.#p95 === undefined || this.#dirty >= 16) {
      const sorted = this.#ms.slice(0, Math.min(this.#n, SAMPLES)).sort();
      this.#p95 = sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.95) - 1)] as number;
      this.#dirty = 0;
    }
    return this.#p95;
  }
}

/**
 * Recent latencies of one service, a {@link LatencyWindow} per instance, for the hedge delay: the p95 of its
 * **fastest** instance (among those with 16 answers or more). A service-wide p95 fails when one instance of
 * three is slow — a third of the answers are slow, so the p95 is the slow instance's latency and a hedge never
 * leaves in time; a slow instance's own p95 would never send a hedge away from it. The fastest instance's p95
 * is what a call should cost when it reaches a good instance: past it, another instance is likely faster. The
 * minimum is recomputed at most every 16 answers, so recording stays O(1) on the hot path.
 */
export class ServiceLatency {
  // Keyed weakly by the balancer's Endpoint (kept while its instance stays in the set): an instance that
  // leaves takes its window with it, and only the service's current endpoints are read.
  readonly #windows = new WeakMap<object, LatencyWindow>();
  #best: number | undefined;
  #dirty = 0;
  #of: readonly object[] | undefined;

  record(instance: object, ms: number): void {
    let w = this.#windows.get(instance);
    if (!w) {
      w = new LatencyWindow();
      this.#windows.set(instance, w);
    }
    w.record(ms);
    this.#dirty++;
  }

  /**
   * The lowest p95 among `current` (the service's endpoints now) with 16 answers or more, or undefined while
   * none has that many. Recomputed every 16 answers, and at once when the set of endpoints changed.
   */
  p95(current: readonly object[]): number | undefined {
    if (this.#best === undefined || this.#dirty >= 16 || current !== this.#of) {
      let best: number | undefined;
      for (const e of current) {
        const p = this.#windows.get(e)?.p95();
        if (p !== undefined && (best === undefined || p < best)) best = p;
      }
      this.#best = best;
      this.#dirty = 0;
      this.#of = current;
    }
    return this.#best;
  }
}

/** What the client keeps per instance. */
export interface Attachment {
  pool: InstancePool;
  breaker: Breaker | undefined;
  /** Its circuit is open now (counted in the pools' open count). */
  open?: boolean;
  /** Its instance left the set: its breaker's changes no longer count. */
  released?: boolean;
}

/** Options of {@link InstancePools}. */
export interface PoolOptions {
  connections: number;
  keepAliveTimeoutMs: number;
  connectTimeoutMs: number;
  breaker: BreakerFactory | undefined;
}

/** Makes, finds and closes the per-instance state. */
export class InstancePools {
  readonly #o: PoolOptions;
  /** Instances (still in a set) whose circuit is open now. */
  #open = 0;
  /**
   * The endpoint whose connection became free last (any service's): the balancer's `warm` hint. A caller
   * that sends its next request as soon as it has read an answer finds that connection still awake.
   */
  warm: Endpoint | undefined;
  constructor(options: PoolOptions) {
    this.#o = options;
    this.usable = options.breaker
      ? (e) => (e.attachment as Attachment | undefined)?.breaker?.usable() ?? true
      : undefined;
  }

  /** The instance's attachment, made on first use. */
  of(e: Endpoint): Attachment {
    let a = e.attachment as Attachment | undefined;
    if (!a) {
      a = {
        pool: new InstancePool(e.instance.url, {
          connections: this.#o.connections,
          keepAliveTimeout: this.#o.keepAliveTimeoutMs,
          connect: { timeout: this.#o.connectTimeoutMs },
          // Per try, when the fast path uses it (see try.ts); off otherwise.
          headersTimeout: 0,
          bodyTimeout: 0,
          onIdle: () => {
            this.warm = e;
          },
        }),
        breaker: undefined,
      };
      const made = a;
      made.breaker = this.#o.breaker?.((open) => {
        if (made.released) return;
        made.open = open;
        this.#open += open ? 1 : -1;
      });
      e.attachment = a;
    }
    return a;
  }

  /** Closes a gone instance's pool (in the background). */
  readonly release = (e: Endpoint): void => {
    const a = e.attachment as Attachment | undefined;
    if (!a) return;
    if (a.open) this.#open--;
    a.released = true;
    if (this.warm === e) this.warm = undefined;
    void a.pool.close().catch(() => {});
  };

  /** True unless the instance's circuit is open; undefined when there are no breakers (nothing to filter). */
  readonly usable: ((e: Endpoint) => boolean) | undefined;

  /**
   * {@link usable} while some circuit is open, else undefined: with every circuit closed (the common case)
   * candidates() skips asking each instance's breaker on every call.
   */
  get usableFilter(): ((e: Endpoint) => boolean) | undefined {
    return this.#open > 0 ? this.usable : undefined;
  }

  /** Closes the pools of `endpoints`. */
  async close(endpoints: Iterable<Endpoint>): Promise<void> {
    this.warm = undefined;
    const closing: Promise<unknown>[] = [];
    for (const e of endpoints) {
      const a = e.attachment as Attachment | undefined;
      if (a) closing.push(a.pool.close().catch(() => {}));
    }
    await Promise.all(closing);
  }
}
