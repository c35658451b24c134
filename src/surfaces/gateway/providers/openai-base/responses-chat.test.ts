import { describe, expect, it } from 'vitest';
import type { Json } from '../types.ts';
import { chatToResponse, responsesRequestToChat, responsesStream } from './responses-chat.ts';

const events = (sse: string) =>
  sse.split('\n\n').filter(Boolean).map((e) => {
    const [name, data] = e.split('\n');
    const json = JSON.parse(data!.slice(6)) as Json;
    expect(name).toBe(`event: ${json.type}`);
    return json;
  });
const chunk = (delta: Json, finish: string | null = null, usage?: Json): Json => ({ choices: [{ index: 0, delta, finish_reason: finish }], ...(usage ? { usage } : {}) });

describe('Responses API over chat', () => {
  it('turns input items, instructions and tools into a chat request', () => {
    const chat = responsesRequestToChat({
      instructions: 'be brief',
      input: [
        { role: 'user', content: [{ type: 'input_text', text: 'look' }, { type: 'input_image', image_url: 'data:image/png;base64,AAAA' }] },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'calling' }] },
        { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{}' },
        { type: 'function_call', call_id: 'c2', name: 'g', arguments: '{"a":1}' },
        { type: 'function_call_output', call_id: 'c1', output: 'one' },
        { type: 'reasoning', summary: [] },
      ],
      tools: [{ type: 'function', name: 'f', parameters: { type: 'object' } }],
      tool_choice: { type: 'function', name: 'f' },
      max_output_tokens: 9,
      text: { format: { type: 'json_schema', name: 'out', schema: { type: 'object' }, strict: true } },
    }, 'up', true, true);
    expect(chat).toEqual({
      model: 'up',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] },
        { role: 'assistant', content: 'calling', tool_calls: [
          { id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } },
          { id: 'c2', type: 'function', function: { name: 'g', arguments: '{"a":1}' } },
        ] },
        { role: 'tool', tool_call_id: 'c1', content: 'one' },
      ],
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
      tool_choice: { type: 'function', function: { name: 'f' } },
      max_tokens: 9,
      response_format: { type: 'json_schema', json_schema: { name: 'out', schema: { type: 'object' }, strict: true } },
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it('streams text then a tool call as items in order, and reports an output cap as incomplete', () => {
    const s = responsesStream('m', { input: 'x' });
    const out = events([
      s.chunk(chunk({ role: 'assistant', content: '' })),
      s.chunk(chunk({ content: 'let me ' })),
      s.chunk(chunk({ content: 'check' })),
      s.chunk(chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '' } }] })),
      s.chunk(chunk({ tool_calls: [{ index: 0, function: { arguments: '{"a":' } }] })),
      s.chunk(chunk({ tool_calls: [{ index: 0, function: { arguments: '1}' } }] })),
      s.chunk(chunk({}, 'length')),
      s.chunk({ choices: [], usage: { prompt_tokens: 5, completion_tokens: 7, prompt_tokens_details: { cached_tokens: 2 } } }),
      s.end(),
    ].join(''));
    expect(out.map((e) => e.type)).toEqual([
      'response.created', 'response.in_progress',
      'response.output_item.added', 'response.content_part.added', 'response.output_text.delta', 'response.output_text.delta',
      'response.output_text.done', 'response.content_part.done', 'response.output_item.done',
      'response.output_item.added', 'response.function_call_arguments.delta', 'response.function_call_arguments.delta',
      'response.function_call_arguments.done', 'response.output_item.done',
      'response.incomplete',
    ]);
    expect(out.map((e) => e.sequence_number)).toEqual(out.map((_, i) => i));
    const last = out.at(-1)!.response as Json;
    expect(last).toMatchObject({ status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' }, usage: { input_tokens: 5, output_tokens: 7, total_tokens: 12, input_tokens_details: { cached_tokens: 2 } } });
    expect(last.output).toMatchObject([
      { type: 'message', status: 'completed', content: [{ type: 'output_text', text: 'let me check' }] },
      { type: 'function_call', call_id: 'call_1', name: 'f', arguments: '{"a":1}', status: 'completed' },
    ]);
    expect(out[9]).toMatchObject({ output_index: 1, item: { type: 'function_call', arguments: '', status: 'in_progress' } });
  });

  it('answers an empty stream with an empty message, and errors with the error event alone', () => {
    const s = responsesStream('m', {});
    const out = events(s.end());
    expect(out.at(-1)).toMatchObject({ type: 'response.completed', response: { status: 'completed', output: [{ type: 'message', content: [{ type: 'output_text', text: '' }] }] } });
    expect(events(responsesStream('m', {}).error('upstream_error', 'boom', null))).toEqual([{ type: 'error', sequence_number: 0, code: 'upstream_error', message: 'boom', param: null }]);
  });

  it('maps a chat completion with a refusal and tool calls to output items', () => {
    const r = chatToResponse({
      choices: [{ index: 0, finish_reason: 'tool_calls', message: { role: 'assistant', content: null, refusal: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] } }],
      usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
    }, 'm', { instructions: 'x' });
    expect(r).toMatchObject({ object: 'response', status: 'completed', instructions: 'x', model: 'm', output: [{ type: 'function_call', call_id: 'c', name: 'f', arguments: '{}' }], usage: { input_tokens: 1, output_tokens: 2, total_tokens: 3 } });
    expect((r.output as Json[]).length).toBe(1);
  });
});
