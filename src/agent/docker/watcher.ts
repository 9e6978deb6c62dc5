/**
 * Container watcher: keeps the agent's services in step with the containers running on one Docker engine.
 *
 * Where gliderlabs/registrator fails (its issue tracker: missed events, stale services after restarts, reused IPs), this one:
 * - reconciles in full on every (re)connect of the event stream, taken after the subscription is open so no
 *   event falls between, and on a timer (`resyncIntervalMs`): a missed `die` (#325), a registrator killed
 *   while containers stopped (#277) or a dockerd restart leave no stale instance;
 * - owns its services by a meta key (the container ID), so after the agent's own restart it finds and
 *   removes what it registered for containers that are gone;
 * - writes only what differs: a resync that finds everything in place bumps no index and wakes no watcher
 *   (registrator's `-resync` floods every watch);
 * - runs every event and resync through one queue, so a resync never races a deregister (#621);
 * - never caches an address: each change re-inspects the container, and a container starting on an IP an
 *   old service still names drops that service at once (PR #710, dify #40808).
 */
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { Catalog, ServiceRecord } from '../catalog/index.ts';
import { type Clock, systemClock } from '../clock.ts';
import { createDockerEngine, type DockerEngine, type EngineEvent } from './engine.ts';
import { CONTAINER_META, type ContainerRegistration, readContainer } from './labels.ts';

/** Options of {@link createDockerWatcher}. */
export interface DockerWatcherOptions {
  catalog: Catalog;
  /** Path of the engine's unix socket. */
  socketPath: string;
  logger: Logger;
  /** @default the system clock */
  clock?: Clock;
  /** Full reconcile period while connected. @default 30000 */
  resyncIntervalMs?: number;
  /** First reconnect delay after the engine goes away; doubles up to `retryMaxMs`. @default 200 */
  retryMinMs?: number;
  /** @default 5000 */
  retryMaxMs?: number;
}

/** A running watcher. */
export interface DockerWatcher {
  /** Whether the event stream is open. */
  readonly connected: boolean;
  /** Number of completed full reconciles (tests wait on it). */
  readonly syncs: number;
  /** Stops watching; registrations stay (the containers may still run). Idempotent. */
  stop(): Promise<void>;
}

// events that say nothing about what runs (health probes alone emit exec_* every interval)
const IGNORED = /^(exec_|top|attach|resize|commit|export|archive-path|extract-to-dir|copy)/;

/**
 * Starts watching the engine; the first reconcile runs once the event stream is open.
 *
 * @example
 * const w = createDockerWatcher({ catalog, socketPath: '/var/run/docker.sock', logger });
 * await w.stop();
 */
export function createDockerWatcher(options: DockerWatcherOptions): DockerWatcher {
  const { catalog } = options;
  const log = options.logger;
  const clock = options.clock ?? systemClock;
  const resyncMs = options.resyncIntervalMs ?? 30_000;
  const retryMin = options.retryMinMs ?? 200;
  const retryMax = options.retryMaxMs ?? 5000;
  const engine: DockerEngine = createDockerEngine(options.socketPath);
  let stopped = false;
  let connected = false;
  let syncs = 0;
  let abort = new AbortController();
  let queue: Promise<void> = Promise.resolve();
  let fullQueued = false;
  let resyncTimer: ReturnType<Clock['setTimeout']> | undefined;
  const reported = new Map<string, string>(); // container -> problems last logged (log once, not per resync)

  const enqueue = (what: string, fn: () => Promise<void>) => {
    queue = queue.then(fn).catch((err: unknown) => {
      if (!stopped) log.warn({ err, what }, 'docker reconcile failed; the next event or resync retries');
    });
    return queue;
  };

  const owned = (): ServiceRecord[] => catalog.agentServices().filter((s) => s.meta[CONTAINER_META]);

  function report(id: string, problems: string[]) {
    const text = problems.join('; ');
    if (!text) {
      reported.delete(id);
      return;
    }
    if (reported.get(id) === text) return;
    reported.set(id, text);
    log.warn({ container: id.slice(0, 12) }, `container not registered as asked: ${text}`);
  }

  async function desiredOf(id: string): Promise<ContainerRegistration[]> {
    const c = await engine.inspect(id, abort.signal);
    if (!c?.State.Running) {
      reported.delete(id);
      return [];
    }
    const { registrations, problems } = readContainer(c);
    report(c.Id, problems);
    return registrations;
  }

  async function apply(reg: ContainerRegistration): Promise<void> {
    const cur = catalog.agentService(reg.service.id);
    const node = catalog.local.name;
    const same =
      cur !== undefined &&
      cur.name === reg.service.name &&
      cur.address === reg.service.address &&
      cur.port === reg.service.port &&
      isDeepStrictEqual(cur.tags, reg.service.tags) &&
      isDeepStrictEqual(cur.meta, reg.service.meta) &&
      reg.checks.every((ci) => {
        const c = catalog.check(node, ci.checkId);
        return c !== undefined && c.name === ci.name && isDeepStrictEqual(c.def, ci.def);
      }) &&
      // checksFor also lists the node's checks (serfHealth): count the service's own
      catalog.checksFor(node, reg.service.id).filter((c) => c.serviceId === reg.service.id).length ===
        reg.checks.length;
    if (!same) {
      await catalog.registerService(reg.service, reg.checks, {
        replaceExistingChecks: true,
        why: cur ? 'docker: the container changed' : 'docker: a container opted in by its labels',
      });
      // the catalog's lifecycle log says it at info (agent.ts); this adds the container's view
      log.debug(
        {
          service: reg.service.name,
          id: reg.service.id,
          address: reg.service.address,
          port: reg.service.port,
        },
        cur ? 'container registration updated' : 'container registered',
      );
    }
    const h = reg.health;
    // output alone stays in memory (Consul's check_update_interval): a probe's new output is no change
    if (h) await catalog.updateCheck(node, h.checkId, h.status, h.output);
  }

  async function drop(s: ServiceRecord, why: string): Promise<void> {
    if (!catalog.agentService(s.id)) return;
    await catalog.deregisterService(s.id, { why: `docker: ${why}` }).catch((err: unknown) => {
      if ((err as { code?: string }).code !== 'PHARE_ERR_NOT_FOUND') throw err;
    });
    log.debug({ service: s.name, id: s.id, address: s.address }, `container deregistered (${why})`);
  }

  async function syncOne(id: string): Promise<void> {
    const desired = await desiredOf(id);
    const keep = new Set(desired.map((r) => r.service.id));
    const addresses = new Set(desired.map((r) => r.service.address));
    for (const s of owned()) {
      const mine = s.meta[CONTAINER_META] === id;
      if (mine && !keep.has(s.id)) await drop(s, 'container stopped or changed');
      // an IP now held by this container no longer belongs to any older one's service
      else if (!mine && addresses.has(s.address)) await drop(s, 'its address is now another container');
    }
    for (const r of desired) await apply(r);
  }

  async function syncAll(): Promise<void> {
    fullQueued = false;
    const ids = await engine.running(abort.signal);
    const desired: ContainerRegistration[] = [];
    for (const id of ids) desired.push(...(await desiredOf(id)));
    const keep = new Set(desired.map((r) => r.service.id));
    for (const s of owned()) if (!keep.has(s.id)) await drop(s, 'no such running container');
    for (const r of desired) await apply(r);
    for (const id of reported.keys()) if (!ids.includes(id)) reported.delete(id);
    syncs++;
  }

  const queueFull = () => {
    if (fullQueued) return;
    fullQueued = true;
    void enqueue('full reconcile', syncAll);
  };

  const armResync = () => {
    resyncTimer = clock.setTimeout(() => {
      if (stopped) return;
      if (connected) queueFull();
      armResync();
    }, resyncMs);
  };

  const onEvent = (e: EngineEvent) => {
    const id = e.Actor?.ID ?? e.id;
    if (!id || (e.Type && e.Type !== 'container') || (e.Action && IGNORED.test(e.Action))) return;
    void enqueue(`container ${id.slice(0, 12)} ${e.Action ?? ''}`, () => syncOne(id));
  };

  let wake: (() => void) | undefined;
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = clock.setTimeout(() => {
        wake = undefined;
        resolve();
      }, ms);
      wake = () => {
        clock.clearTimeout(t);
        resolve();
      };
    });

  const loop = (async () => {
    let delay = retryMin;
    let wasDown = false;
    while (!stopped) {
      try {
        await engine.events(
          onEvent,
          () => {
            connected = true;
            delay = retryMin;
            if (wasDown) log.info('docker engine reachable again; reconciling');
            wasDown = false;
            queueFull();
          },
          abort.signal,
        );
        if (!stopped) log.warn('docker event stream ended (engine restarting?); reconnecting');
      } catch (err) {
        if (stopped) break;
        if (!wasDown) log.warn({ err }, `docker engine unreachable at ${options.socketPath}; retrying`);
      }
      connected = false;
      wasDown = true;
      if (stopped) break;
      await sleep(delay);
      delay = Math.min(delay * 2, retryMax);
      abort = new AbortController();
    }
  })();
  armResync();

  let stopping: Promise<void> | undefined;
  return {
    get connected() {
      return connected;
    },
    get syncs() {
      return syncs;
    },
    stop() {
      stopping ??= (async () => {
        stopped = true;
        if (resyncTimer !== undefined) clock.clearTimeout(resyncTimer);
        abort.abort();
        wake?.();
        await loop;
        await queue;
        await engine.close();
      })();
      return stopping;
    },
  };
}
