/** `/v1/agent/*`: the local agent's own services and checks (Consul docs, Agent HTTP API). */
import type {
  AgentService,
  CheckDefinitionBody,
  CheckStatus,
  HealthCheck,
  ServiceRegistrationBody,
} from '../../api/index.ts';
import { seg, type Transport } from './transport.ts';

/** `GET /v1/agent/health/service/id/:id` body. */
export interface AgentServiceHealth {
  AggregatedStatus: CheckStatus | 'maintenance';
  Service: AgentService;
  Checks: HealthCheck[];
}

/** The agent area of the typed client. */
export interface AgentApi {
  /** `GET /v1/agent/self`. */
  self(signal?: AbortSignal): Promise<Record<string, unknown>>;
  /** `GET /v1/agent/members`. */
  members(signal?: AbortSignal): Promise<Record<string, unknown>[]>;
  /** `GET /v1/agent/services`, keyed by service ID. */
  services(options?: { filter?: string; signal?: AbortSignal }): Promise<Record<string, AgentService>>;
  /**
   * `GET /v1/agent/service/:id`; with `hash` it blocks until the content hash changes. Resolves `undefined`
   * when the agent does not know the ID (404).
   */
  service(
    id: string,
    options?: { hash?: string; waitMs?: number; signal?: AbortSignal },
  ): Promise<(AgentService & { ContentHash: string }) | undefined>;
  /** `GET /v1/agent/checks`, keyed by check ID. */
  checks(options?: { filter?: string; signal?: AbortSignal }): Promise<Record<string, HealthCheck>>;
  /** `GET /v1/agent/health/service/id/:id` (answers 200/429/503 by status; all decoded here). */
  serviceHealth(id: string, signal?: AbortSignal): Promise<AgentServiceHealth | undefined>;
  /** `PUT /v1/agent/service/register`. */
  register(body: ServiceRegistrationBody, options?: { replaceExistingChecks?: boolean }): Promise<void>;
  /** `PUT /v1/agent/service/deregister/:id`. */
  deregister(id: string): Promise<void>;
  /** `PUT /v1/agent/service/maintenance/:id?enable=&reason=`. */
  maintenance(id: string, enable: boolean, reason?: string): Promise<void>;
  /** `PUT /v1/agent/maintenance?enable=&reason=`: the agent's whole node. */
  nodeMaintenance(enable: boolean, reason?: string): Promise<void>;
  /** `PUT /v1/agent/check/register`. */
  registerCheck(body: CheckDefinitionBody & { Name: string }): Promise<void>;
  /** `PUT /v1/agent/check/deregister/:id`. */
  deregisterCheck(id: string): Promise<void>;
  /** `PUT /v1/agent/check/pass|warn|fail/:id?note=` — TTL heartbeats. */
  ttl(checkId: string, status: CheckStatus, note?: string): Promise<void>;
  /** `PUT /v1/agent/check/update/:id` with `{Status, Output}`. */
  updateCheck(checkId: string, status: CheckStatus, output?: string): Promise<void>;
}

const VERB: Record<CheckStatus, string> = { passing: 'pass', warning: 'warn', critical: 'fail' };

/** Builds the agent area over a transport. */
export function agentApi(t: Transport): AgentApi {
  return {
    self: async (signal) => (await t.call<Record<string, unknown>>('/v1/agent/self', { signal })).value,
    members: async (signal) =>
      (await t.call<Record<string, unknown>[]>('/v1/agent/members', { signal })).value,
    services: async (o = {}) =>
      (
        await t.call<Record<string, AgentService>>('/v1/agent/services', {
          query: { filter: o.filter },
          signal: o.signal,
        })
      ).value,
    async service(id, o = {}) {
      const query: Record<string, string | undefined> = {};
      let timeoutMs: number | undefined;
      if (o.hash) {
        const waitMs = o.waitMs ?? 300_000;
        query.hash = o.hash;
        query.wait = `${Math.round(waitMs)}ms`;
        timeoutMs = waitMs + waitMs / 16 + 5_000;
      }
      try {
        return (
          await t.call<AgentService & { ContentHash: string }>(`/v1/agent/service/${seg(id)}`, {
            query,
            signal: o.signal,
            timeoutMs,
          })
        ).value;
      } catch (err) {
        if ((err as { status?: number }).status === 404) return undefined;
        throw err;
      }
    },
    checks: async (o = {}) =>
      (
        await t.call<Record<string, HealthCheck>>('/v1/agent/checks', {
          query: { filter: o.filter },
          signal: o.signal,
        })
      ).value,
    async serviceHealth(id, signal) {
      try {
        return (
          await t.call<AgentServiceHealth>(`/v1/agent/health/service/id/${seg(id)}`, {
            signal,
            acceptStatus: [429, 503],
          })
        ).value;
      } catch (err) {
        if ((err as { status?: number }).status === 404) return undefined;
        throw err;
      }
    },
    async register(body, o = {}) {
      await t.call('/v1/agent/service/register', {
        method: 'PUT',
        body,
        query: { 'replace-existing-checks': o.replaceExistingChecks ? 'true' : undefined },
      });
    },
    async deregister(id) {
      await t.call(`/v1/agent/service/deregister/${seg(id)}`, { method: 'PUT' });
    },
    async maintenance(id, enable, reason) {
      await t.call(`/v1/agent/service/maintenance/${seg(id)}`, {
        method: 'PUT',
        query: { enable: String(enable), reason },
      });
    },
    async nodeMaintenance(enable, reason) {
      await t.call('/v1/agent/maintenance', { method: 'PUT', query: { enable: String(enable), reason } });
    },
    async registerCheck(body) {
      await t.call('/v1/agent/check/register', { method: 'PUT', body });
    },
    async deregisterCheck(id) {
      await t.call(`/v1/agent/check/deregister/${seg(id)}`, { method: 'PUT' });
    },
    async ttl(checkId, status, note) {
      await t.call(`/v1/agent/check/${VERB[status]}/${seg(checkId)}`, { method: 'PUT', query: { note } });
    },
    async updateCheck(checkId, status, output) {
      await t.call(`/v1/agent/check/update/${seg(checkId)}`, {
        method: 'PUT',
        body: { Status: status, Output: output ?? '' },
      });
    },
  };
}
