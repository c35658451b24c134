// One SERVER span per request on the public listener, after OpenTelemetry's HTTP semantic
// conventions (https://opentelemetry.io/docs/specs/semconv/http/http-spans/). Installed only while
// exporting, so a request without a collector configured runs no tracing hook at all. The fast lane
// (core/http/fast-lane.ts) makes and ends its requests' spans with the same two functions below.
// What a span carries is chosen to hold no secret: the path without its query (Gemini's `?key=`
// and every other query parameter stay out), the route pattern, the status and the caller's
// address; never a header.
import type { IncomingHttpHeaders } from 'node:http';
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

/** A request's SERVER span, begun when it arrived (`start`, performance.now()), under the caller's valid context. */
export function startServerSpan(tracing: Tracing, method: string, headers: IncomingHttpHeaders, start?: number): Span {
  return tracing.start(method, SpanKind.SERVER, headers.traceparent === undefined ? null : incomingContext(headers), start);
}

/**
 * Names the span after its route, sets what the answer was, and ends it: `route` is the matched
 * route's pattern (none when no route matched), `url` the request's own (its query is left out).
 */
export function finishServerSpan(span: Span, method: string, route: string | undefined, url: string, status: number, ip: string, userId?: string): void {
  const q = url.indexOf('?');
  span.name = route ? `${method} ${route}` : method;
  span
    .set('http.request.method', method)
    .set('url.path', (q < 0 ? url : url.slice(0, q)).slice(0, MAX_PATH))
    .set('http.route', route)
    .set('http.response.status_code', status)
    .set('client.address', ip)
    .set('user.id', userId);
  // A server span is an error only when the server failed (semconv: 4xx is the caller's).
  if (status >= 500) span.fail(String(status));
  span.finish();
}

export function installServerSpans(app: FastifyInstance, tracing: Tracing): void {
  if (!tracing.exporting) return;
  app.decorateRequest('span', null);
  app.addHook('onRequest', (req, _reply, done) => {
    req.span = startServerSpan(tracing, req.method, req.headers);
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
  finishServerSpan(span, req.method, req.routeOptions.url, req.url, status, req.ip, req.principal?.userId);
}
