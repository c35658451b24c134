// Anthropic's Messages API as a way in (https://docs.anthropic.com/en/api/messages): a Messages
// request → OpenAI chat (the pivot), a pivot completion → a Message, and pivot stream chunks → the
// Messages stream's named events (message_start, content_block_start / _delta / _stop,
// message_delta, message_stop; .../messages-streaming). The way out to Anthropic providers (pivot →
// Messages and back) is anthropic-messages.ts. A Messages request for a model an Anthropic provider
// serves does not come here: it passes through unchanged.
import { AppError } from '../../../../core/errors/errors.ts';
import { openAiUsage } from '../openai-base/openai-base.ts';
import { contentText, newId } from '../pivot.ts';
import { askOf, effortOfBudget, pivotReasoning, reasoningText, thinkingBudget } from '../reasoning.ts';
import { isObject, num, NO_USAGE, type Json, type Usage } from '../types.ts';
import { answerSignature, extraContent, GEMINI_MARK, signatureOfMarked } from '../gemini/thought-signature.ts';
import { anthropicUsage } from './anthropic-messages.ts';

const invalid = (message: string, param: string) => new AppError('validation_failed', message, { details: { param } });

/** System prompt or tool result content: a string, or text blocks (other blocks carry no text). */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((b) => (isObject(b) && b.type === 'text' && typeof b.text === 'string' ? b.text : '')).join('');
}

function imagePart(source: unknown, at: string): Json {
  if (isObject(source) && source.type === 'base64' && typeof source.media_type === 'string' && typeof source.data === 'string') {
    return { type: 'image_url', image_url: { url: `data:${source.media_type};base64,${source.data}` } };
  }
  if (isObject(source) && source.type === 'url' && typeof source.url === 'string') return { type: 'image_url', image_url: { url: source.url } };
  throw invalid(`${at}.source: an image needs a base64 or url source`, 'messages');
}

/** A tool's input as JSON text for OpenAI's `arguments`. */
function argumentsOf(input: unknown): string {
  return JSON.stringify(isObject(input) ? input : {});
}

/** A Messages request as an OpenAI chat request for `upstreamModel`. */
export function anthropicRequestToOpenAi(body: Json, upstreamModel: string, stream: boolean): Json {
  const messages: Json[] = [];
  if (body.system !== undefined) {
    if (typeof body.system !== 'string' && !Array.isArray(body.system)) throw invalid('system: must be a string or an array of text blocks', 'system');
    const text = textOf(body.system);
    if (text) messages.push({ role: 'system', content: text });
  }
  if (!Array.isArray(body.messages) || !body.messages.length) throw invalid('messages: must be a non-empty array', 'messages');
  body.messages.forEach((m: unknown, i: number) => {
    const at = `messages.${i}`;
    if (!isObject(m) || (m.role !== 'user' && m.role !== 'assistant')) throw invalid(`${at}.role: must be "user" or "assistant"`, 'messages');
    if (typeof m.content === 'string') {
      messages.push({ role: m.role, content: m.content });
      return;
    }
    if (!Array.isArray(m.content)) throw invalid(`${at}.content: must be a string or an array of content blocks`, 'messages');
    const parts: Json[] = [];
    const calls: Json[] = [];
    const results: Json[] = [];
    let reasoning = '';
    let geminiSignature: string | null = null;
    m.content.forEach((b: unknown, j: number) => {
      const where = `${at}.content.${j}`;
      if (!isObject(b)) throw invalid(`${where}: must be an object`, 'messages');
      switch (b.type) {
        case 'text':
          if (typeof b.text !== 'string') throw invalid(`${where}.text: must be a string`, 'messages');
          parts.push({ type: 'text', text: b.text });
          return;
        case 'image':
          parts.push(imagePart(b.source, where));
          return;
        case 'tool_use':
          if (m.role !== 'assistant') throw invalid(`${where}: tool_use blocks belong to assistant turns`, 'messages');
          calls.push({ id: String(b.id ?? ''), type: 'function', function: { name: String(b.name ?? ''), arguments: argumentsOf(b.input) } });
          return;
        case 'tool_result':
          if (m.role !== 'user') throw invalid(`${where}: tool_result blocks belong to user turns`, 'messages');
          results.push({ role: 'tool', tool_call_id: String(b.tool_use_id ?? ''), content: (b.is_error === true ? 'Error: ' : '') + textOf(b.content) });
          return;
        case 'thinking':
          if (typeof b.thinking !== 'string') throw invalid(`${where}.thinking: must be a string`, 'messages');
          if (b.signature !== undefined && typeof b.signature !== 'string') throw invalid(`${where}.signature: must be a string`, 'messages');
          // The model's reasoning from an earlier turn, in an assistant turn only. Signed by Anthropic,
          // it is Claude's and only Anthropic models take it back; unsigned, it is what another
          // provider gave through the gateway (signature ""), and goes on as reasoning_content, which
          // only GLM is sent (its preserved thinking).
          if (m.role === 'assistant' && !b.signature) reasoning += b.thinking;
          return;
        case 'redacted_thinking':
          if (typeof b.data !== 'string') throw invalid(`${where}.data: must be a string`, 'messages');
          // Opaque: Anthropic's own (for Anthropic models only), or a Gemini thought signature the gateway handed out.
          if (m.role === 'assistant') geminiSignature = signatureOfMarked(b.data) ?? geminiSignature;
          return;
        default:
          throw invalid(`${where}: "${String(b.type)}" blocks need a model served by an Anthropic provider`, 'messages');
      }
    });
    // Tool answers come first: OpenAI wants them right after the assistant turn that called the tools.
    messages.push(...results);
    const onlyText = parts.every((p) => p.type === 'text');
    if (m.role === 'assistant') {
      if (!parts.length && !calls.length) return;
      const msg: Json = { role: 'assistant', content: parts.length ? parts.map((p) => p.text).join('') : null };
      if (reasoning) msg.reasoning_content = reasoning;
      if (geminiSignature) msg.extra_content = extraContent(geminiSignature);
      if (calls.length) msg.tool_calls = calls;
      messages.push(msg);
    } else if (parts.length) {
      messages.push({ role: 'user', content: onlyText ? parts.map((p) => p.text).join('') : parts });
    }
  });

  const out: Json = { model: upstreamModel, messages, max_tokens: body.max_tokens };
  if (body.temperature !== undefined) out.temperature = body.temperature;
  if (body.top_p !== undefined) out.top_p = body.top_p;
  if (Array.isArray(body.stop_sequences) && body.stop_sequences.length) out.stop = body.stop_sequences;
  if (isObject(body.metadata) && typeof body.metadata.user_id === 'string') out.user = body.metadata.user_id;
  if (body.thinking !== undefined) {
    // Extended thinking: the budget goes on exactly to Gemini, as an effort to OpenAI-shaped providers.
    const budget = thinkingBudget(body.thinking, 'thinking');
    if (budget && typeof body.max_tokens === 'number' && budget >= body.max_tokens) throw invalid('thinking.budget_tokens: must be less than max_tokens', 'thinking');
    Object.assign(out, pivotReasoning(budget === 0 ? 'off' : budget === null ? askOf('medium') : { effort: effortOfBudget(budget), budget }));
  }
  if (body.tools !== undefined) {
    if (!Array.isArray(body.tools)) throw invalid('tools: must be an array', 'tools');
    const tools = body.tools.map((t: unknown, i: number) => {
      if (!isObject(t) || typeof t.name !== 'string' || !t.name) throw invalid(`tools.${i}.name: required`, 'tools');
      if ((t.type !== undefined && t.type !== 'custom') || !isObject(t.input_schema)) {
        throw invalid(`tools.${i}: "${String(t.type ?? t.name)}" is not a custom tool with an input_schema; server tools need a model served by an Anthropic provider`, 'tools');
      }
      return { type: 'function', function: { name: t.name, ...(typeof t.description === 'string' ? { description: t.description } : {}), parameters: t.input_schema } };
    });
    if (tools.length) out.tools = tools;
  }
  const tc = body.tool_choice;
  if (isObject(tc)) {
    if (tc.type === 'auto') out.tool_choice = 'auto';
    else if (tc.type === 'any') out.tool_choice = 'required';
    else if (tc.type === 'none') out.tool_choice = 'none';
    else if (tc.type === 'tool' && typeof tc.name === 'string') out.tool_choice = { type: 'function', function: { name: tc.name } };
    else throw invalid('tool_choice.type: must be auto, any, tool or none', 'tool_choice');
    if (tc.disable_parallel_tool_use === true && out.tools) out.parallel_tool_calls = false;
  }
  if (stream) {
    out.stream = true;
    out.stream_options = { include_usage: true };
  }
  return out;
}

const STOP_REASON: Record<string, string> = { stop: 'end_turn', length: 'max_tokens', tool_calls: 'tool_use', function_call: 'tool_use', content_filter: 'refusal' };

/** Usage as Anthropic reports it: input_tokens excludes the tokens read from the prompt cache. */
export function anthropicUsageOf(u: Usage): Json {
  return { input_tokens: Math.max(0, u.input - u.cached), output_tokens: u.output, cache_read_input_tokens: u.cached, cache_creation_input_tokens: 0 };
}

/** A tool call's arguments as the object Anthropic's `input` is; text that is not an object is kept under `arguments`. */
function inputOf(args: unknown): Json {
  if (isObject(args)) return args;
  if (typeof args !== 'string' || !args.trim()) return {};
  try {
    const v = JSON.parse(args);
    return isObject(v) ? v : { arguments: v };
  } catch {
    return { arguments: args };
  }
}

/** Whether a Messages request turned extended thinking on (enabled or adaptive). */
export function anthropicWantsThinking(body: Json): boolean {
  return isObject(body.thinking) && body.thinking.type !== 'disabled';
}

/**
 * A Gemini thought signature on a pivot message or delta as the `redacted_thinking` block that
 * carries it to an Anthropic client that turned thinking on (thought-signature.ts), or null.
 */
function signatureBlock(m: Json, thinking: boolean): Json | null {
  const sig = thinking ? answerSignature(m) : null;
  return sig ? { type: 'redacted_thinking', data: GEMINI_MARK + sig } : null;
}

/**
 * A Messages request for an Anthropic model without the reasoning blocks Anthropic cannot check:
 * thinking blocks with no signature (another provider's reasoning) and the Gemini signatures the
 * gateway carried in `redacted_thinking` blocks; the same object when there are none. A conversation
 * that moved from another model to Claude goes on instead of being refused for their signatures.
 */
export function withoutForeignThinking(body: Json): Json {
  if (!Array.isArray(body.messages)) return body;
  const foreign = (b: unknown) => isObject(b) && ((b.type === 'thinking' && !b.signature) || (b.type === 'redacted_thinking' && typeof b.data === 'string' && b.data.startsWith(GEMINI_MARK)));
  if (!body.messages.some((m) => isObject(m) && m.role === 'assistant' && Array.isArray(m.content) && m.content.some(foreign))) return body;
  return {
    ...body,
    messages: body.messages.map((m) => (isObject(m) && m.role === 'assistant' && Array.isArray(m.content) ? { ...m, content: m.content.filter((b) => !foreign(b)) } : m)),
  };
}

/** A pivot (OpenAI) chat completion as a Message; `thinking`: the client turned thinking on. */
export function openAiResponseToAnthropic(res: Json, model: string, thinking = false): Json {
  const choice = Array.isArray(res.choices) && isObject(res.choices[0]) ? res.choices[0] : {};
  const msg = isObject(choice.message) ? choice.message : {};
  const content: Json[] = [];
  // Reasoning from a provider other than Anthropic has no signature; the SDKs take an empty one.
  const reasoning = reasoningText(msg);
  if (reasoning) content.push({ type: 'thinking', thinking: reasoning, signature: '' });
  const text = contentText(msg.content);
  if (text) content.push({ type: 'text', text });
  // After the text, where a stream has it: Gemini signs the last part of its answer.
  const signed = signatureBlock(msg, thinking);
  if (signed) content.push(signed);
  for (const tc of Array.isArray(msg.tool_calls) ? msg.tool_calls.filter(isObject) : []) {
    const fn = isObject(tc.function) ? tc.function : {};
    content.push({ type: 'tool_use', id: String(tc.id ?? newId('toolu_')), name: String(fn.name ?? ''), input: inputOf(fn.arguments) });
  }
  return {
    id: newId('msg_'),
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: STOP_REASON[String(choice.finish_reason)] ?? 'end_turn',
    stop_sequence: null,
    usage: anthropicUsageOf(openAiUsage(res.usage) ?? NO_USAGE),
  };
}

const event = (type: string, data: Json) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;

/** A Messages stream error event (what the SDKs raise as an APIError). */
export function anthropicErrorEvent(body: Json): string {
  return `event: error\ndata: ${JSON.stringify(body)}\n\n`;
}

/**
 * Pivot stream chunks → Messages stream events. Reasoning (as `thinking` blocks), text and each tool
 * call become content blocks, in the order they start; the stop reason and the usage (from the usage
 * chunk the gateway asks every upstream for) go out in message_delta at the end, as Anthropic's own
 * stream reports them.
 */
export function anthropicStream(model: string, wantsThinking = false): { chunk(c: Json): string; end(): string } {
  const id = newId('msg_');
  let started = false;
  let open: { index: number; kind: 'text' | 'thinking' | 'tool' } | null = null;
  let blocks = 0;
  const toolBlocks = new Map<number, number>();
  let stop: string | null = null;
  let usage: Usage | null = null;

  const start = () => {
    if (started) return '';
    started = true;
    return event('message_start', { message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 0, output_tokens: 0 } } });
  };
  const close = () => {
    if (!open) return '';
    const out = event('content_block_stop', { index: open.index });
    open = null;
    return out;
  };
  return {
    chunk(c) {
      let out = start();
      if (isObject(c.usage)) usage = openAiUsage(c.usage);
      const choice = Array.isArray(c.choices) && isObject(c.choices[0]) ? c.choices[0] : null;
      if (!choice) return out;
      const d = isObject(choice.delta) ? choice.delta : {};
      const thinking = reasoningText(d);
      if (thinking) {
        if (open?.kind !== 'thinking') {
          out += close();
          open = { index: blocks++, kind: 'thinking' };
          out += event('content_block_start', { index: open.index, content_block: { type: 'thinking', thinking: '', signature: '' } });
        }
        out += event('content_block_delta', { index: open.index, delta: { type: 'thinking_delta', thinking } });
      }
      if (typeof d.content === 'string' && d.content) {
        if (open?.kind !== 'text') {
          out += close();
          open = { index: blocks++, kind: 'text' };
          out += event('content_block_start', { index: open.index, content_block: { type: 'text', text: '' } });
        }
        out += event('content_block_delta', { index: open.index, delta: { type: 'text_delta', text: d.content } });
      }
      const signed = signatureBlock(d, wantsThinking);
      if (signed) {
        out += close();
        const index = blocks++;
        out += event('content_block_start', { index, content_block: signed }) + event('content_block_stop', { index });
      }
      for (const tc of Array.isArray(d.tool_calls) ? d.tool_calls.filter(isObject) : []) {
        const fn = isObject(tc.function) ? tc.function : {};
        let index = toolBlocks.get(num(tc.index));
        if (index === undefined) {
          out += close();
          index = blocks++;
          toolBlocks.set(num(tc.index), index);
          open = { index, kind: 'tool' };
          out += event('content_block_start', { index, content_block: { type: 'tool_use', id: String(tc.id ?? newId('toolu_')), name: String(fn.name ?? ''), input: {} } });
        }
        if (typeof fn.arguments === 'string' && fn.arguments) {
          out += event('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: fn.arguments } });
        }
      }
      if (typeof choice.finish_reason === 'string' && choice.finish_reason) stop = STOP_REASON[choice.finish_reason] ?? 'end_turn';
      return out;
    },
    end() {
      return start() + close()
        + event('message_delta', { delta: { stop_reason: stop ?? 'end_turn', stop_sequence: null }, usage: anthropicUsageOf(usage ?? NO_USAGE) })
        + event('message_stop', {});
    },
  };
}

/**
 * Usage from one event of a Messages stream passed through unchanged: message_start carries the
 * input (and cache) tokens, message_delta the output tokens so far (and, from newer API versions,
 * the input again).
 */
export function anthropicStreamUsage(prev: Usage | null, ev: Json): Usage | null {
  if (ev.type === 'message_start' && isObject(ev.message)) return anthropicUsage(ev.message.usage) ?? prev;
  if (ev.type === 'message_delta' && isObject(ev.usage)) {
    const u = ev.usage;
    const next: Usage = { ...(prev ?? NO_USAGE) };
    if (typeof u.output_tokens === 'number') next.output = num(u.output_tokens);
    if (typeof u.input_tokens === 'number') {
      const whole = anthropicUsage(u);
      if (whole) Object.assign(next, { input: whole.input, cached: whole.cached });
    }
    return next;
  }
  return prev;
}
