/**
 * The endpoints of one service as a client sees them: discovery's set joined with per-instance state
 * (in-flight count, outlier streaks, connection pool), and the candidate list each pick chooses from.
 */
import type { ServiceSet } from '../discovery/index.ts';
import type { OutlierDetector } from './outlier.ts';
import { type Endpoint, newEndpoint } from './types.ts';

/** Candidates for one pick. */
export interface Candidates {
  list: readonly Endpoint[];
  /** True when outlier ejection (or, with `onAllUnhealthy: 'try-all'`, registry health) had to be ignored. */
  panic: boolean;
}

/**
 * Which registry statuses may take traffic. Registry health is a hard filter, as Consul's `?passing` and its
 * DNS interface are (Consul docs, Health HTTP API): `passing` admits passing instances only, `passing+warning`
 * warning ones too; a critical instance never takes traffic unless every instance is critical and the client
 * chose `onAllUnhealthy: 'try-all'`.
 */
export type HealthFilter = 'passing' | 'passing+warning';

/** What a pick does when no instance passes the health filter. */
export type OnAllUnhealthy = 'fail' | 'try-all';

/** Endpoint state of one service, synced with discovery by version. */
export class ServiceEndpoints {
  version = -1;
  /** Every instance's endpoint (any status). */
  all: Endpoint[] = [];
  /** Endpoints that pass the health filter (empty when none does). */
  healthy: Endpoint[] = [];
  /** What candidates() starts from: `healthy`, or every endpoint when none is healthy and 'try-all' was chosen. */
  #base: Endpoint[] = [];
  #baseUnhealthy = false;
  readonly #byId = new Map<string, Endpoint>();
  // The answer of the common case, built once per discovery version (frozen: callers share it).
  #baseCandidates: Candidates = Object.freeze({ list: this.#base, panic: false });

  /** Brings the endpoints in line with a discovery set; `onRemove` releases a gone endpoint's pool. */
  sync(
    set: ServiceSet,
    filter: HealthFilter,
    onRemove: (e: Endpoint) => void,
    onAllUnhealthy: OnAllUnhealthy = 'fail',
  ): void {
    if (set.version === this.version) return;
    this.version = set.version;
    const seen = new Set<string>();
    const all: Endpoint[] = [];
    for (const inst of set.all) {
      // Same ID and URL keeps its state (streaks, pool); a moved instance starts fresh.
      const key = `${inst.id}|${inst.url}`;
      seen.add(key);
      let e = this.#byId.get(key);
      if (!e) {
        e = newEndpoint(inst);
        this.#byId.set(key, e);
      } else if (e.instance !== inst) {
        e = Object.assign(e, { instance: inst });
      }
      all.push(e);
    }
    for (const [key, e] of this.#byId) {
      if (!seen.has(key)) {
        this.#byId.delete(key);
        onRemove(e);
      }
    }
    this.all = all;
    this.healthy = all.filter(
      (e) =>
        e.instance.status === 'passing' || (filter === 'passing+warning' && e.instance.status === 'warning'),
    );
    this.#baseUnhealthy = this.healthy.length === 0 && onAllUnhealthy === 'try-all';
    this.#base = this.#baseUnhealthy ? all : this.healthy;
    this.#baseCandidates = Object.freeze({ list: this.#base, panic: this.#baseUnhealthy });
  }

  /**
   * Candidates for a pick: healthy (the hard filter), not ejected, not asked to stay away (`Retry-After`),
   * `usable` (circuit closed), not in `exclude` (instances this request already tried) — each filter but
   * health dropped when it would leave nothing. When ejection would leave fewer than the panic threshold of
   * the healthy instances, ejection is ignored (Envoy's panic mode, applied among healthy instances only).
   * Empty when no instance is healthy (and 'try-all' was not chosen).
   */
  candidates(
    outlier: OutlierDetector,
    exclude: ReadonlySet<Endpoint> | undefined,
    usable: ((e: Endpoint) => boolean) | undefined,
  ): Candidates {
    const base = this.#base;
    if (base.length === 0) return this.#baseCandidates;
    // One pass over the healthy list: the common case allocates nothing and reads no clock (a clock read
    // costs more than the rest of this pass on some VMs): only an endpoint with an ejection or a
    // `Retry-After` on record needs the time, and one found over is cleared so that it stops needing it.
    let now = -1;
    let ejectedOrAway = 0;
    let allUsable = true;
    for (const e of base) {
      if (e.ejectedUntil !== 0 || e.retryAfterUntil !== 0) {
        if (now < 0) now = outlier.now();
        if (e.ejectedUntil > now || e.retryAfterUntil > now) ejectedOrAway++;
        else e.ejectedUntil = e.retryAfterUntil = 0;
      }
      if (usable !== undefined && allUsable && !usable(e)) allUsable = false;
    }
    if (ejectedOrAway === 0 && !exclude?.size && allUsable) return this.#baseCandidates;
    let list: readonly Endpoint[] = base;
    let panic = this.#baseUnhealthy;
    const threshold = outlier.panicThresholdPercent;
    const inServiceShare = ((base.length - ejectedOrAway) * 100) / base.length;
    if (ejectedOrAway > 0 && !(threshold > 0 && inServiceShare < threshold)) {
      const inService = base.filter((e) => e.ejectedUntil <= now && e.retryAfterUntil <= now);
      if (inService.length > 0) list = inService;
      else panic = true;
    } else if (ejectedOrAway > 0) {
      // Too few healthy instances left in service: spread over all healthy ones rather than crush the rest.
      panic = true;
    }
    if (usable) {
      const closed = list.filter(usable);
      if (closed.length > 0) list = closed;
    }
    if (exclude?.size) {
      const untried = list.filter((e) => !exclude.has(e));
      if (untried.length > 0) list = untried;
    }
    return { list, panic };
  }
}
