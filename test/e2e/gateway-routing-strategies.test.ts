// Routing strategies within a priority, through the real gateway and the openai SDK: least_busy evens
// out calls in flight, latency sends calls to the deployment that answers first once both were
// measured — per output token for calls of different sizes (mock providers whose time grows with
// max_tokens), by time to first token for streams — and the model view shows what the router knows;
// bad strategies are refused.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authed, json, post, setupAdmin, type Admin } from '../helpers/api.ts';
import { startAppliance, type Appliance } from '../helpers/appliance.ts';
import { createKey, createModel, createProvider } from '../helpers/gateway.ts';
import { startLlmUpstream, type LlmUpstream } from '../helpers/llm-upstream.ts';

let app: Appliance;
let admin: Admin;
let up: LlmUpstream;
let providerId: string;
let client: OpenAI;

const sentTo = (upstreamModel: string) => up.requests.filter((r) => r.body?.model === upstreamModel).length;
const patchModel = (name: string, body: unknown) =>
  fetch(`${app.url}/api/v1/models/${name}`, authed(admin.token, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }));

beforeAll(async () => {
  [app, up] = await Promise.all([startAppliance(), startLlmUpstream()]);
  admin = await setupAdmin(app);
  providerId = (await createProvider(app, admin, { name: 'local', type: 'openai', base_url: `${up.url}/v1`, api_key: 'sk-x' })).id;
  client = new OpenAI({ apiKey: (await createKey(app, admin.token)).key, baseURL: `${app.url}/v1`, maxRetries: 0 });
});
afterAll(async () => {
  await app?.stop();
  await up?.close();
});

const ask = (model: string) => client.chat.completions.create({ model, messages: [{ role: 'user', content: 'route me' }] });

describe('routing strategies', () => {
  it('least_busy: concurrent calls split evenly between deployments that are equally slow', async () => {
    const m = await createModel(app, admin, {
      name: 'busy',
      routing_strategy: 'least_busy',
      deployments: [{ provider_id: providerId, upstream_model: 'slow-400-a' }, { provider_id: providerId, upstream_model: 'slow-400-b' }],
    });
    await Promise.all(Array.from({ length: 10 }, () => ask('busy')));
    expect([sentTo('slow-400-a'), sentTo('slow-400-b')]).toEqual([5, 5]);
    const view = await json(await fetch(`${app.url}/api/v1/models/${m.id}`, authed(admin.token)));
    expect(view.routing_strategy).toBe('least_busy');
    for (const d of view.deployments) expect(d.live).toMatchObject({ in_flight: 0, cooling_until: null });
    expect(view.deployments.every((d: { live: { latency_ms: number } }) => d.live.latency_ms >= 400)).toBe(true);
  });

  it('latency: after one call to each, every call goes to the faster deployment', async () => {
    await createModel(app, admin, {
      name: 'quickest',
      routing_strategy: 'latency',
      deployments: [{ provider_id: providerId, upstream_model: 'slow-250' }, { provider_id: providerId, upstream_model: 'quick' }],
    });
    for (let i = 0; i < 12; i++) await ask('quickest');
    expect(sentTo('slow-250')).toBe(1);
    expect(sentTo('quick')).toBe(11);
    // Back to weighted: the slow deployment is in the draw again.
    expect((await patchModel('quickest', { routing_strategy: 'weighted' })).status).toBe(200);
    for (let i = 0; i < 40 && sentTo('slow-250') === 1; i++) await ask('quickest');
    expect(sentTo('slow-250')).toBeGreaterThan(1);
  });

  it('latency: non-streamed calls compare per output token, so large calls do not send traffic to the slower deployment', async () => {
    const m = await createModel(app, admin, {
      name: 'sized',
      routing_strategy: 'latency',
      deployments: [{ provider_id: providerId, upstream_model: 'pertoken-2' }, { provider_id: providerId, upstream_model: 'pertoken-20' }],
    });
    const sized = (maxTokens: number) => client.chat.completions.create({ model: 'sized', max_tokens: maxTokens, messages: [{ role: 'user', content: 'size me' }] });
    // A small call to each (the unmeasured one gets the second): ~20 and ~200 ms.
    for (let i = 0; i < 2; i++) expect((await sized(10)).usage!.completion_tokens).toBe(10);
    expect([sentTo('pertoken-2'), sentTo('pertoken-20')]).toEqual([1, 1]);
    // Large calls take the quicker deployment ~400 ms each, longer than the slower one's small call:
    // by whole time the slower one would be chosen again from the third large call; per token, never.
    for (let i = 0; i < 5; i++) await sized(200);
    expect(sentTo('pertoken-20')).toBe(1);
    expect(sentTo('pertoken-2')).toBe(6);
    const view = await json(await fetch(`${app.url}/api/v1/models/${m.id}`, authed(admin.token)));
    const live = (u: string) => view.deployments.find((d: { upstream_model: string }) => d.upstream_model === u).live;
    expect(live('pertoken-2').ms_per_output_token).toBeGreaterThanOrEqual(2);
    expect(live('pertoken-2').ms_per_output_token).toBeLessThan(live('pertoken-20').ms_per_output_token);
    expect(live('pertoken-20').ms_per_output_token).toBeGreaterThanOrEqual(20);
    expect(live('pertoken-2').latency_ms).toBeGreaterThan(live('pertoken-20').latency_ms); // the raw times say the opposite
    expect(live('pertoken-2').ttft_ms).toBeNull();
  });

  it('latency: streams go to the deployment whose first token comes first, not the one whose headers do', async () => {
    const m = await createModel(app, admin, {
      name: 'firsts',
      routing_strategy: 'latency',
      deployments: [{ provider_id: providerId, upstream_model: 'ttft-300' }, { provider_id: providerId, upstream_model: 'slow-100' }],
    });
    const streamed = async () => {
      const s = await client.chat.completions.create({ model: 'firsts', stream: true, messages: [{ role: 'user', content: 'first token' }] });
      let text = '';
      for await (const chunk of s) text += chunk.choices[0]?.delta?.content ?? '';
      expect(text).toBe('echo: first token');
    };
    for (let i = 0; i < 2; i++) await streamed();
    expect([sentTo('ttft-300'), sentTo('slow-100')]).toEqual([1, 1]);
    for (let i = 0; i < 4; i++) await streamed();
    expect(sentTo('ttft-300')).toBe(1);
    expect(sentTo('slow-100')).toBe(5);
    const view = await json(await fetch(`${app.url}/api/v1/models/${m.id}`, authed(admin.token)));
    const live = (u: string) => view.deployments.find((d: { upstream_model: string }) => d.upstream_model === u).live;
    expect(live('ttft-300').ttft_ms).toBeGreaterThanOrEqual(300);
    expect(live('slow-100').ttft_ms).toBeGreaterThanOrEqual(100);
    expect(live('slow-100').ttft_ms).toBeLessThan(300);
    expect(live('slow-100')).toMatchObject({ latency_ms: null, ms_per_output_token: null });
  });

  it('refuses unknown strategies and wrong types, and defaults to weighted', async () => {
    for (const v of ['fastest', '', 3, null, ['latency']]) {
      expect((await patchModel('quickest', { routing_strategy: v })).status, JSON.stringify(v)).toBe(400);
    }
    const res = await post(`${app.url}/api/v1/models`, { name: 'plain', deployments: [{ provider_id: providerId, upstream_model: 'x' }] }, { authorization: `Bearer ${admin.token}` });
    expect((await json(res)).routing_strategy).toBe('weighted');
  });
});
