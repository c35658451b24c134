// OpenAI's legacy completions (https://platform.openai.com/docs/api-reference/completions) over the
// chat pivot, for providers without a /completions endpoint: the prompt becomes one user message, and
// the chat answer (or each chunk) becomes a `text_completion` object (or chunk).
import { AppError } from '../../../../core/errors/errors.ts';
import { contentText, newId, nowSeconds } from '../pivot.ts';
import { isObject, type Json } from '../types.ts';

const unsupported = (message: string, param: string) =>
  new AppError('validation_failed', message, { details: { code: 'unsupported_parameter', param } });

/** A completions request as a chat completions request for `upstreamModel`. */
export function completionsRequestToChat(body: Json, upstreamModel: string, stream: boolean, askUsage: boolean): Json {
  let prompt = body.prompt;
  // Several prompts are several completions; a chat upstream answers one conversation per request.
  if (Array.isArray(prompt) && prompt.length === 1) prompt = prompt[0];
  if (Array.isArray(prompt) && prompt.every((p) => typeof p === 'string')) {
    throw unsupported('prompt: this model answers one prompt per request; send the prompts separately', 'prompt');
  }
  if (typeof prompt !== 'string') {
    throw new AppError('validation_failed', 'prompt must be a string (or an array holding one string); token arrays cannot be sent to this model', { details: { param: 'prompt' } });
  }
  if (body.echo === true) throw unsupported('echo is not available for this model', 'echo');
  if (body.suffix !== undefined && body.suffix !== null) throw unsupported('suffix is not available for this model', 'suffix');
  if (typeof body.best_of === 'number' && body.best_of > 1) throw unsupported('best_of is not available for this model', 'best_of');
  if (body.logprobs !== undefined && body.logprobs !== null) throw unsupported('logprobs are not available for this model', 'logprobs');
  const out: Json = { model: upstreamModel, messages: [{ role: 'user', content: prompt }] };
  for (const k of ['max_tokens', 'temperature', 'top_p', 'n', 'stop', 'presence_penalty', 'frequency_penalty', 'seed', 'user', 'logit_bias'] as const) {
    if (body[k] !== undefined && body[k] !== null) out[k] = body[k];
  }
  if (stream) {
    out.stream = true;
    if (askUsage) out.stream_options = { include_usage: true };
  }
  return out;
}

// A tool call has no text-completion form; the text before it, if any, is the answer.
const finishOf = (f: unknown) => (f === 'tool_calls' || f === 'function_call' ? 'stop' : (f ?? null));

/** A pivot chat completion as a `text_completion`. */
export function chatToTextCompletion(c: Json, model: string): Json {
  const choices = (Array.isArray(c.choices) ? c.choices.filter(isObject) : []).map((ch, i) => ({
    index: typeof ch.index === 'number' ? ch.index : i,
    text: contentText(isObject(ch.message) ? ch.message.content : ''),
    logprobs: null,
    finish_reason: finishOf(ch.finish_reason) ?? 'stop',
  }));
  return { id: newId('cmpl-'), object: 'text_completion', created: nowSeconds(), model, choices, ...(isObject(c.usage) ? { usage: c.usage } : {}) };
}

/** Pivot chunks → `text_completion` chunks; the usage chunk only when the client asked for it. */
export function textCompletionStream(model: string, includeUsage: boolean) {
  const id = newId('cmpl-');
  const created = nowSeconds();
  return (c: Json): string => {
    const choices = (Array.isArray(c.choices) ? c.choices.filter(isObject) : [])
      .map((ch) => {
        const delta = isObject(ch.delta) ? ch.delta : {};
        return { index: typeof ch.index === 'number' ? ch.index : 0, text: typeof delta.content === 'string' ? delta.content : '', logprobs: null, finish_reason: finishOf(ch.finish_reason) };
      })
      .filter((ch) => ch.text || ch.finish_reason);
    const usage = includeUsage && isObject(c.usage) ? c.usage : null;
    if (!choices.length && !usage) return '';
    return `data: ${JSON.stringify({ id, object: 'text_completion', created, model, choices, ...(usage ? { usage } : {}) })}\n\n`;
  };
}
