// Builds the two fastify apps. Never listens (server/listen.ts does), so tests build the exact app
// and use inject() or listen on port 0 themselves.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import cookie from '@fastify/cookie';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { AppContext } from '../core/context.ts';
import { accessLogFor } from '../core/log/log.ts';
import type { Surface } from '../core/surface.ts';
import { installJsonParser, installValidation } from '../core/http/validation.ts';
import { installServerSpans } from '../core/telemetry/http-spans.ts';
import { sendControlError } from '../surfaces/control/http.ts';
import { createFastLane, installFastLane, REQUEST_ID } from '../core/http/fast-lane.ts';
import { SURFACES } from './surfaces.ts';

/** What an OpenAI SDK asks for when its base URL lacks `/v1`. */
const OPENAI_WITHOUT_V1 = /^\/(models|chat\/completions|completions|embeddings|responses)(\/|\?|$)/;

function baseOptions(ctx: AppContext): FastifyServerOptions {
  return {
    loggerInstance: ctx.log,
    // One access-log line per request, written in onResponse below, instead of fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    // Reuse the caller's request id when it is sane (nginx passes $request_id), else mint one.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    bodyLimit: ctx.config.bodyLimitBytes,
    trustProxy: ctx.config.trustProxy.length ? [...ctx.config.trustProxy] : false,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    keepAliveTimeout: 72_000,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 500 },
  } as FastifyServerOptions;
}

/** How much of a refused body is read and dropped, and for how long, before the connection is cut. */
const DRAIN_MAX_BYTES = 64 * 1024 * 1024;
const DRAIN_MAX_MS = 30_000;

function drainRefusedBody(raw: IncomingMessage): void {
  let left = DRAIN_MAX_BYTES;
  const cut = () => {
    stop();
    raw.socket?.destroy();
  };
  const onData = (chunk: Buffer) => {
    left -= chunk.length;
    if (left < 0) cut();
  };
  const timer = setTimeout(cut, DRAIN_MAX_MS).unref();
  const stop = () => {
    clearTimeout(timer);
    raw.off('data', onData);
  };
  raw.on('data', onData);
  raw.once('end', stop);
  raw.once('close', stop);
}

function surfaceOf(url: string): string {
  if (url.startsWith('/api/v1/proxy/')) return 'proxy';
  if (url.startsWith('/scim/')) return 'scim';
  if (url.startsWith('/ws') || url.startsWith('/api/internal/')) return 'hub';
  if (/^\/(v1|v1beta|openai|api\/paas)(\/|$)/.test(url)) return 'gateway';
  if (url.startsWith('/api/') || url.startsWith('/oauth/') || url.startsWith('/.well-known/')) return 'control';
  if (url === '/healthz' || url === '/ready') return 'health';
  return 'console';
}

export async function buildPublicApp(ctx: AppContext, surfaces: Surface[] = SURFACES): Promise<FastifyInstance> {
  // A WebSocket handshake is taken only where a surface serves WebSockets (surface.ts `upgrades`);
  // on every other path it is an ordinary HTTP request, answered (404, 401, …) on a connection that
  // stays usable, instead of an upgrade closed at once.
  const upgrades = (req: IncomingMessage) => surfaces.some((s) => s.upgrades?.(req.url ?? '/'));
  const app = Fastify({ ...baseOptions(ctx), http: { shouldUpgradeCallback: upgrades } } as FastifyServerOptions);
  installValidation(app);
  installJsonParser(app);
  app.decorateRequest('principal', null);
  // Plain JSON POSTs to the routes surfaces put on it skip fastify's generic steps (fast-lane.ts);
  // fastify stays the fallback for everything else, and answers alone once closing starts.
  const lane = createFastLane(ctx);
  app.decorate('fastLane', lane);
  installFastLane(app.server, lane);
  app.addHook('preClose', (done) => {
    lane.close();
    done();
  });
  installServerSpans(app, ctx.tracing); // only while exporting: no hook otherwise
  // Cookies are parsed when a route reads one (core/http/auth.ts `cookieOf`), not by a hook on every
  // request: the gateway's and the proxy's callers authenticate with keys and tokens.
  await app.register(cookie, { hook: false });

  // While draining, tell keep-alive clients to go elsewhere instead of reusing this connection.
  app.addHook('onRequest', (req, reply, done) => {
    reply.header('x-request-id', req.id);
    if (ctx.state.shuttingDown) reply.header('connection', 'close');
    done();
  });

  const access = accessLogFor(ctx.log);
  app.addHook('onResponse', (req, reply, done) => {
    const ms = reply.elapsedTime;
    const status = reply.statusCode;
    ctx.metrics.observeRequest(surfaceOf(req.url), req.method, status, ms / 1000);
    if (access.enabled()) access.write(req.id, req.method, req.url, req.ip, status, Math.round(ms * 10) / 10);
    done();
  });

  // fastify refuses a body it will not read (over the limit, or a type no parser takes) with
  // `Connection: close`; the socket then closes with the unread rest of the body in its buffer, the
  // kernel answers the still-sending client with a reset, and the client (the openai SDK, curl) loses
  // the 413/415 and reports a connection error. Instead the rest is read and dropped, up to a bound
  // (what nginx calls lingering), the client reads its answer, and the connection is reused. Runs
  // only on errors.
  app.addHook('onError', (req, reply, err, done) => {
    const code = (err as { code?: string }).code;
    if ((code === 'FST_ERR_CTP_BODY_TOO_LARGE' || code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') && !req.raw.complete && !ctx.state.shuttingDown) {
      reply.removeHeader('connection');
      drainRefusedBody(req.raw);
    }
    done();
  });

  app.setErrorHandler(sendControlError);
  app.setNotFoundHandler((req, reply) => {
    for (const s of surfaces) if (s.notFound?.match(req.url, req)) return s.notFound.send(req, reply);
    const hint = OPENAI_WITHOUT_V1.test(req.url) ? '; the OpenAI API is under /v1 (an SDK\'s base URL ends in /v1)' : '';
    return reply.code(404).send({ error: { code: 'not_found', message: `no such route${hint}` } });
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/ready', async (_req, reply) => {
    if (ctx.state.ready && ctx.db.open) return { status: 'ready' };
    return reply.code(503).send({ status: ctx.state.shuttingDown ? 'shutting down' : 'starting' });
  });

  for (const surface of surfaces) {
    await app.register(async (scope) => surface.register(scope, ctx));
  }
  return app;
}

export async function buildAdminApp(ctx: AppContext, surfaces: Surface[] = SURFACES): Promise<FastifyInstance> {
  const app = Fastify(baseOptions(ctx));
  app.setErrorHandler(sendControlError);
  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: { code: 'not_found', message: 'no such route' } }));
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/metrics', async (_req, reply) => {
    reply.type(ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
  for (const surface of surfaces) {
    if (surface.registerAdmin) await app.register(async (scope) => surface.registerAdmin!(scope, ctx));
  }
  return app;
}
