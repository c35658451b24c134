// Worst-case sizes used to reserve budget and tokens-per-minute before the upstream answers. About
// four characters per token for text (OpenAI's rule of thumb); images and other binary payloads are
// not counted as text (their real cost is settled from the upstream's usage).
import { isObject, type Json } from '../providers/types.ts';

const BINARY_KEYS = new Set(['image_url', 'inlineData', 'inline_data', 'fileData', 'file_data', 'source', 'input_audio', 'b64_json']);

function chars(v: unknown, depth: number): number {
  if (typeof v === 'string') return v.length;
  if (depth > 20) return 0;
  if (Array.isArray(v)) {
    let n = 0;
    for (const x of v) n += chars(x, depth + 1);
    return n;
  }
  if (isObject(v)) {
    let n = 0;
    for (const k in v) if (!BINARY_KEYS.has(k)) n += chars(v[k], depth + 1);
    return n;
  }
  return 0;
}

export function estimateInputTokens(body: Json): number {
  return Math.ceil(chars(body, 0) / 4) + 8;
}

/** The output cap the request names, in any family's spelling; null when it names none. */
export function requestedOutputCap(body: Json): number | null {
  const gc = isObject(body.generationConfig) ? body.generationConfig : null;
  for (const v of [body.max_completion_tokens, body.max_tokens, body.max_output_tokens, gc?.maxOutputTokens]) {
    if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return Math.ceil(v) * (typeof body.n === 'number' && body.n > 1 ? body.n : 1);
  }
  return null;
}
