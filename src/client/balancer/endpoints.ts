/**
 * The endpoints of one service as a client sees them: discovery's set joined with per-instance state
 * (in-flight count, outlier streaks, connection pool), and the candidate list each pick chooses from.
 */
import type { ServiceSet } from '../discovery/discovery.ts';
import type { OutlierDetector } from './outlier.ts';
import { type Endpoint, newEndpoint } from './types.ts';

/** Candidates for one pick. */
export interface Candidates {
  list: readonly Endpoint[];
  /** True when health or ejection had to be ignored (panic mode). */
  panic: boolean;
}

/** Endpoint state of one service, synced with discovery by version. */
export class ServiceEndpoints {
  version = -1;
  /** Every instance's endpoint (any status). */
  all: Endpoint[] = [];
  /** Endpoints eligible by health (passing, or all when not filtering). */
  healthy: Endpoint[] = [];
  readonly #byId = new Map<string, Endpoint>();
  // The answers of the common case, built once per discovery version (frozen: callers share them).
  #healthyCandidates: Candidates = Object.freeze({ list: this.healthy, panic: false });
  #allCandidates: Candidates = Object.freeze({ list: this.all, panic: true });

  /** Brings the endpoints in line with a discovery set; `onRemove` releases a gone endpoint's pool. */
  sync(set: ServiceSet, passingOnly: boolean, onRemove: (e: Endpoint) => void): void {
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
    this.healthy = passingOnly ? all.filter((e) => e.instance.status === 'passing') : all;
    this.#healthyCandidates = Object.freeze({ list: this.healthy, panic: false });
    this.#allCandidates = Object.freeze({ list: this.all, panic: true });
  }

  /**
   * Candidates for a pick: healthy, not ejected, not asked to stay away (`Retry-After`), `usable` (circuit
   * closed), not in `exclude` (instances this request already tried) — each filter dropped when it would
   * leave nothing. Below the panic threshold, health and ejection are ignored.
   */
  candidates(
    outlier: OutlierDetector,
    exclude: ReadonlySet<Endpoint> | undefined,
    usable: ((e: Endpoint) => boolean) | undefined,
  ): Candidates {
    const now = outlier.now();
    const total = this.all.length;
    let base = this.healthy;
    let panic = false;
    // One pass over the (pre-filtered) healthy list: the common case allocates nothing.
    let ejectedOrAway = 0;
    let allUsable = true;
    for (const e of base) {
      if (e.ejectedUntil > now || e.retryAfterUntil > now) ejectedOrAway++;
      if (usable !== undefined && allUsable && !usable(e)) allUsable = false;
    }
    const threshold = outlier.panicThresholdPercent;
    if (
      total > 0 &&
      threshold > 0 &&
      ((base.length - ejectedOrAway) * 100) / total < threshold &&
      base.length < total
    ) {
      // Too few healthy instances: spread over all of them (Envoy panic mode) rather than crush the rest.
      base = this.all;
      panic = true;
      allUsable = !usable || base.every(usable);
    }
    if (ejectedOrAway === 0 && !exclude?.size && allUsable)
      return panic ? this.#allCandidates : this.#healthyCandidates;
    let list = base;
    const inService = list.filter((e) => e.ejectedUntil <= now && e.retryAfterUntil <= now);
    if (inService.length > 0) list = inService;
    else panic = true;
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
