// ANY /api/v1/proxy/s/<slug>/<path…>. Its own scope: request bodies are not parsed here but streamed
// to the service as they arrive, so no body limit applies and nothing is buffered.
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../../../core/context.ts';
import { AppError } from '../../../core/errors/errors.ts';
import { bearerFrom } from '../../../core/http/auth.ts';
import { redactUrl } from '../../../core/log/log.ts';
import type { Hub } from '../hub.ts';

const PREFIX = '/api/v1/proxy/s/';
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

function hasBody(req: FastifyRequest): boolean {
  const h = req.headers;
  if (h['transfer-encoding']) return true;
  const len = h['content-length'];
  return len !== undefined && len !== '0';
}

/** Counts bytes as they pass, without holding any. */
async function* counted(body: AsyncIterable<Uint8Array>, add: (n: number) => void): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    add(chunk.byteLength);
    yield chunk;
  }
}

export function proxyRoutes(app: FastifyInstance, ctx: AppContext, hub: Hub) {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const started = performance.now();
    const rawUrl = req.raw.url ?? '';
    const q = rawUrl.indexOf('?');
    const path = (q < 0 ? rawUrl : rawUrl.slice(0, q)).slice(PREFIX.length);
    const slash = path.indexOf('/');
    const slug = decodeURIComponent(slash < 0 ? path : path.slice(0, slash));
    const rest = slash < 0 ? '' : path.slice(slash + 1);

    const token = bearerFrom(req);
    const principal = token ? ctx.identity.resolveApiToken(token) : null;
    if (!principal) throw new AppError('unauthorized', 'send a personal token as Authorization: Bearer nx_pat_… or X-API-Key');
    req.principal = principal;
    const service = hub.services.store.bySlug(principal.userId, slug);
    if (!service) throw new AppError('not_found', `no service "${slug.slice(0, 64)}"`);

    // Whatever header carried the Nexus token stays here.
    const strip = Object.entries(req.headers)
      .filter(([, v]) => (Array.isArray(v) ? v : [v]).some((x) => typeof x === 'string' && token && x.includes(token)))
      .map(([k]) => k);

    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), ctx.config.proxy.maxStreamSeconds * 1000);
    let bytesIn = 0;
    let bytesOut = 0;
    let routedVia: 'direct' | 'node' = hub.services.store.nodes(service.id).length ? 'node' : 'direct';
    let nodeId: string | null = null;
    reply.raw.once('close', () => {
      clearTimeout(timer);
      const complete = reply.raw.writableFinished;
      if (!complete) abort.abort();
      ctx.audit.enqueue({
        actor_type: 'token',
        actor_id: principal.userId,
        actor_name: principal.username,
        action: 'proxy.request',
        target_type: 'service',
        target_id: service.id,
        outcome: complete && reply.statusCode < 400 ? 'success' : 'failure',
        source_ip: req.ip,
        routed_via: routedVia,
        node_id: nodeId,
        status: reply.statusCode,
        details: {
          slug: service.slug,
          method: req.method,
          path: redactUrl('/' + rest).slice(0, 512),
          bytes_in: bytesIn,
          bytes_out: bytesOut,
          latency_ms: Math.round((performance.now() - started) * 10) / 10,
          ...(complete ? {} : { aborted: true }),
        },
      });
    });

    const result = await hub.proxy.forward({
      service,
      method: req.method,
      rest,
      search: q < 0 ? '' : rawUrl.slice(q),
      headers: req.headers,
      strip,
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
    return reply.send(Readable.from(counted(result.body, (n) => (bytesOut += n)), { objectMode: false, highWaterMark: 64 * 1024 }));
  };

  app.route({ method: METHODS, url: `${PREFIX}:slug`, handler });
  app.route({ method: METHODS, url: `${PREFIX}:slug/*`, handler });
}
