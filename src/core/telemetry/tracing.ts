// Spans and the sampler. A span is a plain object with its attributes in one record; ending a sampled
// span hands it to the exporter's queue (otlp-exporter.ts), which encodes and sends batches later.
// With no collector configured nothing here runs on a request: the server-span hooks are not
// installed (http-spans.ts), and the gateway and the proxy only pass on a caller's valid
// `traceparent` (trace-context.ts).
import { performance } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import type { TelemetryConfig } from '../config/config.ts';
import type { Logger } from '../log/log.ts';
import { createOtlpExporter, type OtlpExporter } from './otlp-exporter.ts';
import { incomingContext, newSpanId, newTraceId, type TraceContext } from './trace-context.ts';

/** OTLP's SpanKind numbers. */
export const SpanKind = { INTERNAL: 1, SERVER: 2, CLIENT: 3 } as const;
export type SpanKindValue = (typeof SpanKind)[keyof typeof SpanKind];

export type AttributeValue = string | number | boolean;

/** OTLP's Status codes. */
export const STATUS_UNSET = 0;
export const STATUS_ERROR = 2;

export class Span implements TraceContext {
  readonly traceId: string;
  readonly spanId: string;
  /** '' for a root span. */
  readonly parentSpanId: string;
  readonly sampled: boolean;
  readonly traceState: string;
  readonly kind: SpanKindValue;
  name: string;
  /** performance.now() milliseconds. */
  readonly start: number;
  end = 0;
  readonly attributes: Record<string, AttributeValue> = {};
  status: number = STATUS_UNSET;
  /** The error code (never an upstream's message, which could quote a secret). */
  statusMessage = '';
  private readonly onEnd: ((s: Span) => void) | null;

  constructor(name: string, kind: SpanKindValue, traceId: string, parent: TraceContext | null, sampled: boolean, onEnd: ((s: Span) => void) | null, start: number) {
    this.name = name;
    this.kind = kind;
    this.traceId = traceId;
    this.spanId = newSpanId();
    this.parentSpanId = parent ? parent.spanId : '';
    this.sampled = sampled;
    this.traceState = parent ? parent.traceState : '';
    this.onEnd = onEnd;
    this.start = start;
  }

  set(key: string, value: AttributeValue | null | undefined): this {
    if (value !== null && value !== undefined) this.attributes[key] = value;
    return this;
  }

  /** Status ERROR with a stable code as `error.type` (OTel's general attribute) and the status message. */
  fail(code: string): this {
    this.status = STATUS_ERROR;
    this.statusMessage = code;
    this.attributes['error.type'] = code;
    return this;
  }

  /** Ends the span once; a sampled one goes to the export queue. */
  finish(at = performance.now()): void {
    if (this.end) return;
    this.end = at;
    if (this.sampled) this.onEnd?.(this);
  }
}

export interface Tracing {
  /** A collector is configured: spans are made, sampled and exported. */
  readonly exporting: boolean;
  /** `traceparent` goes out on upstream calls (telemetry.propagate). */
  readonly propagate: boolean;
  /** A span under `parent` (a span of ours or the caller's context), or the root of a new trace. */
  start(name: string, kind: SpanKindValue, parent: TraceContext | null, start?: number): Span;
  /**
   * What a request's outgoing calls continue: its server span while exporting, else the caller's
   * valid context (when propagating), else null.
   */
  contextOf(req: { span?: Span | null; headers: Record<string, string | string[] | undefined> }): TraceContext | null;
  /** Sends what is queued, within `timeoutMs`; what is left is dropped (and counted). */
  shutdown(timeoutMs: number): Promise<void>;
}

type Sampler = (parent: TraceContext | null, traceId: string) => boolean;

/**
 * TraceIdRatioBased: the trace id's last 13 hex digits (52 random bits) read as a fraction, so every
 * participant that samples by ratio keeps the same traces.
 */
function byRatio(ratio: number): (traceId: string) => boolean {
  if (ratio >= 1) return () => true;
  if (ratio <= 0) return () => false;
  const bound = ratio * 2 ** 52;
  return (traceId) => parseInt(traceId.slice(19), 16) < bound;
}

/** `name` is one of config.ts SAMPLERS (OTEL_TRACES_SAMPLER's names). */
export function createSampler(name: string, ratio: number): Sampler {
  const root = name.endsWith('always_on') ? () => true : name.endsWith('always_off') ? () => false : byRatio(ratio);
  if (!name.startsWith('parentbased_')) return (_parent, traceId) => root(traceId);
  return (parent, traceId) => (parent ? parent.sampled : root(traceId));
}

export function createTracing(cfg: TelemetryConfig, deps: { registry: Registry; log: Logger; version: string }): Tracing {
  const sample = createSampler(cfg.sampler, cfg.sampleRatio);
  const exporter: OtlpExporter | null = cfg.otlpEndpoint ? createOtlpExporter(cfg, deps) : null;
  const onEnd = exporter ? (s: Span) => exporter.add(s) : null;
  const propagate = cfg.propagate;
  return {
    exporting: exporter !== null,
    propagate,
    start(name, kind, parent, start = performance.now()) {
      const traceId = parent ? parent.traceId : newTraceId();
      return new Span(name, kind, traceId, parent, sample(parent, traceId), onEnd, start);
    },
    contextOf(req) {
      if (req.span) return req.span;
      return propagate && req.headers.traceparent !== undefined ? incomingContext(req.headers) : null;
    },
    shutdown: (timeoutMs) => exporter?.shutdown(timeoutMs) ?? Promise.resolve(),
  };
}
