// One SERVER span per request on the public listener, after OpenTelemetry's HTTP semantic
// conventions (https://opentelemetry.io/docs/specs/semconv/http/http-spans/). Installed only while
// exporting, so a request without a collector configured runs no tracing hook at all.
// What a span carries is chosen to hold no secret: the path without its query (Gemini's `?key=`
// and every other query parameter stay out), the route pattern, the status and the caller's
// address; never a header.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { incomingContext } from './trace-context.ts';
import { SpanKind, type Span, type Tracing } from './tracing.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's SERVER span; set only while exporting (http-spans.ts). */
    span: Span | null;
  }
}

const MAX_PATH = 1024;

export function installServerSpans(app: FastifyInstance, tracing: Tracing): void {
  if (!tracing.exporting) return;
  app.decorateRequest('span', null);
  app.addHook('onRequest', (req, _reply, done) => {
    req.span = tracing.start(req.method, SpanKind.SERVER, req.headers.traceparent === undefined ? null : incomingContext(req.headers));
    done();
  });
  app.addHook('onResponse', (req, reply, done) => {
    endServerSpan(req, reply.statusCode);
    done();
  });
}

/**
 * Ends the request's SERVER span (once) with its answer's status. The onResponse hook does it for
 * every answer fastify sends; a WebSocket upgrade taken over by @fastify/websocket has no such hook,
 * so its route calls this when the session ends (status 101).
 */
export function endServerSpan(req: FastifyRequest, status: number): void {
  const span = req.span;
  if (!span) return;
  const route = req.routeOptions.url;
  const url = req.url;
  const q = url.indexOf('?');
  span.name = route ? `${req.method} ${route}` : req.method;
  span
    .set('http.request.method', req.method)
    .set('url.path', (q < 0 ? url : url.slice(0, q)).slice(0, MAX_PATH))
    .set('http.route', route)
    .set('http.response.status_code', status)
    .set('client.address', req.ip);
  if (req.principal) span.set('user.id', req.principal.userId);
  // A server span is an error only when the server failed (semconv: 4xx is the caller's).
  if (status >= 500) span.fail(String(status));
  span.finish();
}
