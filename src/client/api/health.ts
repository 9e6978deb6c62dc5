/** `/v1/health/*`: instances with their checks — what discovery watches (Consul docs, Health HTTP API). */
import type { CheckStatus, HealthCheck, ServiceEntry } from '../../api/index.ts';
import { tagList } from './catalog.ts';
import { type Indexed, type QueryOptions, seg, type Transport } from './transport.ts';

/** The health area of the typed client. */
export interface HealthApi {
  /** `GET /v1/health/service/:name` — `passing` drops entries with any non-passing check. */
  service(
    name: string,
    q?: QueryOptions & { tag?: string | string[]; passing?: boolean },
  ): Promise<Indexed<ServiceEntry[]>>;
  /** `GET /v1/health/checks/:service`. */
  checks(service: string, q?: QueryOptions): Promise<Indexed<HealthCheck[]>>;
  /** `GET /v1/health/node/:node`. */
  node(node: string, q?: QueryOptions): Promise<Indexed<HealthCheck[]>>;
  /** `GET /v1/health/state/:state` (`any` for all). */
  state(state: CheckStatus | 'any', q?: QueryOptions): Promise<Indexed<HealthCheck[]>>;
}

/** Builds the health area over a transport. */
export function healthApi(t: Transport): HealthApi {
  return {
    service: (name, q = {}) =>
      t.read(`/v1/health/service/${seg(name)}`, q, { tag: tagList(q.tag), passing: q.passing === true }),
    checks: (service, q) => t.read(`/v1/health/checks/${seg(service)}`, q),
    node: (node, q) => t.read(`/v1/health/node/${seg(node)}`, q),
    state: (state, q) => t.read(`/v1/health/state/${seg(state)}`, q),
  };
}
