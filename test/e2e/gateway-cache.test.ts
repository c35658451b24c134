// The response cache: identical non-streamed calls to a model with `cache_ttl_seconds` are answered
// without a provider (x-nexus-cache: hit, Age), in each ingress format, free of charge, with
// Cache-Control's no-cache / no-store / max-age honoured, a bounded memory, and usage rows and
// Prometheus counters that say what happened.
import { GoogleGenAI } from '@google/genai';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authed, json, post, setupAdmin, type Admin } from '../helpers/api.ts';
import { startAppliance, type Appliance } from '../helpers/appliance.ts';
import { createKey, createModel, createProvider, simpleModel } from '../helpers/gateway.ts';
import { startLlmUpstream, type LlmUpstream } from '../helpers/llm-upstream.ts';

let app: Appliance;
let admin: Admin;
let up: LlmUpstream;
let openaiId: string;
let key: { id: string; key: string };

const patchModel = (name: string, body: unknown) =>
  fetch(`${app.url}/api/v1/models/${name}`, authed(admin.token, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }));
const sent = (path: string) => up.requests.filter((r) => r.path.endsWith(path)).length;
const chat = (model: string, content: string, headers: Record<string, string> = {}) =>
  post(`${app.url}/v1/chat/completions`, { model, messages: [{ role: 'user', content }] }, { authorization: `Bearer ${key.key}`, ...headers });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  // A small cache, so that eviction can be seen: 1 MiB, one answer at most 128 KiB.
  [app, up] = await Promise.all([startAppliance({ env: { NEXUS_GATEWAY_CACHE_MAX_BYTES: String(1024 * 1024) } }), startLlmUpstream()]);
  admin = await setupAdmin(app);
  openaiId = (await createProvider(app, admin, { name: 'local', type: 'openai', base_url: `${up.url}/v1`, api_key: 'sk-x' })).id;
  const gemini = await createProvider(app, admin, { name: 'gem', type: 'gemini', base_url: up.url, api_key: 'g-x' });
  const anthropic = await createProvider(app, admin, { name: 'ant', type: 'anthropic', base_url: up.url, api_key: 'a-x' });
  await createModel(app, admin, { name: 'cached', deployments: [{ provider_id: openaiId, upstream_model: 'mock-cached' }], input_price_per_mtok: 1000, output_price_per_mtok: 1000, cache_ttl_seconds: 3600 });
  await simpleModel(app, admin, openaiId, 'uncached', 'mock-uncached');
  await createModel(app, admin, { name: 'g-cached', deployments: [{ provider_id: gemini.id, upstream_model: 'gem-cached' }], cache_ttl_seconds: 3600 });
  await createModel(app, admin, { name: 'a-cached', deployments: [{ provider_id: anthropic.id, upstream_model: 'ant-cached' }], cache_ttl_seconds: 3600 });
  await createModel(app, admin, { name: 'failing', deployments: [{ provider_id: openaiId, upstream_model: 'fail-500' }], cache_ttl_seconds: 3600 });
  key = await createKey(app, admin.token);
});
afterAll(async () => {
  await app?.stop();
  await up?.close();
});

describe('response cache', () => {
  it('answers an identical call from the cache through the openai SDK, and charges nothing for it', async () => {
    const client = new OpenAI({ apiKey: key.key, baseURL: `${app.url}/v1`, maxRetries: 0 });
    const before = sent('/chat/completions');
    const messages = [{ role: 'user' as const, content: 'sdk question' }];
    const first = await client.chat.completions.create({ model: 'cached', messages }).withResponse();
    expect(first.response.headers.get('x-nexus-cache')).toBe('miss');
    const second = await client.chat.completions.create({ model: 'cached', messages }).withResponse();
    expect(second.response.headers.get('x-nexus-cache')).toBe('hit');
    expect(Number(second.response.headers.get('age'))).toBeGreaterThanOrEqual(0);
    expect(second.data).toEqual(first.data);
    expect(sent('/chat/completions') - before).toBe(1);
    // A different body is another entry; so is another model with the same body.
    const other = await client.chat.completions.create({ model: 'cached', messages: [{ role: 'user', content: 'sdk question?' }] }).withResponse();
    expect(other.response.headers.get('x-nexus-cache')).toBe('miss');
    expect(sent('/chat/completions') - before).toBe(2);

    const usage = await json(await fetch(`${app.url}/api/v1/usage?group_by=key&key_id=${key.id}`, authed(admin.token)));
    const row = usage.items.find((r: { key_id: string }) => r.key_id === key.id);
    expect(row.cache_hits).toBeGreaterThanOrEqual(1);
    const k = await json(await fetch(`${app.url}/api/v1/virtual-keys/${key.id}`, authed(admin.token)));
    // The two calls that reached the provider are charged, the hit is not: the key's spend is what
    // its usage rows cost, and that is the price of exactly two calls.
    expect(row.requests).toBe(3);
    expect(row.cost_usd).toBeGreaterThan(0);
    expect(k.spent_usd).toBeCloseTo(row.cost_usd, 9);
    const misses = up.requests.filter((r) => r.path.endsWith('/chat/completions')).slice(-2);
    expect(misses.map((r) => r.body!.messages[0].content)).toEqual(['sdk question', 'sdk question?']);
  });

  it('leaves models without a TTL, streams and failed answers alone', async () => {
    const before = sent('/chat/completions');
    for (let i = 0; i < 2; i++) {
      const res = await chat('uncached', 'same');
      expect(res.status).toBe(200);
      expect(res.headers.get('x-nexus-cache')).toBeNull();
    }
    for (let i = 0; i < 2; i++) {
      const res = await post(`${app.url}/v1/chat/completions`, { model: 'cached', stream: true, messages: [{ role: 'user', content: 'streamed' }] }, { authorization: `Bearer ${key.key}` });
      expect(res.headers.get('x-nexus-cache')).toBeNull();
      await res.text();
    }
    for (let i = 0; i < 2; i++) expect((await chat('failing', 'boom')).status).toBe(502);
    expect(sent('/chat/completions') - before).toBe(6);
  });

  it('honours Cache-Control: no-cache, no-store and max-age', async () => {
    const before = sent('/chat/completions');
    expect((await chat('cached', 'directives')).headers.get('x-nexus-cache')).toBe('miss');
    // no-cache: asks the provider again, and stores the new answer.
    expect((await chat('cached', 'directives', { 'cache-control': 'no-cache' })).headers.get('x-nexus-cache')).toBe('bypass');
    expect(sent('/chat/completions') - before).toBe(2);
    const hit = await chat('cached', 'directives', { 'cache-control': 'max-age=60' });
    expect(hit.headers.get('x-nexus-cache')).toBe('hit');
    // no-store: neither looks nor keeps.
    expect((await chat('cached', 'fresh', { 'cache-control': 'no-store' })).headers.get('x-nexus-cache')).toBe('bypass');
    expect((await chat('cached', 'fresh')).headers.get('x-nexus-cache')).toBe('miss');
    await sleep(1100);
    // max-age=0: only an answer younger than 0 s would do.
    expect((await chat('cached', 'fresh', { 'cache-control': 'max-age=0' })).headers.get('x-nexus-cache')).toBe('miss');
    // Nonsense directives are ignored, as RFC 9111 says.
    expect((await chat('cached', 'fresh', { 'cache-control': 'max-age=banana, frobnicate' })).headers.get('x-nexus-cache')).toBe('hit');
    expect(sent('/chat/completions') - before).toBe(5);
  });

  it('follows the model\'s TTL as it is now: shortened, then removed', async () => {
    expect((await chat('cached', 'ttl')).headers.get('x-nexus-cache')).toBe('miss');
    expect((await chat('cached', 'ttl')).headers.get('x-nexus-cache')).toBe('hit');
    expect((await patchModel('cached', { cache_ttl_seconds: 1 })).status).toBe(200);
    await sleep(1100);
    expect((await chat('cached', 'ttl')).headers.get('x-nexus-cache')).toBe('miss');
    expect((await patchModel('cached', { cache_ttl_seconds: null })).status).toBe(200);
    expect((await chat('cached', 'ttl')).headers.get('x-nexus-cache')).toBeNull();
    expect((await patchModel('cached', { cache_ttl_seconds: 3600 })).status).toBe(200);
  });

  it('keeps answers per ingress format: Gemini and Anthropic SDKs get their own shapes back', async () => {
    const genai = new GoogleGenAI({ apiKey: key.key, httpOptions: { baseUrl: app.url } });
    const g1 = await genai.models.generateContent({ model: 'g-cached', contents: 'gemini twice' });
    const g2 = await genai.models.generateContent({ model: 'g-cached', contents: 'gemini twice' });
    expect(g2.text).toBe(g1.text);
    expect(up.requests.filter((r) => r.path.includes('gem-cached')).length).toBe(1);
    // The same model through the OpenAI format is a different entry (the answer's shape differs).
    expect((await chat('g-cached', 'gemini twice')).headers.get('x-nexus-cache')).toBe('miss');

    const anthropic = new Anthropic({ apiKey: key.key, baseURL: app.url, maxRetries: 0 });
    const body = { model: 'a-cached', max_tokens: 50, messages: [{ role: 'user' as const, content: 'claude twice' }] };
    const a1 = await anthropic.messages.create(body).withResponse();
    const a2 = await anthropic.messages.create(body).withResponse();
    expect(a2.response.headers.get('x-nexus-cache')).toBe('hit');
    expect(a2.data).toEqual(a1.data);
  });

  it('caches embeddings, which are deterministic', async () => {
    await createModel(app, admin, { name: 'emb-cached', deployments: [{ provider_id: openaiId, upstream_model: 'emb' }], cache_ttl_seconds: 60 });
    const client = new OpenAI({ apiKey: key.key, baseURL: `${app.url}/v1`, maxRetries: 0 });
    const before = sent('/embeddings');
    const a = await client.embeddings.create({ model: 'emb-cached', input: ['alpha', 'beta'] });
    const b = await client.embeddings.create({ model: 'emb-cached', input: ['alpha', 'beta'] }).withResponse();
    expect(b.response.headers.get('x-nexus-cache')).toBe('hit');
    expect(b.data.data.map((d) => d.embedding)).toEqual(a.data.map((d) => d.embedding));
    expect(sent('/embeddings') - before).toBe(1);
  });

  it('stays within its memory: the least recently used answers go first, and a huge answer is not kept', async () => {
    // ~20 KB answers ("echo: " + the prompt) into a 1 MiB cache: about 50 fit.
    const pad = 'x'.repeat(20_000);
    for (let i = 0; i < 80; i++) expect((await chat('cached', `${i} ${pad}`)).status).toBe(200);
    expect((await chat('cached', `79 ${pad}`)).headers.get('x-nexus-cache')).toBe('hit');
    expect((await chat('cached', `0 ${pad}`)).headers.get('x-nexus-cache')).toBe('miss');
    const metrics = await (await fetch(`${app.adminUrl}/metrics`)).text();
    const bytes = Number(/^nexus_gateway_cache_bytes (\d+)/m.exec(metrics)?.[1]);
    expect(bytes).toBeGreaterThan(500_000);
    expect(bytes).toBeLessThanOrEqual(1024 * 1024);
    expect(metrics).toMatch(/nexus_gateway_cache_lookups_total\{model="cached",result="hit"\} \d+/);
    // One answer over an eighth of the cache is answered but not kept.
    const big = 'y'.repeat(200_000);
    expect((await chat('cached', big)).status).toBe(200);
    expect((await chat('cached', big)).headers.get('x-nexus-cache')).toBe('miss');
  });

  it('refuses bad cache_ttl_seconds and still refuses a key over its limits on a cached answer', async () => {
    for (const v of [0, -1, 1.5, '60', 30 * 24 * 3600 + 1, true]) {
      const res = await patchModel('cached', { cache_ttl_seconds: v });
      expect(res.status, String(v)).toBe(400);
    }
    const res = await post(`${app.url}/api/v1/models`, { name: 'bad-ttl', deployments: [{ provider_id: openaiId, upstream_model: 'x' }], cache_ttl_seconds: 'forever' }, { authorization: `Bearer ${admin.token}` });
    expect(res.status).toBe(400);
    const limited = await createKey(app, admin.token, { rpm: 2 });
    const call = () => post(`${app.url}/v1/chat/completions`, { model: 'cached', messages: [{ role: 'user', content: 'rpm' }] }, { authorization: `Bearer ${limited.key}` });
    expect((await call()).status).toBe(200);
    expect((await call()).headers.get('x-nexus-cache')).toBe('hit');
    const third = await call();
    expect(third.status).toBe(429);
    expect(third.headers.get('x-nexus-limit')).toBe('rpm');
    // And a wrong key learns nothing from the cache.
    expect((await post(`${app.url}/v1/chat/completions`, { model: 'cached', messages: [{ role: 'user', content: 'rpm' }] }, { authorization: 'Bearer nx_vk_wrong' })).status).toBe(401);
  });
});
