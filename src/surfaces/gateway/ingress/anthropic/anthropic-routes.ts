// Anthropic's Messages API (https://docs.anthropic.com/en/api/messages) under /v1, so Anthropic SDKs
// and tools built on them (ANTHROPIC_BASE_URL) reach every configured model: POST /v1/messages,
// streamed with named events or not, and POST /v1/messages/count_tokens. The virtual key comes as
// `x-api-key` (or `Authorization: Bearer`, the SDKs' authToken). `anthropic-version` and
// `anthropic-beta` go with a request that passes through to an Anthropic provider (they name the
// body's shape and the features it uses); translated requests do not need them. GET /v1/models
// answers in Anthropic's shape when the caller sends `anthropic-version` (openai-routes.ts).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../../../../core/errors/errors.ts';
import type { Model } from '../../catalog/catalog.ts';
import { bodyOf, modelOf, postJson, runCall, type IngressDeps, type IngressRequest } from '../call.ts';
import { authenticateKey } from '../credentials.ts';

export function anthropicModel(m: Model) {
  return { type: 'model', id: m.name, display_name: m.name, created_at: new Date(m.created * 1000).toISOString() };
}

export function anthropicModels(deps: IngressDeps, req: FastifyRequest) {
  const key = authenticateKey(deps.keys, req);
  const data = deps.service.models(key).map(anthropicModel);
  return { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
}

const PASSED = ['anthropic-version', 'anthropic-beta'] as const;

/** The Anthropic headers a passed-through request carries on, when the client sent them. */
function passHeaders(req: IngressRequest): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  for (const name of PASSED) {
    const v = req.headers[name];
    const value = Array.isArray(v) ? v.join(',') : v;
    if (value) (out ??= {})[name] = value;
  }
  return out;
}

export function anthropicRoutes(app: FastifyInstance, deps: IngressDeps) {
  postJson(app, deps, '/v1/messages', (req, reply) => runCall(deps, req, reply, () => {
    const body = bodyOf(req);
    const max = body.max_tokens;
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1) {
      throw new AppError('validation_failed', 'max_tokens: a positive integer is required', { details: { param: 'max_tokens' } });
    }
    return { ingress: 'anthropic', op: 'chat', model: modelOf(body), body, stream: body.stream === true, passHeaders: passHeaders(req) };
  }));
  postJson(app, deps, '/v1/messages/count_tokens', (req, reply) => runCall(deps, req, reply, () => {
    const body = bodyOf(req);
    return { ingress: 'anthropic', op: 'count_tokens', model: modelOf(body), body, stream: false, passHeaders: passHeaders(req) };
  }));
}
