// A shorter road to a few JSON POST routes (the gateway's completions, embeddings, messages …):
// taken in front of fastify on the public listener only for the plain case — an exact path without
// a query string, `Content-Type: application/json` (optionally `; charset=utf-8`), a
// `Content-Length` within the route's body limit, no `Transfer-Encoding` or `Expect` — and only
// while the server is not closing. Everything else (other types, oversized or chunked bodies,
// queries, trailing slashes, shutdown) goes to the fastify route, which answers exactly as before
// (413/415 in the caller's wire format, draining the refused body, 503 on closing).
//
// What the fastify route does around its handler is done here the same way, in the same order:
// the request id (the caller's sane `x-request-id`, else a UUID) echoed as a header, the caller's
// address through the trusted proxies (fastify's own proxy-addr, compiled from the same list), the
// body parsed by the same function as the JSON content-type parser (an empty body is no body, a
// malformed one the same `invalid_json` error), errors rendered by the route's own renderer, and
// once the answer has finished, the request metric and the access line with the duration since the
// request arrived; while exporting spans, the request's SERVER span, made and ended by the same
// functions as fastify's hooks (telemetry/http-spans.ts): begun when the request arrived, under the
// caller's valid `traceparent`, ended when the answer has finished, named after the route. On the
// gateway's hot route this took 11–18 % off the request thread's CPU per call and served 10–32 % more
// requests/s at c=64 (BENCHMARKS.md, "AI gateway", 2026-12-07 15:06 UTC); with export on, 14–17 % of
// the request thread (20:28 UTC, "spans on the fast lane").
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import proxyAddr from '@fastify/proxy-addr';
import type { AppContext } from '../context.ts';
import { parseJsonBody } from './validation.ts';
import { accessLogFor, type Logger } from '../log/log.ts';
import { finishServerSpan, startServerSpan } from '../telemetry/http-spans.ts';
import type { Span } from '../telemetry/tracing.ts';

declare module 'fastify' {
  interface FastifyInstance {
    /** The public listener's fast lane (null on the admin listener and in apps built without one). */
    fastLane: FastLane | null;
  }
}

export const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;
const NO_QUERY: Record<string, string> = Object.freeze({}) as Record<string, string>;
const NO_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** What a lane handler reads of its request: the parts of a FastifyRequest the routes use. */
export class LaneRequest {
  readonly method = 'POST';
  readonly query = NO_QUERY;
  readonly params = NO_PARAMS;
  readonly id: string;
  readonly raw: IncomingMessage;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: unknown;
  readonly ip: string;
  /** The request's SERVER span while exporting, as fastify's `request.span` (http-spans.ts). */
  readonly span: Span | null;
  private readonly root: Logger;
  private child: Logger | null = null;

  constructor(id: string, raw: IncomingMessage, body: unknown, ip: string, span: Span | null, root: Logger) {
    this.id = id;
    this.raw = raw;
    this.url = raw.url!;
    this.headers = raw.headers;
    this.body = body;
    this.ip = ip;
    this.span = span;
    this.root = root;
  }

  /** The request's logger, as fastify's: a child carrying `reqId` (made only when something is logged). */
  get log(): Logger {
    return (this.child ??= this.root.child({ reqId: this.id }));
  }
}

/** The parts of a FastifyReply the routes use: the response, the headers set so far, hijack(). */
export class LaneReply {
  readonly raw: ServerResponse;
  private readonly id: string;

  constructor(raw: ServerResponse, id: string) {
    this.raw = raw;
    this.id = id;
  }

  /** Fastify's onRequest hook set only `x-request-id` on these requests (the lane is not taken while closing). */
  getHeaders(): Record<string, string> {
    return { 'x-request-id': this.id };
  }

  hijack(): this {
    return this;
  }
}

export type LaneHandler = (req: LaneRequest, reply: LaneReply) => Promise<unknown>;
/** Answers an error thrown before anything was sent, as the route's fastify error handler would. */
export type LaneErrorHandler = (err: unknown, req: LaneRequest, reply: LaneReply) => void;

interface LaneRoute {
  /** The fixed path: the route's pattern too. */
  path: string;
  /** The access line's method and URL. */
  line: string;
  handler: LaneHandler;
  onError: LaneErrorHandler;
  bodyLimit: number;
  surface: string;
}

export interface FastLane {
  /** Serves POST `path` here too; the same path must also be a fastify route (the fallback). */
  post(path: string, handler: LaneHandler, opts: { bodyLimit: number; onError: LaneErrorHandler; surface: string }): void;
  /** Takes the request when it is plain enough; false leaves it (untouched) to fastify. */
  take(req: IncomingMessage, res: ServerResponse): boolean;
  /** Stops taking requests (the server is closing: fastify answers 503 from now on). */
  close(): void;
}

const DIGITS = /^[0-9]{1,15}$/;

export function createFastLane(ctx: AppContext): FastLane {
  const routes = new Map<string, LaneRoute>();
  const access = accessLogFor(ctx.log);
  const metrics = ctx.metrics;
  const tracing = ctx.tracing;
  const exporting = tracing.exporting;
  const trust = ctx.config.trustProxy.length ? proxyAddr.compile([...ctx.config.trustProxy]) : null;
  let closed = false;

  // Fastify's `request.ip` with trustProxy: the last address of proxy-addr's chain.
  const ipOf = (raw: IncomingMessage): string => {
    if (!trust) return raw.socket.remoteAddress as string;
    const all = proxyAddr.all(raw, trust);
    return all[all.length - 1]!;
  };

  function run(route: LaneRoute, raw: IncomingMessage, res: ServerResponse, id: string, text: string, started: number): void {
    const ip = ipOf(raw);
    const span = exporting ? startServerSpan(tracing, 'POST', raw.headers, started) : null;
    // `on`, not `once`, for events a request sees once: no wrapper to make and take off again.
    res.on('finish', () => {
      const ms = performance.now() - started;
      const status = res.statusCode;
      if (span) finishServerSpan(span, 'POST', route.path, route.path, status, ip);
      metrics.observeRequest(route.surface, 'POST', status, ms / 1000);
      if (access.enabled()) access.writeRequest(id, route.line, ip, status, Math.round(ms * 10) / 10);
    });
    const reply = new LaneReply(res, id);
    let body: unknown;
    let bad: unknown = null;
    try {
      body = parseJsonBody(text);
    } catch (err) {
      bad = err;
    }
    const req = new LaneRequest(id, raw, body, ip, span, ctx.log);
    if (bad !== null) return route.onError(bad, req, reply);
    let pending: Promise<unknown>;
    try {
      pending = route.handler(req, reply);
    } catch (err) {
      return failed(route, err, req, reply);
    }
    pending.then(undefined, (err: unknown) => failed(route, err, req, reply));
  }

  function failed(route: LaneRoute, err: unknown, req: LaneRequest, reply: LaneReply): void {
    // As fastify does for a handler that fails after its reply was sent (hijacked): say so, once.
    if (reply.raw.headersSent) {
      req.log.error({ err }, 'Promise errored, but reply.sent = true was set');
      return;
    }
    route.onError(err, req, reply);
  }

  return {
    post(path, handler, opts) {
      routes.set(path, { path, line: access.request('POST', path), handler, onError: opts.onError, bodyLimit: opts.bodyLimit, surface: opts.surface });
    },
    close() {
      closed = true;
    },
    take(raw, res) {
      if (raw.method !== 'POST' || closed || ctx.state.shuttingDown) return false;
      const route = routes.get(raw.url!);
      if (!route) return false;
      const h = raw.headers;
      const type = h['content-type'];
      if (type !== 'application/json' && type !== 'application/json; charset=utf-8') return false;
      const length = h['content-length'];
      if (length === undefined || h['transfer-encoding'] !== undefined || h.expect !== undefined || !DIGITS.test(length)) return false;
      const expected = Number(length);
      if (expected === 0 || expected > route.bodyLimit) return false;
      const started = performance.now();
      const given = h['x-request-id'];
      const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
      // Node's parser delivers exactly Content-Length bytes before 'end'; a client that leaves
      // before that never reaches the handler (nothing is charged, nothing is answered).
      let first: Buffer | null = null;
      let more: Buffer[] | null = null;
      raw.on('data', (chunk: Buffer) => {
        if (first === null) first = chunk;
        else (more ??= [first]).push(chunk);
      });
      raw.on('end', () => {
        const buf = more ? Buffer.concat(more) : (first ?? Buffer.alloc(0));
        run(route, raw, res, id, buf.toString('utf8'), started);
      });
      return true;
    },
  };
}

/** Puts the lane in front of fastify's own request listener on `server`. */
export function installFastLane(server: Server, lane: FastLane): void {
  const listeners = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  if (listeners.length !== 1) throw new Error(`fast lane: expected one request listener, found ${listeners.length}`);
  const fastify = listeners[0]!;
  server.removeListener('request', fastify);
  server.on('request', function onRequest(this: Server, req: IncomingMessage, res: ServerResponse) {
    if (!lane.take(req, res)) fastify.call(this, req, res);
  });
}
