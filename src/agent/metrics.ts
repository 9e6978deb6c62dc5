/**
 * Agent metrics in Prometheus form (prom-client), served at `/v1/agent/metrics?format=prometheus`.
 * Gauges are computed when scraped, so the hot paths pay nothing but a counter increment.
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { Catalog } from './catalog/index.ts';

/** The agent's metrics registry. */
export interface AgentMetrics {
  readonly registry: Registry;
  /** Counts one HTTP request. */
  httpRequest(method: string, route: string, status: number): void;
  /** Registers a gauge computed at scrape time (health checker, DNS server add theirs). */
  gauge(name: string, help: string, collect: () => number | Record<string, number>, label?: string): void;
  text(): Promise<string>;
  json(): Promise<unknown>;
}

/**
 * Creates the registry with catalog gauges.
 *
 * @example
 * const metrics = createAgentMetrics(catalog);
 * metrics.httpRequest('GET', '/v1/health/service/*', 200);
 */
export function createAgentMetrics(catalog: Catalog): AgentMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'phare_process_' });
  const http = new Counter({
    name: 'phare_http_requests_total',
    help: 'HTTP API requests by method, route and status code',
    labelNames: ['method', 'route', 'code'],
    registers: [registry],
  });
  const gauge: AgentMetrics['gauge'] = (name, help, collect, label) => {
    new Gauge({
      name,
      help,
      labelNames: label ? [label] : [],
      registers: [registry],
      collect() {
        const v = collect();
        if (typeof v === 'number') this.set(v);
        else for (const [k, n] of Object.entries(v)) this.set({ [label as string]: k }, n);
      },
    });
  };
  gauge('phare_catalog_index', 'Current catalog index', () => catalog.index);
  gauge(
    'phare_catalog_services',
    'Registered service names',
    () => new Set(catalog.allServices().map((s) => s.name)).size,
  );
  gauge(
    'phare_catalog_service_instances',
    'Registered service instances',
    () => catalog.allServices().length,
  );
  gauge('phare_catalog_nodes', 'Known nodes', () => catalog.nodes().length);
  gauge(
    'phare_catalog_checks',
    'Health checks by status',
    () => {
      const out: Record<string, number> = { passing: 0, warning: 0, critical: 0 };
      for (const c of catalog.allChecks()) out[c.status] = (out[c.status] ?? 0) + 1;
      return out;
    },
    'status',
  );
  gauge('phare_blocking_queries', 'Blocking queries parked waiting for a change', () => catalog.waiterCount);
  return {
    registry,
    httpRequest(method, route, status) {
      http.inc({ method, route, code: String(status) });
    },
    gauge,
    text: () => registry.metrics(),
    async json() {
      const metrics = await registry.getMetricsAsJSON();
      const gauges: unknown[] = [];
      const counters: unknown[] = [];
      for (const m of metrics) {
        for (const v of m.values) {
          const item = { Name: m.name.replace(/_/g, '.'), Value: v.value, Labels: v.labels };
          if (String(m.type) === 'counter') counters.push({ ...item, Count: v.value, Sum: v.value });
          else gauges.push(item);
        }
      }
      return {
        Timestamp: new Date().toISOString(),
        Gauges: gauges,
        Points: [],
        Counters: counters,
        Samples: [],
      };
    },
  };
}
