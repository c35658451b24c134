// Google Gemini API (https://ai.google.dev/api): models/{m}:generateContent, :streamGenerateContent
// (always requested with alt=sse, so the stream is SSE), :batchEmbedContents, :countTokens; key in
// `x-goog-api-key`.
import type { ProviderAdapter } from '../types.ts';

const METHOD = { chat: 'generateContent', embeddings: 'batchEmbedContents', count_tokens: 'countTokens' } as const;

/** A base URL that already names the API version (`…/v1beta`, `…/v1`), as Google's docs write it. */
const VERSIONED = /\/v\d+(?:alpha|beta)?\d*$/;

export const gemini: ProviderAdapter = {
  family: 'gemini',
  operations: new Set(['chat', 'embeddings', 'count_tokens']),
  streamUsageOption: false,
  request(p, op, model, body, stream) {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (p.apiKey) headers['x-goog-api-key'] = p.apiKey;
    const name = encodeURIComponent(model.replace(/^models\//, ''));
    const method = op === 'chat' && stream ? 'streamGenerateContent?alt=sse' : METHOD[op as keyof typeof METHOD];
    // The version in the base URL wins over api_version: it is what the administrator typed last.
    const root = VERSIONED.test(p.baseUrl) ? p.baseUrl : `${p.baseUrl}/${p.apiVersion ?? 'v1beta'}`;
    return { method: 'POST', url: `${root}/models/${name}:${method}`, headers, body };
  },
};
