// The service proxy's span: one CLIENT span per proxied request, under the request's SERVER span,
// naming the service, the route it took (direct or through a node) and the bytes each way. The
// service (directly, or through the agent, which passes the header on as any end-to-end header)
// receives a `traceparent` whose parent is this span.
import type { TraceContext } from '../../core/telemetry/trace-context.ts';
import { SpanKind, type Span, type Tracing } from '../../core/telemetry/tracing.ts';

/** The span while exporting, else null; `forward` carries it as `trace` when propagating. */
export function startProxySpan(tracing: Tracing, parent: Span | null, service: { id: string; slug: string }, method: string): Span | null {
  if (!parent) return null;
  return tracing
    .start(`proxy ${service.slug}`, SpanKind.CLIENT, parent)
    .set('http.request.method', method)
    .set('nexus.service.slug', service.slug)
    .set('nexus.service.id', service.id);
}

/** What the proxied request's outgoing headers continue, if anything (null: pass the caller's as they came). */
export function proxyTrace(tracing: Tracing, span: Span | null): TraceContext | null {
  return span && tracing.propagate ? span : null;
}

export function endProxySpan(span: Span, e: { status: number; complete: boolean; routedVia: 'direct' | 'node'; nodeId: string | null; bytesIn: number; bytesOut: number }): void {
  span
    .set('http.response.status_code', e.status)
    .set('nexus.routed_via', e.routedVia)
    .set('nexus.node_id', e.nodeId)
    .set('nexus.bytes_in', e.bytesIn)
    .set('nexus.bytes_out', e.bytesOut);
  if (e.status >= 500) span.fail(String(e.status));
  else if (!e.complete) span.fail('incomplete');
  span.finish();
}
