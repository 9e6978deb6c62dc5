/**
 * `phare ports next --env E`: the lowest port of the environment's range that ports.yaml does not give
 * to anyone (in any environment) and nothing on this host listens on or can't be bound.
 */
import { createServer } from 'node:net';
import { phareError } from '../api/index.ts';
import { type Listener, listListeners } from './in-use.ts';
import type { PortsModel } from './model.ts';

/** Options of {@link nextFreePort}. */
export interface NextPortOptions {
  /** Listening sockets to avoid. @default read from /proc */
  listeners?: Listener[];
  /** Also try to bind each candidate (catches sockets /proc does not show, e.g. on other OSes). @default true */
  probe?: boolean;
}

/**
 * Next free port in an environment's range (`infrastructure` for the infrastructure range). Throws
 * PHARE_ERR_INVALID_ARGUMENT for an unknown environment or a full range.
 *
 * @example
 * const port = await nextFreePort(model, 'development'); // 9003
 */
export async function nextFreePort(
  model: PortsModel,
  env: string,
  options: NextPortOptions = {},
): Promise<number> {
  const names = [
    ...Object.keys(model.config.environments),
    ...(model.config.infrastructure ? ['infrastructure'] : []),
  ];
  const range =
    env === 'infrastructure' ? model.config.infrastructure?.range : model.config.environments[env]?.range;
  if (!range) {
    throw phareError(
      'PHARE_ERR_INVALID_ARGUMENT',
      `--env: "${env}" is not an environment of ${model.name}; expected one of ${names.join(', ')}`,
    );
  }
  const taken = new Set(model.allocations.map((a) => a.port));
  const listening = new Set(
    (options.listeners ?? (await listListeners({ processes: false }))).map((l) => l.port),
  );
  for (let port = range.from; port <= range.to; port++) {
    if (taken.has(port) || listening.has(port)) continue;
    if (options.probe === false || (await canBind(port))) return port;
  }
  throw phareError(
    'PHARE_ERR_INVALID_ARGUMENT',
    `--env: no free port left in ${env} (${range.from}-${range.to}); widen the range in ${model.name}`,
  );
}

/** Binds the wildcard address (IPv6 dual-stack where available) and closes at once. */
function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
