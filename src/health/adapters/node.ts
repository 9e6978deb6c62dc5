/**
 * `node:http` adapter. `health.handle(req, res)` is the adapter (it returns whether it answered); this file
 * adds a ready-made listener for a separate health port, the layout lightship uses.
 */
import type { RequestListener } from 'node:http';
import type { Health } from '../health.ts';

/**
 * A request listener that serves the health endpoints and answers 404 elsewhere — for a dedicated
 * health/admin port that is not exposed to callers.
 *
 * @example
 * http.createServer(healthListener(health)).listen(9000, '0.0.0.0');
 */
export function healthListener(health: Health): RequestListener {
  return (req, res) => {
    if (health.handle(req, res)) return;
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: `not found; health endpoints are under ${health.basePath}` }));
  };
}
