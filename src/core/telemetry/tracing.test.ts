// The tracer and its OTLP exporter against a real local collector (test/helpers/otlp-collector.ts).
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { startCollector, type Collector } from '../../../test/helpers/otlp-collector.ts';
import { loadConfig } from '../config/config.ts';
import { createLogger } from '../log/log.ts';
import { createOtlpExporter } from './otlp-exporter.ts';
import { createSampler, createTracing, SpanKind, type Tracing } from './tracing.ts';

const log = createLogger({ level: 'silent' });
let collector: Collector | null = null;
afterEach(async () => {
  await collector?.close();
  collector = null;
});

function tracingTo(url: string, env: Record<string, string> = {}) {
  const registry = new Registry();
  const cfg = loadConfig({ env: { NEXUS_OTLP_ENDPOINT: url, OTEL_BSP_SCHEDULE_DELAY: '20', OTEL_EXPORTER_OTLP_TIMEOUT: '300', ...env } }).telemetry;
  return { tracing: createTracing(cfg, { registry, log, version: '9.9.9' }), registry, cfg };
}

async function counters(registry: Registry): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const m of await registry.getMetricsAsJSON()) {
    for (const v of m.values) out[`${m.name}${Object.keys(v.labels).length ? `{${Object.values(v.labels).join(',')}}` : ''}`] = v.value;
  }
  return out;
}

function spans(tracing: Tracing, n: number): void {
  for (let i = 0; i < n; i++) tracing.start(`s${i}`, SpanKind.INTERNAL, null).set('i', i).finish();
}

describe('OTLP/HTTP JSON export', () => {
  it('sends ended spans in batches with the resource, the scope, ids in hex and the configured headers', async () => {
    collector = await startCollector();
    const { tracing, registry } = tracingTo(collector.url, { OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=secret%2Cwith-comma,X-Team=a', OTEL_SERVICE_NAME: 'edge-nexus', OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=test' });
    const root = tracing.start('GET /x', SpanKind.SERVER, null);
    const child = tracing.start('chat m', SpanKind.CLIENT, root).set('gen_ai.usage.input_tokens', 3).set('nexus.cost_usd', 0.5).set('nexus.stream', true);
    child.fail('upstream_error');
    child.finish();
    root.finish();
    const got = await collector.waitFor((s) => s.name === 'GET /x');
    const c = collector.spans.find((s) => s.name === 'chat m')!;
    expect(got).toMatchObject({ kind: 2, traceId: root.traceId, spanId: root.spanId, resource: { 'service.name': 'edge-nexus', 'service.version': '9.9.9', 'deployment.environment': 'test' } });
    expect(got.parentSpanId ?? '').toBe('');
    expect(c).toMatchObject({ kind: 3, traceId: root.traceId, parentSpanId: root.spanId, status: { code: 2, message: 'upstream_error' }, attributes: { 'gen_ai.usage.input_tokens': 3, 'nexus.cost_usd': 0.5, 'nexus.stream': true, 'error.type': 'upstream_error' } });
    expect(BigInt(c.endTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(c.startTimeUnixNano));
    expect(Math.abs(Number(BigInt(c.startTimeUnixNano) / 1_000_000n) - Date.now())).toBeLessThan(60_000);
    const req = collector.requests[0]!;
    expect(req.headers['x-api-key']).toBe('secret,with-comma');
    expect(req.headers['x-team']).toBe('a');
    expect(req.headers['content-type']).toBe('application/json');
    await until(async () => (await counters(registry))['nexus_otlp_spans_exported_total'] === 2);
    await tracing.shutdown(1000);
  });

  it('retries a 503 and then exports; drops a 400 batch without retrying, and counts both', async () => {
    collector = await startCollector('busy-503');
    // Two refusals, then accepted: switched by the collector itself, so however late this test's
    // timers run, the exporter's third try (of five) is the one that gets through.
    collector.okAfter = 2;
    const registry = new Registry();
    const cfg = loadConfig({ env: { NEXUS_OTLP_ENDPOINT: collector.url, OTEL_BSP_SCHEDULE_DELAY: '10' } }).telemetry;
    const exporter = createOtlpExporter(cfg, { registry, log, version: 'x' }, { backoffMs: 20, maxBackoffMs: 50 });
    // Spans made without an exporter of their own, handed to this one by hand.
    const tracing = createTracing({ ...cfg, otlpEndpoint: null }, { registry: new Registry(), log, version: 'x' });
    const s = tracing.start('retried', SpanKind.INTERNAL, null);
    s.finish();
    exporter.add(s);
    await collector.waitFor((x) => x.name === 'retried');
    expect(collector.requests.length).toBe(3);
    await until(async () => (await counters(registry))['nexus_otlp_spans_exported_total'] === 1);
    let m = await counters(registry);
    expect(m['nexus_otlp_export_requests_total{retry}']).toBeGreaterThanOrEqual(1);
    expect(m['nexus_otlp_export_requests_total{success}']).toBe(1);
    expect(collector.spans.filter((x) => x.name === 'retried')).toHaveLength(1);

    collector.mode = 'bad-400';
    const before = collector.requests.length;
    exporter.add(s);
    await until(async () => (await counters(registry))['nexus_otlp_spans_dropped_total{export_failed}'] === 1);
    expect(collector.requests.length).toBe(before + 1);
    m = await counters(registry);
    expect(m['nexus_otlp_export_requests_total{failure}']).toBe(1);
    await exporter.shutdown(500);
  });

  it('a collector that hangs or fails costs spans, never the caller: the queue stays bounded, drops are counted, shutdown keeps its bound', async () => {
    for (const mode of ['hang', 'fail-500'] as const) {
      collector = await startCollector(mode);
      const { tracing, registry } = tracingTo(collector.url, { OTEL_BSP_MAX_QUEUE_SIZE: '50', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '10' });
      spans(tracing, 500); // synchronous: never waits on the collector
      const m = await counters(registry);
      expect(m['nexus_otlp_queue_spans']).toBeLessThanOrEqual(50);
      expect(m['nexus_otlp_spans_dropped_total{queue_full}']).toBeGreaterThanOrEqual(440);
      const t0 = performance.now();
      await tracing.shutdown(400);
      expect(performance.now() - t0).toBeLessThan(5000);
      const after = await counters(registry);
      expect(after['nexus_otlp_queue_spans']).toBe(0);
      expect(after['nexus_otlp_spans_exported_total']).toBe(0);
      // Every span is accounted for: dropped for one reason or another.
      const dropped = after['nexus_otlp_spans_dropped_total{queue_full}']! + after['nexus_otlp_spans_dropped_total{export_failed}']! + after['nexus_otlp_spans_dropped_total{shutdown}']!;
      expect(dropped, mode).toBe(500);
      await collector.close();
      collector = null;
    }
  });

  it('a collector that is not there at all: the same, and no error escapes', async () => {
    collector = await startCollector();
    const url = collector.url;
    await collector.close();
    collector = null;
    const { tracing, registry } = tracingTo(url);
    spans(tracing, 5);
    await until(async () => (await counters(registry))['nexus_otlp_export_requests_total{retry}']! >= 1);
    await tracing.shutdown(300);
    const m = await counters(registry);
    expect(m['nexus_otlp_spans_exported_total']).toBe(0);
    expect(m['nexus_otlp_spans_dropped_total{export_failed}']! + m['nexus_otlp_spans_dropped_total{shutdown}']!).toBe(5);
  });

  it('flushes what is queued at shutdown', async () => {
    collector = await startCollector();
    const { tracing } = tracingTo(collector.url, { OTEL_BSP_SCHEDULE_DELAY: '60000' });
    spans(tracing, 3);
    expect(collector.spans).toHaveLength(0);
    await tracing.shutdown(2000);
    expect(collector.spans.map((s) => s.name).sort()).toEqual(['s0', 's1', 's2']);
  });
});

describe('sampling', () => {
  it('follows the parent by default and samples roots by trace-id ratio', () => {
    const parent = (sampled: boolean) => ({ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), sampled, traceState: '' });
    const pb = createSampler('parentbased_traceidratio', 0.25);
    expect(pb(parent(true), 'f'.repeat(32))).toBe(true);
    expect(pb(parent(false), '0'.repeat(31) + '1')).toBe(false);
    // The ratio reads the id's last 52 bits: low ids are kept, high ones not, the same way every time.
    expect(pb(null, '0'.repeat(19) + '1'.repeat(13))).toBe(true);
    expect(pb(null, '0'.repeat(19) + 'f'.repeat(13))).toBe(false);
    expect(createSampler('traceidratio', 0.25)(parent(true), '0'.repeat(19) + 'f'.repeat(13))).toBe(false);
    expect(createSampler('always_off', 1)(parent(true), 'a'.repeat(32))).toBe(false);
    expect(createSampler('parentbased_always_off', 1)(null, 'a'.repeat(32))).toBe(false);
    let kept = 0;
    const { tracing } = tracingTo('http://127.0.0.1:9', { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.5' });
    for (let i = 0; i < 2000; i++) if (tracing.start('x', SpanKind.SERVER, null).sampled) kept++;
    expect(kept).toBeGreaterThan(800);
    expect(kept).toBeLessThan(1200);
  });
});

async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('OTLP/JSON encoding', () => {
  it('writes times as decimal nanoseconds, numbers by kind, strings escaped, and leaves out what JSON cannot hold', async () => {
    const { encodeSpans } = await import('./otlp-exporter.ts');
    const { tracing } = tracingTo('http://127.0.0.1:9');
    const s = tracing.start('quote " and \\ and \n', SpanKind.CLIENT, null, 1234.5678915);
    s.set('int', 42).set('neg', -3).set('double', 0.25).set('bool', false).set('str', 'a"b\u0000c').set('nan', Number.NaN).set('inf', Infinity).set('huge', 2 ** 60);
    s.end = 2000;
    const body = JSON.parse(encodeSpans([s], { 'service.name': 'n' }, { name: 'nexus', version: '1' }));
    const span = body.resourceSpans[0].scopeSpans[0].spans[0];
    expect(span.name).toBe('quote " and \\ and \n');
    expect(span.startTimeUnixNano).toBe(String(BigInt(Math.floor(performance.timeOrigin + 1234.5678915)) * 1_000_000n + BigInt(Math.round(((performance.timeOrigin + 1234.5678915) % 1) * 1e6))));
    expect(span.startTimeUnixNano).toMatch(/^\d{19}$/);
    expect(span.attributes).toEqual([
      { key: 'int', value: { intValue: 42 } },
      { key: 'neg', value: { intValue: -3 } },
      { key: 'double', value: { doubleValue: 0.25 } },
      { key: 'bool', value: { boolValue: false } },
      { key: 'str', value: { stringValue: 'a"b\u0000c' } },
      { key: 'huge', value: { doubleValue: 2 ** 60 } },
    ]);
    expect(span.status).toEqual({});
    expect(body.resourceSpans[0].resource.attributes).toEqual([{ key: 'service.name', value: { stringValue: 'n' } }]);
  });
});
