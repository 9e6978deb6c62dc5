/**
 * What a call hands back: the {@link ServiceResponse} interface and the class that implements it over one
 * try's {@link TryReply}.
 */
import type { Instance } from '../discovery/index.ts';
import type { ReplyBody, TryReply } from './reply.ts';

/**
 * An answer. Read its body once — `json()`, `text()`, or the `body` stream — or let it go with
 * `body.dump()`. A small answer (`content-length` up to 64 KiB) has been read whole before the call
 * resolved: `json()` and `text()` decode it at once, and a cut or stalled body was a failed try (retried
 * when the call may be). A larger or chunked one is streamed from its headers on, with backpressure.
 */
export interface ServiceResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  /** The body as undici's `BodyReadable` (made on first use for a small answer). */
  body: ReplyBody;
  /** The instance that answered. */
  instance: Instance;
  /** Tries made, hedges included (1 = neither retry nor hedge). */
  attempts: number;
  json<T = unknown>(): Promise<T>;
  text(): Promise<string>;
}

/** The {@link ServiceResponse} a call hands back (a class: no closures made per call). */
export class Answer implements ServiceResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  instance: Instance;
  attempts: number;
  readonly #reply: TryReply;
  constructor(reply: TryReply, instance: Instance, attempts: number) {
    this.statusCode = reply.statusCode;
    this.headers = reply.headers;
    this.#reply = reply;
    this.instance = instance;
    this.attempts = attempts;
  }
  get body(): ReplyBody {
    return this.#reply.body;
  }
  json<T = unknown>(): Promise<T> {
    return this.#reply.json<T>();
  }
  text(): Promise<string> {
    return this.#reply.text();
  }
}
