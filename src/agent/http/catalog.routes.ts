/**
 * `/v1/catalog/*` (consul-api.md §4). Reads are blocking-capable and indexed per topic.
 */
import type { NodeRecord, ServiceRecord } from '../catalog/index.ts';
import { Topic } from '../catalog/index.ts';
import { compileFilter } from '../filter/index.ts';
import { indexedRead } from './blocking.ts';
import type { Route } from './context.ts';
import { tail } from './context.ts';
import { catalogDeregisterSchema, catalogRegisterSchema, decodeBody } from './decode.ts';
import { HttpError } from './errors.ts';
import { checkDatacenter, many, nodeMetaFilter, one, type Query } from './query.ts';
import { renderCatalogService, renderNode, renderNodeService } from './render.ts';
import { sendJson } from './respond.ts';
import { catalogRegisterFromBody } from './validate.ts';

/** `?tag=` (repeatable, AND; case-insensitive as in Consul's state store). */
export function hasTags(s: ServiceRecord, tags: readonly string[]): boolean {
  if (tags.length === 0) return true;
  const lower = s.tags.map((t) => t.toLowerCase());
  return tags.every((t) => lower.includes(t.toLowerCase()));
}

function filterOf(q: Query): ((item: unknown) => boolean) | undefined {
  const expr = one(q, 'filter');
  return expr ? compileFilter(expr) : undefined;
}

/** The catalog route table. */
export const catalogRoutes: Route[] = [
  {
    path: '/v1/catalog/datacenters',
    methods: ['GET'],
    handler: (_req, reply, { config }) => sendJson(reply, [config.datacenter]),
  },
  {
    path: '/v1/catalog/services',
    methods: ['GET'],
    handler: (req, reply, { catalog, cache, config, closing }) => {
      const q = req.query as Query;
      checkDatacenter(q, config.datacenter);
      const filter = filterOf(q);
      const nodeMeta = nodeMetaFilter(q);
      return indexedRead(catalog, cache, closing, req, reply, [Topic.services], () => {
        const out: Record<string, string[]> = {};
        for (const s of catalog.allServices()) {
          const n = catalog.node(s.node);
          if (!n) continue;
          if (nodeMeta && !nodeMeta(n.meta)) continue;
          if (filter && !filter(renderCatalogService(s, n, config.datacenter))) continue;
          let tags = out[s.name];
          if (!tags) {
            tags = [];
            out[s.name] = tags;
          }
          for (const t of s.tags) if (!tags.includes(t)) tags.push(t);
        }
        return out;
      });
    },
  },
  {
    path: '/v1/catalog/service/*',
    methods: ['GET'],
    handler: (req, reply, { catalog, cache, config, closing }) => {
      const name = tail(req);
      if (name === '') throw new HttpError(400, 'Missing service name');
      const q = req.query as Query;
      checkDatacenter(q, config.datacenter);
      const tags = many(q, 'tag');
      const filter = filterOf(q);
      const nodeMeta = nodeMetaFilter(q);
      return indexedRead(catalog, cache, closing, req, reply, [Topic.service(name)], () => {
        const out = [];
        for (const s of catalog.instancesOf(name)) {
          if (!hasTags(s, tags)) continue;
          const n = catalog.node(s.node);
          if (!n || (nodeMeta && !nodeMeta(n.meta))) continue;
          const item = renderCatalogService(s, n, config.datacenter);
          if (filter && !filter(item)) continue;
          out.push(item);
        }
        return out;
      });
    },
  },
  {
    path: '/v1/catalog/nodes',
    methods: ['GET'],
    handler: (req, reply, { catalog, cache, config, closing }) => {
      const q = req.query as Query;
      checkDatacenter(q, config.datacenter);
      const filter = filterOf(q);
      const nodeMeta = nodeMetaFilter(q);
      return indexedRead(catalog, cache, closing, req, reply, [Topic.nodes], () =>
        catalog
          .nodes()
          .filter((n) => !nodeMeta || nodeMeta(n.meta))
          .map((n) => renderNode(n, config.datacenter))
          .filter((n) => !filter || filter(n)),
      );
    },
  },
  {
    path: '/v1/catalog/node/*',
    methods: ['GET'],
    handler: (req, reply, { catalog, cache, config, closing }) => {
      const name = tail(req);
      if (name === '') throw new HttpError(400, 'Missing node name');
      const q = req.query as Query;
      checkDatacenter(q, config.datacenter);
      const filter = filterOf(q);
      return indexedRead(catalog, cache, closing, req, reply, [Topic.node(name)], () => {
        const n = catalog.node(name);
        if (!n) return null;
        const services: Record<string, unknown> = {};
        for (const s of catalog.servicesOnNode(n.node)) {
          const item = renderNodeService(s);
          if (filter && !filter(item)) continue;
          services[s.id] = item;
        }
        return { Node: renderNode(n, config.datacenter), Services: services };
      });
    },
  },
  {
    path: '/v1/catalog/node-services/*',
    methods: ['GET'],
    handler: (req, reply, { catalog, cache, config, closing }) => {
      const name = tail(req);
      if (name === '') throw new HttpError(400, 'Missing node name');
      const q = req.query as Query;
      checkDatacenter(q, config.datacenter);
      const filter = filterOf(q);
      return indexedRead(catalog, cache, closing, req, reply, [Topic.node(name)], () => {
        const n = catalog.node(name);
        if (!n) return null;
        const services = catalog
          .servicesOnNode(n.node)
          .map(renderNodeService)
          .filter((s) => !filter || filter(s));
        return { Node: renderNode(n, config.datacenter), Services: services };
      });
    },
  },
  {
    path: '/v1/catalog/register',
    methods: ['PUT'],
    handler: async (req, reply, { catalog, limits, config }) => {
      const body = decodeBody(req.body as Buffer, catalogRegisterSchema);
      if (body.Datacenter && body.Datacenter.toLowerCase() !== config.datacenter.toLowerCase()) {
        throw new HttpError(500, 'No path to datacenter');
      }
      const input = catalogRegisterFromBody(body, limits);
      const existing = catalog.node(input.node.node);
      let node: Omit<NodeRecord, 'createIndex' | 'modifyIndex'> = input.node;
      if (body.SkipNodeUpdate && existing) node = existing;
      else if (!input.node.id) node = { ...input.node, id: existing?.id ?? '' };
      await catalog.catalogRegister({ node, service: input.service, checks: input.checks });
      sendJson(reply, true);
    },
  },
  {
    path: '/v1/catalog/deregister',
    methods: ['PUT'],
    handler: async (req, reply, { catalog, config }) => {
      const body = decodeBody(req.body as Buffer, catalogDeregisterSchema);
      const node = (body.Node ?? '').trim();
      if (node === '') throw new HttpError(500, 'Must provide node');
      if (body.Datacenter && body.Datacenter.toLowerCase() !== config.datacenter.toLowerCase()) {
        throw new HttpError(500, 'No path to datacenter');
      }
      await catalog.catalogDeregister({ node, serviceId: body.ServiceID, checkId: body.CheckID });
      sendJson(reply, true);
    },
  },
];
