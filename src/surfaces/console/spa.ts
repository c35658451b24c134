// Serves the console SPA built into web/dist (embedded in the single executable as SEA assets).
// Every GET that is not an API path gets index.html so client routes survive reloads and deep
// links; paths that belong to an API surface are handed to the not-found handler instead, so
// `GET /v1/models` answers JSON even on an appliance without the gateway (DESIGN.md §2).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { readAsset } from '../../core/assets/assets.ts';

/**
 * Paths an API surface owns (DESIGN.md §2); the console never answers them. `/models`,
 * `/chat/…`, `/completions`, `/embeddings` and `/responses` are what an OpenAI SDK asks for when
 * its base URL lacks `/v1`: a JSON 404 that says so (server/app.ts), not the console's HTML, which
 * `models.list()` would take for an empty list.
 */
const API_PATH = /^\/(api|v1|v1beta|v1alpha|openai|scim|ws|oauth|\.well-known|healthz|ready|metrics|models|chat|completions|embeddings|responses)(\/|$)/i;

export function isApiPath(url: string): boolean {
  const path = url.split('?')[0]!;
  if (API_PATH.test(path)) return true;
  // A percent-encoded spelling of an API path ("/%761/models") is still that API path.
  try {
    return API_PATH.test(decodeURIComponent(path));
  } catch {
    return true; // undecodable: certainly not a console route
  }
}

// Strict: scripts and styles only from this origin (no inline anything), no framing, no plugins.
export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "manifest-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

const SECURITY_HEADERS = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), clipboard-write=(self)',
};

const TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
  woff2: 'font/woff2',
  map: 'application/json; charset=utf-8',
};

// Built names look like app-7KX2Q4ZT.js; anything else (dots, slashes, "..") is not an asset.
const ASSET_NAME = /^[A-Za-z0-9_-]+-[A-Z0-9]{8}\.([a-z0-9]+)$/;

export function spaRoutes(app: FastifyInstance): void {
  const cache = new Map<string, Buffer | null>();
  const asset = (key: string) => {
    if (!cache.has(key)) cache.set(key, readAsset(key));
    return cache.get(key)!;
  };

  const sendIndex = (req: FastifyRequest, reply: FastifyReply) => {
    if (isApiPath(req.url)) return reply.callNotFound();
    const html = asset('web/dist/index.html');
    reply.headers(SECURITY_HEADERS).header('cache-control', 'no-cache');
    if (!html) return reply.code(503).type('text/plain; charset=utf-8').send('The console is not built; run npm run build:web.\n');
    return reply.type('text/html; charset=utf-8').send(html);
  };

  app.get<{ Params: { name: string } }>('/assets/:name', async (req, reply) => {
    const m = ASSET_NAME.exec(req.params.name);
    const body = m ? asset(`web/dist/assets/${req.params.name}`) : null;
    if (!m || !body) {
      return reply.code(404).headers(SECURITY_HEADERS).header('cache-control', 'no-store').type('text/plain; charset=utf-8').send('not found\n');
    }
    return reply
      .headers(SECURITY_HEADERS)
      .header('cache-control', 'public, max-age=31536000, immutable')
      .type(TYPES[m[1]!] ?? 'application/octet-stream')
      .send(body);
  });
  // A WebSocket handshake here reaches the console as a plain GET (only the hub's paths take one);
  // a client with a wrong path (an agent given ws://HOST/ instead of /ws) is told so instead of
  // being handed the console's HTML.
  const refuseUpgrade = async (req: FastifyRequest, reply: FastifyReply) => {
    if (/\bwebsocket\b/i.test(req.headers.upgrade ?? '')) return reply.code(404).type('application/json; charset=utf-8').send({ error: { code: 'not_found', message: 'no WebSocket endpoint here (agents connect to /ws)' } });
  };
  app.get('/', { onRequest: refuseUpgrade }, sendIndex);
  app.get('/*', { onRequest: refuseUpgrade }, sendIndex);
}
