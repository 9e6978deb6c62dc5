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
import { type ConsulClient, createConsulClient } from '../api/client.ts';
import type { ConsulClientOptions } from '../api/transport.ts';
import { fullJitter, sdkLogger, sleep } from '../shared.ts';

/** An HTTP check the agent runs against the service. */
export interface HttpCheckOptions {
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
export interface TtlCheckOptions {
  /** The check turns critical when no heartbeat arrives within this many ms. */
  ttlMs: number;
  /** Heartbeat period in ms. @default ttlMs / 3 */
  heartbeatMs?: number;
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
  check?: HttpCheckOptions | TtlCheckOptions | false;
  /** Deregister after the check stayed critical this long (ms or a Go duration like "1m"). @default never */
  deregisterCriticalAfter?: number | string;
  /** Registry client options (ignored when `client` is given). @default address from the environment */
  consul?: ConsulClientOptions;
  /** An existing registry client to use. */
  client?: ConsulClient;
  /** How long the first registration is retried while the agent is unreachable, in ms. @default 30000 */
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
  /**
   * Stops heartbeats and the watch, then deregisters. Idempotent; a bound function, so it plugs straight
   * into `createGracefulShutdown({ beforeShutdown: registration.deregister })`.
   */
  deregister: () => Promise<void>;
}

/**
 * Registers this process's service with the local agent and keeps it registered.
 *
 * @example
 * const registration = await registerService({ name: 'users', port: 8080, check: { http: '/health' } });
 * process.once('SIGTERM', () => registration.deregister().then(() => server.close()));
 */
export async function registerService(options: RegisterServiceOptions = {}): Promise<Registration> {
  const env = options.env ?? process.env;
  const log = sdkLogger('registration', options.logger);
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
  let ttl: TtlCheckOptions | undefined;
  if (options.check) {
    if ('ttlMs' in options.check) {
      ttl = options.check;
      if (!(ttl.ttlMs > 0))
        throw phareError(
          'PHARE_ERR_INVALID_ARGUMENT',
          `registerService.check.ttlMs: expected > 0, got ${ttl.ttlMs}`,
        );
      check = { CheckID: checkId, Name: `Service '${name}' TTL`, TTL: formatDuration(ttl.ttlMs) };
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

  const ownClient = !options.client;
  const client = options.client ?? createConsulClient(options.consul);
  const stop = new AbortController();
  let reregistrations = 0;

  const register = async () => {
    await client.agent.register(body);
    // A TTL check starts critical; the first heartbeat makes the instance routable at once.
    if (ttl) await client.agent.ttl(checkId, 'passing', 'registered by phare SDK');
  };

  // First registration: retried while the agent is starting (compose/k8s start order is not guaranteed).
  const startupDeadline = Date.now() + (options.startupTimeoutMs ?? 30_000);
  for (let attempt = 0; ; attempt++) {
    try {
      await register();
      break;
    } catch (err) {
      const unreachable = (err as { code?: string }).code === 'PHARE_ERR_AGENT_UNREACHABLE';
      if (!unreachable || Date.now() >= startupDeadline) {
        if (ownClient) await client.close();
        throw err;
      }
      log.warn(
        { err: (err as Error).message, service: name },
        'agent not reachable yet; retrying registration',
      );
      await sleep(Math.max(100, fullJitter(attempt, 200, 2_000)));
    }
  }
  log.info({ id, service: name, port }, 'service registered');

  const reregister = async (why: string) => {
    await register();
    reregistrations++;
    log.warn({ id, why }, 'agent had forgotten the service; registered again');
  };

  // Keeper: TTL heartbeats, or a blocking watch on our own service; either way a 404 means "register again".
  const keeper = (async () => {
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
      } catch (err) {
        if (stop.signal.aborted) break;
        failures++;
        // After an outage, start over with a non-blocking read: the agent may be a new one.
        hash = undefined;
        log.debug({ err: (err as Error).message, failures }, 'registration keeper round failed');
        await sleep(Math.max(100, fullJitter(failures, 250, 2_000)), stop.signal).catch(() => {});
      }
    }
  })();

  let deregistering: Promise<void> | undefined;
  const registration: Registration = {
    id,
    name,
    body,
    get reregistrations() {
      return reregistrations;
    },
    deregister: () => {
      deregistering ??= (async () => {
        stop.abort();
        await keeper.catch(() => {});
        try {
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
