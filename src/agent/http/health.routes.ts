/**
 * `/v1/health/*` (Consul docs, Health HTTP API). `health/service/:name` is the hot path of every watcher; its body is
 * cached per (query, index) by indexedRead.
 */
import { type CheckRecord, Topic } from '../catalog/index.ts';
import type { AclFilter, Route } from './context.ts';
import { flag } from './query.ts';
import { hasTags, readRequest } from './read.ts';
import { renderCheck, renderNode, renderNodeService } from './render.ts';

/** Consul's filterHealthChecks: a service's check needs service:read, a node check node:read. */
export function checkReadable(acl: AclFilter, c: CheckRecord): boolean {
  return c.serviceId ? acl.service(c.serviceName) : acl.node(c.node);
}

/** The health route table. */
export const healthRoutes: Route[] = [
  {
    path: '/v1/health/service/*',
    methods: ['GET'],
    handler: (req, reply, ctx) => {
      const { catalog, config } = ctx;
      const r = readRequest(req, reply, ctx, 'Missing service name');
      const passing = flag(r.q, 'passing');
      return r.answer(
        [Topic.service(r.name)],
        () => {
          const out = [];
          for (const s of catalog.instancesOf(r.name)) {
            if (!hasTags(s, r.tags)) continue;
            const n = catalog.node(s.node);
            if (!n || (r.nodeMeta && !r.nodeMeta(n.meta))) continue;
            // Consul's filterCheckServiceNodes: the node and the service must both be readable
            if (!r.acl.node(n.node) || !r.acl.service(s.name)) continue;
            const checks = catalog.checksFor(s.node, s.id);
            // ?passing drops an entry if ANY of its checks (node or service) is not passing (warning too).
            if (passing && checks.some((c) => c.status !== 'passing')) continue;
            const entry = {
              Node: renderNode(n, config.datacenter),
              Service: renderNodeService(s),
              Checks: checks.map((c) => renderCheck(c, catalog)),
            };
            if (r.filter && !r.filter(entry)) continue;
            out.push(entry);
          }
          return out;
        },
        { cacheable: true },
      );
    },
  },
  {
    path: '/v1/health/checks/*',
    methods: ['GET'],
    handler: (req, reply, ctx) => {
      const r = readRequest(req, reply, ctx, 'Missing service name');
      return r.answer([Topic.service(r.name)], () =>
        ctx.catalog
          .checksOfService(r.name)
          .filter((c) => !r.nodeMeta || r.nodeMeta(ctx.catalog.node(c.node)?.meta ?? {}))
          .filter((c) => checkReadable(r.acl, c))
          .map((c) => renderCheck(c, ctx.catalog))
          .filter((c) => !r.filter || r.filter(c)),
      );
    },
  },
  {
    path: '/v1/health/node/*',
    methods: ['GET'],
    handler: (req, reply, ctx) => {
      const r = readRequest(req, reply, ctx, 'Missing node name');
      return r.answer([Topic.node(r.name)], () =>
        ctx.catalog
          .checksOnNode(r.name)
          .filter((c) => checkReadable(r.acl, c))
          .map((c) => renderCheck(c, ctx.catalog))
          .filter((c) => !r.filter || r.filter(c)),
      );
    },
  },
  {
    path: '/v1/health/state/*',
    methods: ['GET'],
    handler: (req, reply, ctx) => {
      const { catalog } = ctx;
      const r = readRequest(req, reply, ctx, 'Missing check state');
      return r.answer([Topic.checks], () =>
        catalog
          .allChecks()
          .filter((c) => r.name === 'any' || c.status === r.name)
          .filter((c) => !r.nodeMeta || r.nodeMeta(catalog.node(c.node)?.meta ?? {}))
          .filter((c) => checkReadable(r.acl, c))
          .map((c) => renderCheck(c, catalog))
          .filter((c) => !r.filter || r.filter(c)),
      );
    },
  },
];
