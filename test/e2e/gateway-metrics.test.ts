// The gateway's Prometheus metrics on the admin listener, after real calls through the openai SDK:
// calls by model/provider/ingress/status, tokens and cost that agree with the usage API, duration and
// time-to-first-token histograms, and failed attempts at a provider that the next deployment covered.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authed, json, setupAdmin, type Admin } from '../helpers/api.ts';
import { startAppliance, type Appliance, scrapeMetrics } from '../helpers/appliance.ts';
import { createKey, createModel, createProvider, simpleModel } from '../helpers/gateway.ts';
import { startLlmUpstream, type LlmUpstream } from '../helpers/llm-upstream.ts';

let app: Appliance;
let admin: Admin;
let up: LlmUpstream;

const scrape = () => scrapeMetrics(app);

beforeAll(async () => {
  [app, up] = await Promise.all([startAppliance(), startLlmUpstream()]);
  admin = await setupAdmin(app);
  const local = await createProvider(app, admin, { name: 'local', type: 'openai', base_url: `${up.url}/v1`, api_key: 'sk-x' });
  const down = await createProvider(app, admin, { name: 'down', type: 'openai', base_url: 'http://127.0.0.1:9/v1', api_key: 'sk-x' });
  const flaky = await createProvider(app, admin, { name: 'flaky', type: 'openai', base_url: `${up.url}/v1`, api_key: 'sk-x' });
  await simpleModel(app, admin, local.id, 'priced', 'mock-priced', { input_price_per_mtok: 1000, output_price_per_mtok: 2000 });
  await simpleModel(app, admin, local.id, 'refusing', 'fail-400');
  // Tried first and failing: a refused connection, then a 500; the local deployment answers.
  await createModel(app, admin, {
    name: 'failover',
    deployments: [
      { provider_id: down.id, upstream_model: 'x', priority: 0 },
      { provider_id: flaky.id, upstream_model: 'fail-500', priority: 1 },
      { provider_id: local.id, upstream_model: 'mock-ok', priority: 2 },
    ],
  });
});
afterAll(async () => {
  await app?.stop();
  await up?.close();
});

describe('gateway metrics', () => {
  it('count calls, tokens and cost as the usage API does, with histograms and provider failures', async () => {
    const { id, key } = await createKey(app, admin.token);
    const client = new OpenAI({ apiKey: key, baseURL: `${app.url}/v1`, maxRetries: 0 });
    const messages = [{ role: 'user' as const, content: 'hello there' }];
    await client.chat.completions.create({ model: 'priced', messages });
    await client.chat.completions.create({ model: 'priced', messages });
    const stream = await client.chat.completions.create({ model: 'priced', messages, stream: true });
    for await (const _ of stream);
    await client.chat.completions.create({ model: 'failover', messages });
    await expect(client.chat.completions.create({ model: 'refusing', messages })).rejects.toMatchObject({ status: 400 });

    const m = await scrape();
    expect(m.get('nexus_gateway_requests_total{model="priced",provider="local",ingress="openai",status="200"}')).toBe(3);
    expect(m.get('nexus_gateway_requests_total{model="failover",provider="local",ingress="openai",status="200"}')).toBe(1);
    expect(m.get('nexus_gateway_requests_total{model="refusing",provider="local",ingress="openai",status="400"}')).toBe(1);
    expect(m.get('nexus_gateway_upstream_failures_total{provider="down",reason="unreachable"}')).toBe(1);
    expect(m.get('nexus_gateway_upstream_failures_total{provider="flaky",reason="server_error"}')).toBe(1);
    // Tokens and cost agree with what the usage API aggregates from the stored rows.
    const usage = (await json(await fetch(`${app.url}/api/v1/usage?group_by=model&key_id=${id}`, authed(admin.token)))).items;
    const priced = usage.find((u: { model: string }) => u.model === 'priced');
    const tokens = (type: string) => m.get(`nexus_gateway_tokens_total{model="priced",provider="local",type="${type}"}`);
    expect(tokens('input')).toBe(priced.input_tokens);
    expect(tokens('output')).toBe(priced.output_tokens);
    expect(tokens('cached')).toBe(0);
    expect(m.get('nexus_gateway_cost_usd_total{model="priced",provider="local"}')).toBeCloseTo(priced.cost_usd, 9);
    expect(priced.requests).toBe(3);
    expect(m.get('nexus_gateway_request_duration_seconds_count{model="priced"}')).toBe(3);
    expect(m.get('nexus_gateway_request_duration_seconds_count{model="failover"}')).toBe(1);
    expect(m.get('nexus_gateway_request_duration_seconds_bucket{le="+Inf",model="priced"}')).toBe(3);
    const buckets = [...m].filter(([k]) => k.startsWith('nexus_gateway_request_duration_seconds_bucket{') && k.endsWith(',model="priced"}')).map(([, v]) => v);
    expect(buckets).toHaveLength(13); // 12 bounds and +Inf, cumulative
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b));
    expect(m.get('nexus_gateway_time_to_first_token_seconds_count{model="priced"}')).toBe(1); // the one stream
    expect(m.get('nexus_gateway_time_to_first_token_seconds_count{model="failover"}')).toBe(0);
    // No key, user or secret in any label.
    const text = await (await fetch(`${app.adminUrl}/metrics`)).text();
    expect(text).not.toContain(key);
    expect(text).not.toContain(id);
    expect(text).not.toContain('sk-x');
  });
});
