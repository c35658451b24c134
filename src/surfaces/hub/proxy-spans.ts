// The service proxy's span: one CLIENT span per proxied request or WebSocket session, under the
// request's SERVER span, naming the service, the route it took (direct or through a node) and the
// bytes each way (for a session: its messages' bytes, how many messages, the close code). The
// service (directly, or through the agent, which passes the header on as any end-to-end header)
// receives a `traceparent` whose parent is this span, on a request or on a WebSocket handshake.
import type { TraceContext } from '../../core/telemetry/trace-context.ts';
import { SpanKind, type Span, type Tracing } from '../../core/telemetry/tracing.ts';

/** The span while exporting, else null; `forward` and `dialWebSocket` carry it as `trace` when propagating. */
export function startProxySpan(tracing: Tracing, parent: Span | null, service: { id: string; slug: string }, method: string, websocket = false): Span | null {
  if (!parent) return null;
  return tracing
    .start(websocket ? `proxy ws ${service.slug}` : `proxy ${service.slug}`, SpanKind.CLIENT, parent)
    .set('http.request.method', method)
    .set('nexus.service.slug', service.slug)
    .set('nexus.service.id', service.id);
}

/** What the proxied request's outgoing headers continue, if anything (null: pass the caller's as they came). */
export function proxyTrace(tracing: Tracing, span: Span | null): TraceContext | null {
  return span && tracing.propagate ? span : null;
}

/** A WebSocket session's end: messages each way (in = from the caller) and the caller's socket's close code. */
export interface WsSessionEnd {
  messagesIn: number;
  messagesOut: number;
  closeCode: number;
}

/** Close codes that say the session broke (RFC 6455 §7.4.1: 1006 no close frame, 1011 an endpoint failed). */
const BROKEN = new Set([1006, 1011]);

export function endProxySpan(span: Span, e: { status: number; complete: boolean; routedVia: 'direct' | 'node'; nodeId: string | null; bytesIn: number; bytesOut: number; ws?: WsSessionEnd }): void {
  span
    .set('http.response.status_code', e.status)
    .set('nexus.routed_via', e.routedVia)
    .set('nexus.node_id', e.nodeId)
    .set('nexus.bytes_in', e.bytesIn)
    .set('nexus.bytes_out', e.bytesOut);
  if (e.ws) {
    span
      .set('nexus.ws.messages_in', e.ws.messagesIn)
      .set('nexus.ws.messages_out', e.ws.messagesOut)
      .set('nexus.ws.close_code', e.ws.closeCode);
  }
  if (e.status >= 500) span.fail(String(e.status));
  else if (!e.complete) span.fail('incomplete');
  else if (e.ws && BROKEN.has(e.ws.closeCode)) span.fail(`ws_close_${e.ws.closeCode}`);
  span.finish();
}
