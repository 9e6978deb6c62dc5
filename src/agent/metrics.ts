/**
 * Agent metrics in Prometheus form (prom-client), served at `/v1/agent/metrics?format=prometheus`, and in
 * Consul's JSON form (`api.MetricsInfo`) at `/v1/agent/metrics`. Gauges are computed when scraped, so the
 * hot paths pay nothing but a counter increment.
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { Catalog } from './catalog/index.ts';

/** The agent's metrics registry. */
export interface AgentMetrics {
  readonly registry: Registry;
  /** Counts one HTTP request. */
  httpRequest(method: string, route: string, status: number): void;
  /** Counts a read the HTTP API answered ahead of its router (http/fast-read.ts); it is counted in httpRequest too. */
  httpFastRead(): void;
  /** Counts a write the HTTP API took ahead of its router (http/fast-write.ts); it is counted in httpRequest too. */
  httpFastWrite(): void;
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
  // prom-client's default names already start with process_/nodejs_: prefix only the product name
  collectDefaultMetrics({ register: registry, prefix: 'phare_' });
  // Counted in plain nested maps (route → method → status, keys the route table and the parser hand over
  // as constant strings) and handed to prom-client when scraped: its inc() with labels sorts and joins the
  // label names into a hash key and validates them on every call, a measurable share of a cached read.
  const counts = new Map<string, Map<string, Map<number, number>>>();
  new Counter({
    name: 'phare_http_requests_total',
    help: 'HTTP API requests by method, route and status code',
    labelNames: ['method', 'route', 'code'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [route, byMethod] of counts)
        for (const [method, byStatus] of byMethod)
          for (const [status, n] of byStatus) this.inc({ method, route, code: String(status) }, n);
    },
  });
  let fastReads = 0;
  new Counter({
    name: 'phare_http_fast_path_reads_total',
    help: 'HTTP reads answered from the read cache ahead of the router (also counted in phare_http_requests_total)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(fastReads);
    },
  });
  let fastWrites = 0;
  new Counter({
    name: 'phare_http_fast_path_writes_total',
    help: 'HTTP writes (service registrations) taken ahead of the router (also counted in phare_http_requests_total)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(fastWrites);
    },
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
      let byMethod = counts.get(route);
      if (byMethod === undefined) {
        byMethod = new Map();
        counts.set(route, byMethod);
      }
      let byStatus = byMethod.get(method);
      if (byStatus === undefined) {
        byStatus = new Map();
        byMethod.set(method, byStatus);
      }
      byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
    },
    httpFastRead() {
      fastReads++;
    },
    httpFastWrite() {
      fastWrites++;
    },
    gauge,
    text: () => registry.metrics(),
    async json() {
      return consulJson(await registry.getMetricsAsJSON());
    },
  };
}

/** Consul's `SampledValue` (counters and samples); `Count` is an integer in its Go client. */
interface SampledValue {
  Name: string;
  Count: number;
  Rate: number;
  Sum: number;
  Min: number;
  Max: number;
  Mean: number;
  Stddev: number;
  Labels: Record<string, string>;
}

type PromJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** Label values as strings, as Consul's JSON has them (`map[string]string`; `le` is a number in prom-client). */
function stringLabels(labels: Record<string, unknown> | undefined, drop?: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels ?? {})) if (k !== drop) out[k] = String(v);
  return out;
}

function sampled(name: string, count: number, sum: number, labels: Record<string, string>): SampledValue {
  const mean = count > 0 ? sum / count : 0;
  return {
    Name: name,
    Count: count,
    Rate: 0,
    Sum: sum,
    Min: mean,
    Max: mean,
    Mean: mean,
    Stddev: 0,
    Labels: labels,
  };
}

/**
 * prom-client's JSON -> Consul's `api.MetricsInfo` (`Gauges`, `Points`, `Counters`, `Samples`): names
 * dotted (`phare.http.requests.total`), labels strings, counters and histograms as sampled values with an
 * integer `Count`, so Consul's Go client decodes it.
 */
function consulJson(metrics: PromJson) {
  const gauges: { Name: string; Value: number; Labels: Record<string, string> }[] = [];
  const counters: SampledValue[] = [];
  const samples: SampledValue[] = [];
  for (const m of metrics) {
    const name = m.name.replace(/_/g, '.');
    const type = String(m.type);
    if (type === 'counter') {
      for (const v of m.values) {
        // a counter's increments are unknown: whole-number totals count as that many increments of 1
        const count = Number.isInteger(v.value) ? v.value : 1;
        counters.push(sampled(name, count, v.value, stringLabels(v.labels)));
      }
    } else if (type === 'histogram' || type === 'summary') {
      const series = new Map<string, { labels: Record<string, string>; count: number; sum: number }>();
      for (const v of m.values) {
        const metricName = (v as { metricName?: string }).metricName ?? '';
        const labels = stringLabels(v.labels, type === 'histogram' ? 'le' : 'quantile');
        const key = JSON.stringify(labels);
        let e = series.get(key);
        if (!e) {
          e = { labels, count: 0, sum: 0 };
          series.set(key, e);
        }
        if (metricName.endsWith('_count')) e.count = v.value;
        else if (metricName.endsWith('_sum')) e.sum = v.value;
      }
      for (const e of series.values()) samples.push(sampled(name, e.count, e.sum, e.labels));
    } else {
      for (const v of m.values) gauges.push({ Name: name, Value: v.value, Labels: stringLabels(v.labels) });
    }
  }
  return {
    Timestamp: new Date().toISOString(),
    Gauges: gauges,
    Points: [],
    Counters: counters,
    Samples: samples,
  };
}
