/**
 * `watch()`: a loop of blocking queries (Consul docs, Blocking Queries, Consul docs "Blocking Queries"), with the
 * client-side rules Consul asks for:
 * - the client timeout sits above `wait` (the agent adds up to wait/16 jitter) — done by the transport;
 * - the index is reset to 0 when it goes backwards (agent restarted, snapshot restored) and treated as 1 when
 *   it is below 1, so a bad index never turns into a busy loop;
 * - errors back off exponentially with full jitter, so clients that lost the agent together do not return
 *   together.
 */
import type { Logger } from 'pino';
import { fullJitter, sdkLogger, sleep } from '../shared.ts';
import type { Indexed } from './transport.ts';

/** What a watch calls on every round. */
export type WatchFetch<T> = (q: {
  index: number;
  waitMs: number;
  signal: AbortSignal;
}) => Promise<Indexed<T>>;

/** Options of {@link watch}. */
export interface WatchOptions<T> {
  /** Called with each new value (first answer, each index change, and the first answer after errors). */
  onChange: (value: T, index: number, answer: Indexed<T>) => void;
  /** Called on each failed round with the number of consecutive failures. @default logs at debug */
  onError?: (err: unknown, failures: number) => void;
  /** Blocking wait per round in ms. @default 60000 */
  waitMs?: number;
  /** First error backoff in ms. @default 250 */
  backoffBaseMs?: number;
  /** Backoff cap in ms. @default 10000 */
  backoffMaxMs?: number;
  /** Stops the watch. */
  signal?: AbortSignal;
  /** Random source for jitter (tests fix it). @default Math.random */
  random?: () => number;
  logger?: Logger;
}

/** A running watch. */
export interface Watch {
  /** Resolves after the first successful answer (or rejects when stopped before). */
  readonly ready: Promise<void>;
  /** The last index seen (0 before the first answer). */
  readonly index: number;
  /** Stops the loop and aborts the in-flight query. Idempotent. */
  stop(): void;
}

/**
 * Runs blocking queries until stopped.
 *
 * @example
 * const w = watch((q) => api.health.service('web', q), { onChange: (entries) => console.log(entries.length) });
 * await w.ready;
 * w.stop();
 */
export function watch<T>(fetch: WatchFetch<T>, options: WatchOptions<T>): Watch {
  const waitMs = options.waitMs ?? 60_000;
  const baseMs = options.backoffBaseMs ?? 250;
  const maxMs = options.backoffMaxMs ?? 10_000;
  const log = sdkLogger('watch', options.logger);
  const stopper = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stopper.signal]) : stopper.signal;
  let index = 0; // last index delivered
  let ask = 0; // index sent with the next round
  let seen = false;
  let resolveReady!: () => void;
  let rejectReady!: (err: unknown) => void;
  const ready = new Promise<void>((res, rej) => {
    resolveReady = res;
    rejectReady = rej;
  });
  ready.catch(() => {});

  const loop = async () => {
    let failures = 0;
    while (!signal.aborted) {
      try {
        const r = await fetch({ index: ask, waitMs, signal });
        // The first answer after failures is delivered even when the index did not move, so listeners
        // learn that the source is back (last-known-good caches clear their staleness on it).
        const recovered = failures > 0;
        failures = 0;
        const next = r.index;
        // Consul: "if the index goes backwards, reset it" (agent restarted or a snapshot was restored). The
        // answer in hand is already current, so it is delivered and the next round blocks from its index.
        if (next < index) log.debug({ from: index, to: next }, 'index went backwards; resetting');
        const changed = !seen || next !== index || recovered;
        index = Math.max(next, 0);
        ask = index;
        if (changed) {
          seen = true;
          options.onChange(r.value, r.index, r);
          resolveReady();
        }
        // An endpoint without X-Consul-Index cannot block; poll it gently instead of spinning.
        if (r.index === 0) await sleep(Math.min(waitMs, 1_000), signal);
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        // After a failure the agent may have restarted with a lower index; a blocking read at our old index
        // would then hang for a full wait. Start again with a non-blocking read.
        ask = 0;
        if (options.onError) options.onError(err, failures);
        else log.debug({ err, failures }, 'watch round failed');
        try {
          await sleep(Math.max(baseMs / 2, fullJitter(failures - 1, baseMs, maxMs, options.random)), signal);
        } catch {
          break;
        }
      }
    }
    rejectReady(new Error('watch stopped'));
  };
  void loop();
  return {
    ready,
    get index() {
      return index;
    },
    stop() {
      stopper.abort(new Error('watch stopped'));
    },
  };
}
