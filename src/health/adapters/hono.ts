/** Hono adapter: a middleware built on the Web-standard `health.fetch`, so the kit never imports Hono. */
import type { Health } from '../health.ts';

/** The part of Hono's Context the middleware reads. */
export interface HonoLikeContext {
  req: { raw: Request };
}

/**
 * Hono middleware answering the health paths and calling `next()` for everything else.
 *
 * @example
 * const app = new Hono();
 * app.use(honoHealth(health));
 * serve({ fetch: app.fetch, port: 3000 });
 */
export function honoHealth(
  health: Health,
): (c: HonoLikeContext, next: () => Promise<void>) => Promise<Response | undefined> {
  return async (c, next) => {
    const res = await health.fetch(c.req.raw);
    if (res) return res;
    await next();
    return undefined;
  };
}
