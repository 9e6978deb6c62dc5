/** `/v1/catalog/*`: the registry's view of nodes and services (Consul docs, Catalog HTTP API). */
import type { CatalogService, Node, NodeService } from '../../api/index.ts';
import { type Indexed, type QueryOptions, seg, type Transport } from './transport.ts';

/** Body of `PUT /v1/catalog/register` (the fields Phare reads). */
export interface CatalogRegistration {
  Node: string;
  Address: string;
  ID?: string;
  Datacenter?: string;
  NodeMeta?: Record<string, string>;
  TaggedAddresses?: Record<string, string>;
  Service?: {
    ID?: string;
    Service: string;
    Tags?: string[];
    Address?: string;
    Port?: number;
    Meta?: Record<string, string>;
  };
  Check?: Record<string, unknown>;
  Checks?: Record<string, unknown>[];
  SkipNodeUpdate?: boolean;
}

/** The catalog area of the typed client. */
export interface CatalogApi {
  /** `GET /v1/catalog/datacenters`. */
  datacenters(signal?: AbortSignal): Promise<string[]>;
  /** `GET /v1/catalog/services`: service name -> tags. */
  services(q?: QueryOptions): Promise<Indexed<Record<string, string[]>>>;
  /** `GET /v1/catalog/service/:name` (`tag` repeatable, AND). */
  service(name: string, q?: QueryOptions & { tag?: string | string[] }): Promise<Indexed<CatalogService[]>>;
  /** `GET /v1/catalog/nodes`. */
  nodes(q?: QueryOptions): Promise<Indexed<Node[]>>;
  /** `GET /v1/catalog/node/:name`; `value` is null when the node is unknown. */
  node(
    name: string,
    q?: QueryOptions,
  ): Promise<Indexed<{ Node: Node; Services: Record<string, NodeService> } | null>>;
  /** `PUT /v1/catalog/register`. */
  register(body: CatalogRegistration): Promise<boolean>;
  /** `PUT /v1/catalog/deregister`. */
  deregister(body: {
    Node: string;
    ServiceID?: string;
    CheckID?: string;
    Datacenter?: string;
  }): Promise<boolean>;
}

/** Builds the catalog area over a transport. */
export function catalogApi(t: Transport): CatalogApi {
  return {
    datacenters: async (signal) => (await t.call<string[]>('/v1/catalog/datacenters', { signal })).value,
    services: (q) => t.read('/v1/catalog/services', q),
    service: (name, q = {}) => t.read(`/v1/catalog/service/${seg(name)}`, q, { tag: tagList(q.tag) }),
    nodes: (q) => t.read('/v1/catalog/nodes', q),
    node: (name, q) => t.read(`/v1/catalog/node/${seg(name)}`, q),
    register: async (body) => (await t.call<boolean>('/v1/catalog/register', { method: 'PUT', body })).value,
    deregister: async (body) =>
      (await t.call<boolean>('/v1/catalog/deregister', { method: 'PUT', body })).value,
  };
}

/** A tag option as the repeatable `?tag=` list. */
export function tagList(tag: string | string[] | undefined): string[] | undefined {
  if (tag === undefined) return undefined;
  return Array.isArray(tag) ? tag : [tag];
}
