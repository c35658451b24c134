// Anthropic's Messages API as a way in: the official @anthropic-ai/sdk against every provider type,
// streamed and not, tools and their results, token counting, the model list, errors in Anthropic's
// shape, a stream cut short, and usage recorded for each call.
import Anthropic, { APIError } from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAppliance, type Appliance } from '../helpers/appliance.ts';
import { authed, json, post, setupAdmin, type Admin } from '../helpers/api.ts';
import { createKey, PROVIDER_TYPES, providerPerType, simpleModel } from '../helpers/gateway.ts';
import { startLlmUpstream, type LlmUpstream } from '../helpers/llm-upstream.ts';

let app: Appliance;
let admin: Admin;
let up: LlmUpstream;
let vk: string;
let client: Anthropic;

const PROVIDERS = PROVIDER_TYPES;
const WEATHER: Anthropic.Tool = {
  name: 'get_weather',
  description: 'Weather in a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

beforeAll(async () => {
  [app, up] = await Promise.all([startAppliance(), startLlmUpstream()]);
  admin = await setupAdmin(app);
  const ids = await providerPerType(app, admin, up.url);
  await simpleModel(app, admin, ids.openai, 'm-cut', 'cut-3');
  await simpleModel(app, admin, ids.anthropic, 'm-anthropic-cut', 'cut-3');
  ({ key: vk } = await createKey(app, admin.token));
  client = new Anthropic({ apiKey: vk, baseURL: app.url, maxRetries: 0 });
});
afterAll(async () => {
  await app?.stop();
  await up?.close();
});

const lastUpstream = () => up.requests.at(-1)!;
const textOf = (m: Anthropic.Message) => m.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
const messages = (path: string, body: unknown, headers: Record<string, string> = {}) => post(`${app.url}${path}`, body, { 'x-api-key': vk, 'anthropic-version': '2023-06-01', ...headers });

describe('Anthropic SDK → every provider type', () => {
  it.each(PROVIDERS)('→ %s, streamed and not', async (type) => {
    const res = await client.messages.create({ model: `m-${type}`, max_tokens: 64, system: 'be brief', messages: [{ role: 'user', content: 'one two' }] });
    expect(textOf(res)).toBe('echo: one two');
    expect(res).toMatchObject({ type: 'message', role: 'assistant', stop_reason: 'end_turn' });
    expect(res.usage.output_tokens).toBe(3);
    expect(res.usage.input_tokens).toBeGreaterThan(0);
    const sent = lastUpstream();
    expect(JSON.stringify(sent.headers) + sent.path).toContain(`key-${type}`); // the provider's key, wherever its family puts it
    expect(JSON.stringify(sent.headers) + sent.path).not.toContain(vk);
    expect(JSON.stringify(sent.body)).toContain('be brief'); // the system prompt reached the provider

    const stream = client.messages.stream({ model: `m-${type}`, max_tokens: 64, messages: [{ role: 'user', content: [{ type: 'text', text: 'three four' }] }] });
    const texts: string[] = [];
    stream.on('text', (t) => texts.push(t));
    const final = await stream.finalMessage();
    expect(texts.join('')).toBe('echo: three four');
    expect(texts.length).toBeGreaterThan(1); // arrived as several deltas, not one
    expect(textOf(final)).toBe('echo: three four');
    expect(final.stop_reason).toBe('end_turn');
    expect(final.usage.output_tokens).toBe(3);
    expect(final.usage.input_tokens).toBeGreaterThan(0);
  });

  it('a translated stream is the Messages event sequence, with the usage at the end', async () => {
    const raw = await client.messages.create({ model: 'm-openai', max_tokens: 64, messages: [{ role: 'user', content: 'five six' }], stream: true });
    const types: string[] = [];
    let delta: Anthropic.MessageDeltaEvent | undefined;
    for await (const ev of raw) {
      types.push(ev.type);
      if (ev.type === 'message_delta') delta = ev;
    }
    expect(types[0]).toBe('message_start');
    expect(types[1]).toBe('content_block_start');
    expect(types.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
    expect(types.filter((t) => t === 'content_block_delta').length).toBe(3);
    expect(delta!.usage.output_tokens).toBe(3);
    expect(delta!.usage.input_tokens).toBeGreaterThan(0);
    // The provider was asked for the usage chunk.
    expect(lastUpstream().body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  it('passes a Messages request for an Anthropic-served model through unchanged but for the model name', async () => {
    const body = { model: 'm-anthropic', max_tokens: 50, system: [{ type: 'text', text: 'sys', cache_control: { type: 'ephemeral' } }], messages: [{ role: 'user', content: 'hi' }], thinking: { type: 'enabled', budget_tokens: 1024 }, top_k: 5 };
    const res = await messages('/v1/messages', body, { 'anthropic-beta': 'interleaved-thinking-2025-05-14' });
    expect(res.status).toBe(200);
    expect(lastUpstream().path).toBe('/v1/messages');
    expect(lastUpstream().body).toEqual({ ...body, model: 'up-anthropic' });
    expect(lastUpstream().headers['x-api-key']).toBe('key-anthropic');
    // The headers that name the body's shape and features go with it.
    expect(lastUpstream().headers['anthropic-version']).toBe('2023-06-01');
    expect(lastUpstream().headers['anthropic-beta']).toBe('interleaved-thinking-2025-05-14');
    // Claude Code and other tools on the beta SDK add ?beta=true.
    expect((await messages('/v1/messages?beta=true', body)).status).toBe(200);
    expect(JSON.stringify(lastUpstream().headers)).not.toContain(vk);
  });
});

describe('tools', () => {
  it('does not send Anthropic headers to a provider the request is translated for', async () => {
    expect((await messages('/v1/messages', { model: 'm-openai', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }, { 'anthropic-beta': 'prompt-caching-2024-07-31' })).status).toBe(200);
    expect(lastUpstream().headers['anthropic-beta']).toBeUndefined();
    expect(lastUpstream().headers['anthropic-version']).toBeUndefined();
  });

  it.each(['openai', 'gemini', 'anthropic'] as const)('tool use and its result through a %s provider, streamed and not', async (type) => {
    const ask: Anthropic.MessageParam = { role: 'user', content: 'weather in Paris?' };
    const res = await client.messages.create({ model: `m-${type}`, max_tokens: 64, tools: [WEATHER], tool_choice: { type: 'auto' }, messages: [ask] });
    expect(res.stop_reason).toBe('tool_use');
    const use = res.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use')!;
    expect(use).toMatchObject({ name: 'get_weather', input: { city: 'Paris' } });
    expect(use.id).toBeTruthy();
    if (type === 'openai') {
      expect(lastUpstream().body).toMatchObject({ tools: [{ type: 'function', function: { name: 'get_weather', parameters: WEATHER.input_schema } }], tool_choice: 'auto' });
    }

    const streamed = await client.messages.stream({ model: `m-${type}`, max_tokens: 64, tools: [WEATHER], messages: [ask] }).finalMessage();
    expect(streamed.stop_reason).toBe('tool_use');
    expect(streamed.content.find((b) => b.type === 'tool_use')).toMatchObject({ name: 'get_weather', input: { city: 'Paris' } });

    const answer = await client.messages.create({
      model: `m-${type}`,
      max_tokens: 64,
      tools: [WEATHER],
      messages: [ask, { role: 'assistant', content: res.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny, 21 C' }] }],
    });
    // Gemini takes a tool result as an object ({content: text} for plain text), which the mock echoes.
    expect(textOf(answer)).toBe(type === 'gemini' ? 'tool said: {"content":"sunny, 21 C"}' : 'tool said: sunny, 21 C');
    if (type === 'openai') {
      const sent = lastUpstream().body!.messages as Array<Record<string, unknown>>;
      expect(sent.at(-2)).toMatchObject({ role: 'assistant', tool_calls: [{ id: use.id, type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] });
      expect(sent.at(-1)).toEqual({ role: 'tool', tool_call_id: use.id, content: 'sunny, 21 C' });
    }
  });

  it('refuses what only Anthropic models can take, for other providers, in Anthropic\'s error shape', async () => {
    const server = await messages('/v1/messages', { model: 'm-openai', max_tokens: 10, tools: [{ type: 'web_search_20250305', name: 'web_search' }], messages: [{ role: 'user', content: 'x' }] });
    expect(server.status).toBe(400);
    expect(await json(server)).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining('server tools') } });
    const doc = await messages('/v1/messages', { model: 'm-gemini', max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'x' } }] }] });
    expect(doc.status).toBe(400);
    expect((await json(doc)).error.message).toMatch(/"document" blocks need a model served by an Anthropic provider/);
  });
});

describe('counting tokens and listing models', () => {
  it('counts with the provider when it is Anthropic, else estimates', async () => {
    const exact = await client.messages.countTokens({ model: 'm-anthropic', messages: [{ role: 'user', content: 'count me' }] });
    expect(lastUpstream().path).toBe('/v1/messages/count_tokens');
    expect(lastUpstream().body).toMatchObject({ model: 'up-anthropic' });
    expect(exact.input_tokens).toBeGreaterThan(0);
    const seen = up.requests.length;
    const estimate = await client.messages.countTokens({ model: 'm-openai', messages: [{ role: 'user', content: 'count me as well, please' }] });
    expect(estimate.input_tokens).toBeGreaterThan(0);
    expect(up.requests.length).toBe(seen); // no provider call
  });

  it('lists and gets models in Anthropic\'s shape', async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) {
      expect(m.type).toBe('model');
      ids.push(m.id);
    }
    expect(ids).toEqual(expect.arrayContaining(PROVIDERS.map((t) => `m-${t}`)));
    expect(await client.models.retrieve('m-gemini')).toMatchObject({ type: 'model', id: 'm-gemini', display_name: 'm-gemini' });
    // Without anthropic-version the same path is still OpenAI's list.
    const openAi = await json(await fetch(`${app.url}/v1/models`, { headers: { authorization: `Bearer ${vk}` } }));
    expect(openAi.object).toBe('list');
  });

  it('takes the key as Authorization: Bearer too (the SDK\'s authToken)', async () => {
    const bearer = new Anthropic({ authToken: vk, apiKey: null, baseURL: app.url, maxRetries: 0 });
    expect(textOf(await bearer.messages.create({ model: 'm-openai', max_tokens: 8, messages: [{ role: 'user', content: 'seven' }] }))).toBe('echo: seven');
  });
});

describe('errors', () => {
  it('answers in Anthropic\'s error shape, which the SDK raises as its own error classes', async () => {
    const bad = new Anthropic({ apiKey: 'nx_vk_not-a-key', baseURL: app.url, maxRetries: 0 });
    const unauthorized = await bad.messages.create({ model: 'm-openai', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(unauthorized).toBeInstanceOf(Anthropic.AuthenticationError);
    expect((unauthorized as APIError).error).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
    expect(String((unauthorized as Error).message)).not.toContain('not-a-key');

    const missing = await client.messages.create({ model: 'no-such-model', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(Anthropic.NotFoundError);
    expect((missing as APIError).error).toMatchObject({ error: { type: 'not_found_error' } });
  });

  it('refuses malformed and ill-typed requests clearly, and the next request still works', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ model: 'm-openai', messages: [{ role: 'user', content: 'x' }] }, /max_tokens/],
      [{ model: 'm-openai', max_tokens: '10', messages: [{ role: 'user', content: 'x' }] }, /max_tokens/],
      [{ model: 'm-openai', max_tokens: 0, messages: [{ role: 'user', content: 'x' }] }, /max_tokens/],
      [{ model: 'm-openai', max_tokens: 10, messages: 'x' }, /messages/],
      [{ model: 'm-openai', max_tokens: 10, messages: [] }, /messages/],
      [{ model: 'm-openai', max_tokens: 10, messages: [{ role: 'system', content: 'x' }] }, /role/],
      [{ model: 'm-openai', max_tokens: 10, messages: [{ role: 'user', content: 5 }] }, /content/],
      [{ model: 'm-openai', max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'file' } }] }] }, /image/],
      [{ model: 'm-openai', max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'tool_use', id: 'a', name: 'b', input: {} }] }] }, /assistant/],
      [{ model: 'm-openai', max_tokens: 10, tool_choice: { type: 'sometimes' }, messages: [{ role: 'user', content: 'x' }] }, /tool_choice/],
      [{ model: 'm-openai', max_tokens: 10, stream: 'yes', messages: [{ role: 'user', content: 'x' }] }, /stream/],
      [{ max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }, /model/],
    ];
    for (const [body, message] of cases) {
      const res = await messages('/v1/messages', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const err = await json(res);
      expect(err).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
      expect(err.error.message).toMatch(message);
    }
    const malformed = await fetch(`${app.url}/v1/messages`, { method: 'POST', headers: { 'x-api-key': vk, 'content-type': 'application/json' }, body: '{"model": "m-openai", "max_tokens": 5, "messages": [' });
    expect(malformed.status).toBe(400);
    expect((await json(malformed)).type).toBe('error');
    expect(textOf(await client.messages.create({ model: 'm-openai', max_tokens: 8, messages: [{ role: 'user', content: 'still fine' }] }))).toBe('echo: still fine');
  });

  it('a spent budget is a 429 rate_limit_error with Retry-After', async () => {
    const { key } = await createKey(app, admin.token, { name: 'tiny', max_budget_usd: 0.000001 });
    const poor = new Anthropic({ apiKey: key, baseURL: app.url, maxRetries: 0 });
    let err: unknown;
    for (let i = 0; i < 5 && !err; i++) {
      err = await poor.messages.create({ model: 'm-openai', max_tokens: 64, messages: [{ role: 'user', content: 'spend it all '.repeat(20) }] }).then(() => undefined, (e: unknown) => e);
    }
    expect(err).toBeInstanceOf(Anthropic.RateLimitError);
    expect((err as APIError).headers?.get('retry-after')).toMatch(/^\d+$/);
    expect((err as APIError).error).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
  });

  it.each(['m-cut', 'm-anthropic-cut'])('a stream cut short by the provider (%s) ends with an error event the SDK raises', async (model) => {
    const stream = client.messages.stream({ model, max_tokens: 64, messages: [{ role: 'user', content: 'a b c d e f g h' }] });
    const texts: string[] = [];
    stream.on('text', (t) => texts.push(t));
    const err = await stream.finalMessage().then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(texts.length).toBeGreaterThan(0); // what arrived before the cut reached the client
    const res = await messages('/v1/messages', { model, max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'a b c d e f g h' }] });
    const text = await res.text();
    if (model === 'm-cut') {
      expect(text).toMatch(/event: error\ndata: \{"type":"error","error":\{"type":"api_error","message":"[^"]+"\}\}\n\n$/);
    } else {
      // A pass-through stream carries the provider's own bytes; the appliance adds its error event.
      expect(text.startsWith('event: message_start')).toBe(true);
      expect(text).toMatch(/event: error\ndata: \{"type":"error"/);
    }
  });
});

describe('accounting', () => {
  it('records usage for translated and passed-through calls, streamed and not, under the anthropic ingress', async () => {
    const { key, id } = await createKey(app, admin.token, { name: 'counted' });
    const c = new Anthropic({ apiKey: key, baseURL: app.url, maxRetries: 0 });
    await c.messages.create({ model: 'm-openai', max_tokens: 8, messages: [{ role: 'user', content: 'a b' }] });
    await c.messages.stream({ model: 'm-openai', max_tokens: 8, messages: [{ role: 'user', content: 'a b' }] }).finalMessage();
    await c.messages.create({ model: 'm-anthropic', max_tokens: 8, messages: [{ role: 'user', content: 'a b' }] });
    await c.messages.stream({ model: 'm-anthropic', max_tokens: 8, messages: [{ role: 'user', content: 'a b' }] }).finalMessage();
    const usage = await json(await fetch(`${app.url}/api/v1/usage?group_by=model&key_id=${id}`, authed(admin.token)));
    const byModel = Object.fromEntries((usage.items as Array<{ model: string; input_tokens: number; cost_usd: number }>).map((r) => [r.model, r]));
    expect(byModel['m-openai']).toMatchObject({ requests: 2, output_tokens: 6 });
    expect(byModel['m-anthropic']).toMatchObject({ requests: 2, output_tokens: 6 });
    expect(byModel['m-anthropic']!.input_tokens).toBeGreaterThan(0);
    expect(byModel['m-openai']!.cost_usd).toBeGreaterThan(0);
    const audit = await json(await fetch(`${app.url}/api/v1/audit?action=gateway.chat&actor=counted`, authed(admin.token)));
    expect(audit.items.filter((a: { details: { ingress: string } }) => a.details.ingress === 'anthropic').length).toBe(4);
  });
});
