// Azure OpenAI (https://learn.microsoft.com/azure/ai-services/openai/reference): deployments under
// /openai/deployments/{name}/…?api-version=…, or the v1 API under /openai/v1/… (api_version "v1",
// model in the body). Authenticated with the `api-key` header.
import { OPENAI_PATHS } from '../openai-base/openai-base.ts';
import type { ProviderAdapter } from '../types.ts';

export const azure: ProviderAdapter = {
  family: 'openai',
  operations: new Set(['chat', 'completions', 'embeddings', 'responses', 'images', 'transcriptions', 'translations', 'speech']),
  streamUsageOption: true,
  request(p, op, model, body) {
    const path = OPENAI_PATHS[op as keyof typeof OPENAI_PATHS];
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (p.apiKey) headers['api-key'] = p.apiKey;
    const url = !p.apiVersion || p.apiVersion === 'v1' || op === 'responses'
      ? `${p.baseUrl}/openai/v1${path}`
      : `${p.baseUrl}/openai/deployments/${encodeURIComponent(model)}${path}?api-version=${encodeURIComponent(p.apiVersion)}`;
    return { method: 'POST', url, headers, body };
  },
};
