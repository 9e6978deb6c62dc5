/**
 * `/v1/agent/*` (Consul docs, Agent HTTP API): the agent's own services and checks. Agent-local reads carry no index
 * headers, as in Consul.
 */
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { type CheckStatus, CONSUL_VERSION, phareVersion } from '../../api/index.ts';
import type { Authorizer } from '../acl/index.ts';
import { type CheckRecord, MAINTENANCE, Topic, worstStatus } from '../catalog/index.ts';
import { compileFilter } from '../filter/index.ts';
import { park } from './blocking.ts';
import type { Route, RouteContext } from './context.ts';
import { AclFilter, authz, tail } from './context.ts';
import { checkRegisterSchema, checkUpdateSchema, decodeBody, serviceRegisterSchema } from './decode.ts';
import { HttpError } from './errors.ts';
import { blocking, one, parseBool, type QueryParams } from './query.ts';
import { renderAgentService, renderCheck } from './render.ts';
import { sendEmpty, sendJson, sendText } from './respond.ts';
import { checkFromBody, serviceFromBody } from './validate.ts';

const VERSION = CONSUL_VERSION;

function applyFilter<T>(items: T[], q: QueryParams): T[] {
  const expr = one(q, 'filter');
  if (!expr) return items;
  const f = compileFilter(expr);
  return items.filter((i) => f(i));
}

function parseEnable(q: QueryParams): boolean {
  const v = one(q, 'enable');
  if (v === undefined || v === '') throw new HttpError(400, 'Missing value for enable');
  const b = parseBool(v);
  if (b === undefined) throw new HttpError(400, `Invalid value for enable: ${JSON.stringify(v)}`);
  return b;
}

/** Consul truncates TTL output to OutputMaxSize as `<first N> ... (captured N of M bytes)`. */
function truncateOutput(out: string, max: number): string {
  const bytes = Buffer.byteLength(out);
  if (bytes <= max) return out;
  return `${Buffer.from(out).subarray(0, max).toString('utf8')} ... (captured ${max} of ${bytes} bytes)`;
}

/**
 * `PUT /v1/agent/service/register` once its body is read: decode, validate, authorize, write. Shared by the
 * route and the write fast path (fast-write.ts), so both decide and fail alike. The token is resolved only
 * after the body decoded (`authorizer` is called then), as the route always did: a bad body is a 400 whatever
 * the token.
 *
 * @example
 * await registerFromBody(ctx, body, () => ctx.acl.resolve(token), false, '127.0.0.1');
 */
export async function registerFromBody(
  ctx: RouteContext,
  raw: Buffer | undefined,
  authorizer: () => Authorizer,
  replaceExistingChecks: boolean,
  ip: string,
): Promise<void> {
  const { catalog, limits } = ctx;
  const body = decodeBody(raw, serviceRegisterSchema);
  const { service, checks } = serviceFromBody(body, limits);
  // Consul's vetServiceRegister: service:write on the name, and on the one it replaces under this ID
  const a = authorizer();
  a.require('service', service.name, 'write');
  const prev = catalog.agentService(service.id);
  if (prev && prev.name !== service.name) a.require('service', prev.name, 'write');
  await catalog.registerService(service, checks, {
    replaceExistingChecks,
    why: `PUT /v1/agent/service/register from ${ip}`,
  });
}

/**
 * Consul's vetCheckUpdate: a check of a service needs service:write on the service, a node check
 * node:write on the agent's node. An unknown check is left to the caller's 404.
 */
function requireCheckWrite(req: FastifyRequest, ctx: RouteContext, checkId: string): void {
  const a = authz(req, ctx);
  if (a.allowAll) return;
  const c = ctx.catalog.check(ctx.catalog.local.name, checkId);
  if (!c) return;
  if (c.serviceId) a.require('service', c.serviceName, 'write');
  else a.require('node', c.node, 'write');
}

/** Consul's vetServiceUpdate: service:write on the named service (an unknown ID is left to the caller's 404). */
function requireServiceWrite(req: FastifyRequest, ctx: RouteContext, serviceId: string): void {
  const a = authz(req, ctx);
  if (a.allowAll) return;
  const s = ctx.catalog.agentService(serviceId);
  if (s) a.require('service', s.name, 'write');
}

async function ttlUpdate(
  req: FastifyRequest,
  ctx: RouteContext,
  checkId: string,
  status: CheckStatus,
  output: string,
): Promise<void> {
  const c = ctx.catalog.check(ctx.catalog.local.name, checkId);
  if (!c || !(c.agent || c.checkId.startsWith('_'))) {
    throw new HttpError(
      404,
      `Unknown check ID ${JSON.stringify(checkId)}. Ensure that the check ID is passed, not the check name.`,
    );
  }
  requireCheckWrite(req, ctx, checkId);
  if (c.def.type !== 'ttl')
    throw new HttpError(500, `CheckID ${JSON.stringify(checkId)} does not have associated TTL`);
  await ctx.catalog.updateCheck(c.node, c.checkId, status, truncateOutput(output, c.def.outputMaxSize), {
    announce: true,
  });
  ctx.onTtlUpdate(c.checkId);
}

function aggregated(checks: CheckRecord[]): CheckStatus | 'maintenance' {
  if (
    checks.some((c) => c.checkId === MAINTENANCE.nodeCheckId || c.checkId.startsWith('_service_maintenance:'))
  ) {
    return 'maintenance';
  }
  return worstStatus(checks.map((c) => c.status));
}

const HEALTH_CODE: Record<string, number> = { passing: 200, warning: 429, critical: 503, maintenance: 503 };

function contentHash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

/** The agent route table. */
export const agentRoutes: Route[] = [
  {
    path: '/v1/agent/self',
    methods: ['GET'],
    handler: (req, reply, ctx) => {
      const { catalog, config, dnsAddress } = ctx;
      authz(req, ctx).require('agent', catalog.local.name, 'read');
      const member = memberOf(catalog.local, config.datacenter);
      const dns = dnsAddress();
      const dnsHost = dns && (dns.host.includes(':') ? `[${dns.host}]` : dns.host);
      const checks = catalog.agentChecks();
      sendJson(reply, {
        Config: {
          Datacenter: config.datacenter,
          PrimaryDatacenter: config.datacenter,
          NodeName: catalog.local.name,
          NodeID: catalog.local.id,
          Revision: 'phare',
          Server: true,
          Version: VERSION,
          BuildDate: '2026-11-23T00:00:00Z',
          // ns, as Consul: Patroni reads it after an `Invalid Session TTL` answer
          SessionTTLMin: 10_000_000_000,
        },
        // DNSAddrs/DNSPort/DNSDomain as Consul's runtime config shows them (`tcp://host:port`, -1 when off):
        // `phare doctor` reads them to ask the agent's DNS, against Consul as against Phare.
        DebugConfig: {
          Phare: true,
          PhareVersion: phareVersion(),
          Store: config.store,
          DataDir: config.dev ? '' : config.dataDir,
          DNSAddrs: dns ? [`tcp://${dnsHost}:${dns.port}`, `udp://${dnsHost}:${dns.port}`] : [],
          DNSPort: dns ? dns.port : -1,
          DNSDomain: `${config.domain.replace(/\.$/, '')}.`,
        },
        Coord: { Vec: [0, 0, 0, 0, 0, 0, 0, 0], Error: 1.5, Adjustment: 0, Height: 1e-5 },
        Member: member,
        Stats: {
          agent: {
            check_monitors: '0',
            check_ttls: String(checks.filter((c) => c.def.type === 'ttl').length),
            checks: String(checks.length),
            services: String(catalog.agentServices().length),
          },
          build: { version: VERSION, revision: 'phare', prerelease: '' },
          consul: {
            leader: 'true',
            leader_addr: `${catalog.local.address}:8300`,
            server: 'true',
            known_datacenters: '1',
            bootstrap: 'true',
          },
          runtime: { arch: process.arch, os: process.platform, version: process.version },
        },
        // the node's metadata, as Consul's agent/self shows it (--node-meta, consul-version)
        Meta: catalog.node(catalog.local.name)?.meta ?? {},
        xDS: { SupportedProxies: {}, Port: -1 },
      });
    },
  },
  {
    path: '/v1/agent/members',
    methods: ['GET'],
    handler: (req, reply, ctx) => {
      const { catalog, config, cluster } = ctx;
      // Consul filters members by node:read
      const acl = new AclFilter(authz(req, ctx));
      const members = cluster.members?.()?.filter((m) => acl.node(m.node));
      if (!members) {
        const self = acl.node(catalog.local.name) ? [memberOf(catalog.local, config.datacenter)] : [];
        acl.mark(reply);
        return sendJson(reply, self);
      }
      acl.mark(reply);
      // Serf member status codes: 1 alive, 3 left, 4 failed.
      const code = { alive: 1, left: 3, failed: 4 } as const;
      return sendJson(
        reply,
        members.map((m) => {
          const n = catalog.node(m.node);
          return {
            ...memberOf({ name: m.node, id: n?.id ?? '', address: m.address }, config.datacenter),
            Status: code[m.status],
          };
        }),
      );
    },
  },
  {
    path: '/v1/agent/version',
    methods: ['GET'],
    handler: (_req, reply) =>
      sendJson(reply, { SHA: 'phare', BuildDate: '2026-11-23T00:00:00Z', HumanVersion: VERSION, FIPS: '' }),
  },
  {
    path: '/v1/agent/services',
    methods: ['GET'],
    handler: (req, reply, ctx) => {
      const { catalog, config } = ctx;
      const acl = new AclFilter(authz(req, ctx));
      const items = applyFilter(
        catalog
          .agentServices()
          .filter((s) => acl.service(s.name))
          .map((s) => renderAgentService(s, config.datacenter)),
        req.query as QueryParams,
      );
      acl.mark(reply);
      sendJson(reply, Object.fromEntries(items.map((s) => [s.ID, s])));
    },
  },
  {
    path: '/v1/agent/service/*',
    methods: ['GET'],
    handler: async (req, reply, ctx) => {
      const { catalog, config, closing } = ctx;
      const id = tail(req);
      const q = req.query as QueryParams;
      const svc = catalog.agentService(id);
      if (svc) authz(req, ctx).require('service', svc.name, 'read');
      const render = () => {
        const s = catalog.agentService(id);
        if (!s) return undefined;
        const body = renderAgentService(s, config.datacenter);
        return { ...body, ContentHash: contentHash(body) };
      };
      let body = render();
      const hash = one(q, 'hash');
      if (body && hash && hash === body.ContentHash) {
        // hash-based blocking (Consul docs, Blocking Queries): wait until the service's content changes
        const topics = [Topic.service(body.Service)];
        const changed = () => {
          body = render();
          return body?.ContentHash !== hash;
        };
        if (!(await park(catalog, closing, reply, topics, changed, blocking(q).waitMs))) return;
      }
      if (!body) throw new HttpError(404, `unknown service ID: ${id}`);
      reply.header('X-Consul-ContentHash', body.ContentHash);
      sendJson(reply, body);
    },
  },
  {
    path: '/v1/agent/checks',
    methods: ['GET'],
    handler: (req, reply, ctx) => {
      const { catalog } = ctx;
      const acl = new AclFilter(authz(req, ctx));
      const items = applyFilter(
        catalog
          .agentChecks()
          .filter((c) => (c.serviceId ? acl.service(c.serviceName) : acl.node(c.node)))
          .map((c) => renderCheck(c, catalog)),
        req.query as QueryParams,
      );
      acl.mark(reply);
      sendJson(reply, Object.fromEntries(items.map((c) => [c.CheckID, c])));
    },
  },
  {
    path: '/v1/agent/health/service/id/*',
    methods: ['GET'],
    handler: (req, reply, ctx) => {
      const { catalog, config } = ctx;
      const id = tail(req);
      const q = req.query as QueryParams;
      const s = catalog.agentService(id);
      if (s) authz(req, ctx).require('service', s.name, 'read');
      if (!s) {
        if (one(q, 'format') === 'text') return sendText(reply, 404, `ServiceId ${id} not found`);
        throw new HttpError(404, `ServiceId ${id} not found`);
      }
      const checks = catalog.checksFor(s.node, s.id);
      const status = aggregated(checks);
      reply.code(HEALTH_CODE[status] ?? 503);
      reply.header('X-Consul-Reason', status);
      if (one(q, 'format') === 'text') return sendText(reply, HEALTH_CODE[status] ?? 503, status);
      sendJson(
        reply,
        {
          AggregatedStatus: status,
          Service: renderAgentService(s, config.datacenter),
          Checks: checks.map((c) => renderCheck(c, catalog)),
        },
        HEALTH_CODE[status],
      );
    },
  },
  {
    path: '/v1/agent/health/service/name/*',
    methods: ['GET'],
    handler: (req, reply, ctx) => {
      const { catalog, config } = ctx;
      const name = tail(req);
      const q = req.query as QueryParams;
      authz(req, ctx).require('service', name, 'read');
      const services = catalog.agentServices().filter((s) => s.name.toLowerCase() === name.toLowerCase());
      if (services.length === 0) {
        if (one(q, 'format') === 'text') return sendText(reply, 404, `ServiceName ${name} Not Found`);
        throw new HttpError(404, `ServiceName ${name} Not Found`);
      }
      const entries = services.map((s) => {
        const checks = catalog.checksFor(s.node, s.id);
        return {
          AggregatedStatus: aggregated(checks),
          Service: renderAgentService(s, config.datacenter),
          Checks: checks.map((c) => renderCheck(c, catalog)),
        };
      });
      const order = ['passing', 'warning', 'critical', 'maintenance'];
      const worst = entries.reduce(
        (w, e) => (order.indexOf(e.AggregatedStatus) > order.indexOf(w) ? e.AggregatedStatus : w),
        'passing' as string,
      );
      if (one(q, 'format') === 'text') return sendText(reply, HEALTH_CODE[worst] ?? 503, worst);
      sendJson(reply, entries, HEALTH_CODE[worst]);
    },
  },
  {
    path: '/v1/agent/service/register',
    methods: ['PUT'],
    handler: async (req, reply, ctx) => {
      const rec = one(req.query as QueryParams, 'replace-existing-checks');
      const replace = rec !== undefined && (rec === '' || rec === 'true' || rec === '1');
      await registerFromBody(ctx, req.body as Buffer | undefined, () => authz(req, ctx), replace, req.ip);
      sendEmpty(reply);
    },
  },
  {
    // GET as well as PUT: python-consul 0.7.1 deregisters with GET (README, Consul compatibility)
    path: '/v1/agent/service/deregister/*',
    methods: ['PUT', 'GET'],
    handler: async (req, reply, ctx) => {
      const { catalog } = ctx;
      const id = tail(req);
      if (id === '') throw new HttpError(400, 'Missing service ID');
      requireServiceWrite(req, ctx, id);
      await catalog.deregisterService(id, {
        why: `${req.method} /v1/agent/service/deregister from ${req.ip}`,
      });
      sendEmpty(reply);
    },
  },
  {
    path: '/v1/agent/service/maintenance/*',
    methods: ['PUT'],
    handler: async (req, reply, ctx) => {
      const { catalog } = ctx;
      const id = tail(req);
      if (id === '') throw new HttpError(400, 'Missing service ID');
      requireServiceWrite(req, ctx, id);
      const q = req.query as QueryParams;
      const enable = parseEnable(q);
      await catalog.setServiceMaintenance(id, enable, one(q, 'reason') ?? '');
      sendEmpty(reply);
    },
  },
  {
    path: '/v1/agent/maintenance',
    methods: ['PUT'],
    handler: async (req, reply, ctx) => {
      const { catalog } = ctx;
      const q = req.query as QueryParams;
      authz(req, ctx).require('node', catalog.local.name, 'write');
      await catalog.setNodeMaintenance(parseEnable(q), one(q, 'reason') ?? '');
      sendEmpty(reply);
    },
  },
  {
    path: '/v1/agent/check/register',
    methods: ['PUT'],
    handler: async (req, reply, ctx) => {
      const { catalog, limits } = ctx;
      const body = decodeBody(req.body as Buffer, checkRegisterSchema);
      const name = body.Name ?? '';
      if (name.trim() === '') throw new HttpError(400, 'Missing check name');
      const serviceId = body.ServiceID ?? '';
      const owner = serviceId ? catalog.agentService(serviceId) : undefined;
      if (serviceId && !owner) {
        throw new HttpError(404, `ServiceID ${JSON.stringify(serviceId)} does not exist`);
      }
      // Consul's vetCheckRegister: service:write for a service's check, node:write for a node check
      if (owner) authz(req, ctx).require('service', owner.name, 'write');
      else authz(req, ctx).require('node', catalog.local.name, 'write');
      // replacing a check of another owner needs that owner's write too
      requireCheckWrite(req, ctx, body.CheckID || body.ID || name);
      const input = checkFromBody(body, limits, {
        checkId: body.CheckID || body.ID || name,
        name,
        serviceId,
        badStatus: () => 'Bad check status',
      });
      await catalog.registerCheck(input);
      sendEmpty(reply);
    },
  },
  {
    path: '/v1/agent/check/deregister/*',
    methods: ['PUT', 'GET'],
    handler: async (req, reply, ctx) => {
      const { catalog } = ctx;
      const id = tail(req);
      if (id === '') throw new HttpError(400, 'Missing check ID');
      requireCheckWrite(req, ctx, id);
      await catalog.deregisterCheck(id);
      sendEmpty(reply);
    },
  },
  ...(['pass', 'warn', 'fail'] as const).map(
    (verb): Route => ({
      path: `/v1/agent/check/${verb}/*`,
      methods: ['PUT', 'GET'],
      handler: async (req, reply, ctx) => {
        const id = tail(req);
        if (id === '') throw new HttpError(400, 'Missing check ID');
        const status = verb === 'pass' ? 'passing' : verb === 'warn' ? 'warning' : 'critical';
        await ttlUpdate(req, ctx, id, status, one(req.query as QueryParams, 'note') ?? '');
        sendEmpty(reply);
      },
    }),
  ),
  {
    path: '/v1/agent/check/update/*',
    methods: ['PUT'],
    handler: async (req, reply, ctx) => {
      const id = tail(req);
      if (id === '') throw new HttpError(400, 'Missing check ID');
      const body = decodeBody(req.body as Buffer, checkUpdateSchema);
      const status = body.Status ?? '';
      if (!['passing', 'warning', 'critical'].includes(status)) {
        throw new HttpError(400, `Invalid check status: '${status}'`);
      }
      await ttlUpdate(req, ctx, id, status as CheckStatus, body.Output ?? '');
      sendEmpty(reply);
    },
  },
  {
    path: '/v1/agent/metrics',
    methods: ['GET'],
    handler: async (req, reply, ctx) => {
      authz(req, ctx).require('agent', ctx.catalog.local.name, 'read');
      const q = req.query as QueryParams;
      const accept = String(req.headers.accept ?? '');
      if (
        one(q, 'format') === 'prometheus' ||
        accept.includes('openmetrics') ||
        accept.includes('version=0.0.4')
      ) {
        reply
          .code(200)
          .header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
          .send(await ctx.metricsText());
        return;
      }
      sendJson(reply, await ctx.metricsJson());
    },
  },
];

function memberOf(local: { name: string; id: string; address: string }, dc: string) {
  return {
    Name: local.name,
    Addr: local.address,
    Port: 8301,
    Tags: {
      role: 'consul',
      dc,
      port: '8300',
      id: local.id,
      build: `${VERSION}:phare`,
      vsn: '2',
      vsn_min: '2',
      vsn_max: '3',
      raft_vsn: '3',
      bootstrap: '1',
      segment: '',
      acls: '0',
      wan_join_port: '8302',
      ft_fs: '1',
      ft_si: '1',
    },
    Status: 1,
    ProtocolMin: 1,
    ProtocolMax: 5,
    ProtocolCur: 2,
    DelegateMin: 2,
    DelegateMax: 5,
    DelegateCur: 4,
  };
}
