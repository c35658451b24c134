// Prometheus metrics (prom-client), one registry per process context so tests can run several apps.
// The per-request figures (count by surface/method/status, duration histogram by surface) are kept
// in plain numbers on the request path and turned into prom-client's metric shape only when
// /metrics is scraped: prom-client's own inc()/observe() hash a label object on every call.
import { Registry, collectDefaultMetrics, type Metric } from 'prom-client';

export interface Metrics {
  registry: Registry;
  /** One answered request on the public listener. */
  observeRequest(surface: string, method: string, status: number, seconds: number): void;
}

const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300];

export type MetricValue = { labels: Record<string, string | number>; value: number; metricName?: string };

/**
 * A metric in the shape prom-client's Registry renders (name, help, type, get()), whose values are
 * computed when /metrics is scraped. Surfaces register theirs on `ctx.metrics.registry`.
 */
export function customMetric(name: string, help: string, type: 'counter' | 'gauge' | 'histogram', values: () => MetricValue[]): Metric {
  return { name, help, type, aggregator: 'sum', get: async () => ({ name, help, type, aggregator: 'sum', values: values() }) } as unknown as Metric;
}

/** A histogram's counts as plain numbers: observing is a loop over the bounds and two additions. */
export class Buckets {
  /** Per bucket (not cumulative); the last slot counts values above every bound (+Inf). */
  private counts: number[];
  private sum = 0;
  private bounds: readonly number[];

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
  }

  /** The `_bucket` (cumulative, `le`), `_sum` and `_count` series of metric `name` with `labels`. */
  render(name: string, labels: Record<string, string>, out: MetricValue[]): void {
    let cumulative = 0;
    this.bounds.forEach((le, i) => {
      cumulative += this.counts[i]!;
      out.push({ metricName: `${name}_bucket`, labels: { le, ...labels }, value: cumulative });
    });
    cumulative += this.counts[this.bounds.length]!;
    out.push({ metricName: `${name}_bucket`, labels: { le: '+Inf', ...labels }, value: cumulative });
    out.push({ metricName: `${name}_sum`, labels, value: this.sum });
    out.push({ metricName: `${name}_count`, labels, value: cumulative });
  }
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'nexus_' });
  // surface → method → status → count
  const requests = new Map<string, Map<string, Map<number, number>>>();
  const durations = new Map<string, Buckets>();

  registry.registerMetric(customMetric('nexus_http_requests_total', 'HTTP requests answered on the public listener', 'counter', () => {
    const out: MetricValue[] = [];
    for (const [surface, byMethod] of requests) {
      for (const [method, byStatus] of byMethod) {
        for (const [status, value] of byStatus) out.push({ labels: { surface, method, status: String(status) }, value });
      }
    }
    return out;
  }));
  registry.registerMetric(customMetric('nexus_http_request_duration_seconds', 'Time from request start to response end on the public listener', 'histogram', () => {
    const out: MetricValue[] = [];
    for (const [surface, d] of durations) d.render('nexus_http_request_duration_seconds', { surface }, out);
    return out;
  }));

  return {
    registry,
    observeRequest(surface, method, status, seconds) {
      let byMethod = requests.get(surface);
      if (!byMethod) requests.set(surface, (byMethod = new Map()));
      let byStatus = byMethod.get(method);
      if (!byStatus) byMethod.set(method, (byStatus = new Map()));
      byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
      let d = durations.get(surface);
      if (!d) durations.set(surface, (d = new Buckets(DURATION_BUCKETS)));
      d.observe(seconds);
    },
  };
}
