// OpenAI's API under /v1 (https://platform.openai.com/docs/api-reference): chat/completions,
// completions, embeddings, responses, moderations, images/generations, audio (audio-routes.ts), models. GET /v1/models answers
// in Gemini's shape when the caller authenticates the Gemini way, in Anthropic's when it sends
// `anthropic-version` (see wire-format.ts).
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../../../core/errors/errors.ts';
import type { Model } from '../../catalog/catalog.ts';
import type { Operation } from '../../providers/types.ts';
import { bodyOf, modelOf, postJson, runCall, type IngressDeps, type IngressReply, type IngressRequest } from '../call.ts';
import { authenticateKey } from '../credentials.ts';
import { formatOf, type IngressFormat } from '../wire-format.ts';
import { anthropicModel, anthropicModels } from '../anthropic/anthropic-routes.ts';
import { geminiMethod, geminiModel, geminiModels } from '../gemini/gemini-routes.ts';
import { audioRoutes } from './audio-routes.ts';

export function openAiModel(m: Model) {
  return { id: m.name, object: 'model', created: m.created, owned_by: 'nexus' };
}

/** Operations whose answer may be a stream (`stream: true`); the others always answer JSON. */
export const STREAMS: ReadonlySet<Operation> = new Set(['chat', 'completions', 'responses', 'images']);
/** OpenAI's moderations endpoint takes no model and answers with its latest moderation model. */
const DEFAULT_MODERATION_MODEL = 'omni-moderation-latest';

/** A handler for an OpenAI-shaped operation whose model is in the body. */
export function openAiOperation(deps: IngressDeps, ingress: IngressFormat, op: Operation) {
  return (req: IngressRequest, reply: IngressReply) => {
    return runCall(deps, req, reply, () => {
      const body = bodyOf(req);
      const model = op === 'moderations' && body.model === undefined ? DEFAULT_MODERATION_MODEL : modelOf(body);
      return { ingress, op, model, body, stream: STREAMS.has(op) && body.stream === true };
    });
  };
}

export function openAiModelRoutes(app: FastifyInstance, deps: IngressDeps, prefix: string) {
  app.get(`${prefix}/models`, async (req) => {
    const key = authenticateKey(deps.keys, req);
    return { object: 'list', data: deps.service.models(key).map(openAiModel) };
  });
  app.get(`${prefix}/models/*`, async (req) => {
    const key = authenticateKey(deps.keys, req);
    const name = (req.params as { '*': string })['*'];
    const m = deps.service.models(key).find((x) => x.name === name);
    if (!m) throw new AppError('not_found', `model "${name}" does not exist or is not available`, { details: { code: 'model_not_found', param: 'model' } });
    return openAiModel(m);
  });
}

export function openAiRoutes(app: FastifyInstance, deps: IngressDeps) {
  postJson(app, deps, '/v1/chat/completions', openAiOperation(deps, 'openai', 'chat'));
  postJson(app, deps, '/v1/completions', openAiOperation(deps, 'openai', 'completions'));
  postJson(app, deps, '/v1/embeddings', openAiOperation(deps, 'openai', 'embeddings'));
  postJson(app, deps, '/v1/responses', openAiOperation(deps, 'openai', 'responses'));
  postJson(app, deps, '/v1/moderations', openAiOperation(deps, 'openai', 'moderations'));
  postJson(app, deps, '/v1/images/generations', openAiOperation(deps, 'openai', 'images'));
  audioRoutes(app, deps, 'openai', '/v1');

  // /v1/models is shared with Gemini's stable API and Anthropic's: decide by the caller's headers.
  app.get('/v1/models', async (req, reply) => {
    const format = formatOf(req.url, req.headers);
    if (format === 'gemini') return geminiModels(deps, req);
    if (format === 'anthropic') return anthropicModels(deps, req);
    const key = authenticateKey(deps.keys, req);
    return reply.send({ object: 'list', data: deps.service.models(key).map(openAiModel) });
  });
  app.get('/v1/models/*', async (req) => {
    const format = formatOf(req.url, req.headers);
    if (format === 'gemini') return geminiModel(deps, req);
    const key = authenticateKey(deps.keys, req);
    const name = (req.params as { '*': string })['*'];
    const m = deps.service.models(key).find((x) => x.name === name);
    if (!m) throw new AppError('not_found', `model "${name}" does not exist or is not available`, { details: { code: 'model_not_found', param: 'model' } });
    return format === 'anthropic' ? anthropicModel(m) : openAiModel(m);
  });
  app.post('/v1/models/*', (req, reply) => geminiMethod(deps, req, reply));
}
