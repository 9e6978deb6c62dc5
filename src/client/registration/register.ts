/**
 * Registration lifecycle: register with the local agent, keep the registration alive (TTL heartbeats, or a
 * watch on `/v1/agent/service/:id`), register again when the agent forgets the service (restarted in
 * `--dev`, wiped), and deregister on the way out.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import {
  type CheckDefinitionBody,
  formatDuration,
  parseDuration,
  phareError,
  type ServiceRegistrationBody,
} from '../../api/index.ts';
import type { ConsulClientOptions } from '../api/index.ts';
import { type ConsulClient, createConsulClient } from '../api/index.ts';
import { checkNonNegative, fullJitter, outageReporter, sdkLogger, sleep } from '../shared.ts';

/** The HTTP check `registerService` registers for the agent to run against the service (not phare/health's `httpCheck`, which the service runs itself). */
export interface HttpCheckSpec {
  /** A path on the service (`/health`) or a full URL. */
  http: string;
  /** @default 10000 */
  intervalMs?: number;
  /** @default 5000 */
  timeoutMs?: number;
  /** @default "GET" */
  method?: string;
}

/** A TTL check the SDK keeps passing by itself. */
export interface TtlCheckSpec {
  /** The check turns critical when no heartbeat arrives within this many ms. */
  ttlMs: number;
  /** Heartbeat period in ms. @default ttlMs / 3 */
  heartbeatMs?: number;
}

/** A TCP check: the agent connects to the service's port (or `tcp`, a `host:port`) every interval. */
export interface TcpCheckSpec {
  /** `true` for the registered address and port, or an explicit `host:port`. */
  tcp: true | string;
  /** @default 10000 */
  intervalMs?: number;
  /** @default 5000 */
  timeoutMs?: number;
}

/** Options of {@link registerService}. */
export interface RegisterServiceOptions {
  /** Service name. @default SERVICE_NAME */
  name?: string;
  /** Instance ID. @default `${name}-${hostname}-${port}` */
  id?: string;
  /** Port the service listens on. @default SERVICE_PORT */
  port?: number;
  /** Address others reach it at. @default SERVICE_ADDRESS, else the agent's node address */
  address?: string;
  /** @default SERVICE_TAGS (comma-separated), else [] */
  tags?: string[];
  /** @default {} */
  meta?: Record<string, string>;
  /** Consul Weights. @default the agent's ({Passing: 1, Warning: 1}) */
  weights?: { passing: number; warning: number };
  /** Health check. @default none (the instance counts as passing) */
  check?: HttpCheckSpec | TcpCheckSpec | TtlCheckSpec | false;
  /** Deregister after the check stayed critical this long (ms or a Go duration like "1m"). @default never */
  deregisterCriticalAfter?: number | string;
  /** Registry client options (ignored when `client` is given). @default address from the environment */
  consul?: ConsulClientOptions;
  /** An existing registry client to use. */
  client?: ConsulClient;
  /**
   * How long `registerService()` waits for an unreachable agent before resolving anyway, in ms. Either way
   * the registration then completes in the background as soon as the agent answers (`registration.ready`),
   * so a service starts and serves while its agent is away. @default 0 (resolve after the first failed try)
   */
  startupTimeoutMs?: number;
  /** Blocking wait of the "is it still registered" watch, in ms. @default 30000 */
  watchWaitMs?: number;
  /** Environment for the defaults. @default process.env */
  env?: Record<string, string | undefined>;
  logger?: Logger;
}

/** A live registration. */
export interface Registration {
  readonly id: string;
  readonly name: string;
  /** The body sent to `PUT /v1/agent/service/register`. */
  readonly body: ServiceRegistrationBody;
  /** Times the SDK registered again because the agent had forgotten the service. */
  readonly reregistrations: number;
  /** True once the agent has accepted the registration (false while it is being retried in the background). */
  readonly registered: boolean;
  /**
   * Resolves when the agent has accepted the registration — at once when it already has. Rejects only when
   * the agent refused it (a bad definition, an ACL denial) or `deregister()` came first; a rejection nobody
   * awaits is not an unhandled one.
   */
  readonly ready: Promise<void>;
  /**
   * Stops heartbeats and the watch, then deregisters. Idempotent; a bound function, so it plugs straight
   * into `createGracefulShutdown({ beforeShutdown: registration.deregister })`.
   */
  deregister: () => Promise<void>;
}

/**
 * Registers this process's service with the local agent and keeps it registered.
 *
 * While the agent is unreachable, the registration is retried in the background for as long as it takes:
 * one warning when it starts, then a summary at most every minute, never an exception. Input the agent
 * refuses (4xx) rejects at once.
 *
 * @example
 * const registration = await registerService({ name: 'users', port: 8080, check: { http: '/health' } });
 * if (!registration.registered) await registration.ready; // only if you must be discoverable before serving
 * createGracefulShutdown({ server, beforeShutdown: registration.deregister });
 */
export async function registerService(options: RegisterServiceOptions = {}): Promise<Registration> {
  const env = options.env ?? process.env;
  const name = options.name ?? env.SERVICE_NAME;
  if (!name)
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      'registerService.name: missing; pass name or set SERVICE_NAME',
    );
  const port = options.port ?? (env.SERVICE_PORT ? Number(env.SERVICE_PORT) : undefined);
  if (port === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `registerService.port: expected 0-65535 (or SERVICE_PORT), got ${JSON.stringify(options.port ?? env.SERVICE_PORT)}`,
    );
  }
  const address = options.address ?? env.SERVICE_ADDRESS ?? '';
  const tags =
    options.tags ??
    (env.SERVICE_TAGS
      ? env.SERVICE_TAGS.split(',')
          .map((t) => t.trim())
          .filter(Boolean)
      : []);
  const id = options.id ?? `${name}-${hostname()}-${port}`;
  // `service` bound once (and not again when the caller's logger already carries it).
  const log = sdkLogger('registration', options.logger, { service: name });
  const checkId = `service:${id}`;
  let dcsa: string | undefined;
  if (typeof options.deregisterCriticalAfter === 'number')
    dcsa = formatDuration(options.deregisterCriticalAfter);
  else if (typeof options.deregisterCriticalAfter === 'string') {
    try {
      parseDuration(options.deregisterCriticalAfter);
    } catch {
      throw phareError(
        'PHARE_ERR_INVALID_ARGUMENT',
        `registerService.deregisterCriticalAfter: expected ms or a duration like "1m", got ${JSON.stringify(options.deregisterCriticalAfter)}`,
      );
    }
    dcsa = options.deregisterCriticalAfter;
  }

  let check: CheckDefinitionBody | undefined;
  let ttl: TtlCheckSpec | undefined;
  if (options.check) {
    if ('ttlMs' in options.check) {
      ttl = options.check;
      if (!(ttl.ttlMs > 0))
        throw phareError(
          'PHARE_ERR_INVALID_ARGUMENT',
          `registerService.check.ttlMs: expected > 0, got ${ttl.ttlMs}`,
        );
      check = { CheckID: checkId, Name: `Service '${name}' TTL`, TTL: formatDuration(ttl.ttlMs) };
    } else if ('tcp' in options.check) {
      const c = options.check;
      const host = address ? (address.includes(':') ? `[${address}]` : address) : '127.0.0.1';
      check = {
        CheckID: checkId,
        Name: `Service '${name}' TCP`,
        TCP: c.tcp === true ? `${host}:${port}` : c.tcp,
        Interval: formatDuration(c.intervalMs ?? 10_000),
        Timeout: formatDuration(c.timeoutMs ?? 5_000),
      };
    } else {
      const c = options.check;
      const url = /^https?:\/\//.test(c.http)
        ? c.http
        : `http://${address ? (address.includes(':') ? `[${address}]` : address) : '127.0.0.1'}:${port}${c.http.startsWith('/') ? '' : '/'}${c.http}`;
      check = {
        CheckID: checkId,
        Name: `Service '${name}' HTTP`,
        HTTP: url,
        Method: c.method,
        Interval: formatDuration(c.intervalMs ?? 10_000),
        Timeout: formatDuration(c.timeoutMs ?? 5_000),
      };
    }
    if (dcsa) check.DeregisterCriticalServiceAfter = dcsa;
  }
  const body: ServiceRegistrationBody = {
    Name: name,
    ID: id,
    Port: port,
    Tags: tags,
    ...(address ? { Address: address } : {}),
    ...(options.meta ? { Meta: options.meta } : {}),
    ...(options.weights
      ? { Weights: { Passing: options.weights.passing, Warning: options.weights.warning } }
      : {}),
    ...(check ? { Check: check } : {}),
  };

  const waitMs = options.startupTimeoutMs ?? 0;
  checkNonNegative('registerService.startupTimeoutMs', waitMs);
  const ownClient = !options.client;
  const client = options.client ?? createConsulClient(options.consul);
  const stop = new AbortController();
  let reregistrations = 0;

  const register = async () => {
    await client.agent.register(body);
    // A TTL check starts critical; the first heartbeat makes the instance routable at once.
    if (ttl) await client.agent.ttl(checkId, 'passing', 'registered by phare SDK');
  };

  // The first registration: retried in the background while the agent is away (compose/k8s start order is
  // not guaranteed, and an agent may be restarting), reported once and then summarised.
  const outage = outageReporter(log, 'registration');
  let registered = false;
  let refused: unknown;
  let failed!: () => void;
  const failedOnce = new Promise<void>((resolve) => {
    failed = resolve;
  });
  const first = (async () => {
    for (let attempt = 0; !stop.signal.aborted; attempt++) {
      try {
        await register();
        registered = true;
        if (outage.failures > 0)
          log.info({ id, tries: attempt + 1 }, 'service registered (the agent is back)');
        outage.recovered();
        return;
      } catch (err) {
        if (!agentAway(err)) {
          refused = err;
          // Refused after the caller moved on: say so loudly, `ready` rejects with it.
          if (outage.failures > 0)
            log.error({ id, err: (err as Error).message }, 'the agent refused the registration');
          throw err;
        }
        outage.failure(err);
        failed();
        await sleep(Math.max(100, fullJitter(attempt, 200, 5_000)), stop.signal).catch(() => {});
      }
    }
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `registration of ${id}: deregistered before the agent answered`,
    );
  })();
  first.catch(() => {});
  const started = Date.now();
  // Resolves on registration, on refusal, or once a try failed and waitMs has passed (whichever is first).
  await Promise.race([
    first.catch(() => {}),
    failedOnce.then(() => sleep(Math.max(0, started + waitMs - Date.now()))),
  ]);
  if (refused) {
    stop.abort();
    if (ownClient) await client.close();
    throw refused;
  }
  if (!registered) log.info({ id, port }, 'registering in the background while the agent is away');
  else log.info({ id, port }, 'service registered');

  const reregister = async (why: string) => {
    await register();
    reregistrations++;
    log.warn({ id, why }, 'agent had forgotten the service; registered again');
  };

  // Keeper: TTL heartbeats, or a blocking watch on our own service; either way a 404 means "register again".
  const keeper = (async () => {
    await first;
    let failures = 0;
    let hash: string | undefined;
    while (!stop.signal.aborted) {
      try {
        if (ttl) {
          await sleep(ttl.heartbeatMs ?? ttl.ttlMs / 3, stop.signal);
          try {
            await client.agent.ttl(checkId, 'passing');
          } catch (err) {
            if ((err as { status?: number }).status !== 404) throw err;
            if (!stop.signal.aborted) await reregister('TTL heartbeat answered 404');
          }
        } else {
          const svc = await client.agent.service(id, {
            hash,
            waitMs: options.watchWaitMs ?? 30_000,
            signal: stop.signal,
          });
          if (stop.signal.aborted) break;
          if (!svc) {
            hash = undefined;
            await reregister('agent/service/:id answered 404');
          } else {
            hash = svc.ContentHash;
          }
        }
        failures = 0;
        outage.recovered();
      } catch (err) {
        if (stop.signal.aborted) break;
        failures++;
        // After an outage, start over with a non-blocking read: the agent may be a new one.
        hash = undefined;
        if (agentAway(err)) outage.failure(err);
        else log.warn({ err: (err as Error).message, failures }, 'keeping the registration failed; retrying');
        await sleep(Math.max(100, fullJitter(failures, 250, 2_000)), stop.signal).catch(() => {});
      }
    }
  })();
  keeper.catch(() => {});

  let deregistering: Promise<void> | undefined;
  const registration: Registration = {
    id,
    name,
    body,
    get reregistrations() {
      return reregistrations;
    },
    get registered() {
      return registered;
    },
    ready: first,
    deregister: () => {
      deregistering ??= (async () => {
        stop.abort();
        await keeper.catch(() => {});
        try {
          // Never registered (the agent stayed away): nothing to remove.
          if (!registered) return;
          await client.agent.deregister(id);
          log.info({ id }, 'service deregistered');
        } finally {
          if (ownClient) await client.close();
        }
      })();
      return deregistering;
    },
  };
  return registration;
}

/** The agent is away or busy (unreachable, or a 5xx such as Consul's "No cluster leader"): worth retrying. */
function agentAway(err: unknown): boolean {
  const e = err as { code?: string; status?: number };
  return (
    e.code === 'PHARE_ERR_AGENT_UNREACHABLE' ||
    (e.code === 'PHARE_ERR_AGENT_RESPONSE' && (e.status ?? 0) >= 500)
  );
}
