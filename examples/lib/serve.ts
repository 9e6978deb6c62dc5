/**
 * What every service of the example does once its handlers are set up: listen on its configured port, then
 * register with the agent with an HTTP check on `/health/ready` (the agent sees 503 until the service calls
 * `health.markReady()`, so nobody routes to it before it is ready).
 */
import type { Server } from 'node:http';
import { type Registration, registerService } from 'phare';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { registryAddress, type registrySection, type serverSection } from './schema.ts';

/** Options of {@link listenAndRegister}. */
export interface ListenAndRegisterOptions {
  name: string;
  server: Server;
  config: { server: z.output<typeof serverSection>; registry: z.output<typeof registrySection> };
  log: Logger;
  /** The service's graceful shutdown: a SIGTERM may arrive while it registers. */
  graceful: { readonly shuttingDown: boolean };
  /** Called as soon as the registration exists, so the shutdown hook can deregister it. */
  onRegistered: (registration: Registration) => void;
}

/**
 * Listens, then registers. Exits the process (code 1) when the port is taken or the agent refuses the
 * registration. If a shutdown began while registering — its deregistration found nothing to remove yet —
 * the new registration is removed at once.
 *
 * @example
 * await listenAndRegister({ name: 'api', server, config, log, graceful, onRegistered: (r) => (registration = r) });
 */
export function listenAndRegister(o: ListenAndRegisterOptions): Promise<Registration> {
  const { server: s, registry } = o.config;
  o.server.once('error', (err) => {
    o.log.fatal({ err: err.message, port: s.port }, 'cannot listen (is the port taken? see ports.yaml)');
    process.exit(1);
  });
  return new Promise((resolve) => {
    o.server.listen(s.port, s.host, async () => {
      o.log.info({ port: s.port }, `${o.name} listening`);
      let registration: Registration;
      try {
        registration = await registerService({
          name: o.name,
          port: s.port,
          address: s.advertise,
          check: { http: '/health/ready', intervalMs: registry.checkIntervalMs, timeoutMs: 2000 },
          deregisterCriticalAfter: '10m',
          consul: { address: registryAddress(registry) },
          logger: o.log,
        });
      } catch (err) {
        o.log.fatal({ err: (err as Error).message }, 'cannot register with the agent');
        process.exit(1);
      }
      o.onRegistered(registration);
      if (o.graceful.shuttingDown) await registration.deregister();
      resolve(registration);
    });
  });
}
