// OTLP/HTTP with JSON bodies (https://opentelemetry.io/docs/specs/otlp/#otlphttp): ended spans wait
// in a bounded queue and leave in batches, one request at a time. A slow, failing or absent
// collector never reaches a request: when the queue is full a span is dropped and counted
// (nexus_otlp_spans_dropped_total), a batch the collector refuses is dropped after its retries, and
// shutdown sends what it can within its bound. Retries follow the spec's "Retryable Response Codes"
// (429, 502, 503, 504, and connection failures), with exponential backoff and Retry-After.
import { performance } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import { Agent, request } from 'undici';
import type { TelemetryConfig } from '../config/config.ts';
import type { Logger } from '../log/log.ts';
import { customMetric } from '../metrics/metrics.ts';
import type { AttributeValue, Span } from './tracing.ts';

export interface OtlpExporter {
  add(span: Span): void;
  shutdown(timeoutMs: number): Promise<void>;
}

export interface ExporterTuning {
  /** First backoff; doubled each retry, with ±20 % jitter, at most `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
  maxAttempts?: number;
}

const RETRYABLE = new Set([429, 502, 503, 504]);
type DropReason = 'queue_full' | 'export_failed' | 'shutdown';

// The body is written as text: building the OTLP object tree first and stringifying it cost about
// twice as much per span, all of it on the request thread.
const keyPrefixes = new Map<string, string>();
/** `{"key":"…","value":` per attribute name (a small, fixed set), escaped once. */
function keyPrefix(key: string): string {
  let p = keyPrefixes.get(key);
  if (p === undefined) {
    p = `{"key":${JSON.stringify(key)},"value":`;
    if (keyPrefixes.size < 1000) keyPrefixes.set(key, p);
  }
  return p;
}

/** An OTLP KeyValue list in JSON; non-finite numbers are left out (JSON has no NaN). */
export function encodeAttributes(attrs: Record<string, AttributeValue>): string {
  let out = '';
  for (const key in attrs) {
    const v = attrs[key]!;
    let value: string;
    if (typeof v === 'string') value = `{"stringValue":${JSON.stringify(v)}}`;
    else if (typeof v === 'boolean') value = v ? '{"boolValue":true}' : '{"boolValue":false}';
    else if (Number.isSafeInteger(v)) value = `{"intValue":${v}}`;
    else if (Number.isFinite(v)) value = `{"doubleValue":${v}}`;
    else continue;
    out += `${out ? ',' : ''}${keyPrefix(key)}${value}}`;
  }
  return `[${out}]`;
}

/**
 * Unix nanoseconds as OTLP/JSON writes a fixed64: a decimal string. Written as whole milliseconds and
 * six digits of nanoseconds: a double past 2^53 (any nanosecond timestamp) takes V8's slow path to
 * a string, about a microsecond each.
 */
function unixNanos(ms: number): string {
  const t = performance.timeOrigin + ms;
  const whole = Math.floor(t);
  const ns = Math.min(999_999, Math.round((t - whole) * 1e6));
  return `${whole}${ns < 100_000 ? String(ns).padStart(6, '0') : ns}`;
}

/** An ExportTraceServiceRequest in OTLP/JSON (ids as hex, enums as numbers, times as strings). */
export function encodeSpans(spans: Span[], resource: Record<string, AttributeValue>, scope: { name: string; version: string }): string {
  // One string per span, joined once: a body grown by += is a rope that undici flattens again when
  // it turns the body into bytes.
  const parts: string[] = new Array<string>(spans.length);
  for (let i = 0; i < spans.length; i++) {
    const s = spans[i]!;
    let one = `{"traceId":"${s.traceId}","spanId":"${s.spanId}"`;
    if (s.parentSpanId) one += `,"parentSpanId":"${s.parentSpanId}"`;
    if (s.traceState) one += `,"traceState":${JSON.stringify(s.traceState)}`;
    one += `,"name":${JSON.stringify(s.name)},"kind":${s.kind},"startTimeUnixNano":"${unixNanos(s.start)}","endTimeUnixNano":"${unixNanos(s.end)}","attributes":${encodeAttributes(s.attributes)}`;
    one += s.status ? `,"status":{"code":${s.status},"message":${JSON.stringify(s.statusMessage)}}}` : ',"status":{}}';
    parts[i] = one;
  }
  return `{"resourceSpans":[{"resource":{"attributes":${encodeAttributes(resource)}},"scopeSpans":[{"scope":${JSON.stringify(scope)},"spans":[${parts.join(',')}]}]}]}`;
}

/** Seconds or an HTTP date (RFC 9110 §10.2.3), in milliseconds from now; null when absent or unreadable. */
function retryAfterMs(v: string | string[] | undefined): number | null {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return null;
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const at = Date.parse(s);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}

export function createOtlpExporter(cfg: TelemetryConfig, deps: { registry: Registry; log: Logger; version: string }, tuning: ExporterTuning = {}): OtlpExporter {
  const url = cfg.otlpEndpoint!;
  const { log } = deps;
  const backoffMs = tuning.backoffMs ?? 1000;
  const maxBackoffMs = tuning.maxBackoffMs ?? 30_000;
  const maxAttempts = tuning.maxAttempts ?? 5;
  const headers: Record<string, string> = { ...cfg.otlpHeaders, 'content-type': 'application/json' };
  const resource: Record<string, AttributeValue> = { ...cfg.resourceAttributes, 'service.name': cfg.serviceName, 'service.version': deps.version, 'telemetry.sdk.name': 'nexus', 'telemetry.sdk.language': 'nodejs' };
  const scope = { name: 'nexus', version: deps.version };
  const agent = new Agent({ keepAliveTimeout: 30_000, connect: { timeout: Math.min(cfg.exportTimeoutMs, 10_000) } });

  const dropped: Record<DropReason, number> = { queue_full: 0, export_failed: 0, shutdown: 0 };
  const requests = { success: 0, retry: 0, failure: 0 };
  let exported = 0;
  let queue: Span[] = [];
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  let closing = false;
  /** Aborts the request in flight (shutdown's deadline). */
  const stop = new AbortController();
  /** Ends a backoff wait early (shutdown: the batch gets its last try at once). */
  const wake = new AbortController();
  let warned = 0;

  deps.registry.registerMetric(customMetric('nexus_otlp_spans_exported_total', 'Spans the OTLP collector accepted', 'counter', () => [{ labels: {}, value: exported }]));
  deps.registry.registerMetric(customMetric('nexus_otlp_spans_dropped_total', 'Spans not exported: queue_full (the collector is slower than the traffic), export_failed (refused or unreachable after retries), shutdown (still queued at the flush deadline)', 'counter', () =>
    (Object.keys(dropped) as DropReason[]).map((reason) => ({ labels: { reason }, value: dropped[reason] }))));
  deps.registry.registerMetric(customMetric('nexus_otlp_export_requests_total', 'Export requests to the OTLP collector by outcome: success, retry (a retryable failure, tried again), failure (given up)', 'counter', () =>
    (Object.keys(requests) as (keyof typeof requests)[]).map((outcome) => ({ labels: { outcome }, value: requests[outcome] }))));
  deps.registry.registerMetric(customMetric('nexus_otlp_queue_spans', 'Ended spans waiting to be exported', 'gauge', () => [{ labels: {}, value: queue.length }]));

  /** Logged at most once a minute: a collector that is down must not flood the log. */
  const warn = (fields: Record<string, unknown>, msg: string) => {
    const now = Date.now();
    if (now - warned < 60_000) return;
    warned = now;
    log.warn({ ...fields, endpoint: new URL(url).origin }, msg);
  };

  const sleep = (ms: number) => new Promise<void>((resolve) => {
    const signal = wake.signal;
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

  /** One POST: 'ok', 'retry' (with the collector's wait, if it named one) or 'fail'. */
  async function post(body: string): Promise<{ outcome: 'ok' | 'fail' } | { outcome: 'retry'; waitMs: number | null; why: string }> {
    try {
      const res = await request(url, {
        method: 'POST',
        headers,
        body,
        dispatcher: agent,
        signal: AbortSignal.any([stop.signal, AbortSignal.timeout(cfg.exportTimeoutMs)]),
      });
      await res.body.dump({ limit: 64 * 1024 }).catch(() => {});
      if (res.statusCode >= 200 && res.statusCode < 300) return { outcome: 'ok' };
      if (RETRYABLE.has(res.statusCode)) return { outcome: 'retry', waitMs: retryAfterMs(res.headers['retry-after']), why: `HTTP ${res.statusCode}` };
      warn({ status: res.statusCode }, 'OTLP collector refused a batch of spans; dropped');
      return { outcome: 'fail' };
    } catch (err) {
      return { outcome: 'retry', waitMs: null, why: (err as { code?: string }).code ?? (err as Error).name };
    }
  }

  async function send(batch: Span[]): Promise<void> {
    const body = encodeSpans(batch, resource, scope);
    for (let attempt = 1; ; attempt++) {
      const r = await post(body);
      if (r.outcome === 'ok') {
        requests.success++;
        exported += batch.length;
        return;
      }
      if (r.outcome === 'retry' && attempt < maxAttempts && !closing) {
        requests.retry++;
        const backoff = Math.min(maxBackoffMs, backoffMs * 2 ** (attempt - 1)) * (0.8 + Math.random() * 0.4);
        await sleep(Math.min(maxBackoffMs, r.waitMs ?? backoff));
        continue;
      }
      requests.failure++;
      if (r.outcome === 'retry') warn({ reason: r.why }, 'OTLP collector unreachable or busy; a batch of spans was dropped');
      if (stop.signal.aborted) dropped.shutdown += batch.length;
      else dropped.export_failed += batch.length;
      return;
    }
  }

  async function drain(): Promise<void> {
    // Full batches go at once; a partial one waits for the timer, unless shutting down.
    while (queue.length && (closing || queue.length >= cfg.maxExportBatchSize) && !stop.signal.aborted) {
      await send(queue.splice(0, cfg.maxExportBatchSize));
    }
  }

  function kick(): void {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    if (running) return;
    running = (async () => {
      try {
        if (!closing && queue.length && queue.length < cfg.maxExportBatchSize) await send(queue.splice(0, queue.length));
        await drain();
      } catch (err) {
        log.error({ err }, 'span export failed');
      } finally {
        running = null;
        if (queue.length && !closing) schedule();
      }
    })();
  }

  function schedule(): void {
    if (timer || running) return;
    timer = setTimeout(kick, cfg.scheduleDelayMs);
    timer.unref();
  }

  return {
    add(span) {
      if (queue.length >= cfg.maxQueueSize) {
        dropped.queue_full++;
        return;
      }
      queue.push(span);
      if (closing) return;
      if (queue.length >= cfg.maxExportBatchSize && !running) kick();
      else schedule();
    },

    async shutdown(timeoutMs) {
      if (closing) return;
      closing = true;
      if (timer) clearTimeout(timer);
      timer = null;
      wake.abort();
      const deadline = setTimeout(() => stop.abort(), timeoutMs);
      try {
        // A retry wait in progress ends now (closing); then whatever is queued goes out, without retries.
        if (running) await running;
        running = null;
        if (queue.length && !stop.signal.aborted) await drain();
      } finally {
        clearTimeout(deadline);
        dropped.shutdown += queue.length;
        queue = [];
        stop.abort();
        await agent.destroy().catch(() => {});
      }
    },
  };
}
