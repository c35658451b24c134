// Gemini embedContent / batchEmbedContents ⇄ OpenAI embeddings
// (https://ai.google.dev/api/embeddings, https://platform.openai.com/docs/api-reference/embeddings).
import { AppError } from '../../../../core/errors/errors.ts';
import { isObject, type Json } from '../types.ts';

export type GeminiEmbedMethod = 'embedContent' | 'batchEmbedContents';

function textOf(content: unknown): string {
  if (!isObject(content) || !Array.isArray(content.parts)) return '';
  return content.parts.map((p) => (isObject(p) && typeof p.text === 'string' ? p.text : '')).join('');
}

export function geminiEmbedRequestToOpenAi(method: GeminiEmbedMethod, body: Json, model: string): Json {
  const items = method === 'embedContent' ? [body] : Array.isArray(body.requests) ? body.requests.filter(isObject) : null;
  if (!items || !items.length) throw new AppError('validation_failed', 'requests must be a non-empty array', { details: { param: 'requests' } });
  const dims = (items[0] as Json).outputDimensionality;
  return { model, input: items.map((r) => textOf((r as Json).content)), encoding_format: 'float', ...(typeof dims === 'number' ? { dimensions: dims } : {}) };
}

function floats(embedding: unknown): number[] {
  if (Array.isArray(embedding)) return embedding as number[];
  if (typeof embedding === 'string') {
    const buf = Buffer.from(embedding, 'base64');
    return Array.from(new Float32Array(buf.buffer, buf.byteOffset, Math.floor(buf.length / 4)));
  }
  return [];
}

export function openAiEmbeddingsToGemini(method: GeminiEmbedMethod, res: Json): Json {
  const data = Array.isArray(res.data) ? res.data.filter(isObject) : [];
  const vectors = data.map((d) => ({ values: floats(d.embedding) }));
  return method === 'embedContent' ? { embedding: vectors[0] ?? { values: [] } } : { embeddings: vectors };
}

export function embeddingInputs(body: Json): string[] {
  const input = body.input;
  if (typeof input === 'string') return [input];
  if (Array.isArray(input) && input.length && input.every((s) => typeof s === 'string')) return input as string[];
  throw new AppError('validation_failed', 'input must be a string or an array of strings for this model', { details: { param: 'input' } });
}

export function openAiEmbedRequestToGemini(body: Json, upstreamModel: string): Json {
  const dims = body.dimensions;
  const name = upstreamModel.startsWith('models/') ? upstreamModel : `models/${upstreamModel}`;
  return {
    requests: embeddingInputs(body).map((text) => ({
      model: name,
      content: { parts: [{ text }] },
      ...(typeof dims === 'number' ? { outputDimensionality: dims } : {}),
    })),
  };
}

/** Float32 little-endian, base64: what `encoding_format: "base64"` means (the openai SDK's default). */
function toBase64(values: number[]): string {
  const f = new Float32Array(values);
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64');
}

export function geminiEmbeddingsToOpenAi(res: Json, model: string, base64: boolean, promptTokens: number): Json {
  const embeddings = Array.isArray(res.embeddings) ? res.embeddings.filter(isObject) : [];
  return {
    object: 'list',
    data: embeddings.map((e, index) => {
      const values = Array.isArray(e.values) ? (e.values as number[]) : [];
      return { object: 'embedding', index, embedding: base64 ? toBase64(values) : values };
    }),
    model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  };
}
