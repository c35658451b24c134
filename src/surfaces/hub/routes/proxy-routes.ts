// ANY /api/v1/proxy/s/<slug>/<path…>. Its own scope: request bodies are not parsed here but streamed
// to the service as they arrive, so no body limit applies and nothing is buffered.
import { Readable, Transform } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import type { AppContext } from '../../../core/context.ts';
import { AppError } from '../../../core/errors/errors.ts';
import { bearerFrom } from '../../../core/http/auth.ts';
import { redactUrl } from '../../../core/log/log.ts';
import { NODE_OFFLINE } from '../../../core/relay/node-relay.ts';
import { corkPerTurn } from '../../../protocol/cork.ts';
import type { Hub } from '../hub.ts';

const PREFIX = '/api/v1/proxy/s/';
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

function hasBody(req: FastifyRequest): boolean {
  const h = req.headers;
  if (h['transfer-encoding']) return true;
  const len = h['content-length'];
  return len !== undefined && len !== '0';
}

/**
 * Counts bytes as they pass, without holding any; an error or early close on either side destroys
 * both (wired by hand: `pipeline` costs an AbortController and an exception per request).
 */
function counted(body: AsyncIterable<Uint8Array>, add: (n: number) => void): Readable {
  const source = body instanceof Readable ? body : Readable.from(body);
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      add(chunk.byteLength);
      done(null, chunk);
    },
  });
  source.once('error', (err) => meter.destroy(err));
  meter.once('close', () => source.readableEnded || source.destroy());
  return source.pipe(meter);
}

export function proxyRoutes(app: FastifyInstance, ctx: AppContext, hub: Hub) {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

  /** Who is calling and which service they mean; the same for plain requests and WebSockets. */
  const resolve = (req: FastifyRequest) => {
    const rawUrl = req.raw.url ?? '';
    const q = rawUrl.indexOf('?');
    const path = (q < 0 ? rawUrl : rawUrl.slice(0, q)).slice(PREFIX.length);
    const slash = path.indexOf('/');
    let slug: string;
    try {
      slug = decodeURIComponent(slash < 0 ? path : path.slice(0, slash));
    } catch {
      throw new AppError('validation_failed', 'malformed service slug');
    }
    const rest = slash < 0 ? '' : path.slice(slash + 1);

    const token = bearerFrom(req);
    const principal = token ? ctx.identity.resolveApiToken(token) : null;
    if (!token || !principal) throw new AppError('unauthorized', 'send a personal token as Authorization: Bearer nx_pat_… or X-API-Key');
    req.principal = principal;
    const found = hub.lookup.find(principal.userId, slug);
    if (!found) throw new AppError('not_found', `no service "${slug.slice(0, 64)}"`);
    const { service, bound } = found;

    // Whatever header carried the Nexus token stays here.
    const strip: string[] = [];
    const headers = req.headers;
    for (const k in headers) {
      const v = headers[k];
      if (typeof v === 'string' ? v.includes(token) : Array.isArray(v) && v.some((x) => x.includes(token))) strip.push(k);
    }
    return { principal, service, bound, rest, search: q < 0 ? '' : rawUrl.slice(q), strip };
  };

  const audit = (req: FastifyRequest, r: ReturnType<typeof resolve>, entry: { status: number; complete: boolean; routedVia: 'direct' | 'node'; nodeId: string | null; bytesIn: number; bytesOut: number; started: number; websocket?: boolean }) =>
    ctx.audit.enqueue({
      actor_type: 'token',
      actor_id: r.principal.userId,
      actor_name: r.principal.username,
      action: 'proxy.request',
      target_type: 'service',
      target_id: r.service.id,
      outcome: entry.complete && entry.status < 400 ? 'success' : 'failure',
      source_ip: req.ip,
      routed_via: entry.routedVia,
      node_id: entry.nodeId,
      status: entry.status,
      details: {
        slug: r.service.slug,
        method: req.method,
        path: redactUrl('/' + r.rest).slice(0, 512),
        bytes_in: entry.bytesIn,
        bytes_out: entry.bytesOut,
        latency_ms: Math.round((performance.now() - entry.started) * 10) / 10,
        ...(entry.websocket ? { websocket: true } : {}),
        ...(entry.complete ? {} : { aborted: true }),
      },
    });

  const resolved = new WeakMap<FastifyRequest, ReturnType<typeof resolve>>();

  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const started = performance.now();
    const r = resolve(req);
    const { service, bound, rest, strip } = r;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), ctx.config.proxy.maxStreamSeconds * 1000);
    let bytesIn = 0;
    let bytesOut = 0;
    let routedVia: 'direct' | 'node' = bound.length ? 'node' : 'direct';
    let nodeId: string | null = null;
    reply.raw.once('close', () => {
      clearTimeout(timer);
      const complete = reply.raw.writableFinished;
      if (!complete) abort.abort();
      audit(req, r, { status: reply.statusCode, complete, routedVia, nodeId, bytesIn, bytesOut, started });
    });

    const result = await hub.proxy.forward({
      service,
      method: req.method,
      rest,
      search: r.search,
      headers: req.headers,
      strip,
      bound,
      body: hasBody(req) ? counted(req.raw, (n) => (bytesIn += n)) : null,
      signal: abort.signal,
    });
    routedVia = result.routedVia;
    nodeId = result.nodeId;
    reply.code(result.status).headers(result.headers);
    if (req.method === 'HEAD') {
      for await (const _ of result.body) { /* drain */ }
      return reply.send();
    }
    // Counted as fastify's pipe takes the bytes (a listener added before the pipe would start the flow
    // early); fastify destroys the body if the caller goes away.
    const out = result.body instanceof Readable ? result.body : Readable.from(result.body);
    reply.raw.once('pipe', () => {
      out.on('data', (chunk: Uint8Array) => (bytesOut += chunk.byteLength));
      // Pieces of several socket reads on the /ws side leave to the caller as one writev per turn.
      out.prependListener('data', corkPerTurn(reply.raw.socket));
    });
    return reply.send(out);
  };

  // WebSocket upgrades: authenticated before the handshake (a refusal is a plain HTTP error), then
  // joined to the service message by message.
  // A callback hook, not an async one: it runs on every proxied GET, and most are not upgrades.
  const wsPreHandler = (req: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
    if (!req.ws) return done();
    try {
      resolved.set(req, resolve(req));
    } catch (err) {
      return done(err as Error);
    }
    done();
  };
  const wsHandler = (socket: WebSocket, req: FastifyRequest) => {
    const r = resolved.get(req)!;
    const started = performance.now();
    const abort = new AbortController();
    const timer = setTimeout(() => socket.close(1001, 'maximum stream duration reached'), ctx.config.proxy.maxStreamSeconds * 1000);
    socket.pause();
    hub.proxy.forwardWebSocket({ service: r.service, bound: r.bound, method: 'GET', rest: r.rest, search: r.search, headers: req.headers, strip: r.strip, signal: abort.signal }, socket).then(
      (where) => {
        socket.resume();
        socket.once('close', () => {
          clearTimeout(timer);
          abort.abort();
          audit(req, r, { status: 101, complete: true, ...where, bytesIn: 0, bytesOut: 0, started, websocket: true });
        });
      },
      (err: unknown) => {
        clearTimeout(timer);
        const e = err instanceof AppError ? err : new AppError('bad_gateway', 'the service could not be reached');
        audit(req, r, { status: e.status, complete: false, routedVia: 'direct', nodeId: null, bytesIn: 0, bytesOut: 0, started, websocket: true });
        socket.close(e.numericCode === NODE_OFFLINE ? 1013 : 1011, `${e.numericCode ?? e.code}: ${e.message}`.slice(0, 120));
      },
    );
  };

  for (const url of [`${PREFIX}:slug`, `${PREFIX}:slug/*`]) {
    app.route({ method: 'GET', url, handler, wsHandler, preHandler: wsPreHandler });
    // fastify adds HEAD to the GET route itself.
    app.route({ method: METHODS.filter((m) => m !== 'GET' && m !== 'HEAD'), url, handler });
  }
}
