/**
 * One try's answer, read the way most service calls are: small, and read whole. {@link ReplyHandler} is the
 * undici dispatch handler a try sends with, {@link TryReply} the answer it hands back.
 *
 * Why not undici's `request()` (BENCHMARKS.md, SDK round 2 stop 15): `request()` makes, per answer, an
 * AsyncResource handler and a `BodyReadable` stream, and `body.json()` then reads that stream back through a
 * consume promise, stream listeners and a microtask — about a quarter of the client's CPU on a loopback call.
 * Here an answer whose `content-length` is at most {@link BUFFERED_MAX} (and one with no body: HEAD, 204,
 * 304) is read to its end before the try resolves and kept as its chunks: `json()` and `text()` decode them
 * at once, and the stream is made only if someone asks for `body`. Any other answer (larger, or chunked) is
 * handed back at its headers as undici's own `BodyReadable`, read with backpressure, as `request()` does.
 *
 * Reading a small answer before resolving changes two things for the better: a connection cut mid-answer is
 * a failed try (retried like any other), not an error thrown later from `json()`; and a body that stalls is
 * bounded by the try's timeout and the call's deadline, not by undici's 300 s `bodyTimeout`.
 */
import { AsyncResource } from 'node:async_hooks';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Dispatcher } from 'undici';
import type { ClientClock } from '../clock.ts';

/** An answer's body stream: undici's `BodyReadable` (a Node Readable with `json()`, `text()`, `dump()`, …). */
export type ReplyBody = Dispatcher.ResponseData['body'];

type Controller = Dispatcher.DispatchController;
type ResponseHeaders = Record<string, string | string[] | undefined>;

/** Answers whose `content-length` is at most this many bytes are read whole before the try resolves. */
export const BUFFERED_MAX = 64 * 1024;

interface BodyReadableOptions {
  resume: () => void;
  abort: (reason?: Error) => void;
  contentType?: string;
  contentLength?: number;
}

// undici's BodyReadable is not exported by name; its module is loaded by path (the package's `exports`
// map would refuse the subpath). reply.test.ts checks that what comes back behaves as `request()`'s body.
const requireHere = createRequire(import.meta.url);
const BodyReadable = (
  requireHere(join(dirname(requireHere.resolve('undici')), 'lib', 'api', 'readable.js')) as {
    Readable: new (options: BodyReadableOptions) => ReplyBody;
  }
).Readable;

/** The error a stalled small answer fails its try with. */
export class BodyTimeoutError extends Error {
  readonly code = 'PHARE_BODY_TIMEOUT';
  constructor(ms: number) {
    super(`answer body not read within ${Math.round(ms)}ms`);
    this.name = 'BodyTimeoutError';
  }
}

/** The bound of a small answer's body on a try that has no timer of its own (undici's `headersTimeout`). */
export interface BodyBound {
  /** The try's timeout in ms (from the headers on). */
  timeoutMs: number;
  /** The call's deadline (clock ms). */
  deadlineAt: number;
}

/**
 * One try's answer: status, headers and the body — its chunks when it was read whole, else the stream.
 * The body can be read once (`json()`, `text()`, or through `body`); `dump()` lets it go.
 */
export class TryReply {
  readonly statusCode: number;
  readonly headers: ResponseHeaders;
  #chunks: Buffer[] | undefined;
  #stream: ReplyBody | undefined;
  #used = false;

  constructor(
    statusCode: number,
    headers: ResponseHeaders,
    chunks: Buffer[] | undefined,
    stream?: ReplyBody,
  ) {
    this.statusCode = statusCode;
    this.headers = headers;
    this.#chunks = chunks;
    this.#stream = stream;
  }

  /** The body as a stream (made on first use for an answer that was read whole). */
  get body(): ReplyBody {
    if (this.#stream === undefined) {
      const stream = new BodyReadable({
        resume: noop,
        abort: noop,
        contentType: first(this.headers['content-type']) ?? '',
        contentLength: this.#chunks === undefined ? undefined : byteLength(this.#chunks),
      });
      // read already: a stream that refuses to be read again, as undici's does after json()
      if (this.#used) stream.on('error', noop).destroy(unusable());
      else {
        for (const c of this.#chunks ?? []) stream.push(c);
        stream.push(null);
      }
      this.#chunks = undefined;
      this.#stream = stream;
    }
    return this.#stream;
  }

  /** The body parsed as JSON (a byte-order mark is skipped). */
  json<T = unknown>(): Promise<T> {
    if (this.#stream !== undefined) return this.#stream.json() as Promise<T>;
    try {
      return Promise.resolve(JSON.parse(this.#take()) as T);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The body as UTF-8 text (a byte-order mark is skipped). */
  text(): Promise<string> {
    if (this.#stream !== undefined) return this.#stream.text();
    try {
      return Promise.resolve(this.#take());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Lets the body go unread (a stream is read to its end and dropped, as undici's `dump()`). */
  dump(): Promise<void> {
    if (this.#stream !== undefined) return this.#stream.dump();
    this.#chunks = undefined;
    this.#used = true;
    return Promise.resolve();
  }

  /** The body as text, once: UTF-8, a leading byte-order mark skipped (as undici's `text()`). */
  #take(): string {
    if (this.#used) throw unusable();
    this.#used = true;
    const chunks = this.#chunks ?? [];
    this.#chunks = undefined;
    const all = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    const start = all.length >= 3 && all[0] === 0xef && all[1] === 0xbb && all[2] === 0xbf ? 3 : 0;
    return all.toString('utf8', start);
  }
}

/**
 * The undici dispatch handler of one try. `done` is called once, in the caller's async context: with the
 * reply (a small answer once read to its end, any other at its headers), or with the error the try failed
 * with — the caller's abort reason when `signal` aborted it. After a streamed reply is handed back, an
 * error or an abort destroys its body stream.
 *
 * `bound` is given when no timer of the caller's bounds the try (undici's `headersTimeout` does until the
 * headers): a small answer whose body is not complete by the end of the turn its headers came in is then
 * bounded by `min(timeoutMs, deadlineAt − now)`, and fails with {@link BodyTimeoutError}.
 */
export class ReplyHandler extends AsyncResource {
  readonly #method: string;
  readonly #bound: BodyBound | undefined;
  readonly #clock: ClientClock;
  #done: ((err: unknown, reply: TryReply | undefined) => void) | undefined;
  #controller: Controller | undefined;
  /** The abort reason, when the caller's signal aborted before the request started. */
  #reason: Error | undefined;
  #signal: AbortSignal | undefined;
  #onAbort: (() => void) | undefined;
  #status = 0;
  #headers: ResponseHeaders | undefined;
  /** A small answer's chunks so far. */
  #chunks: Buffer[] | undefined;
  /** A streamed answer's body. */
  #stream: ReplyBody | undefined;
  #timer: unknown;

  constructor(
    method: string,
    signal: AbortSignal | undefined,
    bound: BodyBound | undefined,
    clock: ClientClock,
    done: (err: unknown, reply: TryReply | undefined) => void,
  ) {
    super('PHARE_TRY');
    this.#method = method;
    this.#bound = bound;
    this.#clock = clock;
    this.#done = done;
    if (signal === undefined) return;
    if (signal.aborted) {
      this.#reason = abortReason(signal);
      return;
    }
    const onAbort = () => this.#abort(abortReason(signal));
    this.#signal = signal;
    this.#onAbort = onAbort;
    signal.addEventListener('abort', onAbort, { once: true });
  }

  onRequestStart(controller: Controller, _context: unknown): void {
    if (this.#reason !== undefined) {
      controller.abort(this.#reason);
      return;
    }
    this.#controller = controller;
  }

  onResponseStart(controller: Controller, statusCode: number, headers: ResponseHeaders): void {
    if (statusCode < 200) return; // 1xx: the answer is still to come
    this.#status = statusCode;
    this.#headers = headers;
    const length = this.#method === 'HEAD' ? 0 : contentLength(headers['content-length']);
    if (statusCode === 204 || statusCode === 304 || (length !== undefined && length <= BUFFERED_MAX)) {
      this.#chunks = [];
      if (this.#bound !== undefined) queueMicrotask(() => this.#watchBody());
      return;
    }
    const stream = new BodyReadable({
      resume: () => controller.resume(),
      abort: (reason) => controller.abort(reason ?? new Error('aborted')),
      contentType: first(headers['content-type']) ?? '',
      contentLength: length,
    });
    this.#stream = stream;
    // the caller's signal keeps watching the body until the stream is done, as with request()
    if (this.#onAbort !== undefined)
      stream.on('close', () => {
        this.#unlisten();
        this.#stream = undefined;
      });
    this.#finish(undefined, new TryReply(statusCode, headers, undefined, stream));
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.#chunks !== undefined) this.#chunks.push(chunk);
    else if (this.#stream !== undefined && !this.#stream.push(chunk)) controller.pause();
  }

  onResponseEnd(_controller: Controller, _trailers: unknown): void {
    if (this.#stream !== undefined) {
      this.#stream.push(null);
      return;
    }
    const chunks = this.#chunks;
    if (chunks === undefined) return;
    this.#chunks = undefined;
    this.#clearTimer();
    this.#unlisten();
    this.#finish(undefined, new TryReply(this.#status, this.#headers ?? {}, chunks));
  }

  onResponseError(_controller: Controller | null, err: Error): void {
    this.#clearTimer();
    this.#unlisten();
    this.#chunks = undefined;
    const stream = this.#stream;
    if (stream !== undefined) {
      this.#stream = undefined;
      // after whatever is queued for the stream has run, as request() does
      queueMicrotask(() => {
        stream.on('error', noop);
        stream.destroy(err);
      });
    }
    if (this.#done !== undefined) queueMicrotask(() => this.#finish(err, undefined));
  }

  /** The caller's signal aborted: the request, or the body still being read, ends with its reason. */
  #abort(reason: Error): void {
    this.#signal = undefined;
    this.#onAbort = undefined;
    if (this.#done === undefined) {
      // the reply was handed back: only a streamed body can still be cut
      const stream = this.#stream;
      this.#stream = undefined;
      stream?.on('error', noop).destroy(reason);
      return;
    }
    if (this.#controller !== undefined) this.#controller.abort(reason);
    else this.#reason = reason;
  }

  /** A small answer not complete by the end of its headers' turn: bound the rest. */
  #watchBody(): void {
    if (this.#chunks === undefined || this.#controller === undefined) return;
    const b = this.#bound as BodyBound;
    const ms = Math.max(0, Math.min(b.timeoutMs, b.deadlineAt - this.#clock.now()));
    const controller = this.#controller;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      controller.abort(new BodyTimeoutError(ms));
    }, ms);
  }

  #clearTimer(): void {
    if (this.#timer === undefined) return;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #unlisten(): void {
    if (this.#onAbort === undefined) return;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#signal = undefined;
    this.#onAbort = undefined;
  }

  #finish(err: unknown, reply: TryReply | undefined): void {
    const done = this.#done;
    if (done === undefined) return;
    this.#done = undefined;
    this.#headers = undefined;
    try {
      this.runInAsyncScope(done, null, err, reply);
    } catch (thrown) {
      // as request(): a callback that throws reaches uncaughtException, the stream does not leak
      this.#stream?.on('error', noop).destroy(thrown as Error);
      this.#stream = undefined;
      queueMicrotask(() => {
        throw thrown;
      });
    }
  }
}

function abortReason(signal: AbortSignal): Error {
  return (signal.reason as Error | undefined) ?? new DOMException('This operation was aborted', 'AbortError');
}

function contentLength(v: string | string[] | undefined): number | undefined {
  if (typeof v !== 'string' || v === '') return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function first(v: string | string[] | undefined): string | undefined {
  return typeof v === 'string' ? v : v?.[0];
}

function byteLength(chunks: Buffer[]): number {
  let n = 0;
  for (const c of chunks) n += c.length;
  return n;
}

function unusable(): TypeError {
  return new TypeError('unusable');
}

const noop = () => {};
