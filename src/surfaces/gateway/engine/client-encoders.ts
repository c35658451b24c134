// How a stream reaches the client, per ingress wire format: OpenAI-style SSE ending in
// `data: [DONE]`, Gemini SSE (`?alt=sse`, no terminator) or Gemini's JSON array (without alt=sse,
// elements written as they arrive). A failure after bytes were sent ends the stream with an error in
// the same format, which every official SDK raises as an error.
import type { AppError } from '../../../core/errors/errors.ts';
import { errorBody, type IngressFormat } from '../ingress/wire-format.ts';
import { openAiStreamToGemini } from '../providers/gemini/gemini-chat.ts';
import type { Json } from '../providers/types.ts';

export interface ClientEncoder {
  contentType: string;
  /** A pivot (OpenAI) chunk, translated into the client's frames. */
  chunk(c: Json): string;
  /** An upstream frame's data already in the client's family (pass-through). */
  raw(data: string): string;
  /** The stream ended cleanly; `passthrough` says the upstream already sent its own terminator. */
  end(passthrough: boolean): string;
  error(err: AppError): string;
}

const SSE = 'text/event-stream; charset=utf-8';

export function openAiEncoder(format: IngressFormat, includeUsage: boolean): ClientEncoder {
  return {
    contentType: SSE,
    chunk(c) {
      if (!includeUsage && c.usage !== undefined) {
        if (Array.isArray(c.choices) && c.choices.length === 0) return '';
        const { usage: _u, ...rest } = c;
        c = rest;
      }
      return `data: ${JSON.stringify(c)}\n\n`;
    },
    raw: (data) => `data: ${data}\n\n`,
    end: (passthrough) => (passthrough ? '' : 'data: [DONE]\n\n'),
    error: (err) => `data: ${JSON.stringify(errorBody(format, err))}\n\n`,
  };
}

export function geminiEncoder(model: string, mode: 'sse' | 'array'): ClientEncoder {
  const frames = openAiStreamToGemini(model);
  let first = true;
  const frame = (s: string) => {
    if (mode === 'sse') return `data: ${s}\r\n\r\n`;
    const out = (first ? '[' : ',\r\n') + s;
    first = false;
    return out;
  };
  const close = () => (mode === 'array' ? (first ? '[]' : ']') : '');
  return {
    contentType: mode === 'sse' ? SSE : 'application/json; charset=utf-8',
    chunk: (c) => frames.chunk(c).map((f) => frame(JSON.stringify(f))).join(''),
    raw: frame,
    end: (passthrough) => (passthrough ? '' : frames.end().map((f) => frame(JSON.stringify(f))).join('')) + close(),
    error: (err) => frame(JSON.stringify(errorBody('gemini', err))) + close(),
  };
}
