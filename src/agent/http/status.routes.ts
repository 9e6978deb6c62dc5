/**
 * `/v1/status/*` (Consul docs, Status HTTP API): a single-node agent is always its own leader; over etcd, etcd's leader
 * and members (the cluster view). Another `?dc` is Consul's 500 `No path to datacenter`, as on every other
 * endpoint that forwards to a datacenter.
 */
import type { Route } from './context.ts';
import { checkDatacenter, type QueryParams } from './query.ts';
import { sendJson } from './respond.ts';

/** The status route table. */
export const statusRoutes: Route[] = [
  {
    path: '/v1/status/leader',
    methods: ['GET'],
    handler: (req, reply, { cluster, config }) => {
      checkDatacenter(req.query as QueryParams, config.datacenter);
      sendJson(reply, cluster.leader());
    },
  },
  {
    path: '/v1/status/peers',
    methods: ['GET'],
    handler: (req, reply, { cluster, config }) => {
      checkDatacenter(req.query as QueryParams, config.datacenter);
      sendJson(reply, cluster.peers());
    },
  },
];
