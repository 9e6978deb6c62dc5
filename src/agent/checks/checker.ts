/**
 * The health-check engine: runs the agent's HTTP, TCP and TTL checks and reaps services that stayed
 * critical too long (Consul docs, Health checks). The catalog stays the single state owner: this module reads
 * checks from it, follows its events, and writes results back only through `catalog.updateCheck` and
 * `catalog.deregisterService`.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { CheckStatus } from '../../api/index.ts';
import { phareError } from '../../api/index.ts';
import type { Catalog, CatalogEvent, CheckDefinition, CheckRecord } from '../catalog/index.ts';
import type { Clock, ClockTimer } from '../clock.ts';
import { fdBudget } from '../fd-limit.ts';
import { createHttpProber } from './http.ts';
import { DEFAULT_CHECK_UPDATE_INTERVAL_MS, OutputSync } from './output-sync.ts';
import type { ProbeResult, Prober } from './probe.ts';
import { servicesToReap } from './reaper.ts';
import { IntervalScheduler } from './scheduler.ts';
import { createTcpProber } from './tcp.ts';
import { StatusHandler } from './thresholds.ts';
import { TtlTimers } from './ttl.ts';

/** Options of {@link createHealthChecker}. */
export interface CheckerOptions {
  catalog: Catalog;
  logger: Logger;
  /** Drives all scheduling, TTL expiry and reaping (probe timeouts are wall-clock). @default catalog.clock */
  clock?: Clock;
  /** How often the reaper runs (`check_reap_interval`; Consul 30 s, dev 1 s). */
  reapIntervalMs: number;
  /** Floor of `DeregisterCriticalServiceAfter` (Consul 1 m; dev 1 s). */
  minDeregisterAfterMs: number;
  /** Floor of `Interval` (Consul 1 s; dev 100 ms). */
  minIntervalMs: number;
  /**
   * Cap on probes in flight; due checks beyond it wait for a slot (see scheduler.ts for how slow targets
   * are kept from taking them all). @default an eighth of the open-file limit left after 64 (in flight may reach 3× the cap while
   *   targets hang), between 16 and 512
   */
  maxConcurrent?: number;
  /** Cap on probes in flight to one slow target (host:port). @default 16 */
  maxPerTarget?: number;
  /** Random source of the first-run stagger, in [0, 1). @default Math.random */
  random?: () => number;
  /** Replaces the built-in probers (tests, or another transport). @default node:http HTTP and node:net TCP probers */
  probers?: { http?: Prober; tcp?: Prober };
  /** PEM CA bundle HTTPS checks trust besides the system roots (the agent's `--tls-ca-file`). */
  httpCa?: Buffer;
  /**
   * `--check-update-interval` (Consul's `check_update_interval`): an output-only change is written at most
   * this often (output-sync.ts); 0 writes it at once. @default 300000 (5 min)
   */
  checkUpdateIntervalMs?: number;
}

/** Numbers for the metrics endpoint. */
export interface HealthStats {
  /** Checks scheduled (HTTP, TCP and TTL). */
  checks: number;
  /** Probes in flight. */
  running: number;
  /** How late probes started versus their schedule over the recent runs, in ms. */
  lateness: { p50: number; p99: number; max: number };
  /** Runs skipped because the previous run of the same check had not finished. */
  skipped: number;
  /**
   * Runs that waited for a probe slot (all slots, or their target's share, were taken when they were
   * due). Lateness includes the machine's own timer lag; this does not.
   */
  slotWaits: number;
}

/** The running health-check engine. */
export interface HealthChecker {
  /** Schedules every runnable agent check and follows catalog changes. */
  start(): void;
  /** Cancels all timers, aborts probes in flight and waits for them. `start()` may be called again after. */
  stop(): Promise<void>;
  /**
   * Resets the TTL timer of a TTL check after a pass/warn/fail/update that did not change its status (the
   * catalog only emits `check-status` on status changes). Returns false if `checkId` is not a TTL check
   * this engine runs.
   */
  touchTtl(checkId: string): boolean;
  stats(): HealthStats;
  /**
   * Runs of the checks against `target` (host:port, as {@link targetOf} names it) that waited for a probe
   * slot, while the target has checks: 0 for a healthy target however slow others are (issue 11 §7).
   */
  slotWaits(target: string): number;
}

const DEFAULT_MAX_CONCURRENT = 512;

/** What a check probes, as `host:port` (the unit of the scheduler's per-target cap); '' if unknown. */
export function targetOf(def: CheckDefinition): string {
  if (def.type === 'tcp') return (def.tcp ?? '').toLowerCase();
  if (def.type !== 'http' || !def.http) return '';
  try {
    const u = new URL(def.http);
    return `${u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '80')}`;
  } catch {
    return '';
  }
}

/**
 * Makes the health-check engine for a catalog.
 *
 * @example
 * const health = createHealthChecker({
 *   catalog, logger, reapIntervalMs: 30_000, minDeregisterAfterMs: 60_000, minIntervalMs: 1_000,
 * });
 * health.start();
 * // PUT /v1/agent/check/pass/:id → await catalog.updateCheck(node, id, 'passing', note, { announce: true }); health.touchTtl(id);
 * await health.stop();
 */
export function createHealthChecker(options: CheckerOptions): HealthChecker {
  validate(options);
  return new Checker(options);
}

class Checker implements HealthChecker {
  readonly #catalog: Catalog;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #opts: CheckerOptions;
  readonly #maxConcurrent: number;
  readonly #ownHttp: (Prober & { close(): Promise<void> }) | undefined;
  readonly #http: Prober;
  readonly #tcp: Prober;
  readonly #ttl: TtlTimers;
  readonly #outputs: OutputSync;
  #scheduler: IntervalScheduler | undefined;
  /** Definitions of the checks scheduled, by check ID. */
  readonly #defs = new Map<string, CheckDefinition>();
  /** Checks removed in the current catalog transaction; a re-registration adds them back at once. */
  readonly #pendingRemoval = new Map<string, CheckDefinition>();
  #unsubscribe: (() => void) | undefined;
  #reapTimer: ClockTimer | undefined;
  readonly #reaping = new Set<string>();
  #started = false;

  constructor(options: CheckerOptions) {
    this.#catalog = options.catalog;
    this.#log = options.logger.child({ component: 'health' });
    this.#clock = options.clock ?? options.catalog.clock;
    this.#opts = options;
    this.#maxConcurrent = options.maxConcurrent ?? fdBudget(0.125, 16, DEFAULT_MAX_CONCURRENT);
    this.#ownHttp = options.probers?.http ? undefined : createHttpProber({ ca: options.httpCa });
    this.#http = options.probers?.http ?? (this.#ownHttp as Prober);
    this.#tcp = options.probers?.tcp ?? createTcpProber();
    this.#ttl = new TtlTimers(this.#clock, (id, output) => this.#onTtlExpired(id, output));
    this.#outputs = new OutputSync({
      clock: this.#clock,
      intervalMs: options.checkUpdateIntervalMs ?? DEFAULT_CHECK_UPDATE_INTERVAL_MS,
      random: options.random,
      flush: (id) => void this.#persist(id),
    });
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#scheduler = new IntervalScheduler({
      clock: this.#clock,
      maxConcurrent: this.#maxConcurrent,
      maxPerTarget: this.#opts.maxPerTarget,
      random: this.#opts.random,
      onError: (key, err) => this.#log.error({ err, checkId: key }, 'health check run failed'),
    });
    this.#unsubscribe = this.#catalog.subscribe((e) => this.#onEvent(e));
    for (const c of this.#catalog.agentChecks()) this.#schedule(c);
    this.#scheduleReap();
    this.#log.debug({ checks: this.#defs.size }, 'health checks started');
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    if (this.#reapTimer !== undefined) this.#clock.clearTimeout(this.#reapTimer);
    this.#reapTimer = undefined;
    this.#ttl.clear();
    this.#outputs.clear();
    this.#defs.clear();
    this.#pendingRemoval.clear();
    const scheduler = this.#scheduler;
    this.#scheduler = undefined;
    await scheduler?.stop();
    await this.#ownHttp?.close();
  }

  touchTtl(checkId: string): boolean {
    const c = this.#catalog.check(this.#catalog.local.name, checkId);
    return this.#ttl.touch(checkId, c?.output ?? '');
  }

  stats(): HealthStats {
    const s = this.#scheduler;
    return {
      checks: (s?.size ?? 0) + this.#ttl.size,
      running: s?.running ?? 0,
      lateness: s?.lateness() ?? { p50: 0, p99: 0, max: 0 },
      skipped: s?.skipped ?? 0,
      slotWaits: s?.slotWaits() ?? 0,
    };
  }

  slotWaits(target: string): number {
    return this.#scheduler?.slotWaits(target) ?? 0;
  }

  // ---------------------------------------------------------------- catalog events

  #onEvent(e: CatalogEvent): void {
    if (!this.#started || e.check.node !== this.#catalog.local.name) return;
    const id = e.check.checkId;
    switch (e.type) {
      case 'check-added':
        this.#schedule(e.check);
        break;
      case 'check-removed': {
        const def = this.#defs.get(id);
        if (def === undefined) return;
        // A re-registration emits removed then added in the same transaction (synchronously); wait for
        // the end of it so an unchanged check keeps its schedule instead of restarting its stagger.
        if (this.#pendingRemoval.size === 0) queueMicrotask(() => this.#flushRemovals());
        this.#pendingRemoval.set(id, def);
        break;
      }
      case 'check-status':
        // A TTL report (pass/warn/fail/update) that changed the status; our own expiry write is not one.
        // The event arrives once the write is durable, so it says who wrote it rather than us counting.
        if (e.announce) this.#ttl.touch(id, e.check.output);
        break;
    }
  }

  #flushRemovals(): void {
    for (const id of this.#pendingRemoval.keys()) this.#unschedule(id);
    this.#pendingRemoval.clear();
  }

  // ---------------------------------------------------------------- scheduling

  #schedule(c: CheckRecord): void {
    const id = c.checkId;
    const pending = this.#pendingRemoval.get(id);
    if (pending !== undefined) {
      this.#pendingRemoval.delete(id);
      // Same interval check re-registered: keep its schedule, thresholds and any probe in flight. A TTL
      // check restarts its timer, as Consul does when it re-creates the CheckTTL.
      if (c.def.type !== 'ttl' && isDeepStrictEqual(pending, c.def) && this.#runnable(c)) return;
    }
    this.#unschedule(id);
    if (!this.#runnable(c)) return;
    const def = c.def;
    this.#defs.set(id, def);
    if (def.type === 'ttl') {
      this.#ttl.arm(id, def.ttlMs as number);
      return;
    }
    let interval = def.intervalMs ?? 0;
    if (interval < this.#opts.minIntervalMs) {
      this.#log.warn(
        { checkId: id, intervalMs: interval, minIntervalMs: this.#opts.minIntervalMs },
        'check interval below the minimum; using the minimum',
      );
      interval = this.#opts.minIntervalMs;
    }
    const prober = def.type === 'http' ? this.#http : this.#tcp;
    const handler = new StatusHandler(def);
    this.#scheduler?.add(
      id,
      interval,
      async (signal) => {
        let result: ProbeResult;
        try {
          result = await prober.run(def, signal);
        } catch (err) {
          result = { status: 'critical', output: err instanceof Error ? err.message : String(err) };
        }
        if (signal.aborted) return; // unscheduled or stopping: the result belongs to nobody
        const report = handler.observe(result);
        if (report === undefined) {
          this.#log.debug({ checkId: id, status: result.status }, 'check result held back by its threshold');
          return;
        }
        await this.#report(id, report.status, report.output);
      },
      targetOf(def),
    );
  }

  #unschedule(id: string): void {
    this.#scheduler?.remove(id);
    this.#ttl.remove(id);
    this.#outputs.cancel(id);
    this.#defs.delete(id);
  }

  /** Only checks this agent owns on its own node, of a type it runs, with what that type needs. */
  #runnable(c: CheckRecord): boolean {
    if (!c.agent || c.node !== this.#catalog.local.name) return false;
    const d = c.def;
    switch (d.type) {
      case 'http':
        return typeof d.http === 'string' && d.http !== '';
      case 'tcp':
        return typeof d.tcp === 'string' && d.tcp !== '';
      case 'ttl':
        return typeof d.ttlMs === 'number' && d.ttlMs > 0;
      default:
        return false;
    }
  }

  // ---------------------------------------------------------------- results

  async #report(id: string, status: CheckStatus, output: string): Promise<void> {
    const node = this.#catalog.local.name;
    const prev = this.#catalog.check(node, id);
    if (!prev) return;
    // No announce: an output-only change goes into the view now and into the store at most once per
    // check-update-interval (output-sync.ts); a status change is written at once, output included.
    const { status: was, output: wasOutput } = prev; // updateCheck changes the view's record in place
    const write = this.#catalog.updateCheck(node, id, status, output);
    if (was !== status) {
      this.#outputs.cancel(id);
      const level = status === 'critical' ? 'warn' : 'info';
      this.#log[level]({ checkId: id, status, previous: was }, 'check status changed');
    } else if (wasOutput !== output) {
      this.#outputs.defer(id);
    }
    await this.#settle(id, write);
  }

  /** The deferred write of a check's output-only change. */
  async #persist(id: string): Promise<void> {
    if (!this.#started) return;
    await this.#settle(id, this.#catalog.persistCheck(this.#catalog.local.name, id));
  }

  async #settle(id: string, write: Promise<void>): Promise<void> {
    try {
      await write;
    } catch (err) {
      const code = (err as { code?: string }).code;
      // The check went away or the agent is stopping between probe and write: nothing to report.
      if (code === 'PHARE_ERR_NOT_FOUND' || code === 'PHARE_ERR_STORE_CLOSED') return;
      this.#log.error({ err, checkId: id }, 'could not record check result');
    }
  }

  #onTtlExpired(id: string, output: string): void {
    this.#log.warn({ checkId: id }, 'check missed its TTL, now critical');
    void this.#report(id, 'critical', output);
  }

  // ---------------------------------------------------------------- reaper

  #scheduleReap(): void {
    this.#reapTimer = this.#clock.setTimeout(() => {
      this.#reapTimer = undefined;
      if (!this.#started) return;
      try {
        this.#reap();
      } catch (err) {
        this.#log.error({ err }, 'reaper failed');
      }
      this.#scheduleReap();
    }, this.#opts.reapIntervalMs);
  }

  #reap(): void {
    const now = this.#clock.now();
    for (const sid of servicesToReap(this.#catalog, now, this.#opts.minDeregisterAfterMs)) {
      if (this.#reaping.has(sid)) continue;
      this.#reaping.add(sid);
      this.#catalog
        .deregisterService(sid, {
          why: 'a check was critical for longer than its DeregisterCriticalServiceAfter (reaper)',
        })
        .then(
          () => {}, // the catalog's lifecycle log says it, with the why above
          (err: { code?: string }) => {
            if (err?.code !== 'PHARE_ERR_NOT_FOUND' && err?.code !== 'PHARE_ERR_STORE_CLOSED') {
              this.#log.error({ err, serviceId: sid }, 'could not deregister critical service');
            }
          },
        )
        .finally(() => this.#reaping.delete(sid));
    }
  }
}

function validate(o: CheckerOptions): void {
  const positive = (name: string, v: unknown, allowZero = false) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
      throw phareError(
        'PHARE_ERR_INVALID_ARGUMENT',
        `health.${name}: expected a ${allowZero ? 'non-negative' : 'positive'} number of ms, got ${String(v)}`,
      );
    }
  };
  positive('reapIntervalMs', o.reapIntervalMs);
  positive('minDeregisterAfterMs', o.minDeregisterAfterMs, true);
  positive('minIntervalMs', o.minIntervalMs);
  if (o.checkUpdateIntervalMs !== undefined) positive('checkUpdateIntervalMs', o.checkUpdateIntervalMs, true);
  for (const name of ['maxConcurrent', 'maxPerTarget'] as const) {
    const v = o[name];
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) {
      throw phareError(
        'PHARE_ERR_INVALID_ARGUMENT',
        `health.${name}: expected an integer ≥ 1, got ${String(v)}`,
      );
    }
  }
}
