// The response cache: identical calls to a model with `cache_ttl_seconds` are answered without a
// provider (x-nexus-cache: hit, Age), in each ingress format, free of charge, with Cache-Control's
// no-cache / no-store / max-age honoured, a bounded memory, and usage rows and Prometheus counters
// that say what happened. Streams are kept once they completed and replayed in each client's wire
// format; identical misses in flight at once reach the provider once.
import { GoogleGenAI } from '@google/genai';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authed, json, post, setupAdmin, type Admin } from '../helpers/api.ts';
import { startAppliance, type Appliance } from '../helpers/appliance.ts';
import { createKey, createModel, createProvider, simpleModel } from '../helpers/gateway.ts';
import { drainWatchingRss } from '../helpers/memory.ts';
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
const upstreamCalls = (model: string) => up.requests.filter((r) => r.body?.model === model || r.path.includes(`/models/${model}:`)).length;
const usageOf = async (k: { id: string }) =>
  (await json(await fetch(`${app.url}/api/v1/usage?group_by=key&key_id=${k.id}`, authed(admin.token)))).items[0] as { requests: number; cache_hits: number; cost_usd: number };

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

  it('leaves models without a TTL and failed answers alone', async () => {
    const before = sent('/chat/completions');
    for (let i = 0; i < 2; i++) {
      const res = await chat('uncached', 'same');
      expect(res.status).toBe(200);
      expect(res.headers.get('x-nexus-cache')).toBeNull();
    }
    for (let i = 0; i < 2; i++) expect((await chat('failing', 'boom')).status).toBe(502);
    expect(sent('/chat/completions') - before).toBe(4);
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

describe('streamed calls', () => {
  let skey: { id: string; key: string };
  beforeAll(async () => {
    const anthropic = await createProvider(app, admin, { name: 'ant-s', type: 'anthropic', base_url: up.url, api_key: 'a-x' });
    const gemini = await createProvider(app, admin, { name: 'gem-s', type: 'gemini', base_url: up.url, api_key: 'g-x' });
    const priced = { input_price_per_mtok: 1000, output_price_per_mtok: 1000, cache_ttl_seconds: 3600 };
    // `s-live` asks the same upstream model without a TTL: what a live stream gives, byte for byte.
    await createModel(app, admin, { name: 's-cached', deployments: [{ provider_id: openaiId, upstream_model: 'mock-s' }], ...priced });
    await simpleModel(app, admin, openaiId, 's-live', 'mock-s');
    await createModel(app, admin, { name: 's-gem', deployments: [{ provider_id: gemini.id, upstream_model: 'gem-s' }], cache_ttl_seconds: 3600 });
    await createModel(app, admin, { name: 's-ant', deployments: [{ provider_id: anthropic.id, upstream_model: 'ant-s' }], cache_ttl_seconds: 3600 });
    await createModel(app, admin, { name: 's-cut', deployments: [{ provider_id: openaiId, upstream_model: 'mock-cut-3' }], cache_ttl_seconds: 3600 });
    await createModel(app, admin, { name: 's-big', deployments: [{ provider_id: openaiId, upstream_model: 'mock-big-1' }], cache_ttl_seconds: 3600 });
    await createModel(app, admin, { name: 's-huge', deployments: [{ provider_id: openaiId, upstream_model: 'mock-big-100' }], cache_ttl_seconds: 3600 });
    skey = await createKey(app, admin.token);
  });
  const stream = (model: string, content: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
    post(`${app.url}/v1/chat/completions`, { model, messages: [{ role: 'user', content }], stream: true, ...extra }, { authorization: `Bearer ${skey.key}`, ...headers });

  it('replays a completed stream through the openai SDK, with and without include_usage, as a live stream would', async () => {
    const client = new OpenAI({ apiKey: skey.key, baseURL: `${app.url}/v1`, maxRetries: 0 });
    const messages = [{ role: 'user' as const, content: 'stream me twice' }];
    const read = async (includeUsage: boolean) => {
      const { data, response } = await client.chat.completions.create({ model: 's-cached', messages, stream: true, ...(includeUsage ? { stream_options: { include_usage: true } } : {}) }).withResponse();
      let text = '';
      let finish: string | null = null;
      let usage: unknown = null;
      for await (const c of data) {
        text += c.choices[0]?.delta.content ?? '';
        finish = c.choices[0]?.finish_reason ?? finish;
        if (c.usage) usage = c.usage;
      }
      return { text, finish, usage, cache: response.headers.get('x-nexus-cache') };
    };
    const first = await read(false);
    expect(first).toMatchObject({ text: 'echo: stream me twice', finish: 'stop', usage: null, cache: 'miss' });
    const plain = await read(false);
    const withUsage = await read(true);
    expect(plain).toEqual({ ...first, cache: 'hit' });
    expect(withUsage).toMatchObject({ text: first.text, finish: 'stop', cache: 'hit', usage: { prompt_tokens: expect.any(Number), completion_tokens: 4 } });
    expect(upstreamCalls('mock-s')).toBe(1);

    // Byte for byte what the live stream sends to each kind of client, with the SSE headers.
    for (const extra of [{}, { stream_options: { include_usage: true } }]) {
      const live = await (await stream('s-live', 'stream me twice', extra)).text();
      const hit = await stream('s-cached', 'stream me twice', extra);
      expect(hit.headers.get('x-nexus-cache')).toBe('hit');
      expect(Number(hit.headers.get('age'))).toBeGreaterThanOrEqual(0);
      expect(hit.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(hit.headers.get('cache-control')).toBe('no-cache');
      expect(hit.headers.get('x-accel-buffering')).toBe('no');
      expect(await hit.text()).toBe(live);
      expect(live.endsWith('data: [DONE]\n\n')).toBe(true);
    }
    expect(upstreamCalls('mock-s')).toBe(3); // the two live ones

    // Hits are free: five calls, one charged.
    const u = await usageOf(skey);
    expect(u.requests).toBe(7);
    expect(u.cache_hits).toBe(4);
    const k = await json(await fetch(`${app.url}/api/v1/virtual-keys/${skey.id}`, authed(admin.token)));
    expect(k.spent_usd).toBeCloseTo(u.cost_usd, 9);
    // A streamed entry never answers a call that is not streamed, nor the other way round.
    expect((await post(`${app.url}/v1/chat/completions`, { model: 's-cached', messages }, { authorization: `Bearer ${skey.key}` })).headers.get('x-nexus-cache')).toBe('miss');
  });

  it('replays Gemini streams through @google/genai, and the same entry as a JSON array', async () => {
    const genai = new GoogleGenAI({ apiKey: skey.key, httpOptions: { baseUrl: app.url } });
    const read = async () => {
      let text = '';
      let finish: unknown = null;
      for await (const f of await genai.models.generateContentStream({ model: 's-gem', contents: 'gemini streamed' })) {
        text += f.text ?? '';
        finish = f.candidates?.[0]?.finishReason ?? finish;
      }
      return { text, finish };
    };
    const first = await read();
    expect(first).toEqual({ text: 'echo: gemini streamed', finish: 'STOP' });
    expect(await read()).toEqual(first);
    expect(upstreamCalls('gem-s')).toBe(1);
    // The SDK's own body (a pass-through sends it on unchanged), as its JSON-array form.
    const body = up.requests.find((r) => r.path.includes('/gem-s:'))!.body;
    const array = await post(`${app.url}/v1beta/models/s-gem:streamGenerateContent`, body, { 'x-goog-api-key': skey.key });
    expect(array.headers.get('x-nexus-cache')).toBe('hit');
    const frames = JSON.parse(await array.text()) as { candidates: { content: { parts: { text: string }[] } }[] }[];
    expect(frames.map((f) => f.candidates[0]!.content.parts[0]!.text).join('')).toBe(first.text);
    expect(upstreamCalls('gem-s')).toBe(1);
    // An OpenAI client of the same model is its own entry, translated once and then replayed.
    const client = new OpenAI({ apiKey: skey.key, baseURL: `${app.url}/v1`, maxRetries: 0 });
    const texts: string[] = [];
    for (let i = 0; i < 2; i++) {
      let t = '';
      for await (const c of await client.chat.completions.create({ model: 's-gem', messages: [{ role: 'user', content: 'gemini streamed' }], stream: true })) t += c.choices[0]?.delta.content ?? '';
      texts.push(t);
    }
    expect(texts).toEqual([first.text, first.text]);
    expect(upstreamCalls('gem-s')).toBe(2);
  });

  it('replays Anthropic message streams through @anthropic-ai/sdk', async () => {
    const anthropic = new Anthropic({ apiKey: skey.key, baseURL: app.url, maxRetries: 0 });
    const body = { model: 's-ant', max_tokens: 50, messages: [{ role: 'user' as const, content: 'claude streamed' }] };
    const first = await anthropic.messages.stream(body).finalMessage();
    const again = anthropic.messages.stream(body);
    const second = await again.finalMessage();
    expect((await again.withResponse()).response.headers.get('x-nexus-cache')).toBe('hit');
    expect(second).toEqual(first);
    expect(second.content).toEqual([{ type: 'text', text: 'echo: claude streamed' }]);
    expect(second.stop_reason).toBe('end_turn');
    expect(upstreamCalls('ant-s')).toBe(1);
  });

  it('replays Responses API events for a call that keeps no state, and leaves stored ones alone', async () => {
    const client = new OpenAI({ apiKey: skey.key, baseURL: `${app.url}/v1`, maxRetries: 0 });
    const read = async (store: boolean) => {
      const events: string[] = [];
      let text = '';
      for await (const e of await client.responses.create({ model: 's-cached', input: 'responses streamed', store, stream: true })) {
        events.push(e.type);
        if (e.type === 'response.output_text.delta') text += e.delta;
      }
      return { events, text };
    };
    const before = sent('/responses');
    const first = await read(false);
    expect(first.text).toBe('echo: responses streamed');
    expect(first.events.at(-1)).toBe('response.completed');
    expect(await read(false)).toEqual(first);
    expect(sent('/responses') - before).toBe(1);
    // store: true (the default) keeps state at the provider: never cached.
    await read(true);
    await read(true);
    expect(sent('/responses') - before).toBe(3);
  });

  it('keeps no stream that was cut short, asked for no-store, or grew past the entry limit', async () => {
    for (let i = 0; i < 2; i++) {
      const res = await stream('s-cut', 'cut me');
      expect(res.headers.get('x-nexus-cache')).toBe('miss');
      expect(await res.text()).toContain('upstream_stream_failed');
    }
    expect(upstreamCalls('mock-cut-3')).toBe(2);
    expect((await stream('s-cached', 'not kept', {}, { 'cache-control': 'no-store' })).headers.get('x-nexus-cache')).toBe('bypass');
    expect((await stream('s-cached', 'not kept')).headers.get('x-nexus-cache')).toBe('miss');
    // 1 MB of stream into a 1 MiB cache (128 KiB an entry): passed on whole, not kept.
    for (let i = 0; i < 2; i++) {
      const res = await stream('s-big', 'big');
      expect(res.headers.get('x-nexus-cache')).toBe('miss');
      expect((await res.text()).length).toBeGreaterThan(1024 * 1024);
    }
    expect(upstreamCalls('mock-big-1')).toBe(2);
  });

  // As gateway-routing.test.ts's 200 MB stream (growth measured from 16 MB in; 0-5 MB normal, or one
  // step of V8's young generation): a recorder that kept the stream instead of letting go at the
  // entry limit would grow by ~100 MB, ~1,000 KB per MB relayed.
  it('keeps memory flat while streaming 100 MB from a cached model', async () => {
    const res = await stream('s-huge', 'huge');
    const { bytes, samples, growthKb, steadyKbPerMb } = await drainWatchingRss(res, app.proc.pid!);
    expect(bytes).toBeGreaterThan(100 * 1024 * 1024);
    expect(samples).toBeGreaterThan(50);
    expect(steadyKbPerMb).toBeLessThan(128);
    expect(growthKb).toBeLessThan(80 * 1024);
    expect((await stream('s-huge', 'huge')).headers.get('x-nexus-cache')).toBe('miss');
  });
});

describe('coalesced misses', () => {
  let ckey: { id: string; key: string };
  beforeAll(async () => {
    // Slow upstream answers, so that every concurrent call arrives while the first is in flight.
    await createModel(app, admin, { name: 'c-slow', deployments: [{ provider_id: openaiId, upstream_model: 'mock-slow-1000' }], input_price_per_mtok: 1000, output_price_per_mtok: 1000, cache_ttl_seconds: 3600 });
    await createModel(app, admin, { name: 'c-flaky', deployments: [{ provider_id: openaiId, upstream_model: 'mock-slow-500-first-500' }], cache_ttl_seconds: 3600 });
    ckey = await createKey(app, admin.token);
  });
  const call = (model: string, content: string, headers: Record<string, string> = {}) =>
    post(`${app.url}/v1/chat/completions`, { model, messages: [{ role: 'user', content }] }, { authorization: `Bearer ${ckey.key}`, ...headers });

  it('sends 20 concurrent identical misses to the provider once, and answers all 20 alike', async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, () => call('c-slow', 'herd')));
    expect(answers.map((r) => r.status)).toEqual(Array(20).fill(200));
    const bodies = await Promise.all(answers.map((r) => r.text()));
    expect(new Set(bodies).size).toBe(1);
    expect(JSON.parse(bodies[0]!).choices[0].message.content).toBe('echo: herd');
    expect(upstreamCalls('mock-slow-1000')).toBe(1);
    expect(answers.map((r) => r.headers.get('x-nexus-cache')).sort()).toEqual([...Array(19).fill('hit'), 'miss']);
    const u = await usageOf(ckey);
    expect(u).toMatchObject({ requests: 20, cache_hits: 19 });
    const k = await json(await fetch(`${app.url}/api/v1/virtual-keys/${ckey.id}`, authed(admin.token)));
    expect(k.spent_usd).toBeCloseTo(u.cost_usd, 9);
    expect(u.cost_usd).toBeGreaterThan(0);
  });

  it('sends the waiting calls to the provider again when the first one fails, instead of passing its error on', async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, () => call('c-flaky', 'leader fails')));
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses).toEqual([...Array(19).fill(200), 502]);
    const bodies = await Promise.all(answers.filter((r) => r.status === 200).map((r) => r.text()));
    expect(new Set(bodies).size).toBe(1);
    // The failed leader, then one of the waiting calls leading the others.
    expect(upstreamCalls('mock-slow-500-first-500')).toBe(2);
  });

  it('neither joins nor leads with Cache-Control: no-store, and lets a waiting client leave', async () => {
    // A no-store call first: the identical calls after it do not wait for it.
    const lone = call('c-slow', 'hostile', { 'cache-control': 'no-store' });
    await sleep(100);
    const group = Array.from({ length: 3 }, () => call('c-slow', 'hostile'));
    await sleep(100);
    // A no-store call while the group is in flight goes to the provider itself.
    const late = call('c-slow', 'hostile', { 'cache-control': 'no-store' });
    // And a client that gives up waiting just goes.
    const ac = new AbortController();
    const leaving = fetch(`${app.url}/v1/chat/completions`, { method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json', authorization: `Bearer ${ckey.key}` }, body: JSON.stringify({ model: 'c-slow', messages: [{ role: 'user', content: 'hostile' }] }) });
    await sleep(100);
    ac.abort();
    await expect(leaving).rejects.toThrow();
    const all = await Promise.all([lone, ...group, late]);
    expect(all.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(all.map((r) => r.headers.get('x-nexus-cache'))).toEqual(['bypass', 'miss', 'hit', 'hit', 'bypass']);
    expect(up.requests.filter((r) => r.body?.model === 'mock-slow-1000' && r.body.messages[0].content === 'hostile').length).toBe(3);
  });
});
