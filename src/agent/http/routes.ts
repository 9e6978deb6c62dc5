/** The one route table of the HTTP API: every path the agent answers, with its methods. */
import { aclRoutes } from './acl.routes.ts';
import { agentRoutes } from './agent.routes.ts';
import { catalogRoutes } from './catalog.routes.ts';
import type { Route } from './context.ts';
import { healthRoutes } from './health.routes.ts';
import { kvRoutes } from './kv.routes.ts';
import { sessionRoutes } from './session.routes.ts';
import { statusRoutes } from './status.routes.ts';
import { txnRoutes } from './txn.routes.ts';

/** Every route of the agent's HTTP API. */
export const routes: readonly Route[] = [
  ...agentRoutes,
  ...catalogRoutes,
  ...healthRoutes,
  ...statusRoutes,
  ...kvRoutes,
  ...sessionRoutes,
  ...txnRoutes,
  ...aclRoutes,
];
