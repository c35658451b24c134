// Routing strategies within a priority, through the real gateway and the openai SDK: least_busy evens
// out calls in flight, latency sends calls to the deployment that answers first once both were
// measured, and the model view shows what the router knows; bad strategies are refused.
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

  it('refuses unknown strategies and wrong types, and defaults to weighted', async () => {
    for (const v of ['fastest', '', 3, null, ['latency']]) {
      expect((await patchModel('quickest', { routing_strategy: v })).status, JSON.stringify(v)).toBe(400);
    }
    const res = await post(`${app.url}/api/v1/models`, { name: 'plain', deployments: [{ provider_id: providerId, upstream_model: 'x' }] }, { authorization: `Bearer ${admin.token}` });
    expect((await json(res)).routing_strategy).toBe('weighted');
  });
});
