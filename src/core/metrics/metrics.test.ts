import { describe, expect, it } from 'vitest';
import { createMetrics } from './metrics.ts';

describe('request metrics', () => {
  it('renders plain counters as a Prometheus counter and a cumulative histogram', async () => {
    const m = createMetrics();
    m.observeRequest('gateway', 'POST', 200, 0.0004);
    m.observeRequest('gateway', 'POST', 200, 0.001); // on a bound: counted in le="0.001"
    m.observeRequest('gateway', 'POST', 429, 0.02);
    m.observeRequest('control', 'GET', 404, 400);
    const text = await m.registry.metrics();
    expect(text).toContain('# TYPE nexus_http_requests_total counter');
    expect(text).toContain('nexus_http_requests_total{surface="gateway",method="POST",status="200"} 2');
    expect(text).toContain('nexus_http_requests_total{surface="gateway",method="POST",status="429"} 1');
    expect(text).toContain('nexus_http_requests_total{surface="control",method="GET",status="404"} 1');
    expect(text).toContain('# TYPE nexus_http_request_duration_seconds histogram');
    expect(text).toContain('nexus_http_request_duration_seconds_bucket{le="0.001",surface="gateway"} 2');
    expect(text).toContain('nexus_http_request_duration_seconds_bucket{le="0.01",surface="gateway"} 2');
    expect(text).toContain('nexus_http_request_duration_seconds_bucket{le="0.05",surface="gateway"} 3');
    expect(text).toContain('nexus_http_request_duration_seconds_bucket{le="+Inf",surface="gateway"} 3');
    expect(text).toContain('nexus_http_request_duration_seconds_count{surface="gateway"} 3');
    expect(text).toContain('nexus_http_request_duration_seconds_bucket{le="300",surface="control"} 0');
    expect(text).toContain('nexus_http_request_duration_seconds_bucket{le="+Inf",surface="control"} 1');
    expect(text).toMatch(/nexus_http_request_duration_seconds_sum\{surface="gateway"\} 0\.0214/);
    expect(text).toContain('nexus_process_cpu_seconds_total');
  });
});
