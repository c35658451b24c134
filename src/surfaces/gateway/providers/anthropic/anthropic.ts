// Anthropic Messages API (https://docs.anthropic.com/en/api/messages): POST /v1/messages (and
// /v1/messages/count_tokens for Anthropic clients counting tokens) with `x-api-key` and
// `anthropic-version`.
import type { ProviderAdapter } from '../types.ts';

export const ANTHROPIC_VERSION = '2023-06-01';

export const anthropic: ProviderAdapter = {
  family: 'anthropic',
  operations: new Set(['chat']),
  streamUsageOption: false,
  request(p, op, _model, body) {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'anthropic-version': p.apiVersion ?? ANTHROPIC_VERSION };
    if (p.apiKey) headers['x-api-key'] = p.apiKey;
    // `https://api.anthropic.com` and `https://api.anthropic.com/v1` alike (SDKs and docs use both).
    const root = p.baseUrl.endsWith('/v1') ? p.baseUrl : `${p.baseUrl}/v1`;
    return { method: 'POST', url: `${root}/messages${op === 'count_tokens' ? '/count_tokens' : ''}`, headers, body };
  },
};
