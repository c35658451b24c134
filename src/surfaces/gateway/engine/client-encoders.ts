// How a stream reaches the client, per ingress wire format: OpenAI-style SSE ending in
// `data: [DONE]` (chat chunks, or text_completion chunks for completions), the Responses API's named
// events, Gemini SSE (`?alt=sse`, no terminator), Gemini's JSON array (without alt=sse, elements
// written as they arrive) or Anthropic's Messages events. A failure after bytes were sent ends the stream with an error in
// the same format, which every official SDK raises as an error.
import type { AppError } from '../../../core/errors/errors.ts';
import { errorBody, type IngressFormat } from '../ingress/wire-format.ts';
import { anthropicErrorEvent, anthropicStream, anthropicWantsThinking } from '../providers/anthropic/anthropic-ingress.ts';
import { geminiWantsThoughts, openAiStreamToGemini } from '../providers/gemini/gemini-chat.ts';
import { textCompletionStream } from '../providers/openai-base/completions-chat.ts';
import { responsesStream } from '../providers/openai-base/responses-chat.ts';
import type { Json, Operation } from '../providers/types.ts';
import { clientAskedUsage } from './translate.ts';

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

/** Translated completions: text_completion chunks, then `data: [DONE]`. */
export function completionsEncoder(format: IngressFormat, model: string, includeUsage: boolean): ClientEncoder {
  const base = openAiEncoder(format, includeUsage);
  return { ...base, chunk: textCompletionStream(model, includeUsage) };
}

/** Translated Responses API streams; a pass-through one already carries the upstream's own events. */
export function responsesEncoder(model: string, request: Json): ClientEncoder {
  const events = responsesStream(model, request);
  return {
    contentType: SSE,
    chunk: events.chunk,
    raw: (data) => `data: ${data}\n\n`,
    end: (passthrough) => (passthrough ? '' : events.end()),
    error(err) {
      const e = errorBody('openai', err).error as { code: string | null; message: string; param: string | null };
      return events.error(e.code, e.message, e.param);
    },
  };
}

/** The encoder for a call's ingress format and operation. */
export function clientEncoder(c: { ingress: IngressFormat; op: Operation; model: string; body: Json; geminiMode?: 'sse' | 'array' }): ClientEncoder {
  if (c.ingress === 'gemini') return geminiEncoder(c.model, c.geminiMode ?? 'sse', geminiWantsThoughts(c.body));
  if (c.ingress === 'anthropic') return anthropicEncoder(c.model, anthropicWantsThinking(c.body));
  if (c.op === 'responses') return responsesEncoder(c.model, c.body);
  if (c.op === 'completions') return completionsEncoder(c.ingress, c.model, clientAskedUsage(c.body));
  return openAiEncoder(c.ingress, clientAskedUsage(c.body));
}

export function geminiEncoder(model: string, mode: 'sse' | 'array', thoughts = false): ClientEncoder {
  const frames = openAiStreamToGemini(model, thoughts);
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

/** Anthropic Messages events; a pass-through stream is the provider's own events, byte for byte. */
export function anthropicEncoder(model: string, thinking = false): ClientEncoder {
  const events = anthropicStream(model, thinking);
  return {
    contentType: SSE,
    chunk: events.chunk,
    raw: (data) => `data: ${data}\n\n`,
    end: (passthrough) => (passthrough ? '' : events.end()),
    error: (err) => anthropicErrorEvent(errorBody('anthropic', err)),
  };
}
