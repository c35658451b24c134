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

interface Durations {
  /** Per bucket (not cumulative); the last slot counts values above every bound (+Inf). */
  counts: number[];
  sum: number;
}

type MetricValue = { labels: Record<string, string | number>; value: number; metricName?: string };

/** A metric object in the shape prom-client's Registry renders (name, help, type, get()). */
function customMetric(name: string, help: string, type: 'counter' | 'histogram', values: () => MetricValue[]): Metric {
  return { name, help, type, aggregator: 'sum', get: async () => ({ name, help, type, aggregator: 'sum', values: values() }) } as unknown as Metric;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'nexus_' });
  // surface → method → status → count
  const requests = new Map<string, Map<string, Map<number, number>>>();
  const durations = new Map<string, Durations>();

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
    const name = 'nexus_http_request_duration_seconds';
    const out: MetricValue[] = [];
    for (const [surface, d] of durations) {
      let cumulative = 0;
      DURATION_BUCKETS.forEach((le, i) => {
        cumulative += d.counts[i]!;
        out.push({ metricName: `${name}_bucket`, labels: { le, surface }, value: cumulative });
      });
      cumulative += d.counts[DURATION_BUCKETS.length]!;
      out.push({ metricName: `${name}_bucket`, labels: { le: '+Inf', surface }, value: cumulative });
      out.push({ metricName: `${name}_sum`, labels: { surface }, value: d.sum });
      out.push({ metricName: `${name}_count`, labels: { surface }, value: cumulative });
    }
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
      if (!d) durations.set(surface, (d = { counts: new Array<number>(DURATION_BUCKETS.length + 1).fill(0), sum: 0 }));
      let i = 0;
      while (i < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[i]!) i++;
      d.counts[i]!++;
      d.sum += seconds;
    },
  };
}
