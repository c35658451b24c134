// Zhipu GLM's API (https://open.bigmodel.cn/dev/api) under /api/paas/v4: OpenAI-shaped chat and
// embeddings; `Authorization: Bearer <key>` or Zhipu's signed JWT (keys/zhipu-jwt.ts).
import type { FastifyInstance } from 'fastify';
import { postJson, type IngressDeps } from '../call.ts';
import { openAiOperation } from '../openai/openai-routes.ts';

export function glmRoutes(app: FastifyInstance, deps: IngressDeps) {
  postJson(app, deps, '/api/paas/v4/chat/completions', openAiOperation(deps, 'glm', 'chat'));
  postJson(app, deps, '/api/paas/v4/embeddings', openAiOperation(deps, 'glm', 'embeddings'));
  postJson(app, deps, '/api/paas/v4/images/generations', openAiOperation(deps, 'glm', 'images'));
}
