// Azure OpenAI's data plane (https://learn.microsoft.com/azure/ai-services/openai/reference):
// /openai/deployments/{deployment}/{chat/completions|completions|embeddings|images/generations|audio/…}?api-version=…, where the
// deployment name is the public model name, and the v1 API under /openai/v1/… (model in the body).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Operation } from '../../providers/types.ts';
import { bodyOf, postJson, runCall, type IngressDeps } from '../call.ts';
import { audioRoutes } from '../openai/audio-routes.ts';
import { openAiModelRoutes, openAiOperation, STREAMS } from '../openai/openai-routes.ts';

function deploymentOperation(deps: IngressDeps, op: Operation) {
  return (req: FastifyRequest<{ Params: { deployment: string } }>, reply: FastifyReply) => {
    return runCall(deps, req, reply, () => {
      const body = bodyOf(req);
      return { ingress: 'azure', op, model: req.params.deployment, body, stream: STREAMS.has(op) && body.stream === true };
    });
  };
}

export function azureRoutes(app: FastifyInstance, deps: IngressDeps) {
  app.post('/openai/deployments/:deployment/chat/completions', deploymentOperation(deps, 'chat'));
  app.post('/openai/deployments/:deployment/completions', deploymentOperation(deps, 'completions'));
  app.post('/openai/deployments/:deployment/embeddings', deploymentOperation(deps, 'embeddings'));
  postJson(app, deps, '/openai/v1/chat/completions', openAiOperation(deps, 'azure', 'chat'));
  postJson(app, deps, '/openai/v1/completions', openAiOperation(deps, 'azure', 'completions'));
  postJson(app, deps, '/openai/v1/embeddings', openAiOperation(deps, 'azure', 'embeddings'));
  app.post('/openai/deployments/:deployment/images/generations', deploymentOperation(deps, 'images'));
  postJson(app, deps, '/openai/v1/images/generations', openAiOperation(deps, 'azure', 'images'));
  postJson(app, deps, '/openai/v1/responses', openAiOperation(deps, 'azure', 'responses'));
  audioRoutes(app, deps, 'azure', '/openai/deployments/:deployment');
  audioRoutes(app, deps, 'azure', '/openai/v1');
  openAiModelRoutes(app, deps, '/openai/v1');
}
