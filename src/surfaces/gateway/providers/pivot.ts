// The common shape every translation goes through: OpenAI chat completions
// (https://platform.openai.com/docs/api-reference/chat). A request in any family becomes an OpenAI
// chat request, a response or stream in any family becomes OpenAI completions/chunks, and back.
import { randomBytes } from 'node:crypto';
import { AppError } from '../../../core/errors/errors.ts';
import { isObject, type Json, type Usage } from './types.ts';

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter';

export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** Turns pivot (OpenAI) stream chunks into a client's frames, or an upstream family's events into chunks. */
export interface StreamDecoder {
  /** One upstream SSE event (its joined data and event name) to zero or more pivot chunks. */
  push(data: string, event: string | null): Json[];
  /** Upstream ended cleanly: any chunks still held back (e.g. the usage chunk). */
  end(): Json[];
}

export const newId = (prefix: string) => prefix + randomBytes(12).toString('base64url');
export const nowSeconds = () => Math.floor(Date.now() / 1000);

export function chunkOf(id: string, created: number, model: string, choices: Json[], usage?: Json): Json {
  const c: Json = { id, object: 'chat.completion.chunk', created, model, choices };
  if (usage) c.usage = usage;
  return c;
}

export function openAiUsageOf(u: Usage): Json {
  const usage: Json = { prompt_tokens: u.input, completion_tokens: u.output, total_tokens: u.input + u.output };
  if (u.cached) usage.prompt_tokens_details = { cached_tokens: u.cached };
  if (u.reasoning) usage.completion_tokens_details = { reasoning_tokens: u.reasoning };
  return usage;
}

/** Text of an OpenAI message content (string or array of parts). */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((p) => (isObject(p) && typeof p.text === 'string' ? p.text : '')).join('');
}

/** Tool call arguments as an object; upstreams need objects, clients send JSON text. */
export function parseArguments(args: unknown): Json {
  if (isObject(args)) return args;
  if (typeof args !== 'string' || args.trim() === '') return {};
  try {
    const v = JSON.parse(args);
    return isObject(v) ? v : { value: v };
  } catch {
    throw new AppError('validation_failed', 'tool call arguments are not valid JSON', { details: { param: 'messages' } });
  }
}

/** A tool result as the object Gemini/Anthropic want: parsed JSON when it is an object, else wrapped. */
export function toolResultObject(content: unknown): Json {
  const text = contentText(content);
  try {
    const v = JSON.parse(text);
    if (isObject(v)) return v;
  } catch {
    /* plain text */
  }
  return { content: text };
}

/** `data:image/png;base64,AAAA` → {mimeType, data}, else null. */
export function parseDataUrl(url: string): { mimeType: string; data: string } | null {
  const m = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  return m ? { mimeType: m[1]!, data: m[2]! } : null;
}

/** The request's messages, validated enough that translation cannot crash on them. */
export function messagesOf(body: Json): Json[] {
  const messages = body.messages;
  if (!Array.isArray(messages) || !messages.every(isObject)) {
    throw new AppError('validation_failed', 'messages must be an array of objects', { details: { param: 'messages' } });
  }
  return messages as Json[];
}
