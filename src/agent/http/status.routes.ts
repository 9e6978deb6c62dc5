/** `/v1/status/*` (consul-api.md §7): a single-node agent is always its own leader. */
import type { Route } from './context.ts';
import { sendJson } from './respond.ts';

/** The status route table. */
export const statusRoutes: Route[] = [
  {
    path: '/v1/status/leader',
    methods: ['GET'],
    handler: (_req, reply, { catalog }) => sendJson(reply, `${catalog.local.address}:8300`),
  },
  {
    path: '/v1/status/peers',
    methods: ['GET'],
    handler: (_req, reply, { catalog }) => sendJson(reply, [`${catalog.local.address}:8300`]),
  },
];
