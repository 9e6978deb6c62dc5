/**
 * The interval scheduler behind HTTP/TCP checks: one min-heap of due times and a single clock timer armed
 * for the earliest one, so 10,000 checks cost one timer, not 10,000.
 *
 * - First run after a random stagger in `[0, interval)` (Consul's `lib.RandomStagger`), so checks registered
 *   together are spread over the interval instead of firing as one herd.
 * - Then every interval measured from the *scheduled* time, so the cadence does not drift by probe duration
 *   or timer lateness. If the loop fell more than an interval behind, missed slots are dropped, not queued.
 * - A job still running (or still waiting) when it is due again is skipped, never stacked.
 * - Lateness (start time − scheduled time) of the last runs feeds `stats()`.
 * - Runs that had to wait for a slot when due (counted as they start waiting) are counted per
 *   target: unlike lateness, which a loaded machine raises for everyone, a count above 0 for a healthy
 *   target means it was queued behind others (`slotWaits`).
 *
 * Slow or dead targets never delay checks of healthy ones (issue 11 §7: 2,000 checks against a target
 * answering in 9 s filled all 512 slots and starved every other check for minutes). Jobs name their
 * target (host:port) and the scheduler learns how each target answers:
 * - **Two budgets.** A target is *new* until a probe of it finishes, then *fast* or *slow* (its last probe
 *   took `slowMs` or more). Jobs of new and slow targets share at most `maxSlow` slots; jobs of fast
 *   targets may use every other slot. A fast target's probe still running after `slowMs` is moved to the
 *   slow budget (and its target marked slow) as soon as a fast job needs its slot, so a healthy target that
 *   hangs cannot hold the fast budget for longer than `slowMs` either. A new target's probe takes a fast
 *   slot only while fewer than half the fast budget (`(maxConcurrent − maxSlow) / 2`) are in flight: the
 *   rest stays free for known-fast targets whatever the slow budget holds, so 2,000 new dead targets
 *   registered at once cannot make a known-fast check wait even for `slowMs` (counted by `slotWaits`).
 * - **Per-target cap.** At most `maxPerTarget` probes in flight to one slow target, one while it is new
 *   (its other due jobs wait in that target's own queue), so one slow target holds at most that many slots
 *   and a burst of new checks against one dead target costs one slot until its first probe returns. A fast
 *   target is bounded by its budget only.
 * - In flight stays under `3 × maxConcurrent` even in the worst case (every fast target hanging at
 *   once: aged runs move to the slow budget up to `2 × maxConcurrent`); normally under `maxConcurrent`.
 * A new target's first probe takes a free fast slot, or else waits on the slow budget: after a mass
 * registration against many distinct dead targets, a *new* healthy check's first probe may wait behind
 * them (and its other runs already queued there stay queued: moving them all to the fast budget at once when
 * the target answers was tried and made bursts that mark the target slow again under load); checks of
 * targets that answered fast before never do.
 */
import type { Clock, ClockTimer } from '../clock.ts';

/** One scheduled job's work. The promise must settle once `signal` aborts. */
export type JobFn = (signal: AbortSignal) => Promise<void>;

type Lane = 'fast' | 'slow';

interface Job {
  key: string;
  intervalMs: number;
  fn: JobFn;
  /** What the job probes (host:port); jobs of one target share its cap. '' = no cap. */
  target: string;
  /** Next due time (epoch ms); a heap entry is live only while it matches. */
  due: number;
  active: boolean;
  state: 'idle' | 'queued' | 'running';
  /** The scheduled time of the run waiting for a slot. */
  queuedFor: number;
  /** Where that run waits: a budget's queue or its target's (entries elsewhere are stale). */
  queuedIn: Lane | 'target' | undefined;
  /** Its last probe took `slowMs` or more (or is taking that long now); used when it has no target. */
  slow: boolean;
  /** The budget the run in flight counts against, and when it started. */
  lane: Lane;
  startedAt: number;
  abort?: AbortController;
}

interface HeapEntry {
  due: number;
  /** Insertion order: ties run first-come first-served. */
  seq: number;
  job: Job;
}

/** A FIFO with O(1) push/shift (a head index; compacted as it drains). */
class Fifo<T> {
  #items: T[] = [];
  #head = 0;
  get size(): number {
    return this.#items.length - this.#head;
  }
  push(item: T): void {
    this.#items.push(item);
  }
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head] as T;
    this.#items[this.#head++] = undefined as T;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}

interface Target {
  /** Jobs scheduled against it (the entry goes when the last one does). */
  jobs: number;
  running: number;
  /** Jobs due while the target was at its cap. */
  waiting: Fifo<Job>;
  /** Runs of its jobs that waited for a slot. */
  slotWaits: number;
  /** How it answers: no probe finished yet, its last probe was fast, or slow (finished or aged). */
  state: 'new' | 'fast' | 'slow';
}

/** Options of {@link IntervalScheduler}. */
export interface SchedulerOptions {
  clock: Clock;
  /** Cap on in-flight jobs (fast and slow together, see the module doc). */
  maxConcurrent: number;
  /** Slots slow jobs may hold at most. @default half of maxConcurrent (at least 1) */
  maxSlow?: number;
  /** Jobs in flight per slow target at most (one while a target is new; fast ones: no cap). @default 16 */
  maxPerTarget?: number;
  /** A probe this long or longer makes its job slow. @default 1000 */
  slowMs?: number;
  /** @default Math.random */
  random?: () => number;
  /** Called when a job's promise rejects (jobs should not reject). */
  onError?: (key: string, err: unknown) => void;
  /** How many recent lateness samples `lateness()` summarises. @default 1024 */
  latenessWindow?: number;
}

/** Default cap on probes in flight to one target. */
export const DEFAULT_MAX_PER_TARGET = 16;
/** Default probe duration past which a job counts as slow. */
export const DEFAULT_SLOW_MS = 1000;

/**
 * Runs keyed jobs every `intervalMs` on the injected clock.
 *
 * @example
 * const s = new IntervalScheduler({ clock: systemClock, maxConcurrent: 512 });
 * s.add('service:web', 10_000, async (signal) => { await probe(signal); }, '127.0.0.1:8080');
 * await s.stop();
 */
export class IntervalScheduler {
  readonly #clock: Clock;
  readonly #max: number;
  readonly #maxSlow: number;
  /** Fast runs in flight past which a new target's probe waits for the slow budget instead. */
  readonly #trialSlots: number;
  readonly #maxPerTarget: number;
  readonly #slowMs: number;
  readonly #random: () => number;
  readonly #onError: (key: string, err: unknown) => void;
  readonly #jobs = new Map<string, Job>();
  readonly #heap: HeapEntry[] = [];
  readonly #queues: Record<Lane, Fifo<Job>> = { fast: new Fifo(), slow: new Fifo() };
  readonly #targets = new Map<string, Target>();
  /** Fast runs in flight, in start order (oldest first), for moving aged ones to the slow budget. */
  readonly #fastRuns = new Set<Job>();
  #slowRunning = 0;
  readonly #inFlight = new Set<Promise<void>>();
  #timer: ClockTimer | undefined;
  #armedAt = Number.POSITIVE_INFINITY;
  #stopped = false;
  readonly #late: Float64Array;
  #lateCount = 0;
  #skipped = 0;
  #slotWaits = 0;
  #seq = 0;

  constructor(options: SchedulerOptions) {
    this.#clock = options.clock;
    this.#max = options.maxConcurrent;
    this.#maxSlow = Math.max(1, Math.min(this.#max, options.maxSlow ?? Math.floor(this.#max / 2)));
    this.#trialSlots = Math.ceil((this.#max - this.#maxSlow) / 2);
    this.#maxPerTarget = Math.max(1, options.maxPerTarget ?? DEFAULT_MAX_PER_TARGET);
    this.#slowMs = options.slowMs ?? DEFAULT_SLOW_MS;
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
    return this.#fastRuns.size + this.#slowRunning;
  }

  /** Jobs in flight on the slow budget. */
  get runningSlow(): number {
    return this.#slowRunning;
  }

  /** Runs skipped because the previous run of the same job had not finished (or started). */
  get skipped(): number {
    return this.#skipped;
  }

  /**
   * Runs that waited for a slot: of the jobs against `target` (while it has jobs), or of all jobs. A run
   * that starts when it is due does not count, however late its timer fired.
   */
  slotWaits(target?: string): number {
    if (target === undefined) return this.#slotWaits;
    return this.#targets.get(target)?.slotWaits ?? 0;
  }

  has(key: string): boolean {
    return this.#jobs.has(key);
  }

  /** The next scheduled time of a job (for tests and diagnostics). */
  nextDue(key: string): number | undefined {
    return this.#jobs.get(key)?.due;
  }

  /**
   * Schedules (or replaces) a job; its first run comes after a random stagger in `[0, intervalMs)`.
   * Jobs with the same `target` (host:port) share its cap; '' means none.
   */
  add(key: string, intervalMs: number, fn: JobFn, target = ''): void {
    if (this.#stopped) return;
    this.remove(key);
    const stagger = Math.floor(this.#random() * intervalMs);
    const job: Job = {
      key,
      intervalMs,
      fn,
      target,
      due: this.#clock.now() + Math.min(Math.max(0, stagger), Math.max(0, intervalMs - 1)),
      active: true,
      state: 'idle',
      queuedFor: 0,
      queuedIn: undefined,
      slow: false,
      lane: 'fast',
      startedAt: 0,
    };
    this.#jobs.set(key, job);
    if (target !== '') {
      let t = this.#targets.get(target);
      if (!t) {
        t = { jobs: 0, running: 0, waiting: new Fifo(), slotWaits: 0, state: 'new' };
        this.#targets.set(target, t);
      }
      t.jobs++;
    }
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
    const t = this.#targets.get(job.target);
    if (t !== undefined && --t.jobs === 0) this.#targets.delete(job.target);
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
    this.#queues.fast.clear();
    this.#queues.slow.clear();
    await Promise.allSettled([...this.#inFlight]);
    this.#targets.clear();
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
    // Runs may have aged past slowMs since the last drain: jobs waiting for a fast slot must not wait for
    // a hung probe to finish (their own due times are skipped while they wait, so nothing else asks).
    if (this.#queues.fast.size > 0) this.#drainQueues();
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
    job.state = 'queued';
    job.queuedFor = scheduled;
    this.#admit(job);
  }

  /**
   * Queues a due job behind the ones already waiting for its budget (first come, first served) and starts
   * what fits; a job whose target is at its cap waits in that target's queue instead.
   */
  #admit(job: Job): void {
    const t = this.#targets.get(job.target);
    if (t !== undefined && this.#targetFull(t)) this.#enqueue(job, 'target', t);
    else {
      this.#enqueue(job, this.#laneOf(job, t), t);
      this.#drainQueues();
    }
    // counted when it has to wait, not when it finally starts: a run stuck in a queue counts at once
    if (job.state === 'queued') {
      this.#slotWaits++;
      if (t !== undefined) t.slotWaits++;
    }
  }

  /** Puts a due job in a budget's queue or its target's. */
  #enqueue(job: Job, where: Lane | 'target', t: Target | undefined): void {
    job.queuedIn = where;
    if (where === 'target') (t as Target).waiting.push(job);
    else this.#queues[where].push(job);
  }

  /**
   * The budget a due job waits for: its target's. A new target's probe takes a fast slot only if one is
   * free now (if it hangs, it is moved to the slow budget after slowMs like any other), so the first
   * probe of a healthy new check is not queued behind dead targets, and a burst of new dead targets
   * never queues ahead of known-fast checks.
   */
  #laneOf(job: Job, t: Target | undefined): Lane {
    if (t === undefined) return job.slow ? 'slow' : 'fast';
    if (t.state === 'fast') return 'fast';
    if (t.state === 'new' && this.#queues.fast.size === 0 && this.#trialRoom()) return 'fast';
    return 'slow';
  }

  /**
   * A new target gets one probe until it answers; a slow one `maxPerTarget`. A fast target has no cap of
   * its own (10,000 checks against one healthy backend need ~1,000 probes/s): its budget bounds it, and
   * its probes move to the slow budget, capped, as soon as they hang.
   */
  #targetFull(t: Target): boolean {
    if (t.state === 'fast') return false;
    return t.running >= (t.state === 'new' ? 1 : this.#maxPerTarget);
  }

  /**
   * Fast jobs may use every slot not held by the slow budget (up to `maxSlow` of them); slow jobs at most
   * `maxSlow`, within `maxConcurrent` overall. A full fast budget first moves its runs older than `slowMs`
   * to the slow one (they are slow, whatever their last run said).
   */
  #hasRoom(lane: Lane): boolean {
    if (lane === 'slow') return this.#slowRunning < this.#maxSlow && this.running < this.#max;
    if (this.#fastRoom()) return true;
    this.#age();
    return this.#fastRoom();
  }

  /** A new target's probe may take a fast slot: fewer than `#trialSlots` fast runs younger than slowMs. */
  #trialRoom(): boolean {
    if (this.#fastRuns.size >= this.#trialSlots) this.#age();
    return this.#fastRuns.size < this.#trialSlots && this.#hasRoom('fast');
  }

  /** Moves fast runs older than slowMs to the slow budget: they are slow, whatever their last run said. */
  #age(): void {
    const cutoff = this.#clock.now() - this.#slowMs;
    for (const job of this.#fastRuns) {
      if (job.startedAt > cutoff || this.#slowRunning >= 2 * this.#max) break;
      this.#fastRuns.delete(job);
      job.lane = 'slow';
      job.slow = true;
      this.#slowRunning++;
      const t = this.#targets.get(job.target);
      if (t !== undefined) t.state = 'slow';
    }
  }

  #fastRoom(): boolean {
    return this.#fastRuns.size + Math.min(this.#slowRunning, this.#maxSlow) < this.#max;
  }

  #start(job: Job, lane: Lane, target: Target | undefined): void {
    const now = this.#clock.now();
    this.#recordLateness(now - job.queuedFor);
    job.queuedIn = undefined;
    const ac = new AbortController();
    job.abort = ac;
    job.state = 'running';
    job.lane = lane;
    job.startedAt = now;
    if (lane === 'fast') this.#fastRuns.add(job);
    else this.#slowRunning++;
    if (target) target.running++;
    let p: Promise<void>;
    try {
      p = Promise.resolve(job.fn(ac.signal));
    } catch (err) {
      p = Promise.reject(err);
    }
    const done: Promise<void> = p
      .catch((err) => this.#onError(job.key, err))
      .finally(() => {
        if (job.lane === 'fast') this.#fastRuns.delete(job);
        else this.#slowRunning--;
        job.slow = this.#clock.now() - job.startedAt >= this.#slowMs;
        if (target) {
          target.running--;
          // an aborted probe (check removed, agent stopping) says nothing about its target
          if (!ac.signal.aborted) target.state = job.slow ? 'slow' : 'fast';
        }
        this.#inFlight.delete(done);
        if (job.abort === ac) {
          job.abort = undefined;
          job.state = 'idle';
        }
        this.#drain(target);
      });
    this.#inFlight.add(done);
  }

  /** After a run ends: first a job waiting for that target's slot, then the budgets' queues. */
  #drain(target: Target | undefined): void {
    if (this.#stopped) return;
    if (target) {
      while (!this.#targetFull(target)) {
        const job = target.waiting.shift();
        if (job === undefined) break;
        if (!job.active || job.state !== 'queued' || job.queuedIn !== 'target') continue;
        const lane = this.#laneOf(job, target);
        if (this.#queues[lane].size === 0 && this.#hasRoom(lane)) {
          this.#start(job, lane, target);
        } else {
          // behind the others waiting for that budget (first come, first served across targets); the
          // rest stay in the target's queue
          this.#enqueue(job, lane, target);
          break;
        }
      }
    }
    this.#drainQueues();
  }

  #drainQueues(): void {
    for (const lane of ['fast', 'slow'] as const) {
      const q = this.#queues[lane];
      while (q.size > 0 && this.#hasRoom(lane)) {
        const job = q.shift() as Job;
        if (!job.active || job.state !== 'queued' || job.queuedIn !== lane) continue;
        const t = this.#targets.get(job.target);
        if (t !== undefined && this.#targetFull(t)) this.#enqueue(job, 'target', t);
        // its target turned slow while it waited for a fast slot: it waits for a slow one instead
        else if (lane === 'fast' && (t === undefined ? job.slow : t.state === 'slow'))
          this.#enqueue(job, 'slow', t);
        else this.#start(job, lane, t);
      }
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
