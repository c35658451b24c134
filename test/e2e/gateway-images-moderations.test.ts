// OpenAI's moderations and image generation through the gateway, with the official openai SDK
// (and AzureOpenAI): passed to OpenAI-shaped providers that offer them, streamed partial images
// passed event by event, usage and cost recorded from gpt-image token counts, and a clear 400 for a
// model whose provider has no such operation (Gemini, Anthropic).
import OpenAI, { AzureOpenAI } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authed, json, post, setupAdmin, type Admin } from '../helpers/api.ts';
import { startAppliance, type Appliance } from '../helpers/appliance.ts';
import { createKey, createProvider, simpleModel } from '../helpers/gateway.ts';
import { startLlmUpstream, type LlmUpstream } from '../helpers/llm-upstream.ts';

let app: Appliance;
let admin: Admin;
let up: LlmUpstream;
let key: string;
let keyId: string;

beforeAll(async () => {
  [app, up] = await Promise.all([startAppliance(), startLlmUpstream()]);
  admin = await setupAdmin(app);
  const openai = await createProvider(app, admin, { name: 'oa', type: 'openai', base_url: `${up.url}/v1`, api_key: 'sk-up' });
  const azure = await createProvider(app, admin, { name: 'az', type: 'azure', base_url: up.url, api_key: 'az-up', api_version: '2024-10-21' });
  const gemini = await createProvider(app, admin, { name: 'gm', type: 'gemini', base_url: `${up.url}/v1beta`, api_key: 'g-up' });
  await simpleModel(app, admin, openai.id, 'omni-moderation-latest', 'omni-moderation-2024-09-26');
  await simpleModel(app, admin, openai.id, 'gpt-image-1', 'gpt-image-1', { input_price_per_mtok: 5, output_price_per_mtok: 40 });
  await simpleModel(app, admin, azure.id, 'dall-e-3', 'dalle3-deployment');
  await simpleModel(app, admin, gemini.id, 'gemini-flash', 'gemini-2.0-flash');
  ({ key, id: keyId } = await createKey(app, admin.token));
});
afterAll(async () => {
  await app?.stop();
  await up?.close();
});

describe('moderations and images', () => {
  it('moderates with the default model when none is named, and with a named one', async () => {
    const client = new OpenAI({ apiKey: key, baseURL: `${app.url}/v1`, maxRetries: 0 });
    const res = await client.moderations.create({ input: ['a calm sentence', 'some violence'] });
    expect(res.results.map((r) => r.flagged)).toEqual([false, true]);
    const seen = up.requests.at(-1)!;
    expect(seen.path).toBe('/v1/moderations');
    expect(seen.body).toMatchObject({ model: 'omni-moderation-2024-09-26', input: ['a calm sentence', 'some violence'] });
    expect(seen.headers.authorization).toBe('Bearer sk-up');
    expect((await client.moderations.create({ model: 'omni-moderation-latest', input: 'x' })).results).toHaveLength(1);
  });

  it('generates images, records gpt-image token usage and cost, and streams partial images', async () => {
    const client = new OpenAI({ apiKey: key, baseURL: `${app.url}/v1`, maxRetries: 0 });
    const img = await client.images.generate({ model: 'gpt-image-1', prompt: 'a lighthouse at dusk', n: 2 });
    expect(img.data!.map((d) => d.b64_json)).toEqual(['aW1hZ2U=', 'aW1hZ2U=']);
    expect(up.requests.at(-1)!).toMatchObject({ path: '/v1/images/generations', body: { model: 'gpt-image-1', prompt: 'a lighthouse at dusk', n: 2 } });
    const stream = await client.images.generate({ model: 'gpt-image-1', prompt: 'a lighthouse', stream: true, partial_images: 1 });
    const types: string[] = [];
    for await (const ev of stream) types.push(ev.type);
    expect(types).toEqual(['image_generation.partial_image', 'image_generation.completed']);
    const usage = (await json(await fetch(`${app.url}/api/v1/usage?group_by=model&key_id=${keyId}&model=gpt-image-1`, authed(admin.token)))).items[0];
    expect(usage).toMatchObject({ requests: 2, output_tokens: 544, errors: 0 });
    expect(usage.cost_usd).toBeCloseTo((usage.input_tokens * 5 + 544 * 40) / 1e6, 9);
    const audit = await json(await fetch(`${app.url}/api/v1/audit?action=gateway.images&limit=5`, authed(admin.token)));
    expect(audit.items).toHaveLength(2);
  });

  it('generates images through Azure deployments with AzureOpenAI', async () => {
    const azure = new AzureOpenAI({ apiKey: key, endpoint: app.url, apiVersion: '2024-10-21', deployment: 'dall-e-3', maxRetries: 0 });
    const img = await azure.images.generate({ model: 'dall-e-3', prompt: 'a fox' });
    expect(img.data![0]!.b64_json).toBe('aW1hZ2U=');
    expect(up.requests.at(-1)!.path).toBe('/openai/deployments/dalle3-deployment/images/generations?api-version=2024-10-21');
    expect(up.requests.at(-1)!.headers['api-key']).toBe('az-up');
  });

  it('refuses, in the caller\'s format, a model whose provider has no such operation, and bad bodies', async () => {
    const client = new OpenAI({ apiKey: key, baseURL: `${app.url}/v1`, maxRetries: 0 });
    const before = up.requests.length;
    await expect(client.images.generate({ model: 'gemini-flash', prompt: 'x' })).rejects.toMatchObject({ status: 400, code: 'unsupported_operation' });
    await expect(client.moderations.create({ model: 'gemini-flash', input: 'x' })).rejects.toMatchObject({ status: 400, code: 'unsupported_operation' });
    expect(up.requests.length).toBe(before); // refused before any upstream was asked
    const auth = { authorization: `Bearer ${key}` };
    for (const body of [{ model: 42, input: 'x' }, { model: '', input: 'x' }, 'not an object', [1]]) {
      const res = await post(`${app.url}/v1/moderations`, body, auth);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((await json(res)).error).toHaveProperty('type', 'invalid_request_error');
    }
    const malformed = await fetch(`${app.url}/v1/images/generations`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"model":' });
    expect(malformed.status).toBe(400);
    const keyless = await post(`${app.url}/v1/images/generations`, { model: 'gpt-image-1', prompt: 'x' }, {});
    expect(keyless.status).toBe(401);
    expect(up.requests.length).toBe(before);
  });
});
