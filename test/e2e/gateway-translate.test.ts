// /v1/responses and /v1/completions for every provider type: the official openai SDK against Gemini,
// Anthropic and OpenAI-shaped upstreams without those endpoints, translated through the chat pivot,
// streamed (named Responses events with sequence numbers, text_completion chunks) and not, with
// function tools, usage accounting and errors in OpenAI's shape.
import OpenAI, { AzureOpenAI } from 'openai';
import type { ResponseStreamEvent } from 'openai/resources/responses/responses';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAppliance, type Appliance } from '../helpers/appliance.ts';
import { authed, json, post, setupAdmin, type Admin } from '../helpers/api.ts';
import { createKey, createProvider, providerPerType, simpleModel } from '../helpers/gateway.ts';
import { startLlmUpstream, type LlmUpstream } from '../helpers/llm-upstream.ts';

let app: Appliance;
let admin: Admin;
let up: LlmUpstream;
let vk: string;
let keyId: string;
let client: OpenAI;

const TRANSLATED = ['gemini', 'anthropic', 'glm', 'openai-compatible'] as const;
const weather = [{ type: 'function' as const, name: 'get_weather', description: 'weather in a city', strict: false, parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];

beforeAll(async () => {
  [app, up] = await Promise.all([startAppliance(), startLlmUpstream()]);
  admin = await setupAdmin(app);
  const ids = await providerPerType(app, admin, up.url, ['openai', 'openai-compatible', 'glm', 'gemini', 'anthropic']);
  for (const type of ['gemini', 'anthropic', 'openai'] as const) await simpleModel(app, admin, ids[type], `ticking-${type}`, `up-chunks-4-tick-40`);
  const { id: gid } = await createProvider(app, admin, { name: 'p-cut', type: 'gemini', base_url: up.url });
  await simpleModel(app, admin, gid, 'cut-gemini', 'up-chunks-10-cut-3');
  ({ key: vk, id: keyId } = await createKey(app, admin.token));
  client = new OpenAI({ apiKey: vk, baseURL: `${app.url}/v1`, maxRetries: 0 });
});
afterAll(async () => {
  await app?.stop();
  await up?.close();
});

async function collect(stream: AsyncIterable<ResponseStreamEvent>) {
  const events: ResponseStreamEvent[] = [];
  const arrivals: number[] = [];
  for await (const e of stream) {
    events.push(e);
    arrivals.push(Date.now());
  }
  return { events, arrivals, types: events.map((e) => e.type) };
}

describe('/v1/responses on providers without it', () => {
  it.each(TRANSLATED)('answers a response object from a %s provider', async (type) => {
    const res = await client.responses.create({ model: `m-${type}`, instructions: 'be brief', input: 'one two', max_output_tokens: 50, temperature: 0.5 });
    expect(res).toMatchObject({ object: 'response', status: 'completed', model: `m-${type}`, max_output_tokens: 50, instructions: 'be brief' });
    expect(res.id).toMatch(/^resp_/);
    expect(res.output_text).toBe('echo: one two');
    expect(res.output[0]).toMatchObject({ type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'echo: one two' }] });
    expect(res.usage!.output_tokens).toBe(3); // the upstream counts "echo: ", "one ", "two"
    expect(res.usage!.total_tokens).toBe(res.usage!.input_tokens + 3);
    const seen = up.requests.at(-1)!;
    if (type === 'gemini') {
      expect(seen.path).toBe('/v1beta/models/up-gemini:generateContent');
      expect(seen.body!.systemInstruction.parts[0].text).toBe('be brief');
      expect(seen.body!.generationConfig).toMatchObject({ maxOutputTokens: 50, temperature: 0.5 });
    } else if (type === 'anthropic') {
      expect(seen.path).toBe('/v1/messages');
      expect(seen.body).toMatchObject({ model: 'up-anthropic', system: 'be brief', max_tokens: 50, messages: [{ role: 'user', content: [{ type: 'text', text: 'one two' }] }] });
    } else {
      expect(seen.path).toMatch(/\/chat\/completions$/);
      expect(seen.body).toMatchObject({ model: `up-${type}`, max_tokens: 50, messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'one two' }] });
    }
  });

  it.each(['gemini', 'anthropic'] as const)('streams named events from a %s provider as they arrive', async (type) => {
    const { events, arrivals, types } = await collect(await client.responses.create({ model: `ticking-${type}`, input: [{ role: 'user', content: [{ type: 'input_text', text: 'x' }] }], stream: true }));
    expect(types.slice(0, 4)).toEqual(['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
    expect(types.slice(-4)).toEqual(['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed']);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const deltas = events.filter((e) => e.type === 'response.output_text.delta');
    expect(deltas.map((e) => e.delta).join('')).toBe('w0 w1 w2 w3 ');
    const done = events.find((e) => e.type === 'response.output_text.done');
    expect(done).toMatchObject({ text: 'w0 w1 w2 w3 ', output_index: 0, content_index: 0 });
    const completed = events.at(-1)!;
    if (completed.type !== 'response.completed') throw new Error('no response.completed');
    expect(completed.response.output[0]).toMatchObject({ type: 'message', status: 'completed', content: [{ type: 'output_text', text: 'w0 w1 w2 w3 ' }] });
    expect(completed.response.usage!.output_tokens).toBe(4);
    // The upstream spaces its events 40 ms apart: they reached the client one by one, not at the end.
    expect(new Set(arrivals).size).toBeGreaterThan(3);
  });

  it.each(['gemini', 'anthropic'] as const)('calls function tools on a %s provider and takes their output back', async (type) => {
    const first = await client.responses.create({ model: `m-${type}`, input: 'weather in Paris?', tools: weather, tool_choice: 'auto' });
    const call = first.output.find((o) => o.type === 'function_call');
    if (call?.type !== 'function_call') throw new Error('no function call');
    expect(call).toMatchObject({ name: 'get_weather', status: 'completed' });
    expect(JSON.parse(call.arguments)).toEqual({ city: 'Paris' });
    const tools = up.requests.at(-1)!.body!.tools;
    expect(type === 'gemini' ? tools[0].functionDeclarations[0].name : tools[0].name).toBe('get_weather');

    const { events, types } = await collect(await client.responses.create({ model: `m-${type}`, input: 'weather in Paris?', tools: weather, stream: true }));
    expect(types).toContain('response.function_call_arguments.delta');
    const added = events.find((e) => e.type === 'response.output_item.added' && e.item.type === 'function_call');
    expect(added).toBeTruthy();
    const argsDone = events.find((e) => e.type === 'response.function_call_arguments.done');
    expect(argsDone).toMatchObject({ name: 'get_weather', arguments: '{"city":"Paris"}' });
    const completed = events.at(-1)!;
    if (completed.type !== 'response.completed') throw new Error('no response.completed');
    expect(completed.response.output.find((o) => o.type === 'function_call')).toMatchObject({ name: 'get_weather', arguments: '{"city":"Paris"}' });

    const second = await client.responses.create({
      model: `m-${type}`,
      tools: weather,
      input: [
        { role: 'user', content: 'weather in Paris?' },
        { type: 'function_call', call_id: call.call_id, name: 'get_weather', arguments: call.arguments },
        { type: 'function_call_output', call_id: call.call_id, output: '{"temp":21}' },
      ],
    });
    expect(second.output_text).toBe('tool said: {"temp":21}');
  });

  it('still passes /v1/responses through to OpenAI providers, which have it', async () => {
    const res = await client.responses.create({ model: 'm-openai', input: 'native' });
    expect(res.output_text).toBe('echo: native');
    expect(up.requests.at(-1)!.path).toBe('/v1/responses');
  });

  it('passes a streamed /v1/responses through to an OpenAI provider: its named events in order, as they arrive, usage recorded', async () => {
    const { id, key } = await createKey(app, admin.token, { name: 'responses-stream' });
    const c = new OpenAI({ apiKey: key, baseURL: `${app.url}/v1`, maxRetries: 0 });
    const { events, arrivals, types } = await collect(await c.responses.create({ model: 'ticking-openai', input: 'x', stream: true }));
    // Exactly the provider's events (the mock sends these five), not a translation of them.
    expect(types).toEqual(['response.created', 'response.output_text.delta', 'response.output_text.delta', 'response.output_text.delta', 'response.output_text.delta', 'response.completed']);
    expect(events.map((e) => e.sequence_number)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('')).toBe('w0 w1 w2 w3 ');
    const seen = up.requests.at(-1)!;
    expect(seen.path).toBe('/v1/responses');
    expect(seen.body).toMatchObject({ model: 'up-chunks-4-tick-40', input: 'x', stream: true });
    expect(seen.headers.authorization).toBe('Bearer key-openai');
    expect(new Set(arrivals).size).toBeGreaterThan(3); // 40 ms apart upstream, not held back
    const completed = events.at(-1)!;
    if (completed.type !== 'response.completed') throw new Error('no response.completed');
    const usage = await json(await fetch(`${app.url}/api/v1/usage?key_id=${id}&group_by=model`, authed(admin.token)));
    expect(usage.items).toHaveLength(1);
    expect(usage.items[0]).toMatchObject({ model: 'ticking-openai', requests: 1, errors: 0, input_tokens: completed.response.usage!.input_tokens, output_tokens: 4 });
    // A stream flag that is not a boolean is refused before anything reaches the provider.
    const before = up.requests.length;
    const bad = await post(`${app.url}/v1/responses`, { model: 'ticking-openai', input: 'x', stream: 'true' }, { authorization: `Bearer ${key}` });
    expect(bad.status).toBe(400);
    expect((await json(bad)).error).toMatchObject({ type: 'invalid_request_error', param: 'stream' });
    expect(up.requests.length).toBe(before);
  });

  it('refuses what cannot be translated, in OpenAI’s error shape', async () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ input: 'x', previous_response_id: 'resp_1' }, 'previous_response_id'],
      [{ input: 'x', tools: [{ type: 'web_search' }] }, 'tools.0.type'],
      [{ input: 42 }, 'input'],
      [{ input: [{ role: 'robot', content: 'x' }] }, 'input.0.role'],
      [{ input: 'x', max_output_tokens: '5' }, 'max_output_tokens'],
      [{ input: [] }, 'input'],
    ];
    for (const [body, param] of bad) {
      const res = await post(`${app.url}/v1/responses`, { model: 'm-gemini', ...body }, { authorization: `Bearer ${vk}` });
      expect(res.status, JSON.stringify(body)).toBe(400);
      const err = (await json(res)).error;
      expect(err).toMatchObject({ type: 'invalid_request_error', param });
      expect(typeof err.message).toBe('string');
    }
  });

  it('ends a stream cut short upstream with an error event', async () => {
    // The openai SDK turns an `error` event into a thrown APIError carrying its message, after
    // handing over every event before it.
    const types: string[] = [];
    const stream = await client.responses.create({ model: 'cut-gemini', input: 'x', stream: true });
    const failure = await (async () => {
      for await (const e of stream) types.push(e.type);
    })().then(() => null, (e: unknown) => e);
    expect(types[0]).toBe('response.created');
    expect(types).toContain('response.output_text.delta');
    expect(failure).toBeInstanceOf(OpenAI.APIError);
    expect((failure as InstanceType<typeof OpenAI.APIError>).message).toContain('upstream stream failed before it completed');
    // On the wire: the last event is a well-formed Responses `error` event.
    const res = await post(`${app.url}/v1/responses`, { model: 'cut-gemini', input: 'x', stream: true }, { authorization: `Bearer ${vk}` });
    const events = (await res.text()).split('\n\n').filter(Boolean);
    const last = events.at(-1)!;
    expect(last).toMatch(/^event: error\ndata: /);
    expect(JSON.parse(last.slice(last.indexOf('data: ') + 6))).toMatchObject({ type: 'error', message: 'upstream stream failed before it completed' });
  });
});

describe('/v1/completions on providers without it', () => {
  it.each(['gemini', 'anthropic', 'glm'] as const)('answers text completions from a %s provider, streamed and not', async (type) => {
    const res = await client.completions.create({ model: `m-${type}`, prompt: 'say hi', max_tokens: 20 });
    expect(res).toMatchObject({ object: 'text_completion', model: `m-${type}`, choices: [{ index: 0, text: 'echo: say hi', finish_reason: 'stop' }] });
    expect(res.usage!.completion_tokens).toBe(3);
    const one = await client.completions.create({ model: `m-${type}`, prompt: ['only one'] });
    expect(one.choices[0]!.text).toBe('echo: only one');

    let text = '';
    let usage = null;
    for await (const c of await client.completions.create({ model: `m-${type}`, prompt: 'a b c', stream: true, stream_options: { include_usage: true } })) {
      expect(c.object).toBe('text_completion');
      text += c.choices[0]?.text ?? '';
      if (c.usage) usage = c.usage;
    }
    expect(text).toBe('echo: a b c');
    expect(usage).toMatchObject({ completion_tokens: 4 });
  });

  it('serves the Azure ingress too: completions on a deployment and responses on /openai/v1', async () => {
    const azure = new AzureOpenAI({ endpoint: app.url, apiKey: vk, apiVersion: '2024-10-21', deployment: 'm-anthropic', maxRetries: 0 });
    const res = await azure.completions.create({ model: 'm-anthropic', prompt: 'from azure' });
    expect(res.choices[0]!.text).toBe('echo: from azure');
    const v1 = new OpenAI({ baseURL: `${app.url}/openai/v1`, apiKey: vk, maxRetries: 0, defaultHeaders: { 'api-key': vk } });
    expect((await v1.responses.create({ model: 'm-gemini', input: 'via v1' })).output_text).toBe('echo: via v1');
  });

  it('refuses several prompts and token prompts clearly', async () => {
    await expect(client.completions.create({ model: 'm-gemini', prompt: ['a', 'b'] })).rejects.toMatchObject({ status: 400, param: 'prompt', code: 'unsupported_parameter' });
    await expect(client.completions.create({ model: 'm-gemini', prompt: [1, 2, 3] })).rejects.toMatchObject({ status: 400, param: 'prompt' });
    await expect(client.completions.create({ model: 'm-anthropic', prompt: 'x', echo: true })).rejects.toMatchObject({ status: 400, param: 'echo' });
  });
});

it('records usage for translated calls, streamed ones too', async () => {
  const { id, key } = await createKey(app, admin.token, { name: 'counted' });
  const c = new OpenAI({ apiKey: key, baseURL: `${app.url}/v1`, maxRetries: 0 });
  const a = await c.responses.create({ model: 'm-anthropic', input: 'count me' });
  const { events } = await collect(await c.responses.create({ model: 'm-gemini', input: 'count me too', stream: true }));
  const done = events.at(-1)!;
  if (done.type !== 'response.completed') throw new Error('no response.completed');
  let streamedOut = 0;
  for await (const ch of await c.completions.create({ model: 'm-glm', prompt: 'and me', stream: true })) streamedOut += ch.choices[0]?.text ? 1 : 0;
  expect(streamedOut).toBeGreaterThan(0);
  const usage = await json(await fetch(`${app.url}/api/v1/usage?key_id=${id}&group_by=model`, authed(admin.token)));
  const row = (m: string) => usage.items.find((r: { model: string }) => r.model === m);
  expect(row('m-anthropic')).toMatchObject({ requests: 1, input_tokens: a.usage!.input_tokens, output_tokens: a.usage!.output_tokens });
  expect(row('m-gemini')).toMatchObject({ requests: 1, input_tokens: done.response.usage!.input_tokens, output_tokens: done.response.usage!.output_tokens });
  expect(row('m-glm').output_tokens).toBe(3);
  expect(row('m-gemini').cost_usd).toBeGreaterThan(0);
  expect(keyId).not.toBe(id);
});
