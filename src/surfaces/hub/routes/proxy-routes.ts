// ANY /api/v1/proxy/s/<slug>/<path…>. Its own scope: request bodies are not parsed here but streamed
// to the service as they arrive, so no body limit applies and nothing is buffered.
import type { Socket } from 'node:net';
import { Readable, Transform } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import type { AppContext } from '../../../core/context.ts';
import { AppError } from '../../../core/errors/errors.ts';
import { bearerFrom } from '../../../core/http/auth.ts';
import { redactUrl } from '../../../core/log/log.ts';
import { endServerSpan } from '../../../core/telemetry/http-spans.ts';
import { answerWith, checkHandshake } from '../../../core/http/websocket-protocol.ts';
import { NODE_OFFLINE } from '../../../core/relay/node-relay.ts';
import { corkPerTurn } from '../../../protocol/cork.ts';
import { wsTally } from '../../../protocol/ws-bridge.ts';
import type { Hub } from '../hub.ts';
import type { DialedWebSocket, NodeTry } from '../proxy.ts';
import { endProxySpan, proxyTrace, startProxySpan, type WsSessionEnd } from '../proxy-spans.ts';

const PREFIX = '/api/v1/proxy/s/';
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

function hasBody(req: FastifyRequest): boolean {
  const h = req.headers;
  if (h['transfer-encoding']) return true;
  const len = h['content-length'];
  return len !== undefined && len !== '0';
}

/**
 * Counts bytes as they pass, without holding any (wired by hand: `pipeline` costs an AbortController
 * and an exception per request). An error of the source destroys the meter; the meter closing early
 * destroys the source, unless `keep`: the caller's request body is only let go of (unpiped, paused),
 * since destroying it would cut the caller's connection before it is answered (`drainCaller`).
 */
function counted(body: AsyncIterable<Uint8Array>, add: (n: number) => void, keep = false): Readable {
  const source = body instanceof Readable ? body : Readable.from(body);
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      add(chunk.byteLength);
      done(null, chunk);
    },
  });
  source.once('error', (err) => meter.destroy(err));
  meter.once('close', () => {
    if (source.readableEnded) return;
    if (!keep) return void source.destroy();
    source.unpipe(meter);
    source.pause();
  });
  return source.pipe(meter);
}

/** What the hub reads and discards of a caller's body left unread when its answer has gone out. */
const DRAIN_LIMIT = 8 * 1024 * 1024;
const DRAIN_MS = 10_000;

/**
 * Reads and discards the rest of a request body nobody will use (the service failed, or answered,
 * before taking all of it), so that the caller gets its answer on a connection that stays usable, as
 * Node does by itself for a body never read (`req._dump`), but bounded: past DRAIN_LIMIT bytes or
 * DRAIN_MS the connection is closed. Closing at once instead would meet the caller still sending:
 * the reset that follows can take the answer with it before the client reads it.
 */
function drainCaller(req: FastifyRequest['raw']): void {
  // `complete`: the parser has the whole body (Node discards what nobody read).
  if (req.complete || req.destroyed) return;
  let left = DRAIN_LIMIT;
  const cut = () => req.socket.destroy();
  const timer = setTimeout(cut, DRAIN_MS);
  req.on('data', (chunk: Buffer) => {
    left -= chunk.length;
    if (left < 0) cut();
  });
  req.once('close', () => clearTimeout(timer));
  // The relay's side (still piped if it never read) would hold the flow back.
  req.unpipe();
  req.resume();
}

/** Bytes a caller may send before its handshake is answered; a client sends none (RFC 6455 §4.1). */
const EARLY_BYTES = 64 * 1024;

/**
 * Watches a caller's socket while its WebSocket handshake waits for the service, so that a caller who
 * goes away (FIN, reset) is noticed at once. Only a reading socket notices, so bytes that arrive
 * meanwhile are kept and put back by `release`, which leaves the socket paused for ws to take over. A
 * caller that sends more than a handshake could need is no longer read (the dial's own timeout then
 * bounds the wait).
 */
function watchCaller(socket: Socket, onLeave: () => void): { release(): void } {
  const early: Buffer[] = [];
  let held = 0;
  const onData = (chunk: Buffer) => {
    early.push(chunk);
    held += chunk.length;
    if (held > EARLY_BYTES) socket.pause();
  };
  const stop = () => {
    socket.off('data', onData);
    socket.off('end', leave);
    socket.off('close', leave);
  };
  const leave = () => {
    stop();
    onLeave();
  };
  socket.on('data', onData);
  socket.once('end', leave);
  socket.once('close', leave);
  return {
    release() {
      socket.pause();
      stop();
      if (early.length) socket.unshift(Buffer.concat(early));
    },
  };
}

/** How a WebSocket handshake or session ended, for its audit row and span. */
interface WsEnd {
  status: number;
  complete: boolean;
  bytesIn?: number;
  bytesOut?: number;
  maxDuration?: boolean;
  session?: WsSessionEnd;
}

interface WsSession {
  dial: Extract<DialedWebSocket, { accepted: true }>;
  joined: boolean;
  finish(end: WsEnd): void;
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
    if (!token) throw new AppError('unauthorized', 'send a personal token as Authorization: Bearer nx_pat_… or X-API-Key');
    // One answer for expired, revoked and unknown tokens: which of them it is stays with the owner.
    if (!principal) throw new AppError('unauthorized', 'the personal token sent is not valid: it has expired, was revoked, or never existed; create a new one (console: Personal tokens, or nexus login)');
    req.principal = principal;
    const found = hub.lookup.find(principal.userId, slug);
    if (!found) throw new AppError('not_found', `no service "${slug.slice(0, 64)}"`);
    const { service, bound } = found;
    // A node-routed service whose nodes were all deleted: never called directly (the appliance holds
    // no credential for it, and its endpoint names a host on the nodes' network, not the appliance's).
    if (service.routed_via === 'node' && !bound.length) {
      throw new AppError('unavailable', `no node bound to "${service.slug}": its nodes were deleted; bind one (nexus service nodes ${service.slug} --node NODE)`, { numericCode: NODE_OFFLINE });
    }

    // Whatever header carried the Nexus token stays here.
    const strip: string[] = [];
    const headers = req.headers;
    for (const k in headers) {
      const v = headers[k];
      if (typeof v === 'string' ? v.includes(token) : Array.isArray(v) && v.some((x) => x.includes(token))) strip.push(k);
    }
    return { principal, service, bound, rest, search: q < 0 ? '' : rawUrl.slice(q), strip };
  };

  type Resolved = ReturnType<typeof resolve>;
  // `maxDuration`: the appliance ended the stream at proxy.maxStreamSeconds (the caller and the service
  // did not), which the row says so that a cut-off download is not taken for a failing service.
  // `tries`: the nodes tried in order; listed in the row only when a node failed and another was tried
  // (the row's node_id is then the last one: the one that answered, unless all failed), or when a
  // retry was refused (its last entry says why).
  const audit = (req: FastifyRequest, r: Resolved, entry: { status: number; complete: boolean; routedVia: 'direct' | 'node'; nodeId: string | null; bytesIn: number; bytesOut: number; started: number; websocket?: boolean; maxDuration?: boolean; tries: NodeTry[] }) =>
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
      node_id: entry.nodeId ?? entry.tries.at(-1)?.node_id ?? null,
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
        ...(entry.maxDuration ? { max_duration: true } : {}),
        ...(entry.tries.length > 1 || entry.tries.at(-1)?.retry_refused ? { tries: entry.tries } : {}),
      },
    });

  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const started = performance.now();
    const r = resolve(req);
    const { service, bound, rest, strip } = r;
    const abort = new AbortController();
    let maxDuration = false;
    const timer = setTimeout(() => {
      maxDuration = true;
      abort.abort();
    }, ctx.config.proxy.maxStreamSeconds * 1000);
    let bytesIn = 0;
    let bytesOut = 0;
    let routedVia: 'direct' | 'node' = bound.length ? 'node' : 'direct';
    let nodeId: string | null = null;
    const tries: NodeTry[] = [];
    const span = startProxySpan(ctx.tracing, req.span, service, req.method);
    reply.raw.once('close', () => {
      clearTimeout(timer);
      const complete = reply.raw.writableFinished;
      if (!complete) abort.abort();
      // Answered (a 502 after the relay failed mid-upload, or the service's own early answer) while
      // the caller was still sending: the rest is read and dropped, within bounds.
      else drainCaller(req.raw);
      audit(req, r, { status: reply.statusCode, complete, routedVia, nodeId, bytesIn, bytesOut, started, maxDuration, tries });
      if (span) endProxySpan(span, { status: reply.statusCode, complete, routedVia, nodeId, bytesIn, bytesOut });
    });

    const result = await hub.proxy.forward({
      service,
      method: req.method,
      rest,
      search: r.search,
      headers: req.headers,
      strip,
      bound,
      body: hasBody(req) ? counted(req.raw, (n) => (bytesIn += n), true) : null,
      signal: abort.signal,
      tries,
      trace: proxyTrace(ctx.tracing, span),
    });
    routedVia = result.routedVia;
    nodeId = result.nodeId;
    reply.code(result.status).headers(result.headers);
    const { whole } = result;
    if (req.method === 'HEAD') {
      if (!whole) for await (const _ of result.body) { /* drain */ }
      return reply.send();
    }
    // A body that came whole with the head (through a node, small responses do) leaves in one write
    // with no stream in between. Not when empty (204, 304: no body at all) or without a content type
    // (fastify would add one to a buffer).
    if (whole && whole.length > 0 && result.headers['content-type'] !== undefined) {
      bytesOut = whole.length;
      return reply.send(whole);
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

  // WebSocket upgrades. The caller is authenticated and the service dialled before the caller's
  // handshake is answered, so that the caller learns what the service said, as if it had called the
  // service itself: a refusal is the service's own HTTP answer, an acceptance names the subprotocol
  // the service chose and carries its 101's headers (core/http/websocket-protocol.ts), and the
  // messages follow one by one.
  // A callback hook, not an async one: it runs on every proxied GET, and most are not upgrades.
  const sessions = new WeakMap<FastifyRequest, WsSession>();
  const wsPreHandler = (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    if (!req.ws) return done();
    // The socket is closed after any answer but a 101 (@fastify/websocket), so the answer says so.
    reply.header('connection', 'close');
    const check = checkHandshake(req.method, req.headers);
    if (!check.ok) {
      reply.headers(check.headers);
      return done(new AppError('validation_failed', check.message));
    }
    let r: Resolved;
    try {
      r = resolve(req);
    } catch (err) {
      return done(err as Error);
    }
    const started = performance.now();
    const abort = new AbortController();
    const socket = req.raw.socket;
    const where = { routedVia: (r.bound.length ? 'node' : 'direct') as 'direct' | 'node', nodeId: null as string | null };
    const tries: NodeTry[] = [];
    const span = startProxySpan(ctx.tracing, req.span, r.service, 'GET', true);
    let finished = false;
    const finish = (e: WsEnd) => {
      if (finished) return;
      finished = true;
      const bytes = { bytesIn: e.bytesIn ?? 0, bytesOut: e.bytesOut ?? 0 };
      audit(req, r, { status: e.status, complete: e.complete, ...where, ...bytes, started, websocket: true, maxDuration: e.maxDuration ?? false, tries });
      if (span) endProxySpan(span, { status: e.status, complete: e.complete, ...where, ...bytes, ...(e.session ? { ws: e.session } : {}) });
      // A session, or a caller gone before any answer, never reaches fastify's onResponse.
      if (e.status === 101 || e.status === 499) endServerSpan(req, e.status);
    };

    // Dialling may take up to the service's handshake timeout; a caller that leaves meanwhile takes
    // the dial with it (499, nginx's "client closed request").
    let left = false;
    const caller = watchCaller(socket, () => {
      left = true;
      abort.abort();
      socket.destroy();
      finish({ status: 499, complete: false });
    });
    const call = { service: r.service, bound: r.bound, method: 'GET', rest: r.rest, search: r.search, headers: req.headers, strip: r.strip, signal: abort.signal, tries, trace: proxyTrace(ctx.tracing, span) };
    hub.proxy.dialWebSocket(call).then(
      (dial) => {
        where.routedVia = dial.routedVia;
        where.nodeId = dial.nodeId;
        if (left) return dial.accepted ? dial.cancel() : void dial.body.destroy();
        caller.release();
        if (!dial.accepted) {
          let bytesOut = 0;
          reply.raw.once('close', () => finish({ status: dial.status, complete: reply.raw.writableFinished, bytesOut }));
          reply.code(dial.status).headers(dial.headers);
          reply.send(counted(dial.body, (n) => (bytesOut += n)));
          return;
        }
        answerWith(req.raw, dial.protocol, dial.headers);
        const session: WsSession = { dial, joined: false, finish };
        sessions.set(req, session);
        // A socket gone before the handshake completes never reaches the wsHandler.
        socket.once('close', () => {
          if (session.joined) return;
          dial.cancel();
          finish({ status: 499, complete: false });
        });
        done();
      },
      (err: unknown) => {
        if (left) return;
        caller.release();
        finish({ status: err instanceof AppError ? err.status : 500, complete: false });
        done(err as Error);
      },
    );
  };

  const wsHandler = (socket: WebSocket, req: FastifyRequest) => {
    const session = sessions.get(req)!;
    session.joined = true;
    let maxDuration = false;
    const timer = setTimeout(() => {
      maxDuration = true;
      socket.close(1001, 'maximum stream duration reached');
    }, ctx.config.proxy.maxStreamSeconds * 1000);
    const tally = wsTally();
    session.dial.join(socket, tally);
    // Paused since the dial began (watchCaller); what the caller sent meanwhile is read now.
    socket.resume();
    socket.once('close', (closeCode: number) => {
      clearTimeout(timer);
      session.finish({
        status: 101,
        complete: true,
        bytesIn: tally.bytesIn,
        bytesOut: tally.bytesOut,
        maxDuration,
        session: { messagesIn: tally.messagesIn, messagesOut: tally.messagesOut, closeCode },
      });
    });
  };

  for (const url of [`${PREFIX}:slug`, `${PREFIX}:slug/*`]) {
    app.route({ method: 'GET', url, handler, wsHandler, preHandler: wsPreHandler });
    // fastify adds HEAD to the GET route itself.
    app.route({ method: METHODS.filter((m) => m !== 'GET' && m !== 'HEAD'), url, handler });
  }
}
