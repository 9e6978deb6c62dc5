/** Fastify adapter: a plugin that adds the probe routes. */
import type { FastifyPluginAsync } from 'fastify';
import { remainingDeadline } from '../deadline.ts';
import { type Health, type HealthEndpoint, httpStatusOf } from '../health.ts';

/** Options of {@link fastifyHealth}. */
export interface FastifyHealthOptions {
  health: Health;
}

/**
 * Fastify plugin adding GET (and HEAD) routes for the health endpoints.
 *
 * @example
 * const app = Fastify();
 * await app.register(fastifyHealth, { health });
 */
export const fastifyHealth: FastifyPluginAsync<FastifyHealthOptions> = async (app, opts) => {
  const { health } = opts;
  const base = health.basePath === '/' ? '' : health.basePath;
  const routes: Array<[string, HealthEndpoint]> = [
    [health.basePath, 'summary'],
    [`${base}/live`, 'live'],
    [`${base}/ready`, 'ready'],
    [`${base}/startup`, 'startup'],
  ];
  for (const [url, endpoint] of routes) {
    app.get(url, async (req, reply) => {
      const deadlineMs = remainingDeadline(req);
      const body = await health.report(endpoint, deadlineMs === undefined ? {} : { deadlineMs });
      return reply.code(httpStatusOf(body.status)).header('cache-control', 'no-store').send(body);
    });
  }
};
