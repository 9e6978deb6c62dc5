/**
 * Instance pools: one undici `Pool` (keep-alive) per instance, made on first use and closed when the
 * instance leaves the discovery set, plus the instance's breaker. All of it hangs off
 * the balancer's {@link Endpoint} as its attachment.
 */
import { type Dispatcher, Pool } from 'undici';
import type { Endpoint } from '../balancer/index.ts';
import type { Breaker, BreakerFactory } from './breaker.ts';

/**
 * An undici Pool that knows whether its next request would wait in its queue (every connection busy): the
 * return value of `dispatch` says so, its `drain` event says it is over. A try that might wait there needs
 * its own timer, as undici's `headersTimeout` only starts once the request is written.
 */
export class InstancePool extends Pool {
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
    const closing: Promise<unknown>[] = [];
    for (const e of endpoints) {
      const a = e.attachment as Attachment | undefined;
      if (a) closing.push(a.pool.close().catch(() => {}));
    }
    await Promise.all(closing);
  }
}
