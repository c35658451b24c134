// Google Gemini API (https://ai.google.dev/api): models/{m}:generateContent, :streamGenerateContent
// (always requested with alt=sse, so the stream is SSE), :batchEmbedContents, :countTokens; key in
// `x-goog-api-key`.
import type { ProviderAdapter } from '../types.ts';

const METHOD = { chat: 'generateContent', embeddings: 'batchEmbedContents', count_tokens: 'countTokens' } as const;

export const gemini: ProviderAdapter = {
  family: 'gemini',
  operations: new Set(['chat', 'embeddings', 'count_tokens']),
  streamUsageOption: false,
  request(p, op, model, body, stream) {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (p.apiKey) headers['x-goog-api-key'] = p.apiKey;
    const name = encodeURIComponent(model.replace(/^models\//, ''));
    const method = op === 'chat' && stream ? 'streamGenerateContent?alt=sse' : METHOD[op as keyof typeof METHOD];
    const version = p.apiVersion ?? 'v1beta';
    return { method: 'POST', url: `${p.baseUrl}/${version}/models/${name}:${method}`, headers, body };
  },
};
