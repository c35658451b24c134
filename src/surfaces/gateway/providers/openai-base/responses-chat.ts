// OpenAI's Responses API (https://platform.openai.com/docs/api-reference/responses) over the chat
// pivot, for providers without a /responses endpoint of their own: a Responses request becomes a chat
// request any provider type can serve, and the chat answer becomes a `response` object, or, streamed,
// the named SSE events the SDKs read (.../responses-streaming: response.created, .in_progress,
// .output_item.added, .content_part.added, .output_text.delta, … .completed), each written as the
// upstream event that caused it arrives.
import { AppError } from '../../../../core/errors/errors.ts';
import { contentText, newId, nowSeconds } from '../pivot.ts';
import { answerSignature, extraContent, GEMINI_MARK, signatureOfMarked } from '../gemini/thought-signature.ts';
import { reasoningText } from '../reasoning.ts';
import { isObject, type Json, type Usage } from '../types.ts';
import { openAiUsage } from './openai-base.ts';

const invalid = (message: string, param: string) => new AppError('validation_failed', message, { details: { param } });
const unsupported = (message: string, param: string) =>
  new AppError('validation_failed', message, { details: { code: 'unsupported_parameter', param } });

const ROLES = new Set(['user', 'assistant', 'system', 'developer']);

/** Responses content (string or input_text/input_image/output_text parts) as chat content. */
function contentToChat(content: unknown, param: string): string | Json[] {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw invalid(`${param} must be a string or an array of content parts`, param);
  const parts = content.map((p, i): Json => {
    const at = `${param}.${i}`;
    if (!isObject(p)) throw invalid(`${at} must be an object`, at);
    if (p.type === 'input_text' || p.type === 'output_text') {
      if (typeof p.text !== 'string') throw invalid(`${at}.text must be a string`, `${at}.text`);
      return { type: 'text', text: p.text };
    }
    if (p.type === 'refusal') return { type: 'text', text: String(p.refusal ?? '') };
    if (p.type === 'input_image') {
      if (typeof p.image_url !== 'string') throw unsupported(`${at}: only images given by image_url (a URL or data URL) can be sent to this model`, `${at}.image_url`);
      return { type: 'image_url', image_url: { url: p.image_url, ...(typeof p.detail === 'string' ? { detail: p.detail } : {}) } };
    }
    throw unsupported(`${at}: content type ${JSON.stringify(p.type)} cannot be sent to this model`, `${at}.type`);
  });
  return parts.length === 1 && parts[0]!.type === 'text' ? (parts[0]!.text as string) : parts;
}

/**
 * The text of a reasoning item a client sent back, when it may go on as `reasoning_content`: its
 * `content` (reasoning_text parts) or else its summary. An item with `encrypted_content` is a
 * provider's opaque reasoning (OpenAI's), whose summary is not the model's own text: none.
 */
function reasoningItemText(item: Json): string {
  if (item.encrypted_content !== undefined && item.encrypted_content !== null) return '';
  const texts = (parts: unknown, type: string) =>
    Array.isArray(parts) ? parts.map((p) => (isObject(p) && p.type === type && typeof p.text === 'string' ? p.text : '')).join('') : '';
  return texts(item.content, 'reasoning_text') || texts(item.summary, 'summary_text');
}

/** `input` (a string, or message / function_call / function_call_output / reasoning items) as chat messages. */
function inputToMessages(input: unknown): Json[] {
  if (typeof input === 'string') return [{ role: 'user', content: input }];
  if (!Array.isArray(input)) throw invalid('input must be a string or an array of input items', 'input');
  const messages: Json[] = [];
  // Reasoning items precede the assistant output they led to; their text goes on that turn (only GLM is sent it).
  let reasoning = '';
  let pendingSignature: string | null = null;
  const assistant = (m: Json) => {
    if (reasoning) m.reasoning_content = (typeof m.reasoning_content === 'string' ? m.reasoning_content : '') + reasoning;
    if (pendingSignature) m.extra_content = extraContent(pendingSignature);
    reasoning = '';
    pendingSignature = null;
    return m;
  };
  input.forEach((item, i) => {
    const at = `input.${i}`;
    if (!isObject(item)) throw invalid(`${at} must be an object`, at);
    const type = item.type ?? 'message';
    if (type === 'message') {
      if (typeof item.role !== 'string' || !ROLES.has(item.role)) throw invalid(`${at}.role must be user, assistant, system or developer`, `${at}.role`);
      const m: Json = { role: item.role, content: contentToChat(item.content, `${at}.content`) };
      if (item.role === 'assistant') assistant(m);
      else [reasoning, pendingSignature] = ['', null]; // reasoning with no answer after it belongs to no turn
      messages.push(m);
    } else if (type === 'function_call') {
      if (typeof item.call_id !== 'string' || typeof item.name !== 'string' || typeof item.arguments !== 'string') {
        throw invalid(`${at}: a function_call needs call_id, name and arguments (strings)`, at);
      }
      const call = { id: item.call_id, type: 'function', function: { name: item.name, arguments: item.arguments } };
      // Consecutive calls (and the text before them) are one assistant turn in chat.
      const last = messages.at(-1);
      if (last?.role === 'assistant') assistant(last).tool_calls = [...(Array.isArray(last.tool_calls) ? last.tool_calls : []), call];
      else messages.push(assistant({ role: 'assistant', content: null, tool_calls: [call] }));
    } else if (type === 'function_call_output') {
      if (typeof item.call_id !== 'string') throw invalid(`${at}.call_id must be a string`, `${at}.call_id`);
      messages.push({ role: 'tool', tool_call_id: item.call_id, content: typeof item.output === 'string' ? item.output : contentText(item.output) });
    } else if (type === 'reasoning') {
      // A Gemini text signature the gateway handed out comes after the message it signs (or, failing one, before the next).
      const sig = signatureOfMarked(item.encrypted_content);
      const last = messages.at(-1);
      if (sig && last?.role === 'assistant') last.extra_content = extraContent(sig);
      else if (sig) pendingSignature = sig;
      else reasoning += reasoningItemText(item);
    } else {
      // Anything else has no chat form.
      throw unsupported(`${at}: input item type ${JSON.stringify(type)} cannot be sent to this model`, `${at}.type`);
    }
  });
  return messages;
}

function toolsToChat(tools: unknown): Json[] {
  if (!Array.isArray(tools)) throw invalid('tools must be an array', 'tools');
  return tools.map((t, i) => {
    if (!isObject(t) || t.type !== 'function') throw unsupported(`tools.${i}: only function tools can be used with this model`, `tools.${i}.type`);
    if (typeof t.name !== 'string' || !t.name) throw invalid(`tools.${i}.name must be a string`, `tools.${i}.name`);
    const fn: Json = { name: t.name, parameters: isObject(t.parameters) ? t.parameters : { type: 'object', properties: {} } };
    if (typeof t.description === 'string') fn.description = t.description;
    if (typeof t.strict === 'boolean') fn.strict = t.strict;
    return { type: 'function', function: fn };
  });
}

function toolChoiceToChat(tc: unknown): unknown {
  if (tc === 'auto' || tc === 'none' || tc === 'required') return tc;
  if (isObject(tc) && tc.type === 'function' && typeof tc.name === 'string') return { type: 'function', function: { name: tc.name } };
  throw unsupported('tool_choice must be auto, none, required or {type: "function", name}', 'tool_choice');
}

/** A Responses API request as a chat completions request for `upstreamModel`. */
export function responsesRequestToChat(body: Json, upstreamModel: string, stream: boolean, askUsage: boolean): Json {
  for (const f of ['previous_response_id', 'conversation', 'prompt'] as const) {
    if (body[f] !== undefined && body[f] !== null) throw unsupported(`${f} needs responses stored by the provider, which this model does not offer`, f);
  }
  if (body.background === true) throw unsupported('background responses are not available for this model', 'background');
  const messages = inputToMessages(body.input);
  if (body.instructions !== undefined && body.instructions !== null) {
    if (typeof body.instructions !== 'string') throw invalid('instructions must be a string', 'instructions');
    messages.unshift({ role: 'system', content: body.instructions });
  }
  if (!messages.length) throw invalid('input must not be empty', 'input');
  const out: Json = { model: upstreamModel, messages };
  const max = body.max_output_tokens;
  if (max !== undefined && max !== null) {
    if (!Number.isInteger(max) || (max as number) < 1) throw invalid('max_output_tokens must be a positive integer', 'max_output_tokens');
    out.max_tokens = max;
  }
  for (const k of ['temperature', 'top_p', 'parallel_tool_calls', 'user', 'service_tier'] as const) {
    if (body[k] !== undefined && body[k] !== null) out[k] = body[k];
  }
  if (body.tools !== undefined && body.tools !== null) {
    const tools = toolsToChat(body.tools);
    if (tools.length) out.tools = tools;
  }
  if (body.tool_choice !== undefined && body.tool_choice !== null) out.tool_choice = toolChoiceToChat(body.tool_choice);
  const format = isObject(body.text) && isObject(body.text.format) ? body.text.format : null;
  if (format?.type === 'json_object') out.response_format = { type: 'json_object' };
  else if (format?.type === 'json_schema') {
    out.response_format = { type: 'json_schema', json_schema: { name: format.name ?? 'response', schema: format.schema, ...(typeof format.strict === 'boolean' ? { strict: format.strict } : {}) } };
  }
  if (isObject(body.reasoning) && typeof body.reasoning.effort === 'string') out.reasoning_effort = body.reasoning.effort;
  if (stream) {
    out.stream = true;
    if (askUsage) out.stream_options = { include_usage: true };
  }
  return out;
}

export function responsesUsageOf(u: Usage): Json {
  return {
    input_tokens: u.input,
    input_tokens_details: { cached_tokens: u.cached },
    output_tokens: u.output,
    output_tokens_details: { reasoning_tokens: u.reasoning },
    total_tokens: u.input + u.output,
  };
}

/** The `response` object's fields that echo the request. */
function responseShell(id: string, created: number, model: string, req: Json, status: string): Json {
  return {
    id,
    object: 'response',
    created_at: created,
    status,
    error: null,
    incomplete_details: null,
    instructions: typeof req.instructions === 'string' ? req.instructions : null,
    max_output_tokens: req.max_output_tokens ?? null,
    model,
    output: [],
    parallel_tool_calls: req.parallel_tool_calls ?? true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: false,
    temperature: req.temperature ?? null,
    text: isObject(req.text) ? req.text : { format: { type: 'text' } },
    tool_choice: req.tool_choice ?? 'auto',
    tools: Array.isArray(req.tools) ? req.tools : [],
    top_p: req.top_p ?? null,
    truncation: 'disabled',
    usage: null,
    user: req.user ?? null,
    metadata: isObject(req.metadata) ? req.metadata : {},
  };
}

const outputText = (text: string): Json => ({ type: 'output_text', text, annotations: [], logprobs: [] });
const summaryText = (text: string): Json => ({ type: 'summary_text', text });
/** The model's reasoning as a Responses `reasoning` item, its text as the summary (what chat providers return is a summary or the raw thoughts). */
const reasoningItem = (id: string, text: string | null): Json => ({ type: 'reasoning', id, summary: text === null ? [] : [summaryText(text)] });
/**
 * A Gemini text signature as a reasoning item of its own, for a client that asked for
 * `reasoning.encrypted_content` (the field Responses clients keep and send back for stateless
 * reasoning); marked so that it is never taken for OpenAI's own (thought-signature.ts).
 */
const signatureItem = (sig: string): Json => ({ type: 'reasoning', id: newId('rs_'), summary: [], encrypted_content: GEMINI_MARK + sig });
const wantsEncrypted = (req: Json) => Array.isArray(req.include) && req.include.includes('reasoning.encrypted_content');
const messageItem = (id: string, status: string, content: Json[]): Json => ({ type: 'message', id, status, role: 'assistant', content });
const callItem = (id: string, callId: string, name: string, args: string, status: string): Json =>
  ({ type: 'function_call', id, call_id: callId, name, arguments: args, status });

function finished(status: string, finish: unknown): Json {
  return finish === 'length' ? { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } } : { status };
}

/** A pivot chat completion as a `response` object. */
export function chatToResponse(c: Json, model: string, req: Json): Json {
  const choice = Array.isArray(c.choices) && isObject(c.choices[0]) ? c.choices[0] : {};
  const message = isObject(choice.message) ? choice.message : {};
  const calls = Array.isArray(message.tool_calls) ? message.tool_calls.filter(isObject) : [];
  const output: Json[] = [];
  const thoughts = reasoningText(message);
  if (thoughts) output.push(reasoningItem(newId('rs_'), thoughts));
  const text = contentText(message.content);
  const content: Json[] = [];
  if (text || (!calls.length && typeof message.refusal !== 'string')) content.push(outputText(text));
  if (typeof message.refusal === 'string' && message.refusal) content.push({ type: 'refusal', refusal: message.refusal });
  if (content.length) output.push(messageItem(newId('msg_'), 'completed', content));
  // After the message, where a stream has it: Gemini signs the last part of its answer.
  const sig = wantsEncrypted(req) ? answerSignature(message) : null;
  if (sig) output.push(signatureItem(sig));
  for (const tc of calls) {
    const fn = isObject(tc.function) ? tc.function : {};
    output.push(callItem(newId('fc_'), String(tc.id ?? newId('call_')), String(fn.name ?? ''), typeof fn.arguments === 'string' ? fn.arguments : JSON.stringify(fn.arguments ?? {}), 'completed'));
  }
  const usage = openAiUsage(c.usage);
  return {
    ...responseShell(newId('resp_'), nowSeconds(), model, req, 'completed'),
    ...finished('completed', choice.finish_reason),
    output,
    usage: usage ? responsesUsageOf(usage) : null,
  };
}

interface OpenCall {
  item: Json;
  outputIndex: number;
}

/**
 * Pivot chunks → Responses stream events. Each call returns the events one chunk causes, so they are
 * written as the upstream produced them; `end` closes what is open and sends response.completed
 * (or response.incomplete when the output cap was reached) with the output and usage.
 */
export function responsesStream(model: string, req: Json) {
  const id = newId('resp_');
  const created = nowSeconds();
  let seq = 0;
  let started = false;
  const output: Json[] = [];
  let message: { item: Json; outputIndex: number; text: string } | null = null;
  let reasoning: { id: string; outputIndex: number; text: string } | null = null;
  const calls = new Map<number, OpenCall>();
  let finish: unknown = null;
  let usage: Usage | null = null;

  const ev = (type: string, data: Json) => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`;
  const shell = (status: string) => responseShell(id, created, model, req, status);
  const start = () => {
    if (started) return '';
    started = true;
    return ev('response.created', { response: shell('in_progress') }) + ev('response.in_progress', { response: shell('in_progress') });
  };
  const openMessage = () => {
    const item = messageItem(newId('msg_'), 'in_progress', []);
    message = { item, outputIndex: output.length, text: '' };
    output.push(item);
    return ev('response.output_item.added', { output_index: message.outputIndex, item })
      + ev('response.content_part.added', { item_id: item.id, output_index: message.outputIndex, content_index: 0, part: outputText('') });
  };
  const closeMessage = () => {
    if (!message) return '';
    const { item, outputIndex, text } = message;
    message = null;
    const part = outputText(text);
    const done = messageItem(item.id as string, 'completed', [part]);
    output[outputIndex] = done;
    return ev('response.output_text.done', { item_id: item.id, output_index: outputIndex, content_index: 0, text, logprobs: [] })
      + ev('response.content_part.done', { item_id: item.id, output_index: outputIndex, content_index: 0, part })
      + ev('response.output_item.done', { output_index: outputIndex, item: done });
  };
  const openReasoning = () => {
    const item = reasoningItem(newId('rs_'), null);
    reasoning = { id: item.id as string, outputIndex: output.length, text: '' };
    output.push(item);
    return ev('response.output_item.added', { output_index: reasoning.outputIndex, item })
      + ev('response.reasoning_summary_part.added', { item_id: item.id, output_index: reasoning.outputIndex, summary_index: 0, part: summaryText('') });
  };
  const closeReasoning = () => {
    if (!reasoning) return '';
    const { id: itemId, outputIndex, text } = reasoning;
    reasoning = null;
    const done = reasoningItem(itemId, text);
    output[outputIndex] = done;
    return ev('response.reasoning_summary_text.done', { item_id: itemId, output_index: outputIndex, summary_index: 0, text })
      + ev('response.reasoning_summary_part.done', { item_id: itemId, output_index: outputIndex, summary_index: 0, part: summaryText(text) })
      + ev('response.output_item.done', { output_index: outputIndex, item: done });
  };
  const closeCalls = () => {
    let out = '';
    for (const c of calls.values()) {
      const done: Json = { ...c.item, status: 'completed' };
      output[c.outputIndex] = done;
      out += ev('response.function_call_arguments.done', { item_id: done.id, output_index: c.outputIndex, name: done.name, arguments: done.arguments })
        + ev('response.output_item.done', { output_index: c.outputIndex, item: done });
    }
    calls.clear();
    return out;
  };

  return {
    chunk(c: Json): string {
      let out = start();
      const u = openAiUsage(c.usage);
      if (u) usage = u;
      const choice = Array.isArray(c.choices) ? c.choices.find((x) => isObject(x) && (x.index ?? 0) === 0) : undefined;
      if (!isObject(choice)) return out;
      const delta = isObject(choice.delta) ? choice.delta : {};
      const thoughts = reasoningText(delta);
      if (thoughts) {
        if (!reasoning) out += closeMessage() + openReasoning();
        reasoning!.text += thoughts;
        out += ev('response.reasoning_summary_text.delta', { item_id: reasoning!.id, output_index: reasoning!.outputIndex, summary_index: 0, delta: thoughts });
      }
      if (typeof delta.content === 'string' && delta.content) {
        out += closeReasoning();
        if (!message) out += openMessage();
        message!.text += delta.content;
        out += ev('response.output_text.delta', { item_id: message!.item.id, output_index: message!.outputIndex, content_index: 0, delta: delta.content, logprobs: [] });
      }
      const sig = wantsEncrypted(req) ? answerSignature(delta) : null;
      if (sig) {
        out += closeReasoning() + closeMessage();
        const item = signatureItem(sig);
        output.push(item);
        out += ev('response.output_item.added', { output_index: output.length - 1, item }) + ev('response.output_item.done', { output_index: output.length - 1, item });
      }
      for (const tc of Array.isArray(delta.tool_calls) ? delta.tool_calls.filter(isObject) : []) {
        const index = typeof tc.index === 'number' ? tc.index : 0;
        const fn = isObject(tc.function) ? tc.function : {};
        let call = calls.get(index);
        if (!call) {
          out += closeReasoning() + closeMessage();
          const item = callItem(newId('fc_'), typeof tc.id === 'string' ? tc.id : newId('call_'), typeof fn.name === 'string' ? fn.name : '', '', 'in_progress');
          call = { item, outputIndex: output.length };
          output.push(item);
          calls.set(index, call);
          out += ev('response.output_item.added', { output_index: call.outputIndex, item });
        }
        if (typeof fn.arguments === 'string' && fn.arguments) {
          call.item.arguments = (call.item.arguments as string) + fn.arguments;
          out += ev('response.function_call_arguments.delta', { item_id: call.item.id, output_index: call.outputIndex, delta: fn.arguments });
        }
      }
      if (choice.finish_reason) {
        finish = choice.finish_reason;
        out += closeReasoning() + closeMessage() + closeCalls();
      }
      return out;
    },
    end(): string {
      let out = start();
      out += closeReasoning();
      if (!output.some((o) => o.type !== 'reasoning')) out += openMessage();
      out += closeMessage() + closeCalls();
      const final: Json = { ...shell('completed'), ...finished('completed', finish), output, usage: usage ? responsesUsageOf(usage) : null };
      return out + ev(final.status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response: final });
    },
    /** The Responses API's own error event (the stream then ends). Never a response.created of its
     *  own: on a pass-through stream the upstream already sent one. */
    error(code: string | null, message: string, param: string | null): string {
      return ev('error', { code, message, param });
    },
  };
}
