/**
 * `/v1/health/*` (consul-api.md §5). `health/service/:name` is the hot path of every watcher; its body is
 * cached per (query, index) by indexedRead.
 */
import type { CheckRecord } from '../catalog/index.ts';
import { Topic } from '../catalog/index.ts';
import { compileFilter } from '../filter/index.ts';
import { indexedRead } from './blocking.ts';
import { hasTags } from './catalog.routes.ts';
import type { Route } from './context.ts';
import { tail } from './context.ts';
import { HttpError } from './errors.ts';
import { checkDatacenter, flag, many, nodeMetaFilter, one, type Query } from './query.ts';
import { renderCheck, renderNode, renderNodeService } from './render.ts';

function filterOf(q: Query): ((item: unknown) => boolean) | undefined {
  const expr = one(q, 'filter');
  return expr ? compileFilter(expr) : undefined;
}

/** The health route table. */
export const healthRoutes: Route[] = [
  {
    path: '/v1/health/service/*',
    methods: ['GET'],
    handler: (req, reply, { catalog, cache, config, closing }) => {
      const name = tail(req);
      if (name === '') throw new HttpError(400, 'Missing service name');
      const q = req.query as Query;
      checkDatacenter(q, config.datacenter);
      const passing = flag(q, 'passing');
      const tags = many(q, 'tag');
      const filter = filterOf(q);
      const nodeMeta = nodeMetaFilter(q);
      return indexedRead(catalog, cache, closing, req, reply, [Topic.service(name)], () => {
        const out = [];
        for (const s of catalog.instancesOf(name)) {
          if (!hasTags(s, tags)) continue;
          const n = catalog.node(s.node);
          if (!n || (nodeMeta && !nodeMeta(n.meta))) continue;
          const checks = catalog.checksFor(s.node, s.id);
          // ?passing drops an entry if ANY of its checks (node or service) is not passing (warning too).
          if (passing && checks.some((c) => c.status !== 'passing')) continue;
          const entry = {
            Node: renderNode(n, config.datacenter),
            Service: renderNodeService(s),
            Checks: checks.map((c) => renderCheck(c, catalog)),
          };
          if (filter && !filter(entry)) continue;
          out.push(entry);
        }
        return out;
      });
    },
  },
  {
    path: '/v1/health/checks/*',
    methods: ['GET'],
    handler: (req, reply, { catalog, cache, config, closing }) => {
      const name = tail(req);
      if (name === '') throw new HttpError(400, 'Missing service name');
      const q = req.query as Query;
      checkDatacenter(q, config.datacenter);
      const filter = filterOf(q);
      return indexedRead(catalog, cache, closing, req, reply, [Topic.service(name)], () =>
        catalog
          .checksOfService(name)
          .map((c) => renderCheck(c, catalog))
          .filter((c) => !filter || filter(c)),
      );
    },
  },
  {
    path: '/v1/health/node/*',
    methods: ['GET'],
    handler: (req, reply, { catalog, cache, config, closing }) => {
      const name = tail(req);
      if (name === '') throw new HttpError(400, 'Missing node name');
      const q = req.query as Query;
      checkDatacenter(q, config.datacenter);
      const filter = filterOf(q);
      return indexedRead(catalog, cache, closing, req, reply, [Topic.node(name)], () =>
        catalog
          .checksOnNode(name)
          .map((c) => renderCheck(c, catalog))
          .filter((c) => !filter || filter(c)),
      );
    },
  },
  {
    path: '/v1/health/state/*',
    methods: ['GET'],
    handler: (req, reply, { catalog, cache, config, closing }) => {
      const state = tail(req);
      if (state === '') throw new HttpError(400, 'Missing check state');
      const q = req.query as Query;
      checkDatacenter(q, config.datacenter);
      const filter = filterOf(q);
      const nodeMeta = nodeMetaFilter(q);
      return indexedRead(catalog, cache, closing, req, reply, [Topic.checks], () =>
        catalog
          .allChecks()
          .filter((c: CheckRecord) => state === 'any' || c.status === state)
          .filter((c) => !nodeMeta || nodeMeta(catalog.node(c.node)?.meta ?? {}))
          .map((c) => renderCheck(c, catalog))
          .filter((c) => !filter || filter(c)),
      );
    },
  },
];
