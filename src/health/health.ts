/**
 * `createHealth`: named checks grouped into Kubernetes-style probes, a lifecycle (starting -> running ->
 * stopping) that readiness follows, and the HTTP rendering shared by every framework adapter.
 *
 * Probe semantics (kubernetes.io "Liveness, Readiness, and Startup Probes"):
 * - `/health/live`: the process answers (so its event loop turns) and its `live` checks pass. Never fails
 *   because a dependency is down — that would restart a healthy process in a loop.
 * - `/health/ready`: critical while starting and while shutting down, else the `ready` checks.
 * - `/health/startup`: critical until `markReady()` or until every `startup` check passed once.
 * - `/health`: every check plus the lifecycle, for humans and dashboards.
 * Status codes follow Consul's HTTP check: 200 passing, 429 warning, 503 critical.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Logger, pino } from 'pino';
import { phareError } from '../api/index.ts';
import { remainingDeadline } from './deadline.ts';
import { CheckRunner, resolveCheck, worstStatus } from './runner.ts';
import type {
  CheckFunction,
  CheckResult,
  CheckSpec,
  HealthPhase,
  HealthReport,
  HealthStatus,
  ProbeName,
} from './types.ts';

/** The endpoints: one per probe plus the summary. */
export type HealthEndpoint = ProbeName | 'summary';

/** The entry that reports the lifecycle in `ready`, `startup` and summary bodies. Reserved as a check name. */
export const LIFECYCLE_CHECK = 'lifecycle';

/** Options of {@link createHealth}. */
export interface HealthOptions {
  /** Named checks: an async function (a `ready` check with defaults) or a spec from a check factory. @default {} */
  checks?: Record<string, CheckFunction | CheckSpec>;
  /** Where the endpoints live: `${basePath}`, `${basePath}/live`, `/ready`, `/startup`. @default "/health" */
  basePath?: string;
  /** @default a pino logger at "warn" on stderr */
  logger?: Logger;
  /** Milliseconds clock for the result cache; tests inject fake time. @default Date.now */
  now?: () => number;
}

/** The health kit of one service. */
export interface Health {
  /** `starting` until {@link Health.markReady} or startup checks pass; `stopping` once shutdown began. */
  readonly phase: HealthPhase;
  /** Normalised base path, e.g. `/health`. */
  readonly basePath: string;
  /** Declares the service started: readiness now follows its checks. Ignored once stopping. */
  markReady(): void;
  /** Readiness reports critical from now on (sticky), so callers stop sending before the server closes. */
  markShuttingDown(): void;
  /** Resolves when the service becomes ready (at once when it already is). */
  whenReady(): Promise<void>;
  /** Adds a check after creation (the SDK adds its own). Throws when the name is taken. */
  addCheck(name: string, check: CheckFunction | CheckSpec): void;
  /**
   * Evaluates one endpoint. `deadlineMs` bounds how long the caller waits for checks; a check still running
   * then is reported critical but keeps running and caches its result for the next probe.
   */
  report(endpoint: HealthEndpoint, options?: { deadlineMs?: number }): Promise<HealthReport>;
  /** Which endpoint a URL path names, or `undefined`. */
  route(pathname: string): HealthEndpoint | undefined;
  /**
   * `node:http` adapter: answers the request and returns true when its path is a health endpoint, else
   * returns false and leaves the response alone.
   */
  handle(req: IncomingMessage, res: ServerResponse, pathname?: string): boolean;
  /** Web-standard adapter (Hono, Deno, Bun): a Response for health paths, `undefined` for others. */
  fetch(request: Request): Promise<Response | undefined>;
  /** Releases check resources (event-loop histograms). */
  close(): void;
}

/** HTTP status of a probe status, as a Consul HTTP check reads it. */
export function httpStatusOf(status: HealthStatus): 200 | 429 | 503 {
  return status === 'passing' ? 200 : status === 'warning' ? 429 : 503;
}

/**
 * Creates the health kit of a service.
 *
 * @example
 * import { createHealth, postgresCheck, redisCheck, eventLoopDelayCheck } from 'phare/health';
 * const health = createHealth({
 *   checks: {
 *     db: postgresCheck(pool),
 *     cache: redisCheck(redis, { critical: false }),
 *     loop: eventLoopDelayCheck({ maxDelayMs: 500 }),
 *   },
 * });
 * http.createServer((req, res) => health.handle(req, res) || app(req, res)).listen(3000);
 * await migrate();
 * health.markReady();
 */
export function createHealth(options: HealthOptions = {}): Health {
  const logger = (options.logger ?? pino({ level: 'warn' }, pino.destination(2))).child({
    component: 'health',
  });
  const now = options.now ?? Date.now;
  const basePath = normaliseBasePath(options.basePath ?? '/health');
  const runners = new Map<string, CheckRunner>();
  const lastStatus = new Map<string, HealthStatus>();
  let phase: HealthPhase = 'starting';
  let readyWaiters: Array<() => void> = [];

  const addCheck = (name: string, def: CheckFunction | CheckSpec) => {
    if (name === LIFECYCLE_CHECK) {
      throw phareError('PHARE_ERR_INVALID_ARGUMENT', `health.checks.${name}: the name "${name}" is reserved`);
    }
    if (runners.has(name)) {
      throw phareError('PHARE_ERR_INVALID_ARGUMENT', `health.checks.${name}: a check with this name exists`);
    }
    runners.set(name, new CheckRunner(resolveCheck(name, def), now));
  };
  for (const [name, def] of Object.entries(options.checks ?? {})) addCheck(name, def);

  const setPhase = (next: HealthPhase) => {
    if (phase === next || phase === 'stopping') return;
    logger.info({ from: phase, to: next }, 'health phase changed');
    phase = next;
    if (next === 'running') {
      for (const w of readyWaiters) w();
      readyWaiters = [];
    }
  };

  const runAll = async (selected: CheckRunner[], deadlineMs: number | undefined) => {
    const entries = await Promise.all(
      selected.map(async (r): Promise<[string, CheckResult]> => {
        const result = await withDeadline(r.get(), deadlineMs);
        const before = lastStatus.get(r.check.name);
        if (before !== result.status) {
          lastStatus.set(r.check.name, result.status);
          const level = result.status === 'passing' ? 'info' : 'warn';
          logger[level](
            { check: r.check.name, from: before, to: result.status, output: result.output },
            'check status',
          );
        }
        return [r.check.name, result];
      }),
    );
    return Object.fromEntries(entries) as Record<string, CheckResult>;
  };

  const inProbe = (probe: ProbeName) => [...runners.values()].filter((r) => r.check.probes.includes(probe));

  // Startup is latched: once the startup checks all passed, the service stays started.
  const advanceStartup = async (deadlineMs: number | undefined) => {
    const startup = inProbe('startup');
    const checks = startup.length > 0 ? await runAll(startup, deadlineMs) : {};
    if (phase === 'starting' && startup.length > 0 && worstStatus(statuses(checks)) !== 'critical') {
      setPhase('running');
    }
    return checks;
  };

  const lifecycleEntry = (): CheckResult | undefined => {
    if (phase === 'starting') {
      const waitingFor = inProbe('startup').length > 0 ? 'startup checks' : 'markReady()';
      return { status: 'critical', output: `starting: waiting for ${waitingFor}`, durationMs: 0 };
    }
    if (phase === 'stopping') return { status: 'critical', output: 'shutting down', durationMs: 0 };
    return undefined;
  };

  const report = async (
    endpoint: HealthEndpoint,
    opts: { deadlineMs?: number } = {},
  ): Promise<HealthReport> => {
    const { deadlineMs } = opts;
    let checks: Record<string, CheckResult>;
    if (endpoint === 'live') {
      checks = await runAll(inProbe('live'), deadlineMs);
      return { status: worstStatus(statuses(checks)), checks };
    }
    if (endpoint === 'startup') {
      if (phase !== 'starting') {
        // Kubernetes stops calling the startup probe once it passed; no need to re-run its checks.
        return {
          status: 'passing',
          checks: { [LIFECYCLE_CHECK]: { status: 'passing', output: phase, durationMs: 0 } },
        };
      }
      checks = await advanceStartup(deadlineMs);
    } else if (endpoint === 'ready') {
      if (phase === 'starting') await advanceStartup(deadlineMs);
      checks = await runAll(inProbe('ready'), deadlineMs);
    } else {
      if (phase === 'starting') await advanceStartup(deadlineMs);
      checks = await runAll([...runners.values()], deadlineMs);
    }
    const lifecycle = lifecycleEntry();
    if (lifecycle) checks = { [LIFECYCLE_CHECK]: lifecycle, ...checks };
    else if (endpoint === 'startup')
      checks = { [LIFECYCLE_CHECK]: { status: 'passing', output: phase, durationMs: 0 }, ...checks };
    return { status: worstStatus(statuses(checks)), checks };
  };

  const route = (pathname: string): HealthEndpoint | undefined => {
    if (pathname === basePath) return 'summary';
    const prefix = basePath === '/' ? '/' : `${basePath}/`;
    if (!pathname.startsWith(prefix)) return undefined;
    const rest = pathname.slice(prefix.length);
    return rest === 'live' || rest === 'ready' || rest === 'startup' ? rest : undefined;
  };

  const health: Health = {
    get phase() {
      return phase;
    },
    basePath,
    markReady() {
      setPhase('running');
    },
    markShuttingDown() {
      if (phase === 'stopping') return;
      logger.info({ from: phase }, 'shutting down: readiness now fails');
      phase = 'stopping';
    },
    whenReady() {
      if (phase === 'running') return Promise.resolve();
      return new Promise<void>((resolve) => readyWaiters.push(resolve));
    },
    addCheck,
    report,
    route,
    handle(req, res, pathname) {
      const path = pathname ?? pathOf(req.url ?? '/');
      const endpoint = route(path);
      if (!endpoint) return false;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: `${req.method} not allowed on ${path}; use GET` }));
        return true;
      }
      const deadlineMs = remainingDeadline(req);
      report(endpoint, deadlineMs === undefined ? {} : { deadlineMs }).then(
        (body) => {
          const json = JSON.stringify(body);
          res.writeHead(httpStatusOf(body.status), {
            'content-type': 'application/json; charset=utf-8',
            'cache-control': 'no-store',
            'content-length': Buffer.byteLength(json),
          });
          res.end(req.method === 'HEAD' ? undefined : json);
        },
        (err: unknown) => {
          logger.error({ err }, 'health report failed');
          if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ status: 'critical', checks: {} }));
        },
      );
      return true;
    },
    async fetch(request) {
      const path = pathOf(request.url);
      const endpoint = route(path);
      if (!endpoint) return undefined;
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        return Response.json(
          { error: `${request.method} not allowed on ${path}; use GET` },
          { status: 405, headers: { allow: 'GET, HEAD' } },
        );
      }
      const deadlineMs = remainingDeadline(request);
      const body = await report(endpoint, deadlineMs === undefined ? {} : { deadlineMs });
      return new Response(request.method === 'HEAD' ? null : JSON.stringify(body), {
        status: httpStatusOf(body.status),
        headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
      });
    },
    close() {
      for (const r of runners.values()) r.check.close?.();
    },
  };
  return health;
}

function statuses(checks: Record<string, CheckResult>): HealthStatus[] {
  return Object.values(checks).map((c) => c.status);
}

function withDeadline(result: Promise<CheckResult>, deadlineMs: number | undefined): Promise<CheckResult> {
  if (deadlineMs === undefined) return result;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(
      () =>
        resolve({
          status: 'critical',
          output: `no result within the caller's deadline (${deadlineMs} ms)`,
          durationMs: deadlineMs,
        }),
      deadlineMs,
    );
    timer.unref();
  });
  return Promise.race([result, late]).finally(() => clearTimeout(timer));
}

/** The pathname of an origin-form (`/a?b`) or absolute URL. */
export function pathOf(url: string): string {
  // Absolute URLs (Fetch) and origin-form paths (node:http) both reduce to the pathname.
  const start = url.startsWith('/') ? 0 : url.indexOf('/', url.indexOf('//') + 2);
  if (start < 0) return '/';
  const path = url.slice(start);
  const q = path.search(/[?#]/);
  return q < 0 ? path : path.slice(0, q);
}

function normaliseBasePath(p: string): string {
  if (typeof p !== 'string' || !p.startsWith('/')) {
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `health.basePath: expected a path starting with "/", got ${JSON.stringify(p)}`,
    );
  }
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}
