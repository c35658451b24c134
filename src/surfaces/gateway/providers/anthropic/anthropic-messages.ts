// OpenAI chat completions → Anthropic Messages (request), and Messages → OpenAI (response and
// stream) (https://docs.anthropic.com/en/api/messages, .../messages-streaming).
import { AppError } from '../../../../core/errors/errors.ts';
import {
  chunkOf, contentText, messagesOf, newId, nowSeconds, openAiUsageOf, parseArguments, parseDataUrl,
  type FinishReason, type StreamDecoder,
} from '../pivot.ts';
import { estimateReasoningTokens, reasoningAsk } from '../reasoning.ts';
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

/** Thinking blocks an earlier answer carried (LiteLLM's `thinking_blocks`), signed as Anthropic signed them. */
function replayedThinking(m: Json): Json[] {
  if (!Array.isArray(m.thinking_blocks)) return [];
  const out: Json[] = [];
  for (const b of m.thinking_blocks) {
    if (!isObject(b)) continue;
    if (b.type === 'thinking' && typeof b.thinking === 'string' && typeof b.signature === 'string' && b.signature) out.push({ type: 'thinking', thinking: b.thinking, signature: b.signature });
    else if (b.type === 'redacted_thinking' && typeof b.data === 'string') out.push({ type: 'redacted_thinking', data: b.data });
  }
  return out;
}

const isThinking = (b: Json) => b.type === 'thinking' || b.type === 'redacted_thinking';

/**
 * Whether extended thinking can be turned on for these messages. Anthropic refuses it with a forced
 * tool choice, and, in a tool loop, unless the last assistant turn (the one whose tool calls are
 * being answered) starts with its signed thinking block
 * (https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#extended-thinking-with-tool-use):
 * a conversation that did not keep that block is answered without thinking rather than refused.
 */
function thinkingPossible(messages: Json[], toolChoice: unknown): boolean {
  if (isObject(toolChoice) && (toolChoice.type === 'any' || toolChoice.type === 'tool')) return false;
  const last = messages.findLast((m) => m.role === 'assistant');
  const blocks = (last?.content ?? []) as Json[];
  return !blocks.some((b) => b.type === 'tool_use') || (blocks[0] !== undefined && isThinking(blocks[0]));
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
      // Reasoning given back as `reasoning_content` text is never sent as text: only signed blocks replay.
      const blocks = [...replayedThinking(m), ...blocksOf(m.content)];
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
  const ask = reasoningAsk(body);
  if (ask && thinkingPossible(messages, out.tool_choice)) {
    out.thinking = { type: 'enabled', budget_tokens: ask.budget };
    // Anthropic wants max_tokens above the budget: the answer keeps the cap the client asked for.
    if (typeof out.max_tokens === 'number' && out.max_tokens <= ask.budget) out.max_tokens = ask.budget + out.max_tokens;
    // Thinking takes neither a changed temperature nor top_p below 0.95.
    delete out.temperature;
    if (typeof out.top_p === 'number' && out.top_p < 0.95) delete out.top_p;
  } else {
    for (const m of messages) m.content = (m.content as Json[]).filter((b) => !isThinking(b));
  }
  if (stream) out.stream = true;
  return out;
}

export function anthropicResponseToOpenAi(res: Json, model: string): Json {
  const blocks = Array.isArray(res.content) ? res.content.filter(isObject) : [];
  const text = blocks.filter((b) => b.type === 'text').map((b) => String(b.text ?? '')).join('');
  const calls = blocks.filter((b) => b.type === 'tool_use').map((b) => ({ id: b.id, type: 'function', function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } }));
  const message: Json = { role: 'assistant', content: text || (calls.length ? null : ''), refusal: null };
  const thinking = blocks.filter((b) => b.type === 'thinking').map((b) => String(b.thinking ?? '')).join('');
  if (thinking) message.reasoning_content = thinking;
  // The blocks themselves (with their signatures), which a client gives back for the next tool turn.
  const signed = blocks.filter(isThinking);
  if (signed.length) message.thinking_blocks = signed;
  if (calls.length) message.tool_calls = calls;
  const usage = anthropicUsage(res.usage);
  if (usage) usage.reasoning = estimateReasoningTokens(thinking, usage.output);
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
  let thinking = '';
  let current = ''; // the open thinking block's text, which its signature_delta closes
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
          if (block.type === 'redacted_thinking') return [delta({ thinking_blocks: [block] })];
          if (block.type === 'thinking') {
            current = typeof block.thinking === 'string' ? block.thinking : '';
            thinking += current;
            if (current) return [delta({ reasoning_content: current })];
          }
          return [];
        }
        case 'content_block_delta': {
          const d = isObject(ev.delta) ? ev.delta : {};
          if (d.type === 'text_delta') return [delta({ content: d.text })];
          if (d.type === 'thinking_delta' && typeof d.thinking === 'string') {
            current += d.thinking;
            thinking += d.thinking;
            return [delta({ reasoning_content: d.thinking })];
          }
          // The whole signed block once its signature came, for a client to give back next turn.
          if (d.type === 'signature_delta') return [delta({ thinking_blocks: [{ type: 'thinking', thinking: current, signature: d.signature }] })];
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
      usage.reasoning = estimateReasoningTokens(thinking, usage.output);
      return sawUsage ? [chunkOf(id, created, model, [], openAiUsageOf(usage))] : [];
    },
  };
}
