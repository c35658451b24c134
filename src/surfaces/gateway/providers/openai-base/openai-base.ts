// The OpenAI wire shape shared by openai, azure, glm and openai-compatible providers: requests and
// responses pass through unchanged apart from the model name, so these providers are a few lines each.
import type { Provider } from '../../catalog/catalog.ts';
import { isObject, num, type Json, type Operation, type ProviderAdapter, type Usage } from '../types.ts';

export const OPENAI_PATHS: Record<Exclude<Operation, 'count_tokens'>, string> = {
  chat: '/chat/completions',
  completions: '/completions',
  embeddings: '/embeddings',
  responses: '/responses',
  moderations: '/moderations',
  images: '/images/generations',
  transcriptions: '/audio/transcriptions',
  translations: '/audio/translations',
  speech: '/audio/speech',
};

export function bearerHeaders(p: Provider): Record<string, string> {
  const h: Record<string, string> = { 'content-type': 'application/json' };
  if (p.apiKey) h.authorization = `Bearer ${p.apiKey}`;
  return h;
}

/** An OpenAI-shaped provider at `baseUrl + path`, authenticated with a Bearer key. */
export function openAiShaped(operations: Operation[], streamUsageOption = true): ProviderAdapter {
  return {
    family: 'openai',
    operations: new Set(operations),
    streamUsageOption,
    request(p, op, _model, body) {
      return { method: 'POST', url: p.baseUrl + OPENAI_PATHS[op as keyof typeof OPENAI_PATHS], headers: bearerHeaders(p), body };
    },
  };
}

/**
 * Usage from an OpenAI chat/completions/embeddings response or chunk, from a Responses API object
 * (input_tokens/output_tokens), or a transcript's `{type: "duration", seconds}` (models billed by the
 * length of the audio: https://platform.openai.com/docs/api-reference/audio/json-object).
 */
export function openAiUsage(usage: unknown): Usage | null {
  if (!isObject(usage)) return null;
  if (usage.type === 'duration') return { input: 0, output: 0, cached: 0, reasoning: 0, ...seconds(usage.seconds) };
  if ('input_tokens' in usage || 'output_tokens' in usage) {
    const inDetails = isObject(usage.input_tokens_details) ? usage.input_tokens_details : {};
    const outDetails = isObject(usage.output_tokens_details) ? usage.output_tokens_details : {};
    return { input: num(usage.input_tokens), output: num(usage.output_tokens), cached: num(inDetails.cached_tokens), reasoning: num(outDetails.reasoning_tokens) };
  }
  const inDetails = isObject(usage.prompt_tokens_details) ? usage.prompt_tokens_details : {};
  const outDetails = isObject(usage.completion_tokens_details) ? usage.completion_tokens_details : {};
  return {
    input: num(usage.prompt_tokens),
    output: num(usage.completion_tokens),
    cached: num(inDetails.cached_tokens),
    reasoning: num(outDetails.reasoning_tokens),
  };
}

const seconds = (v: unknown): { audioSeconds?: number } => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? { audioSeconds: v } : {});

/** A transcript's usage: its `usage`, with the audio's length from verbose_json's `duration` when that has none. */
export function transcriptUsage(json: Json): Usage | null {
  const u = openAiUsage(json.usage);
  if (u?.audioSeconds !== undefined || typeof json.duration !== 'number') return u;
  return { ...(u ?? { input: 0, output: 0, cached: 0, reasoning: 0 }), ...seconds(json.duration) };
}

/** Replaces the model name (the public name becomes the deployment's upstream model). */
export function withModel(body: Json, model: string): Json {
  return { ...body, model };
}
