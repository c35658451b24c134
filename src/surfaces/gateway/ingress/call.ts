// What every ingress handler does around the gateway service: authenticate the virtual key, tie
// the upstream request to the client's connection, and send a JSON answer or let the stream flow.
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../../core/errors/errors.ts';
import { CallAbort } from '../../../core/http/call-abort.ts';
import type { Span, Tracing } from '../../../core/telemetry/tracing.ts';
import type { ClientSink, GatewayCall, GatewayService } from '../engine/gateway-service.ts';
import type { VirtualKeys } from '../keys/virtual-keys.ts';
import { isObject, type Json } from '../providers/types.ts';
import { authenticateKey } from './credentials.ts';

/** What the ingress reads of a request: a FastifyRequest, or the fast lane's (core/http/fast-lane.ts). */
export interface IngressRequest {
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly query: unknown;
  readonly params: unknown;
  readonly body: unknown;
  readonly ip: string;
  /** The request's SERVER span while exporting (fastify's hook or the fast lane made it). */
  readonly span?: Span | null;
}

/** What the ingress does with a reply: a FastifyReply, or the fast lane's. */
export interface IngressReply {
  readonly raw: ServerResponse;
  getHeaders(): Record<string, unknown>;
  hijack(): unknown;
}

export type IngressHandler = (req: IngressRequest, reply: IngressReply) => Promise<unknown>;

/** Serves a handler on the fast lane as well as the fastify route (core/http/fast-lane.ts). */
export interface IngressLane {
  post(path: string, handler: IngressHandler): void;
}

export interface IngressDeps {
  service: GatewayService;
  keys: VirtualKeys;
  tracing: Tracing;
  lane?: IngressLane;
}

/** A JSON POST route, on the fast lane too when the path is fixed (no parameters). */
export function postJson(app: FastifyInstance, deps: IngressDeps, path: string, handler: IngressHandler): void {
  app.post(path, handler);
  if (!path.includes(':') && !path.includes('*')) deps.lane?.post(path, handler);
}

/** The answer's way to the client (one per request: methods on the prototype, no closures to make). */
class ReplySink implements ClientSink {
  private readonly reply: IngressReply;
  private readonly res: ServerResponse;

  constructor(reply: IngressReply) {
    this.reply = reply;
    this.res = reply.raw;
  }

  json(status: number, body: Buffer | string, headers?: Record<string, string>): void {
    sendJson(this.reply, status, body, headers);
  }

  begin(status: number, headers: Record<string, string>): void {
    const all = this.reply.getHeaders() as OutgoingHttpHeaders; // x-request-id and whatever the onRequest hooks set
    this.reply.hijack();
    this.res.writeHead(status, Object.assign(all, headers));
  }

  write(chunk: string | Buffer): Promise<void> | undefined {
    const res = this.res;
    if (res.destroyed) return undefined;
    if (res.write(chunk)) return undefined;
    return new Promise<void>((resolve) => {
      const done = () => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  }

  end(): void {
    if (!this.res.destroyed && !this.res.writableEnded) this.res.end();
  }

  destroy(): void {
    this.res.destroy();
  }
}

export function bodyOf(req: Pick<IngressRequest, 'body'>): Json {
  if (!isObject(req.body)) throw new AppError('validation_failed', 'request body must be a JSON object');
  return req.body;
}

export function modelOf(body: Json): string {
  const m = body.model;
  if (typeof m !== 'string' || !m || m.length > 200) throw new AppError('validation_failed', 'model is required (a string)', { details: { param: 'model' } });
  return m;
}

/** Authenticates first (a keyless request learns nothing about the body), then builds the call. */
export async function runCall<R extends IngressReply>(deps: IngressDeps, req: IngressRequest, reply: R, build: () => Omit<GatewayCall, 'key' | 'abort'>) {
  const key = authenticateKey(deps.keys, req);
  const call = build();
  if (call.body.stream !== undefined && typeof call.body.stream !== 'boolean' && call.ingress !== 'gemini') {
    throw new AppError('validation_failed', 'stream must be a boolean', { details: { param: 'stream' } });
  }
  const ac = new CallAbort();
  const res = reply.raw;
  res.on('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  await deps.service.call({ ...call, key, abort: ac, sourceIp: req.ip, cacheControl: req.headers['cache-control'], trace: deps.tracing.contextOf(req) }, new ReplySink(reply));
  return reply; // answered through the sink (or an error was thrown before anything was sent)
}

/**
 * A JSON answer (usually the upstream's own bytes) written with one writeHead and a known length,
 * past fastify's serialisation and onSend steps, which have nothing to do for a finished body. The
 * reply's headers (x-request-id, …) go with it, and onResponse hooks still run when it finishes.
 */
function sendJson(reply: IngressReply, status: number, body: Buffer | string, extra?: Record<string, string>): void {
  const headers = reply.getHeaders() as OutgoingHttpHeaders;
  if (extra) Object.assign(headers, extra);
  headers['content-type'] = 'application/json; charset=utf-8';
  headers['content-length'] = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  reply.hijack();
  reply.raw.writeHead(status, headers).end(body);
}
