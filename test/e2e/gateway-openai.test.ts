// The gateway's admin API and OpenAI ingress against a local OpenAI-wire upstream, driven by the
// official openai SDK and plain HTTP.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAppliance, type Appliance } from '../helpers/appliance.ts';
import { authed, json, post, setupAdmin, type Admin } from '../helpers/api.ts';
import { createKey, createProvider, simpleModel } from '../helpers/gateway.ts';
import { startLlmUpstream, type LlmUpstream } from '../helpers/llm-upstream.ts';

let app: Appliance;
let admin: Admin;
let up: LlmUpstream;
let providerId: string;
let vk: string;
let client: OpenAI;

beforeAll(async () => {
  [app, up] = await Promise.all([startAppliance(), startLlmUpstream()]);
  admin = await setupAdmin(app);
  ({ id: providerId } = await createProvider(app, admin, { name: 'local', type: 'openai-compatible', base_url: `${up.url}/v1`, api_key: 'sk-upstream-secret-1234' }));
  await simpleModel(app, admin, providerId, 'gpt-test', 'mock-gpt', { input_price_per_mtok: 1, output_price_per_mtok: 2 });
  await simpleModel(app, admin, providerId, 'ticking', 'mock-chunks-5-tick-40');
  ({ key: vk } = await createKey(app, admin.token));
  client = new OpenAI({ apiKey: vk, baseURL: `${app.url}/v1`, maxRetries: 0 });
});
afterAll(async () => {
  await app?.stop();
  await up?.close();
});

describe('gateway admin API', () => {
  it('stores provider keys encrypted and never returns them', async () => {
    const list = await json(await fetch(`${app.url}/api/v1/providers`, authed(admin.token)));
    expect(list.items[0]).toMatchObject({ name: 'local', type: 'openai-compatible', has_api_key: true });
    expect(JSON.stringify(list)).not.toContain('sk-upstream-secret');
    const one = await json(await fetch(`${app.url}/api/v1/providers/${providerId}`, authed(admin.token)));
    expect(JSON.stringify(one)).not.toContain('sk-upstream-secret');
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(`${app.dataDir}/nexus.db`).includes('sk-upstream-secret')).toBe(false);
  });

  it('rejects bad provider, model and key definitions clearly', async () => {
    const auth = { authorization: `Bearer ${admin.token}` };
    const badType = await post(`${app.url}/api/v1/providers`, { name: 'x', type: 'nope', base_url: 'http://a' }, auth);
    expect(badType.status).toBe(400);
    const badUrl = await post(`${app.url}/api/v1/providers`, { name: 'x', type: 'openai-compatible', base_url: 'ftp://a' }, auth);
    expect((await json(badUrl)).error.message).toContain('base_url');
    const noBase = await post(`${app.url}/api/v1/providers`, { name: 'x', type: 'azure', api_version: 'v1' }, auth);
    expect(noBase.status).toBe(400);
    const dup = await post(`${app.url}/api/v1/providers`, { name: 'LOCAL', type: 'openai' }, auth);
    expect(dup.status).toBe(409);
    const ghost = await post(`${app.url}/api/v1/models`, { name: 'm', deployments: [{ provider_id: 'nope', upstream_model: 'x' }] }, auth);
    expect(ghost.status).toBe(400);
    const emptyDeps = await post(`${app.url}/api/v1/models`, { name: 'm', deployments: [] }, auth);
    expect(emptyDeps.status).toBe(400);
    const extra = await post(`${app.url}/api/v1/virtual-keys`, { name: 'k', admin: true }, auth);
    expect((await json(extra)).error.message).toContain('"admin"');
    const past = await post(`${app.url}/api/v1/virtual-keys`, { name: 'k', expires_at: '2001-01-01T00:00:00Z' }, auth);
    expect(past.status).toBe(400);
    const inUse = await fetch(`${app.url}/api/v1/providers/${providerId}`, authed(admin.token, { method: 'DELETE' }));
    expect(inUse.status).toBe(409);
    expect((await fetch(`${app.url}/api/v1/providers`)).status).toBe(401);
  });

  it('shows virtual keys once, hashed, and lists them without the secret', async () => {
    const created = await createKey(app, admin.token, { name: 'listed' });
    expect(created.key).toMatch(/^nx_vk_[A-Za-z0-9_-]{43}$/);
    const list = await json(await fetch(`${app.url}/api/v1/virtual-keys`, authed(admin.token)));
    expect(list.items.some((k: { id: string }) => k.id === created.id)).toBe(true);
    expect(JSON.stringify(list)).not.toContain(created.key);
    const glm = await createKey(app, admin.token, { name: 'glm', format: 'id_secret' });
    expect(glm.key).toMatch(/^nx_vk_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
  });
});

describe('OpenAI ingress', () => {
  it('answers chat completions through the SDK, with the upstream model and key swapped in', async () => {
    const res = await client.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'hello there' }] });
    expect(res.choices[0]!.message.content).toBe('echo: hello there');
    expect(res.usage!.completion_tokens).toBe(3);
    const seen = up.requests.at(-1)!;
    expect(seen.path).toBe('/v1/chat/completions');
    expect(seen.body!.model).toBe('mock-gpt');
    expect(seen.headers.authorization).toBe('Bearer sk-upstream-secret-1234');
  });

  it('answers with the caller\'s request id, a JSON type and an exact length, streamed or not', async () => {
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${vk}`, 'x-request-id': 'req-gw-1' };
    const plain = await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers, body: JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'héllo' }] }) });
    const bytes = Buffer.from(await plain.arrayBuffer());
    expect(plain.status).toBe(200);
    expect(plain.headers.get('x-request-id')).toBe('req-gw-1');
    expect(plain.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(Number(plain.headers.get('content-length'))).toBe(bytes.length);
    expect(JSON.parse(bytes.toString('utf8')).choices[0].message.content).toBe('echo: héllo');
    const streamed = await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { ...headers, 'x-request-id': 'req-gw-2' }, body: JSON.stringify({ model: 'gpt-test', stream: true, messages: [{ role: 'user', content: 'x' }] }) });
    expect(streamed.headers.get('x-request-id')).toBe('req-gw-2');
    expect(streamed.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(await streamed.text()).toContain('data: [DONE]');
  });

  it('streams events as they arrive, asks upstream for usage and strips it when the client did not', async () => {
    const stream = await client.chat.completions.create({ model: 'ticking', messages: [{ role: 'user', content: 'x' }], stream: true });
    const arrivals: number[] = [];
    let text = '';
    let usageChunks = 0;
    for await (const chunk of stream) {
      arrivals.push(Date.now());
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usageChunks++;
    }
    expect(text).toBe('w0 w1 w2 w3 w4 ');
    expect(usageChunks).toBe(0);
    expect(up.requests.at(-1)!.body!.stream_options).toEqual({ include_usage: true });
    // Events were not coalesced: the upstream spaces them 40 ms apart, so they arrive over time.
    expect(new Set(arrivals).size).toBeGreaterThan(3);
  });

  it('passes the usage chunk through when the client asks, byte for byte', async () => {
    const res = await fetch(`${app.url}/v1/chat/completions`, authed(vk, { method: 'POST', body: JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'a b' }], stream: true, stream_options: { include_usage: true } }) }));
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    expect(res.headers.get('x-accel-buffering')).toBe('no');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const text = await res.text();
    const events = text.split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    const usage = JSON.parse(events.at(-2)!.slice(6));
    expect(usage.choices).toEqual([]);
    expect(usage.usage.completion_tokens).toBe(3);
    // Exactly the upstream's bytes: the mock's serialisation of a chunk, unchanged.
    expect(events[1]).toBe(`data: ${JSON.stringify({ id: 'chatcmpl-mock', created: 1700000000, model: 'mock-gpt', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: 'echo: ' }, finish_reason: null, logprobs: null }], usage: null })}`);
  });

  it('serves tools, completions, embeddings (float and base64) and models', async () => {
    const tools = await client.chat.completions.create({
      model: 'gpt-test',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'weather?' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
    });
    expect(tools.choices[0]!.finish_reason).toBe('tool_calls');
    expect(tools.choices[0]!.message.tool_calls![0]).toMatchObject({ type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } });

    const completion = await client.completions.create({ model: 'gpt-test', prompt: 'say hi' });
    expect(completion.choices[0]!.text).toBe('echo: say hi');

    const emb = await client.embeddings.create({ model: 'gpt-test', input: ['a', 'b'] });
    expect(emb.data).toHaveLength(2);
    expect(emb.data[0]!.embedding).toEqual([0.25, -0.5, 1]);
    expect(up.requests.at(-1)!.body!.encoding_format).toBe('base64');
    const floats = await client.embeddings.create({ model: 'gpt-test', input: 'a', encoding_format: 'float' });
    expect(floats.data[0]!.embedding).toEqual([0.25, -0.5, 1]);

    const models = await client.models.list();
    expect(models.data.map((m) => m.id).sort()).toEqual(['gpt-test', 'ticking']);
    expect((await client.models.retrieve('gpt-test')).id).toBe('gpt-test');
  });

  it('answers the Responses API through chat for an OpenAI-compatible server, streamed with named events', async () => {
    const res = await client.responses.create({ model: 'gpt-test', input: 'hi there' });
    expect(res.output_text).toBe('echo: hi there');
    expect(up.requests.at(-1)!.path).toBe('/v1/chat/completions');
    const types: string[] = [];
    let text = '';
    for await (const e of await client.responses.create({ model: 'gpt-test', input: 'a b', stream: true })) {
      types.push(e.type);
      if (e.type === 'response.output_text.delta') text += e.delta;
    }
    expect(types[0]).toBe('response.created');
    expect(types.at(-1)).toBe('response.completed');
    expect(text).toBe('echo: a b');
  });

  it('renders every error in OpenAI shape', async () => {
    const noKey = await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(noKey.status).toBe(401);
    const body = await json(noKey);
    expect(body.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_api_key', param: null });
    expect(typeof body.error.message).toBe('string');

    const forged = new OpenAI({ apiKey: 'nx_vk_forged', baseURL: `${app.url}/v1`, maxRetries: 0 });
    await expect(forged.chat.completions.create({ model: 'gpt-test', messages: [] })).rejects.toMatchObject({ status: 401 });
    await expect(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 404, code: 'model_not_found' });

    const malformed = await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${vk}` }, body: '{"model":' });
    expect(malformed.status).toBe(400);
    expect((await json(malformed)).error.type).toBe('invalid_request_error');
    const wrongType = await post(`${app.url}/v1/chat/completions`, { model: 42, messages: [] }, { authorization: `Bearer ${vk}` });
    expect((await json(wrongType)).error.param).toBe('model');
    const arrayBody = await post(`${app.url}/v1/chat/completions`, [1, 2], { authorization: `Bearer ${vk}` });
    expect(arrayBody.status).toBe(400);
    const unknownPath = await fetch(`${app.url}/v1/nothing-here`, { headers: { authorization: `Bearer ${vk}` } });
    expect(unknownPath.status).toBe(404);
    expect(unknownPath.headers.get('content-type')).toContain('application/json');
    expect((await json(unknownPath)).error.type).toBe('invalid_request_error');
    // The key never reaches the log.
    expect(app.output()).not.toContain(vk);
  });
});
