/**
 * Catalog records -> Consul wire shapes (field names and order as Consul emits them; Consul docs, Agent HTTP API,
 * §4, §5). Lists are `[]`, never null.
 */
import {
  type AgentService,
  type CatalogService,
  formatDuration,
  type HealthCheck,
  type HealthCheckDefinition,
  type Node,
  type NodeService,
} from '../../api/index.ts';
import type { Catalog, CheckRecord, NodeRecord, ServiceRecord } from '../catalog/index.ts';

/** A node. */
export function renderNode(n: NodeRecord, datacenter: string): Node {
  return {
    ID: n.id,
    Node: n.node,
    Address: n.address,
    Datacenter: datacenter,
    TaggedAddresses: n.taggedAddresses,
    Meta: n.meta,
    ...(n.locality ? { Locality: n.locality } : {}),
    CreateIndex: n.createIndex,
    ModifyIndex: n.modifyIndex,
  };
}

/** Consul's ConnectProxyConfig always carries MeshGateway and Expose (struct fields, never omitted). */
function proxyOf(s: ServiceRecord): Record<string, unknown> {
  return { ...s.proxy, MeshGateway: s.proxy?.['MeshGateway'] ?? {}, Expose: s.proxy?.['Expose'] ?? {} };
}

/** A service inside `health/service` and `catalog/node`. */
export function renderNodeService(s: ServiceRecord): NodeService {
  // Consul's NodeService: Kind, TaggedAddresses, Port, SocketPath and Locality are omitempty; keep
  // Consul's field order.
  return {
    ...(s.kind ? { Kind: s.kind } : {}),
    ID: s.id,
    Service: s.name,
    Tags: s.tags,
    Address: s.address,
    ...(s.taggedAddresses ? { TaggedAddresses: s.taggedAddresses } : {}),
    Meta: s.meta,
    ...(s.port !== 0 ? { Port: s.port } : {}),
    ...(s.socketPath ? { SocketPath: s.socketPath } : {}),
    Weights: s.weights,
    EnableTagOverride: s.enableTagOverride,
    ...(s.locality ? { Locality: s.locality } : {}),
    Proxy: proxyOf(s),
    Connect: s.connect ?? {},
    PeerName: '',
    CreateIndex: s.createIndex,
    ModifyIndex: s.modifyIndex,
  };
}

/** An agent service (`agent/services` values). */
export function renderAgentService(s: ServiceRecord, datacenter: string): AgentService {
  // api.AgentService: Kind, SocketPath, TaggedAddresses, Proxy, Connect and Locality are omitempty.
  const out: Record<string, unknown> = s.kind ? { Kind: s.kind } : {};
  Object.assign(out, {
    ID: s.id,
    Service: s.name,
    Tags: s.tags,
    Meta: s.meta,
    Port: s.port,
    Address: s.address,
  });
  if (s.socketPath) out['SocketPath'] = s.socketPath;
  if (s.taggedAddresses) out['TaggedAddresses'] = s.taggedAddresses;
  out['Weights'] = s.weights;
  out['EnableTagOverride'] = s.enableTagOverride;
  if (s.kind || s.proxy) out['Proxy'] = proxyOf(s);
  if (s.connect) out['Connect'] = s.connect;
  out['Datacenter'] = datacenter;
  if (s.locality) out['Locality'] = s.locality;
  return out as unknown as AgentService;
}

/** A catalog service entry. */
export function renderCatalogService(s: ServiceRecord, n: NodeRecord, datacenter: string): CatalogService {
  const out: Record<string, unknown> = {
    ID: n.id,
    Node: n.node,
    Address: n.address,
    Datacenter: datacenter,
    TaggedAddresses: n.taggedAddresses,
    NodeMeta: n.meta,
    ServiceKind: s.kind,
    ServiceID: s.id,
    ServiceName: s.name,
    ServiceTags: s.tags,
    ServiceAddress: s.address,
  };
  if (s.taggedAddresses) out['ServiceTaggedAddresses'] = s.taggedAddresses;
  Object.assign(out, {
    ServiceWeights: s.weights,
    ServiceMeta: s.meta,
    ServicePort: s.port,
    ServiceSocketPath: s.socketPath ?? '',
    ServiceEnableTagOverride: s.enableTagOverride,
    ServiceProxy: proxyOf(s),
    ServiceConnect: s.connect ?? {},
    ServiceLocality: s.locality ?? null,
    CreateIndex: s.createIndex,
    ModifyIndex: s.modifyIndex,
  });
  return out as unknown as CatalogService;
}

function renderDefinition(c: CheckRecord): HealthCheckDefinition {
  const d = c.def;
  const out: HealthCheckDefinition = {};
  if (d.http) out.HTTP = d.http;
  if (d.tlsServerName) out.TLSServerName = d.tlsServerName;
  if (d.tlsSkipVerify) out.TLSSkipVerify = true;
  if (d.header) out.Header = d.header;
  if (d.method && (d.type === 'http' || d.type === '')) out.Method = d.method;
  if (d.body) out.Body = d.body;
  if (d.disableRedirects) out.DisableRedirects = true;
  if (d.tcp) out.TCP = d.tcp;
  if (d.intervalMs) out.Interval = formatDuration(d.intervalMs);
  if (d.timeoutMs && d.type !== 'ttl') out.Timeout = formatDuration(d.timeoutMs);
  if (d.deregisterCriticalServiceAfterMs)
    out.DeregisterCriticalServiceAfter = formatDuration(d.deregisterCriticalServiceAfterMs);
  if (d.ttlMs) out.TTL = formatDuration(d.ttlMs);
  if (d.stored) Object.assign(out, d.stored);
  return out;
}

/** A health check; `ServiceTags` come from the owning service. */
export function renderCheck(c: CheckRecord, catalog: Catalog): HealthCheck {
  const svc = c.serviceId ? catalog.serviceOn(c.node, c.serviceId) : undefined;
  const d = c.def;
  return {
    Node: c.node,
    CheckID: c.checkId,
    Name: c.name,
    Status: c.status,
    Notes: c.notes,
    Output: c.output,
    ServiceID: c.serviceId,
    ServiceName: c.serviceName,
    ServiceTags: svc?.tags ?? [],
    Type: d.declaredType ?? d.type,
    Interval: d.intervalMs ? formatDuration(d.intervalMs) : '',
    Timeout: d.timeoutMs && d.type !== 'ttl' ? formatDuration(d.timeoutMs) : '',
    ExposedPort: d.exposedPort ?? 0,
    Definition: renderDefinition(c),
    CreateIndex: c.createIndex,
    ModifyIndex: c.modifyIndex,
  };
}
