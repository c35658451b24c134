// Gemini's API (https://ai.google.dev/api) under /v1beta and /v1: models (list, get) and
// models/{m}:generateContent | :streamGenerateContent | :countTokens | :embedContent |
// :batchEmbedContents. Streams are SSE with ?alt=sse, else one JSON array written as it grows.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../../../core/errors/errors.ts';
import type { Model } from '../../catalog/catalog.ts';
import { bodyOf, runCall, type IngressDeps } from '../call.ts';
import { authenticateKey } from '../credentials.ts';

const METHODS = {
  generateContent: { op: 'chat', stream: false },
  streamGenerateContent: { op: 'chat', stream: true },
  countTokens: { op: 'count_tokens', stream: false },
  embedContent: { op: 'embeddings', stream: false },
  batchEmbedContents: { op: 'embeddings', stream: false },
} as const;

function geminiModelView(m: Model) {
  return {
    name: `models/${m.name}`,
    version: '001',
    displayName: m.name,
    description: `${m.name} via Nexus`,
    supportedGenerationMethods: Object.keys(METHODS),
  };
}

const notFound = (name: string) => new AppError('not_found', `models/${name} is not found or is not available`, { details: { code: 'model_not_found' } });

export function geminiModels(deps: IngressDeps, req: FastifyRequest) {
  const key = authenticateKey(deps.keys, req);
  return { models: deps.service.models(key).map(geminiModelView) };
}

export function geminiModel(deps: IngressDeps, req: FastifyRequest) {
  const key = authenticateKey(deps.keys, req);
  const name = (req.params as { '*': string })['*'].replace(/^models\//, '');
  const m = deps.service.models(key).find((x) => x.name === name);
  if (!m) throw notFound(name);
  return geminiModelView(m);
}

export function geminiMethod(deps: IngressDeps, req: FastifyRequest, reply: FastifyReply) {
  const path = (req.params as { '*': string })['*'];
  const at = path.lastIndexOf(':');
  const method = at > 0 ? path.slice(at + 1) : '';
  const spec = METHODS[method as keyof typeof METHODS];
  if (!spec) throw new AppError('not_found', `method "${method || path}" is not supported; use ${Object.keys(METHODS).join(', ')}`);
  const model = path.slice(0, at).replace(/^models\//, '');
  const alt = (req.query as Record<string, unknown>).alt;
  return runCall(deps, req, reply, () => ({
    ingress: 'gemini',
    op: spec.op,
    model,
    body: bodyOf(req),
    stream: spec.stream,
    geminiMethod: method,
    geminiMode: alt === 'sse' ? 'sse' : 'array',
  }));
}

export function geminiRoutes(app: FastifyInstance, deps: IngressDeps) {
  app.get('/v1beta/models', async (req) => geminiModels(deps, req));
  app.get('/v1beta/models/*', async (req) => geminiModel(deps, req));
  app.post('/v1beta/models/*', (req, reply) => geminiMethod(deps, req, reply));
}
