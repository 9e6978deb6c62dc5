/**
 * The interval scheduler behind HTTP/TCP checks: one min-heap of due times and a single clock timer armed
 * for the earliest one, so 10,000 checks cost one timer, not 10,000.
 *
 * - First run after a random stagger in `[0, interval)` (Consul's `lib.RandomStagger`), so checks registered
 *   together are spread over the interval instead of firing as one herd.
 * - Then every interval measured from the *scheduled* time, so the cadence does not drift by probe duration
 *   or timer lateness. If the loop fell more than an interval behind, missed slots are dropped, not queued.
 * - At most `maxConcurrent` probes in flight; a due job waits in a FIFO for a slot. A job still running (or
 *   still waiting) when it is due again is skipped, never stacked.
 * - Lateness (start time − scheduled time) of the last runs feeds `stats()`.
 */
import type { Clock, ClockTimer } from '../clock.ts';

/** One scheduled job's work. The promise must settle once `signal` aborts. */
export type JobFn = (signal: AbortSignal) => Promise<void>;

interface Job {
  key: string;
  intervalMs: number;
  fn: JobFn;
  /** Next due time (epoch ms); a heap entry is live only while it matches. */
  due: number;
  active: boolean;
  state: 'idle' | 'queued' | 'running';
  /** The scheduled time of the run waiting for a slot. */
  queuedFor: number;
  abort?: AbortController;
}

interface HeapEntry {
  due: number;
  /** Insertion order: ties run first-come first-served. */
  seq: number;
  job: Job;
}

/** Options of {@link IntervalScheduler}. */
export interface SchedulerOptions {
  clock: Clock;
  /** Cap on in-flight jobs. */
  maxConcurrent: number;
  /** @default Math.random */
  random?: () => number;
  /** Called when a job's promise rejects (jobs should not reject). */
  onError?: (key: string, err: unknown) => void;
  /** How many recent lateness samples `lateness()` summarises. @default 1024 */
  latenessWindow?: number;
}

/**
 * Runs keyed jobs every `intervalMs` on the injected clock.
 *
 * @example
 * const s = new IntervalScheduler({ clock: systemClock, maxConcurrent: 512 });
 * s.add('service:web', 10_000, async (signal) => { await probe(signal); });
 * await s.stop();
 */
export class IntervalScheduler {
  readonly #clock: Clock;
  readonly #max: number;
  readonly #random: () => number;
  readonly #onError: (key: string, err: unknown) => void;
  readonly #jobs = new Map<string, Job>();
  readonly #heap: HeapEntry[] = [];
  #queue: Job[] = [];
  #queueHead = 0;
  #running = 0;
  readonly #inFlight = new Set<Promise<void>>();
  #timer: ClockTimer | undefined;
  #armedAt = Number.POSITIVE_INFINITY;
  #stopped = false;
  readonly #late: Float64Array;
  #lateCount = 0;
  #skipped = 0;
  #seq = 0;

  constructor(options: SchedulerOptions) {
    this.#clock = options.clock;
    this.#max = options.maxConcurrent;
    this.#random = options.random ?? Math.random;
    this.#onError = options.onError ?? (() => {});
    this.#late = new Float64Array(Math.max(1, options.latenessWindow ?? 1024));
  }

  /** Scheduled jobs. */
  get size(): number {
    return this.#jobs.size;
  }

  /** Jobs in flight. */
  get running(): number {
    return this.#running;
  }

  /** Runs skipped because the previous run of the same job had not finished (or started). */
  get skipped(): number {
    return this.#skipped;
  }

  has(key: string): boolean {
    return this.#jobs.has(key);
  }

  /** The next scheduled time of a job (for tests and diagnostics). */
  nextDue(key: string): number | undefined {
    return this.#jobs.get(key)?.due;
  }

  /** Schedules (or replaces) a job; its first run comes after a random stagger in `[0, intervalMs)`. */
  add(key: string, intervalMs: number, fn: JobFn): void {
    if (this.#stopped) return;
    this.remove(key);
    const stagger = Math.floor(this.#random() * intervalMs);
    const job: Job = {
      key,
      intervalMs,
      fn,
      due: this.#clock.now() + Math.min(Math.max(0, stagger), Math.max(0, intervalMs - 1)),
      active: true,
      state: 'idle',
      queuedFor: 0,
    };
    this.#jobs.set(key, job);
    this.#push(job.due, job);
    this.#arm();
  }

  /** Unschedules a job and aborts its run in flight. Its heap entry goes stale and is dropped lazily. */
  remove(key: string): void {
    const job = this.#jobs.get(key);
    if (!job) return;
    this.#jobs.delete(key);
    job.active = false;
    job.abort?.abort();
  }

  /** Lateness percentiles over the recent runs, in ms. */
  lateness(): { p50: number; p99: number; max: number } {
    const n = Math.min(this.#lateCount, this.#late.length);
    if (n === 0) return { p50: 0, p99: 0, max: 0 };
    const sorted = this.#late.slice(0, n).sort();
    const at = (q: number) => sorted[Math.min(n - 1, Math.ceil(q * n) - 1)] as number;
    return { p50: at(0.5), p99: at(0.99), max: sorted[n - 1] as number };
  }

  /** Cancels the timer, unschedules everything, aborts runs in flight and waits for them to settle. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const key of [...this.#jobs.keys()]) this.remove(key);
    this.#heap.length = 0;
    this.#queue = [];
    this.#queueHead = 0;
    await Promise.allSettled([...this.#inFlight]);
  }

  // ---------------------------------------------------------------- internals

  #arm(): void {
    if (this.#stopped) return;
    const top = this.#heap[0];
    if (!top) {
      if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#armedAt = Number.POSITIVE_INFINITY;
      return;
    }
    // An armed timer that fires no later than the head is good enough: it re-arms when it fires.
    if (this.#timer !== undefined && this.#armedAt <= top.due) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#armedAt = top.due;
    this.#timer = this.#clock.setTimeout(() => this.#onTimer(), top.due - this.#clock.now());
  }

  #onTimer(): void {
    this.#timer = undefined;
    this.#armedAt = Number.POSITIVE_INFINITY;
    if (this.#stopped) return;
    const now = this.#clock.now();
    for (let top = this.#heap[0]; top !== undefined && top.due <= now; top = this.#heap[0]) {
      this.#pop();
      const job = top.job;
      if (!job.active || job.due !== top.due) continue; // stale entry of a removed/replaced job
      this.#fire(job, top.due, now);
    }
    this.#arm();
  }

  #fire(job: Job, scheduled: number, now: number): void {
    let next = scheduled + job.intervalMs;
    if (next <= now) next += Math.ceil((now - next + 1) / job.intervalMs) * job.intervalMs;
    job.due = next;
    this.#push(next, job);
    if (job.state !== 'idle') {
      this.#skipped++;
      return;
    }
    if (this.#running < this.#max) {
      this.#start(job, scheduled);
    } else {
      job.state = 'queued';
      job.queuedFor = scheduled;
      this.#queue.push(job);
    }
  }

  #start(job: Job, scheduled: number): void {
    this.#recordLateness(this.#clock.now() - scheduled);
    const ac = new AbortController();
    job.abort = ac;
    job.state = 'running';
    this.#running++;
    let p: Promise<void>;
    try {
      p = Promise.resolve(job.fn(ac.signal));
    } catch (err) {
      p = Promise.reject(err);
    }
    const done: Promise<void> = p
      .catch((err) => this.#onError(job.key, err))
      .finally(() => {
        this.#running--;
        this.#inFlight.delete(done);
        if (job.abort === ac) {
          job.abort = undefined;
          job.state = 'idle';
        }
        this.#drain();
      });
    this.#inFlight.add(done);
  }

  #drain(): void {
    while (this.#running < this.#max && this.#queueHead < this.#queue.length) {
      const job = this.#queue[this.#queueHead++] as Job;
      if (!job.active || job.state !== 'queued') continue;
      this.#start(job, job.queuedFor);
    }
    if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
  }

  #recordLateness(ms: number): void {
    this.#late[this.#lateCount % this.#late.length] = Math.max(0, ms);
    this.#lateCount++;
  }

  #push(due: number, job: Job): void {
    const e: HeapEntry = { due, seq: this.#seq++, job };
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (before(h[parent] as HeapEntry, e)) break;
      h[i] = h[parent] as HeapEntry;
      i = parent;
    }
    h[i] = e;
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop();
    if (last === undefined || h.length === 0) return;
    let i = 0;
    const n = h.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && before(h[r] as HeapEntry, h[l] as HeapEntry) ? r : l;
      if (before(last, h[c] as HeapEntry)) break;
      h[i] = h[c] as HeapEntry;
      i = c;
    }
    h[i] = last;
  }
}

function before(a: HeapEntry, b: HeapEntry): boolean {
  return a.due < b.due || (a.due === b.due && a.seq < b.seq);
}
