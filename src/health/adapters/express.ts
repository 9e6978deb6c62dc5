/** Express adapter: a middleware that answers health paths and passes everything else on. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Health, pathOf } from '../health.ts';

/** Express's middleware shape, stated with node types so the kit does not depend on Express. */
export type ExpressMiddleware = (
  req: IncomingMessage,
  res: ServerResponse,
  next: (err?: unknown) => void,
) => void;

/**
 * Express middleware serving `/health`, `/health/live`, `/health/ready` and `/health/startup`. Mount it
 * first, before authentication, so probes are never asked for credentials.
 *
 * @example
 * const app = express();
 * app.use(expressHealth(health));
 */
export function expressHealth(health: Health): ExpressMiddleware {
  return (req, res, next) => {
    // Under app.use('/x', …) Express strips the mount path from req.url; originalUrl keeps it.
    const url = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/';
    if (!health.handle(req, res, pathOf(url))) next();
  };
}
