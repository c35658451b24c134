// OpenAI chat completions → Anthropic Messages (request), and Messages → OpenAI (response and
// stream) (https://docs.anthropic.com/en/api/messages, .../messages-streaming).
import { AppError } from '../../../../core/errors/errors.ts';
import {
  chunkOf, contentText, messagesOf, newId, nowSeconds, openAiUsageOf, parseArguments, parseDataUrl,
  type FinishReason, type StreamDecoder,
} from '../pivot.ts';
import { isObject, num, type Json, type Usage } from '../types.ts';

/** Anthropic requires max_tokens; this is what an OpenAI request without one gets. */
export const DEFAULT_MAX_TOKENS = 4096;

export function anthropicUsage(u: unknown): Usage | null {
  if (!isObject(u)) return null;
  const cacheRead = num(u.cache_read_input_tokens);
  return { input: num(u.input_tokens) + cacheRead + num(u.cache_creation_input_tokens), output: num(u.output_tokens), cached: cacheRead, reasoning: 0 };
}

const FINISH: Record<string, FinishReason> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  pause_turn: 'stop',
  max_tokens: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter',
};

function blocksOf(content: unknown): Json[] {
  if (typeof content === 'string') return content ? [{ type: 'text', text: content }] : [];
  if (!Array.isArray(content)) return [];
  const out: Json[] = [];
  for (const p of content) {
    if (!isObject(p)) continue;
    if (p.type === 'text' && typeof p.text === 'string') out.push({ type: 'text', text: p.text });
    else if (p.type === 'image_url' && isObject(p.image_url) && typeof p.image_url.url === 'string') {
      const data = parseDataUrl(p.image_url.url);
      out.push({ type: 'image', source: data ? { type: 'base64', media_type: data.mimeType, data: data.data } : { type: 'url', url: p.image_url.url } });
    }
  }
  return out;
}

export function openAiRequestToAnthropic(body: Json, upstreamModel: string, stream: boolean): Json {
  const system: string[] = [];
  const messages: Json[] = [];
  // Anthropic wants strictly alternating turns; consecutive same-role messages merge.
  const push = (role: 'user' | 'assistant', blocks: Json[]) => {
    if (!blocks.length) return;
    const last = messages.at(-1);
    if (last && last.role === role) (last.content as Json[]).push(...blocks);
    else messages.push({ role, content: blocks });
  };
  for (const m of messagesOf(body)) {
    if (m.role === 'system' || m.role === 'developer') system.push(contentText(m.content));
    else if (m.role === 'assistant') {
      const blocks = blocksOf(m.content);
      for (const tc of Array.isArray(m.tool_calls) ? m.tool_calls.filter(isObject) : []) {
        const fn = isObject(tc.function) ? tc.function : {};
        blocks.push({ type: 'tool_use', id: tc.id, name: fn.name, input: parseArguments(fn.arguments) });
      }
      push('assistant', blocks);
    } else if (m.role === 'tool') {
      push('user', [{ type: 'tool_result', tool_use_id: m.tool_call_id, content: contentText(m.content) }]);
    } else push('user', blocksOf(m.content));
  }
  const out: Json = { model: upstreamModel, messages, max_tokens: body.max_completion_tokens ?? body.max_tokens ?? DEFAULT_MAX_TOKENS };
  if (system.length) out.system = system.join('\n');
  if (body.temperature !== undefined) out.temperature = body.temperature;
  if (body.top_p !== undefined) out.top_p = body.top_p;
  if (body.stop !== undefined) out.stop_sequences = Array.isArray(body.stop) ? body.stop : [body.stop];
  const tools = Array.isArray(body.tools) ? body.tools.filter((t) => isObject(t) && isObject(t.function)) : [];
  if (tools.length) {
    out.tools = tools.map((t) => {
      const fn = (t as Json).function as Json;
      return { name: fn.name, ...(fn.description ? { description: fn.description } : {}), input_schema: fn.parameters ?? { type: 'object', properties: {} } };
    });
  }
  const tc = body.tool_choice;
  if (tc === 'auto') out.tool_choice = { type: 'auto' };
  else if (tc === 'required') out.tool_choice = { type: 'any' };
  else if (tc === 'none') out.tool_choice = { type: 'none' };
  else if (isObject(tc) && isObject(tc.function)) out.tool_choice = { type: 'tool', name: tc.function.name };
  if (stream) out.stream = true;
  return out;
}

export function anthropicResponseToOpenAi(res: Json, model: string): Json {
  const blocks = Array.isArray(res.content) ? res.content.filter(isObject) : [];
  const text = blocks.filter((b) => b.type === 'text').map((b) => String(b.text ?? '')).join('');
  const calls = blocks.filter((b) => b.type === 'tool_use').map((b) => ({ id: b.id, type: 'function', function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } }));
  const message: Json = { role: 'assistant', content: text || (calls.length ? null : ''), refusal: null };
  if (calls.length) message.tool_calls = calls;
  const usage = anthropicUsage(res.usage);
  return {
    id: typeof res.id === 'string' ? `chatcmpl-${res.id}` : newId('chatcmpl-'),
    object: 'chat.completion',
    created: nowSeconds(),
    model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: FINISH[String(res.stop_reason)] ?? 'stop' }],
    ...(usage ? { usage: openAiUsageOf(usage) } : {}),
  };
}

/** Messages stream events (message_start, content_block_*, message_delta, message_stop) as chunks. */
export function anthropicStreamToOpenAi(model: string): StreamDecoder {
  const id = newId('chatcmpl-');
  const created = nowSeconds();
  const toolIndexOfBlock = new Map<number, number>();
  let tools = 0;
  const usage: Usage = { input: 0, output: 0, cached: 0, reasoning: 0 };
  let sawUsage = false;
  const delta = (d: Json, finish: FinishReason | null = null) => chunkOf(id, created, model, [{ index: 0, delta: d, logprobs: null, finish_reason: finish }]);
  return {
    push(data, event) {
      const ev = JSON.parse(data) as Json;
      const type = event ?? ev.type;
      switch (type) {
        case 'message_start': {
          const u = anthropicUsage(isObject(ev.message) ? ev.message.usage : null);
          if (u) {
            Object.assign(usage, { input: u.input, cached: u.cached, output: u.output });
            sawUsage = true;
          }
          return [delta({ role: 'assistant', content: '' })];
        }
        case 'content_block_start': {
          const block = isObject(ev.content_block) ? ev.content_block : {};
          if (block.type === 'tool_use') {
            const n = tools++;
            toolIndexOfBlock.set(num(ev.index), n);
            return [delta({ tool_calls: [{ index: n, id: block.id, type: 'function', function: { name: block.name, arguments: '' } }] })];
          }
          if (block.type === 'text' && typeof block.text === 'string' && block.text) return [delta({ content: block.text })];
          return [];
        }
        case 'content_block_delta': {
          const d = isObject(ev.delta) ? ev.delta : {};
          if (d.type === 'text_delta') return [delta({ content: d.text })];
          if (d.type === 'input_json_delta') {
            return [delta({ tool_calls: [{ index: toolIndexOfBlock.get(num(ev.index)) ?? 0, function: { arguments: d.partial_json } }] })];
          }
          return [];
        }
        case 'message_delta': {
          const d = isObject(ev.delta) ? ev.delta : {};
          if (isObject(ev.usage)) {
            usage.output = num(ev.usage.output_tokens);
            sawUsage = true;
          }
          return d.stop_reason ? [delta({}, FINISH[String(d.stop_reason)] ?? 'stop')] : [];
        }
        case 'error': {
          const err = isObject(ev.error) ? ev.error : {};
          throw new AppError('bad_gateway', `upstream stream failed: ${String(err.message ?? 'error')}`);
        }
        default:
          return []; // ping, content_block_stop, message_stop
      }
    },
    end() {
      return sawUsage ? [chunkOf(id, created, model, [], openAiUsageOf(usage))] : [];
    },
  };
}
