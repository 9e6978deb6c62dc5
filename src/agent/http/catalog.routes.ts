/**
 * `/v1/catalog/*` (Consul docs, Catalog HTTP API). Reads are blocking-capable and indexed per topic.
 */
import type { NodeRecord } from '../catalog/index.ts';
import { Topic } from '../catalog/index.ts';
import { authz, type Route } from './context.ts';
import { catalogDeregisterSchema, catalogRegisterSchema, decodeBody } from './decode.ts';
import { HttpError } from './errors.ts';
import { hasTags, readRequest } from './read.ts';
import { renderCatalogService, renderNode, renderNodeService } from './render.ts';
import { sendJson } from './respond.ts';
import { catalogRegisterFromBody } from './validate.ts';

/** Reads Consul serves from its agent cache (docs: "Agent Caching: background refresh"). */
const CACHEABLE = { cacheable: true } as const;

/**
 * `catalog/node/:node` (services as a map by ID) and `catalog/node-services/:node` (as a list): one read,
 * two shapes. An unknown node answers `null`, as Consul does.
 */
function nodeServicesRoute(path: string, shape: 'map' | 'list'): Route {
  return {
    path,
    methods: ['GET'],
    handler: (req, reply, ctx) => {
      const { catalog, config } = ctx;
      const { name, filter, answer, acl } = readRequest(req, reply, ctx, 'Missing node name');
      return answer([Topic.node(name)], () => {
        const n = catalog.node(name);
        if (!n || !acl.node(n.node)) return null;
        const services = catalog
          .servicesOnNode(n.node)
          .filter((s) => acl.service(s.name))
          .map(renderNodeService)
          .filter((s) => !filter || filter(s));
        return {
          Node: renderNode(n, config.datacenter),
          Services: shape === 'list' ? services : Object.fromEntries(services.map((s) => [s.ID, s])),
        };
      });
    },
  };
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
    handler: (req, reply, ctx) => {
      const { catalog, config } = ctx;
      const { filter, nodeMeta, answer, acl } = readRequest(req, reply, ctx);
      return answer(
        [Topic.services],
        () => {
          // One Set per name: merging with Array.includes was quadratic in the tag count (issue 11 §5: a
          // service with 100,000 tags blocked the event loop for 8 s on every change).
          const merged = new Map<string, Set<string>>();
          for (const s of catalog.allServices()) {
            const n = catalog.node(s.node);
            if (!n) continue;
            if (nodeMeta && !nodeMeta(n.meta)) continue;
            if (!acl.service(s.name)) continue;
            if (filter && !filter(renderCatalogService(s, n, config.datacenter))) continue;
            let tags = merged.get(s.name);
            if (!tags) {
              tags = new Set();
              merged.set(s.name, tags);
            }
            for (const t of s.tags) tags.add(t);
          }
          const out: Record<string, string[]> = {};
          for (const [name, tags] of merged) out[name] = [...tags];
          return out;
        },
        CACHEABLE,
      );
    },
  },
  {
    path: '/v1/catalog/service/*',
    methods: ['GET'],
    handler: (req, reply, ctx) => {
      const { catalog, config } = ctx;
      const { name, tags, filter, nodeMeta, answer, acl } = readRequest(
        req,
        reply,
        ctx,
        'Missing service name',
      );
      return answer(
        [Topic.service(name)],
        () => {
          const out = [];
          for (const s of catalog.instancesOf(name)) {
            if (!hasTags(s, tags)) continue;
            const n = catalog.node(s.node);
            if (!n || (nodeMeta && !nodeMeta(n.meta))) continue;
            if (!acl.node(n.node) || !acl.service(s.name)) continue;
            const item = renderCatalogService(s, n, config.datacenter);
            if (filter && !filter(item)) continue;
            out.push(item);
          }
          return out;
        },
        CACHEABLE,
      );
    },
  },
  {
    path: '/v1/catalog/nodes',
    methods: ['GET'],
    handler: (req, reply, ctx) => {
      const { catalog, config } = ctx;
      const { filter, nodeMeta, answer, acl } = readRequest(req, reply, ctx);
      return answer([Topic.nodes], () =>
        catalog
          .nodes()
          .filter((n) => !nodeMeta || nodeMeta(n.meta))
          .filter((n) => acl.node(n.node))
          .map((n) => renderNode(n, config.datacenter))
          .filter((n) => !filter || filter(n)),
      );
    },
  },
  nodeServicesRoute('/v1/catalog/node/*', 'map'),
  nodeServicesRoute('/v1/catalog/node-services/*', 'list'),
  {
    path: '/v1/catalog/register',
    methods: ['PUT'],
    handler: async (req, reply, ctx) => {
      const { catalog, limits, config } = ctx;
      const body = decodeBody(req.body as Buffer, catalogRegisterSchema);
      if (body.Datacenter && body.Datacenter.toLowerCase() !== config.datacenter.toLowerCase()) {
        throw new HttpError(500, 'No path to datacenter');
      }
      const input = catalogRegisterFromBody(body, limits);
      // Consul's vetRegisterWithACL: node:write to change the node, service:write for the service (and each
      // service check), node:write for node checks
      const a = authz(req, ctx);
      const existing = catalog.node(input.node.node);
      if (!body.SkipNodeUpdate || !existing) a.require('node', input.node.node, 'write');
      if (input.service) a.require('service', input.service.name, 'write');
      for (const c of input.checks) {
        const svcId = c.serviceId;
        if (!svcId) a.require('node', input.node.node, 'write');
        else {
          const svc =
            input.service && input.service.id === svcId
              ? input.service
              : catalog.serviceOn(input.node.node, svcId);
          a.require('service', svc?.name ?? svcId, 'write');
        }
      }
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
    handler: async (req, reply, ctx) => {
      const { catalog, config } = ctx;
      const body = decodeBody(req.body as Buffer, catalogDeregisterSchema);
      const node = (body.Node ?? '').trim();
      if (node === '') throw new HttpError(500, 'Must provide node');
      // Consul's vetDeregisterWithACL: a service (or its check) needs service:write, the node or a node check node:write
      const a = authz(req, ctx);
      if (body.ServiceID)
        a.require('service', catalog.serviceOn(node, body.ServiceID)?.name ?? body.ServiceID, 'write');
      else if (body.CheckID) {
        const ch = catalog.check(node, body.CheckID);
        if (ch?.serviceId) a.require('service', ch.serviceName, 'write');
        else a.require('node', node, 'write');
      } else a.require('node', node, 'write');
      if (body.Datacenter && body.Datacenter.toLowerCase() !== config.datacenter.toLowerCase()) {
        throw new HttpError(500, 'No path to datacenter');
      }
      await catalog.catalogDeregister({ node, serviceId: body.ServiceID, checkId: body.CheckID });
      sendJson(reply, true);
    },
  },
];
