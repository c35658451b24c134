// Reasoning across families through plan(): the request controls each provider family receives, and
// the reasoning in each client's shape, whole and streamed.
import { describe, expect, it } from 'vitest';
import { AppError } from '../../../core/errors/errors.ts';
import { ADAPTERS } from '../providers/index.ts';
import { effortOfBudget, reasoningAsk } from '../providers/reasoning.ts';
import type { Json } from '../providers/types.ts';
import { clientEncoder } from './client-encoders.ts';
import { plan, type IngressFamily } from './translate.ts';

const user = [{ role: 'user', content: 'hi' }];
const req = (family: IngressFamily, provider: keyof typeof ADAPTERS, body: Json, stream = false, op: 'chat' | 'responses' = 'chat') =>
  plan({ family, op, model: 'pub', body, stream, estInput: 1 }, ADAPTERS[provider], 'up');

function refusal(fn: () => unknown): AppError {
  try {
    fn();
  } catch (e) {
    if (e instanceof AppError) return e;
    throw e;
  }
  throw new Error('not refused');
}

describe('effort and budget', () => {
  it('maps budgets to efforts by thresholds, and refuses what is not a reasoning control', () => {
    expect([1024, 2047, 2048, 8191, 8192, 100000].map(effortOfBudget)).toEqual(['low', 'low', 'medium', 'medium', 'high', 'high']);
    expect(reasoningAsk({ reasoning_effort: 'high' })).toEqual({ effort: 'high', budget: 16384 });
    expect(reasoningAsk({ reasoning_effort: 'none' })).toBeNull();
    expect(reasoningAsk({ reasoning_effort: 'low', thinking: { type: 'enabled', budget_tokens: 3000 } })).toEqual({ effort: 'low', budget: 3000 });
    expect(reasoningAsk({ thinking: { type: 'disabled' }, reasoning_effort: 'high' })).toBeNull();
    // GLM's switch: on without a budget lets the model choose, as adaptive does.
    expect(reasoningAsk({ thinking: { type: 'enabled' } })).toEqual({ effort: 'medium', budget: 4096 });
    expect(reasoningAsk({ thinking: { type: 'enabled', clear_thinking: false }, reasoning_effort: 'high' })).toEqual({ effort: 'high', budget: 16384 });
    for (const body of [{ reasoning_effort: 3 }, { reasoning_effort: 'extreme' }, { reasoning_effort: ['low'] }, { thinking: { type: 'enabled', budget_tokens: -5 } },
      { thinking: { type: 'enabled', budget_tokens: 2048.5 } }, { thinking: { type: 'enabled', budget_tokens: null } }, { thinking: { type: 'sometimes' } }, { thinking: 'on' }]) {
      expect(refusal(() => reasoningAsk(body)).status).toBe(400);
    }
  });
});

describe('request controls per provider family', () => {
  it('OpenAI → Anthropic: effort as a budget, max_tokens raised above it, temperature left out', () => {
    const body = req('openai', 'anthropic', { messages: user, reasoning_effort: 'high', max_tokens: 500, temperature: 0.3, top_p: 0.5 }).body;
    expect(body).toMatchObject({ thinking: { type: 'enabled', budget_tokens: 16384 }, max_tokens: 16884 });
    expect(body).not.toHaveProperty('temperature');
    expect(body).not.toHaveProperty('top_p');
    expect(req('openai', 'anthropic', { messages: user, reasoning_effort: 'low', max_tokens: 9000 }).body).toMatchObject({ thinking: { budget_tokens: 1024 }, max_tokens: 9000 });
    expect(req('openai', 'anthropic', { messages: user, reasoning_effort: 'none' }).body).not.toHaveProperty('thinking');
    expect(req('openai', 'anthropic', { messages: user }).body).not.toHaveProperty('thinking');
    // A forced tool: Anthropic refuses thinking with it.
    const forced = req('openai', 'anthropic', { messages: user, reasoning_effort: 'low', tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: 'required' }).body;
    expect(forced).not.toHaveProperty('thinking');
  });

  it('OpenAI → Anthropic: a tool loop replays the signed thinking block, or goes without thinking', () => {
    const call = { id: 'toolu_1', type: 'function', function: { name: 'f', arguments: '{}' } };
    const turns = (assistant: Json) => [...user, { role: 'assistant', content: null, reasoning_content: 'secret thoughts', tool_calls: [call], ...assistant }, { role: 'tool', tool_call_id: 'toolu_1', content: 'ok' }];
    const bare = req('openai', 'anthropic', { messages: turns({}), reasoning_effort: 'medium' }).body;
    expect(bare).not.toHaveProperty('thinking');
    expect(JSON.stringify(bare)).not.toContain('secret thoughts');
    const signed = req('openai', 'anthropic', { messages: turns({ thinking_blocks: [{ type: 'thinking', thinking: 'secret thoughts', signature: 'sig' }] }), reasoning_effort: 'medium' }).body;
    expect(signed.thinking).toEqual({ type: 'enabled', budget_tokens: 4096 });
    expect((signed.messages as Json[])[1]).toEqual({ role: 'assistant', content: [{ type: 'thinking', thinking: 'secret thoughts', signature: 'sig' }, { type: 'tool_use', id: 'toolu_1', name: 'f', input: {} }] });
    // Without thinking on, the blocks are not sent at all; an unsigned block is never replayed.
    const off = req('openai', 'anthropic', { messages: turns({ thinking_blocks: [{ type: 'thinking', thinking: 'secret thoughts', signature: 'sig' }] }) }).body;
    expect(JSON.stringify(off)).not.toContain('secret thoughts');
    const unsigned = req('openai', 'anthropic', { messages: turns({ thinking_blocks: [{ type: 'thinking', thinking: 'x', signature: '' }] }), reasoning_effort: 'low' }).body;
    expect(unsigned).not.toHaveProperty('thinking');
  });

  it('OpenAI → Gemini: a thinking budget and the thoughts asked back', () => {
    expect(req('openai', 'gemini', { messages: user, reasoning_effort: 'low' }).body.generationConfig).toEqual({ thinkingConfig: { thinkingBudget: 1024, includeThoughts: true } });
    expect(req('openai', 'gemini', { messages: user, reasoning_effort: 'none' }).body).not.toHaveProperty('generationConfig');
    expect(refusal(() => req('openai', 'gemini', { messages: user, reasoning_effort: 'turbo' })).details).toMatchObject({ param: 'reasoning_effort' });
  });

  it('Anthropic → others: the budget exactly to Gemini, as an effort to OpenAI-shaped providers', () => {
    const thinking = { type: 'enabled', budget_tokens: 5000 };
    const oa = req('anthropic', 'openai-compatible', { max_tokens: 8000, messages: user, thinking }).body;
    expect(oa.reasoning_effort).toBe('medium');
    expect(oa).not.toHaveProperty('thinking');
    expect(req('anthropic', 'gemini', { max_tokens: 8000, messages: user, thinking }).body.generationConfig).toEqual({ maxOutputTokens: 8000, thinkingConfig: { thinkingBudget: 5000, includeThoughts: true } });
    expect(req('anthropic', 'openai', { max_tokens: 8000, messages: user, thinking: { type: 'disabled' } }).body).not.toHaveProperty('reasoning_effort');
    expect(req('anthropic', 'openai', { max_tokens: 8000, messages: user, thinking: { type: 'adaptive' } }).body.reasoning_effort).toBe('medium');
    expect(refusal(() => req('anthropic', 'openai', { max_tokens: 2000, messages: user, thinking })).message).toMatch(/less than max_tokens/);
    expect(refusal(() => req('anthropic', 'openai', { max_tokens: 8000, messages: user, thinking: { type: 'enabled', budget_tokens: -1 } })).status).toBe(400);
    expect(refusal(() => req('anthropic', 'openai', { max_tokens: 8000, messages: user, thinking: { type: 'deep' } })).status).toBe(400);
  });

  it('Gemini → others: thinkingBudget and thinkingLevel, 0 sending nothing', () => {
    const g = (thinkingConfig: unknown, provider: keyof typeof ADAPTERS = 'openai') =>
      req('gemini', provider, { contents: [{ role: 'user', parts: [{ text: 'hi' }] }], generationConfig: { maxOutputTokens: 2000, thinkingConfig } }).body;
    expect(g({ thinkingBudget: 0, includeThoughts: true })).not.toHaveProperty('reasoning_effort');
    expect(g({ thinkingBudget: -1 }).reasoning_effort).toBe('medium');
    expect(g({ thinkingLevel: 'HIGH' }).reasoning_effort).toBe('high');
    expect(g({ includeThoughts: true }).reasoning_effort).toBe('medium');
    expect(g({ includeThoughts: false })).not.toHaveProperty('reasoning_effort');
    expect(g({ thinkingBudget: 3000 }, 'anthropic')).toMatchObject({ thinking: { type: 'enabled', budget_tokens: 3000 }, max_tokens: 5000 });
    // Gemini takes budgets Anthropic does not: below its smallest, Anthropic gets its smallest.
    expect(g({ thinkingBudget: 100 }, 'anthropic')).toMatchObject({ thinking: { type: 'enabled', budget_tokens: 1024 } });
    expect(g({ thinkingBudget: 100 }).reasoning_effort).toBe('low');
    for (const bad of ['on', { thinkingBudget: -2 }, { thinkingBudget: 1.5 }, { thinkingLevel: 'huge' }, { includeThoughts: 'yes' }]) {
      expect(refusal(() => g(bad)).status).toBe(400);
    }
  });

  it('→ GLM: its own thinking switch, never reasoning_effort', () => {
    const sent = (family: IngressFamily, body: Json, op: 'chat' | 'responses' = 'chat', stream = false) => {
      const b = req(family, 'glm', body, stream, op).body;
      expect(b).not.toHaveProperty('reasoning_effort');
      return b.thinking;
    };
    const on = { type: 'enabled' };
    const off = { type: 'disabled' };
    // OpenAI-shaped clients (OpenAI, Azure, GLM): the effort, none and minimal turning it off.
    for (const stream of [false, true]) {
      expect(['none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max'].map((e) => sent('openai', { messages: user, reasoning_effort: e }, 'chat', stream)))
        .toEqual([off, off, on, on, on, on, on]);
    }
    expect(sent('openai', { messages: user })).toBeUndefined();
    expect(sent('openai', { messages: user, reasoning_effort: null })).toBeUndefined();
    // GLM's own switch, with what else it carries, unchanged; it decides over an effort beside it.
    expect(sent('openai', { messages: user, thinking: { type: 'enabled', clear_thinking: false } })).toEqual({ type: 'enabled', clear_thinking: false });
    expect(sent('openai', { messages: user, thinking: off, reasoning_effort: 'high' })).toEqual(off);
    expect(sent('openai', { messages: user, thinking: on, reasoning_effort: 'none' })).toEqual(on);
    // LiteLLM's thinking with a budget, and Anthropic's adaptive: GLM has no budget, only the switch.
    expect(sent('openai', { messages: user, thinking: { type: 'enabled', budget_tokens: 2048 } })).toEqual(on);
    expect(sent('openai', { messages: user, thinking: { type: 'adaptive' } })).toEqual(on);
    // Responses (through chat): reasoning.effort.
    expect(sent('openai', { input: 'hi', reasoning: { effort: 'medium' } }, 'responses')).toEqual(on);
    expect(sent('openai', { input: 'hi', reasoning: { effort: 'minimal' } }, 'responses', true)).toEqual(off);
    expect(sent('openai', { input: 'hi' }, 'responses')).toBeUndefined();
    // Anthropic clients.
    expect(sent('anthropic', { max_tokens: 4096, messages: user, thinking: { type: 'enabled', budget_tokens: 1024 } })).toEqual(on);
    expect(sent('anthropic', { max_tokens: 4096, messages: user, thinking: { type: 'adaptive' } })).toEqual(on);
    expect(sent('anthropic', { max_tokens: 4096, messages: user, thinking: off })).toEqual(off);
    expect(sent('anthropic', { max_tokens: 4096, messages: user })).toBeUndefined();
    // Gemini clients: budget 0 off, any other budget or a level on (minimal too: Gemini's smallest level still thinks).
    const g = (thinkingConfig: unknown) => sent('gemini', { contents: [{ role: 'user', parts: [{ text: 'hi' }] }], generationConfig: { thinkingConfig } });
    expect([{ thinkingBudget: 0 }, { thinkingBudget: 0, includeThoughts: true }, { thinkingBudget: -1 }, { thinkingBudget: 100 }, { thinkingBudget: 24576 },
      { thinkingLevel: 'minimal' }, { thinkingLevel: 'HIGH' }, { includeThoughts: true }].map(g)).toEqual([off, off, on, on, on, on, on, on]);
    expect(g({ includeThoughts: false })).toBeUndefined();
    expect(sent('gemini', { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] })).toBeUndefined();
    // The other way: GLM's switch from an OpenAI-shaped client leaves Anthropic and Gemini to choose how much.
    expect(req('openai', 'anthropic', { messages: user, thinking: on }).body.thinking).toEqual({ type: 'enabled', budget_tokens: 4096 });
    expect(req('openai', 'gemini', { messages: user, thinking: on }).body.generationConfig).toEqual({ thinkingConfig: { thinkingBudget: 4096, includeThoughts: true } });
    expect(req('openai', 'anthropic', { messages: user, thinking: off }).body).not.toHaveProperty('thinking');
    expect(req('openai', 'gemini', { messages: user, thinking: off }).body).not.toHaveProperty('generationConfig');
  });

  it('→ GLM: malformed controls refused, whichever field carries them', () => {
    for (const body of [{ reasoning_effort: 3 }, { reasoning_effort: 'extreme' }, { thinking: 'on' }, { thinking: { type: 'sometimes' } }, { thinking: { type: 5 } }, { thinking: {} },
      { thinking: ['enabled'] }, { thinking: { type: 'enabled', clear_thinking: 'no' } }, { thinking: { type: 'disabled' }, reasoning_effort: 'loud' },
      { thinking: { type: 'enabled', budget_tokens: 100 } }, { thinking: { type: 'enabled', budget_tokens: '2048' } }]) {
      for (const stream of [false, true]) {
        const e = refusal(() => req('openai', 'glm', { messages: user, ...body }, stream));
        expect(e.status).toBe(400);
        expect(e.details).toMatchObject({ param: 'reasoning_effort' in body ? 'reasoning_effort' : 'thinking' });
      }
    }
    expect(refusal(() => req('anthropic', 'glm', { max_tokens: 4096, messages: user, thinking: { type: 'deep' } })).status).toBe(400);
    expect(refusal(() => req('gemini', 'glm', { contents: [{ role: 'user', parts: [{ text: 'hi' }] }], generationConfig: { thinkingConfig: { thinkingBudget: -2 } } })).status).toBe(400);
  });

  it('Responses → Anthropic: reasoning.effort as a budget', () => {
    expect(req('openai', 'anthropic', { input: 'hi', reasoning: { effort: 'medium' } }, false, 'responses').body).toMatchObject({ thinking: { type: 'enabled', budget_tokens: 4096 } });
    expect(refusal(() => req('openai', 'glm', { input: 'hi', reasoning: { effort: 'loud' } }, false, 'responses')).status).toBe(400);
  });
});

describe('reasoning in each client\'s shape, whole', () => {
  const anthropicAnswer = {
    id: 'msg_1', content: [{ type: 'thinking', thinking: 'Let me see.', signature: 'sig' }, { type: 'text', text: 'Four.' }],
    stop_reason: 'end_turn', usage: { input_tokens: 5, output_tokens: 10 },
  };
  it('Anthropic → OpenAI: reasoning_content, the signed blocks, estimated reasoning tokens', () => {
    const { out, usage } = req('openai', 'anthropic', { messages: user, reasoning_effort: 'low' }).response(anthropicAnswer);
    expect((out!.choices as Json[])[0]!.message).toMatchObject({ content: 'Four.', reasoning_content: 'Let me see.', thinking_blocks: [{ type: 'thinking', thinking: 'Let me see.', signature: 'sig' }] });
    expect(usage).toEqual({ input: 5, output: 10, cached: 0, reasoning: 3 });
  });
  it('Anthropic → Gemini: a thought part first, only when thoughts were asked for', () => {
    const body = (includeThoughts: boolean) => ({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }], generationConfig: { thinkingConfig: { thinkingBudget: 2048, includeThoughts } } });
    expect((req('gemini', 'anthropic', body(true)).response(anthropicAnswer).out!.candidates as Json[])[0]!.content).toEqual({ role: 'model', parts: [{ text: 'Let me see.', thought: true }, { text: 'Four.' }] });
    expect((req('gemini', 'anthropic', body(false)).response(anthropicAnswer).out!.candidates as Json[])[0]!.content).toEqual({ role: 'model', parts: [{ text: 'Four.' }] });
  });
  it('OpenAI-compatible (reasoning or reasoning_content) → Anthropic and Responses', () => {
    for (const field of ['reasoning', 'reasoning_content']) {
      const answer = { choices: [{ message: { role: 'assistant', content: 'Four.', [field]: 'Hmm.' }, finish_reason: 'stop' }], usage: { prompt_tokens: 2, completion_tokens: 4, completion_tokens_details: { reasoning_tokens: 2 } } };
      const { out, usage } = req('anthropic', 'openai-compatible', { max_tokens: 50, messages: user }).response(answer);
      expect(out!.content).toEqual([{ type: 'thinking', thinking: 'Hmm.', signature: '' }, { type: 'text', text: 'Four.' }]);
      expect(usage!.reasoning).toBe(2);
      const resp = req('openai', 'glm', { input: 'hi' }, false, 'responses').response(answer).out!;
      expect((resp.output as Json[]).map((o) => o.type)).toEqual(['reasoning', 'message']);
      expect((resp.output as Json[])[0]).toMatchObject({ summary: [{ type: 'summary_text', text: 'Hmm.' }] });
    }
  });
  it('Gemini thought parts → OpenAI reasoning_content with thoughtsTokenCount', () => {
    const answer = { candidates: [{ content: { role: 'model', parts: [{ text: 'Hmm.', thought: true }, { text: 'Four.' }] }, finishReason: 'STOP' }], usageMetadata: { promptTokenCount: 2, candidatesTokenCount: 1, thoughtsTokenCount: 7 } };
    const { out, usage } = req('openai', 'gemini', { messages: user, reasoning_effort: 'low' }).response(answer);
    expect((out!.choices as Json[])[0]!.message).toMatchObject({ content: 'Four.', reasoning_content: 'Hmm.' });
    expect(usage).toEqual({ input: 2, output: 8, cached: 0, reasoning: 7 });
  });
});

describe('reasoning in each client\'s shape, streamed', () => {
  /** Upstream events through the plan's decoder and the client's encoder. */
  function run(family: IngressFamily, provider: keyof typeof ADAPTERS, body: Json, events: Array<[string | null, Json | string]>, op: 'chat' | 'responses' = 'chat'): string {
    const p = req(family, provider, body, true, op);
    const dec = p.decoder();
    const enc = clientEncoder({ ingress: family, op, model: 'pub', body });
    let out = '';
    for (const [event, data] of events) for (const c of dec.push(typeof data === 'string' ? data : JSON.stringify(data), event)) out += enc.chunk(c);
    for (const c of dec.end()) out += enc.chunk(c);
    return out + enc.end(false);
  }
  const anthropicEvents: Array<[string, Json]> = [
    ['message_start', { type: 'message_start', message: { usage: { input_tokens: 3, output_tokens: 1 } } }],
    ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } }],
    ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Let me ' } }],
    ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'see.' } }],
    ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'sig' } }],
    ['content_block_stop', { type: 'content_block_stop', index: 0 }],
    ['content_block_start', { type: 'content_block_start', index: 1, content_block: { type: 'text', text: '' } }],
    ['content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: 'Four.' } }],
    ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 9 } }],
  ];
  const data = (sse: string) => sse.split('\n\n').filter((e) => e.includes('data: {')).map((e) => JSON.parse(e.slice(e.indexOf('data: ') + 6)) as Json);

  it('Anthropic → OpenAI: reasoning_content deltas before the text, the signed block, reasoning tokens', () => {
    const chunks = data(run('openai', 'anthropic', { messages: user, reasoning_effort: 'low', stream_options: { include_usage: true } }, anthropicEvents));
    const deltas = chunks.flatMap((c) => (c.choices as Json[]).map((ch) => ch.delta as Json));
    expect(deltas.filter((d) => d.reasoning_content).map((d) => d.reasoning_content)).toEqual(['Let me ', 'see.']);
    expect(deltas.findIndex((d) => d.reasoning_content)).toBeLessThan(deltas.findIndex((d) => d.content === 'Four.'));
    expect(deltas.find((d) => d.thinking_blocks)).toEqual({ thinking_blocks: [{ type: 'thinking', thinking: 'Let me see.', signature: 'sig' }] });
    expect(chunks.at(-1)!.usage).toMatchObject({ completion_tokens: 9, completion_tokens_details: { reasoning_tokens: 3 } });
  });

  it('OpenAI-compatible → Anthropic: a thinking block with an empty signature, then the text block', () => {
    const chunk = (delta: Json, finish: string | null = null) => ({ choices: [{ index: 0, delta, finish_reason: finish }] });
    const events = data(run('anthropic', 'openai-compatible', { max_tokens: 50, messages: user }, [
      [null, chunk({ role: 'assistant', content: '' })], [null, chunk({ reasoning: 'Hmm, ' })], [null, chunk({ reasoning_content: 'yes.' })],
      [null, chunk({ content: 'Four.' })], [null, chunk({}, 'stop')], [null, { choices: [], usage: { prompt_tokens: 1, completion_tokens: 3 } }], [null, '[DONE]'],
    ]));
    expect(events.map((e) => e.type)).toEqual(['message_start', 'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop',
      'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    expect(events[1]).toEqual({ type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } });
    expect(events.slice(2, 4).map((e) => e.delta)).toEqual([{ type: 'thinking_delta', thinking: 'Hmm, ' }, { type: 'thinking_delta', thinking: 'yes.' }]);
    expect(events[5]).toMatchObject({ index: 1, content_block: { type: 'text' } });
  });

  it('Anthropic → Gemini: thought parts when asked for, none otherwise', () => {
    const body = (includeThoughts: boolean) => ({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }], generationConfig: { thinkingConfig: { thinkingBudget: 2048, includeThoughts } } });
    const parts = (b: Json) => data(run('gemini', 'anthropic', b, anthropicEvents).replaceAll('\r\n', '\n')).flatMap((f) => ((f.candidates as Json[])[0]!.content as Json).parts as Json[]);
    expect(parts(body(true)).slice(0, 3)).toEqual([{ text: 'Let me ', thought: true }, { text: 'see.', thought: true }, { text: 'Four.' }]);
    expect(parts(body(false)).some((p) => p.thought)).toBe(false);
  });

  it('Gemini → Responses: a reasoning item with its summary before the message', () => {
    const frame = (parts: Json[], extra: Json = {}) => ({ candidates: [{ content: { role: 'model', parts }, index: 0, ...extra }] });
    const events = run('openai', 'gemini', { input: 'hi', reasoning: { effort: 'low' } }, [
      [null, frame([{ text: 'Hmm.', thought: true }])], [null, frame([{ text: 'Four.' }], { finishReason: 'STOP' })],
    ], 'responses').split('\n\n').filter(Boolean).map((e) => JSON.parse(e.split('\n')[1]!.slice(6)) as Json);
    expect(events.map((e) => e.type)).toEqual(['response.created', 'response.in_progress', 'response.output_item.added', 'response.reasoning_summary_part.added',
      'response.reasoning_summary_text.delta', 'response.reasoning_summary_text.done', 'response.reasoning_summary_part.done', 'response.output_item.done',
      'response.output_item.added', 'response.content_part.added', 'response.output_text.delta', 'response.output_text.done', 'response.content_part.done',
      'response.output_item.done', 'response.completed']);
    const done = (events.at(-1)!.response as Json).output as Json[];
    expect(done.map((o) => o.type)).toEqual(['reasoning', 'message']);
    expect(done[0]).toMatchObject({ summary: [{ type: 'summary_text', text: 'Hmm.' }] });
  });
});

describe('earlier reasoning back to the model that gave it', () => {
  /** A streamed call's client events, from upstream events. */
  const events = (family: IngressFamily, provider: keyof typeof ADAPTERS, body: Json, frames: Json[]): Json[] => {
    const p = req(family, provider, body, true);
    const enc = clientEncoder({ ingress: family, op: 'chat', model: 'pub', body });
    const dec = p.decoder();
    let out = '';
    for (const f of frames) for (const c of dec.push(JSON.stringify(f), null)) out += enc.chunk(c);
    for (const c of dec.end()) out += enc.chunk(c);
    out += enc.end(false);
    return out.split('\n\n').filter((e) => e.includes('data: {')).map((e) => JSON.parse(e.slice(e.indexOf('data: ') + 6)) as Json);
  };
  const SIG = Buffer.from([0xfb, 0xef, 0xff, 1, 2, 3]).toString('base64');
  const assistantOf = (body: Json) => (body.messages as Json[]).filter((m) => m.role === 'assistant');
  const anthropicHistory = (blocks: Json[], extra: Json = {}) => ({ max_tokens: 4096, ...extra, messages: [
    { role: 'user', content: [{ type: 'thinking', thinking: 'on a user turn', signature: '' }, { type: 'text', text: 'first' }] },
    { role: 'assistant', content: [...blocks, { type: 'text', text: 'answer one' }] },
    { role: 'user', content: 'second' },
  ] });

  it('Anthropic → GLM: unsigned thinking as reasoning_content with clear_thinking off; Claude\'s, redacted and user-turn thinking never', () => {
    const body = req('anthropic', 'glm', anthropicHistory([
      { type: 'thinking', thinking: 'GLM thought. ', signature: '' },
      { type: 'thinking', thinking: 'Claude thought', signature: 'EqQBCkYIBxgC' },
      { type: 'redacted_thinking', data: 'EmwKAhgBEgy' },
      { type: 'thinking', thinking: 'More.', signature: '' },
    ], { thinking: { type: 'enabled', budget_tokens: 2048 } })).body;
    expect(assistantOf(body)).toEqual([{ role: 'assistant', content: 'answer one', reasoning_content: 'GLM thought. More.' }]);
    expect(body.thinking).toEqual({ type: 'enabled', clear_thinking: false });
    expect(JSON.stringify(body)).not.toMatch(/Claude thought|on a user turn|EmwKAhgBEgy/);
    // Thinking off for this turn: the history keeps its reasoning, GLM is told only to not think.
    const off = req('anthropic', 'glm', anthropicHistory([{ type: 'thinking', thinking: 'x', signature: '' }], { thinking: { type: 'disabled' } })).body;
    expect(off.thinking).toEqual({ type: 'disabled' });
    expect(assistantOf(off)[0]!.reasoning_content).toBe('x');
    // Nothing to preserve: GLM's switch as before.
    expect(req('anthropic', 'glm', anthropicHistory([])).body).not.toHaveProperty('thinking');
  });

  it('Anthropic → other OpenAI-shaped providers and Anthropic-shaped refusals', () => {
    for (const provider of ['openai', 'openai-compatible', 'azure'] as const) {
      const body = req('anthropic', provider, anthropicHistory([{ type: 'thinking', thinking: 'GLM thought', signature: '' }])).body;
      expect(JSON.stringify(body)).not.toContain('GLM thought');
    }
    for (const block of [{ type: 'thinking', thinking: 5, signature: '' }, { type: 'thinking', thinking: 'x', signature: 7 }, { type: 'redacted_thinking', data: null }]) {
      expect(refusal(() => req('anthropic', 'glm', anthropicHistory([block]))).status).toBe(400);
    }
  });

  it('Gemini → GLM: unsigned thought parts as reasoning_content, Gemini-signed ones not', () => {
    const body = req('gemini', 'glm', { contents: [
      { role: 'user', parts: [{ text: 'hi' }] },
      { role: 'model', parts: [{ text: 'GLM thought', thought: true }, { text: 'Gemini thought', thought: true, thoughtSignature: SIG }, { text: 'hello' }] },
      { role: 'user', parts: [{ text: 'and?' }] },
    ] }).body;
    expect(assistantOf(body)).toEqual([{ role: 'assistant', content: 'hello', reasoning_content: 'GLM thought' }]);
    expect(body.thinking).toEqual({ type: 'enabled', clear_thinking: false });
  });

  it('Responses → GLM: a reasoning item\'s text on the turn it led to; encrypted items and a client\'s clear_thinking kept apart', () => {
    const input = (item: Json) => [
      { role: 'user', content: 'hi' }, item,
      { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{}' }, { type: 'function_call_output', call_id: 'c1', output: 'ok' },
      { type: 'reasoning', id: 'rs_2', summary: [{ type: 'summary_text', text: 'dangling' }] }, { role: 'user', content: 'next' },
    ];
    const body = req('openai', 'glm', { input: input({ type: 'reasoning', id: 'rs_1', summary: [{ type: 'summary_text', text: 'Plan: ' }, { type: 'summary_text', text: 'call f.' }] }) }, false, 'responses').body;
    expect(assistantOf(body)).toEqual([{ role: 'assistant', content: null, reasoning_content: 'Plan: call f.', tool_calls: [expect.objectContaining({ id: 'c1' })] }]);
    expect(body.thinking).toEqual({ type: 'enabled', clear_thinking: false });
    const raw = req('openai', 'glm', { input: input({ type: 'reasoning', id: 'rs_1', summary: [], content: [{ type: 'reasoning_text', text: 'raw' }] }) }, false, 'responses').body;
    expect(assistantOf(raw)[0]!.reasoning_content).toBe('raw');
    const sealed = req('openai', 'glm', { input: input({ type: 'reasoning', id: 'rs_1', summary: [{ type: 'summary_text', text: 'o-series summary' }], encrypted_content: 'gAAAA' }) }, false, 'responses').body;
    expect(JSON.stringify(sealed)).not.toMatch(/o-series summary|gAAAA/);
    expect(sealed).not.toHaveProperty('thinking');
    // Malformed summary parts are dropped, never an error.
    const odd = req('openai', 'glm', { input: input({ type: 'reasoning', summary: [{ type: 'summary_text', text: 5 }, 'x'] }) }, false, 'responses').body;
    expect(assistantOf(odd)[0]).not.toHaveProperty('reasoning_content');
    const kept = req('openai', 'glm', { input: input({ type: 'reasoning', summary: [{ type: 'summary_text', text: 'p' }] }) }, false, 'responses').body;
    expect(req('openai', 'anthropic', { input: input({ type: 'reasoning', summary: [{ type: 'summary_text', text: 'p' }] }) }, false, 'responses').body.messages).not.toContainEqual(expect.objectContaining({ reasoning_content: 'p' }));
    expect(kept.thinking).toEqual({ type: 'enabled', clear_thinking: false });
  });

  it('Gemini text signatures: to an Anthropic client with thinking on as a marked redacted_thinking block, and back to Gemini', () => {
    const answer = { candidates: [{ content: { role: 'model', parts: [{ text: 'Four.', thoughtSignature: SIG }] }, finishReason: 'STOP', index: 0 }] };
    const on = { max_tokens: 4096, thinking: { type: 'enabled', budget_tokens: 2048 }, messages: [{ role: 'user', content: 'hi' }] };
    expect(req('anthropic', 'gemini', on).response(answer).out!.content).toEqual([{ type: 'text', text: 'Four.' }, { type: 'redacted_thinking', data: `gemini:${SIG}` }]);
    expect(req('anthropic', 'gemini', { ...on, thinking: undefined }).response(answer).out!.content).toEqual([{ type: 'text', text: 'Four.' }]);
    const streamed = events('anthropic', 'gemini', on, [{ candidates: [{ content: { role: 'model', parts: [{ text: 'Four.' }] }, index: 0 }] }, answer]);
    expect(streamed.filter((e) => e.type === 'content_block_start').map((e) => e.content_block)).toEqual([{ type: 'text', text: '' }, { type: 'redacted_thinking', data: `gemini:${SIG}` }]);
    // Back: on the text part of its model turn; a marked block that is not base64 is dropped; to Anthropic models such blocks are left out.
    const back = (data: string) => anthropicHistory([{ type: 'redacted_thinking', data }], { thinking: { type: 'enabled', budget_tokens: 2048 } });
    expect(((req('anthropic', 'gemini', back(`gemini:${SIG}`)).body.contents as Json[])[1]!.parts)).toEqual([{ text: 'answer one', thoughtSignature: SIG }]);
    expect(((req('anthropic', 'gemini', back('gemini:!!')).body.contents as Json[])[1]!.parts)).toEqual([{ text: 'answer one' }]);
    const claude = req('anthropic', 'anthropic', anthropicHistory([{ type: 'redacted_thinking', data: `gemini:${SIG}` }, { type: 'thinking', thinking: 'GLM', signature: '' }, { type: 'redacted_thinking', data: 'EmwK' }])).body;
    expect((claude.messages as Json[])[1]!.content).toEqual([{ type: 'redacted_thinking', data: 'EmwK' }, { type: 'text', text: 'answer one' }]);
  });
});
