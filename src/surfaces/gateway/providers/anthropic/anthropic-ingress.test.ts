import { describe, expect, it } from 'vitest';
import { AppError } from '../../../../core/errors/errors.ts';
import { anthropicRequestToOpenAi, anthropicStream, anthropicStreamUsage, openAiResponseToAnthropic } from './anthropic-ingress.ts';

const parse = (sse: string) => sse.split('\n\n').filter(Boolean).map((e) => {
  const [ev, data] = e.split('\n');
  return { event: ev!.slice('event: '.length), data: JSON.parse(data!.slice('data: '.length)) as Record<string, unknown> };
});

describe('Messages request → OpenAI chat', () => {
  it('carries system, turns, images, tool calls and results, in OpenAI\'s order', () => {
    const out = anthropicRequestToOpenAi({
      model: 'public',
      max_tokens: 100,
      system: [{ type: 'text', text: 'be ' }, { type: 'text', text: 'brief', cache_control: { type: 'ephemeral' } }],
      temperature: 0.2,
      top_p: 0.9,
      top_k: 4,
      stop_sequences: ['END'],
      metadata: { user_id: 'u-1' },
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'look: ' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } }] },
        { role: 'assistant', content: [{ type: 'thinking', thinking: 'hmm', signature: 's' }, { type: 'text', text: 'calling' }, { type: 'tool_use', id: 'toolu_1', name: 'f', input: { a: 1 } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: 'ok' }] }, { type: 'text', text: 'and now?' }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_2', is_error: true, content: 'boom' }] },
      ],
      tools: [{ name: 'f', description: 'does f', input_schema: { type: 'object' } }],
      tool_choice: { type: 'any', disable_parallel_tool_use: true },
    }, 'upstream', true);
    expect(out).toEqual({
      model: 'upstream',
      max_tokens: 100,
      temperature: 0.2,
      top_p: 0.9,
      stop: ['END'],
      user: 'u-1',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: [{ type: 'text', text: 'look: ' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] },
        { role: 'assistant', content: 'calling', tool_calls: [{ id: 'toolu_1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] },
        { role: 'tool', tool_call_id: 'toolu_1', content: 'ok' },
        { role: 'user', content: 'and now?' },
        { role: 'tool', tool_call_id: 'toolu_2', content: 'Error: boom' },
      ],
      tools: [{ type: 'function', function: { name: 'f', description: 'does f', parameters: { type: 'object' } } }],
      tool_choice: 'required',
      parallel_tool_calls: false,
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it('maps every tool_choice and an image by URL', () => {
    const base = { max_tokens: 1, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'url', url: 'https://x/y.png' } }] }], tools: [{ name: 'f', input_schema: {} }] };
    expect(anthropicRequestToOpenAi({ ...base, tool_choice: { type: 'auto' } }, 'm', false)).toMatchObject({ tool_choice: 'auto', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }] }] });
    expect(anthropicRequestToOpenAi({ ...base, tool_choice: { type: 'none' } }, 'm', false).tool_choice).toBe('none');
    expect(anthropicRequestToOpenAi({ ...base, tool_choice: { type: 'tool', name: 'f' } }, 'm', false).tool_choice).toEqual({ type: 'function', function: { name: 'f' } });
    expect(anthropicRequestToOpenAi(base, 'm', false)).not.toHaveProperty('stream');
  });

  it.each([
    [{ max_tokens: 1, messages: {} }, /messages/],
    [{ max_tokens: 1, messages: [null] }, /role/],
    [{ max_tokens: 1, system: 5, messages: [{ role: 'user', content: 'x' }] }, /system/],
    [{ max_tokens: 1, messages: [{ role: 'user', content: [{ type: 'text', text: 5 }] }] }, /text/],
    [{ max_tokens: 1, messages: [{ role: 'assistant', content: [{ type: 'tool_result', tool_use_id: 'x' }] }] }, /user turns/],
    [{ max_tokens: 1, messages: [{ role: 'user', content: [{ type: 'search_result' }] }] }, /Anthropic provider/],
    [{ max_tokens: 1, messages: [{ role: 'user', content: 'x' }], tools: {} }, /tools/],
    [{ max_tokens: 1, messages: [{ role: 'user', content: 'x' }], tools: [{ name: 'bash', type: 'bash_20250124' }] }, /server tools/],
    [{ max_tokens: 1, messages: [{ role: 'user', content: 'x' }], tools: [{ input_schema: {} }] }, /name/],
  ])('refuses %j', (body, message) => {
    let err: unknown;
    try {
      anthropicRequestToOpenAi(body, 'm', false);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).status).toBe(400);
    expect((err as AppError).message).toMatch(message);
  });
});

describe('OpenAI completion → Message', () => {
  it('keeps text, tool calls, the stop reason and cached tokens apart from input', () => {
    const msg = openAiResponseToAnthropic({
      choices: [{ message: { content: 'hi', tool_calls: [{ id: 'call_1', function: { name: 'f', arguments: '{"a":1}' } }, { id: 'call_2', function: { name: 'g', arguments: 'not json' } }] }, finish_reason: 'tool_calls' }],
      usage: { prompt_tokens: 10, completion_tokens: 4, prompt_tokens_details: { cached_tokens: 6 } },
    }, 'public');
    expect(msg).toMatchObject({
      type: 'message',
      role: 'assistant',
      model: 'public',
      content: [{ type: 'text', text: 'hi' }, { type: 'tool_use', id: 'call_1', name: 'f', input: { a: 1 } }, { type: 'tool_use', id: 'call_2', name: 'g', input: { arguments: 'not json' } }],
      stop_reason: 'tool_use',
      usage: { input_tokens: 4, output_tokens: 4, cache_read_input_tokens: 6 },
    });
    expect(String(msg.id)).toMatch(/^msg_/);
    expect(openAiResponseToAnthropic({ choices: [{ message: { content: 'x' }, finish_reason: 'length' }] }, 'p')).toMatchObject({ stop_reason: 'max_tokens', usage: { input_tokens: 0, output_tokens: 0 } });
  });
});

describe('OpenAI chunks → Messages events', () => {
  const chunk = (delta: Record<string, unknown>, finish: string | null = null, usage?: Record<string, unknown>) => ({ choices: [{ index: 0, delta, finish_reason: finish }], ...(usage ? { usage } : {}) });

  it('opens and closes one block per text run and per tool call, then message_delta with the usage', () => {
    const s = anthropicStream('public');
    const out = [
      s.chunk(chunk({ role: 'assistant', content: '' })),
      s.chunk(chunk({ content: 'let me ' })),
      s.chunk(chunk({ content: 'check' })),
      s.chunk(chunk({ tool_calls: [{ index: 0, id: 'call_1', function: { name: 'f', arguments: '' } }] })),
      s.chunk(chunk({ tool_calls: [{ index: 0, function: { arguments: '{"a":' } }] })),
      s.chunk(chunk({ tool_calls: [{ index: 0, function: { arguments: '1}' } }] })),
      s.chunk(chunk({ tool_calls: [{ index: 1, id: 'call_2', function: { name: 'g', arguments: '{}' } }] })),
      s.chunk(chunk({}, 'tool_calls')),
      s.chunk({ choices: [], usage: { prompt_tokens: 7, completion_tokens: 5 } }),
      s.end(),
    ].join('');
    const events = parse(out);
    expect(events.map((e) => e.event)).toEqual([
      'message_start',
      'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop',
      'content_block_start', 'content_block_delta', 'content_block_delta', 'content_block_stop',
      'content_block_start', 'content_block_delta', 'content_block_stop',
      'message_delta', 'message_stop',
    ]);
    for (const e of events) expect(e.data.type).toBe(e.event);
    expect(events[0]!.data).toMatchObject({ message: { role: 'assistant', model: 'public', content: [] } });
    expect(events[1]!.data).toEqual({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
    expect(events[5]!.data).toEqual({ type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'call_1', name: 'f', input: {} } });
    expect(events[7]!.data).toEqual({ type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '1}' } });
    expect(events[9]!.data).toMatchObject({ index: 2, content_block: { id: 'call_2', name: 'g' } });
    expect(events[12]!.data).toMatchObject({ delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { input_tokens: 7, output_tokens: 5 } });
  });

  it('an empty stream still is a whole message', () => {
    expect(parse(anthropicStream('m').end()).map((e) => e.event)).toEqual(['message_start', 'message_delta', 'message_stop']);
  });
});

describe('usage of a passed-through Messages stream', () => {
  it('takes input from message_start and output from message_delta', () => {
    let u = anthropicStreamUsage(null, { type: 'message_start', message: { usage: { input_tokens: 3, cache_read_input_tokens: 5, output_tokens: 1 } } });
    expect(u).toEqual({ input: 8, output: 1, cached: 5, reasoning: 0 });
    u = anthropicStreamUsage(u, { type: 'content_block_delta', delta: { type: 'text_delta', text: 'x' } });
    u = anthropicStreamUsage(u, { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 9 } });
    expect(u).toEqual({ input: 8, output: 9, cached: 5, reasoning: 0 });
    expect(anthropicStreamUsage(u, { type: 'message_delta', usage: { input_tokens: 4, cache_read_input_tokens: 6, output_tokens: 10 } })).toEqual({ input: 10, output: 10, cached: 6, reasoning: 0 });
  });
});
