// Prometheus metrics (prom-client), one registry per process context so tests can run several apps.
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'surface' | 'method' | 'status'>;
  httpDuration: Histogram<'surface'>;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'nexus_' });
  return {
    registry,
    httpRequests: new Counter({
      name: 'nexus_http_requests_total',
      help: 'HTTP requests answered on the public listener',
      labelNames: ['surface', 'method', 'status'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'nexus_http_request_duration_seconds',
      help: 'Time from request start to response end on the public listener',
      labelNames: ['surface'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300],
      registers: [registry],
    }),
  };
}
