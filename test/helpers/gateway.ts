// Gateway setup over the real admin API: providers, models, virtual keys.
import { startAppliance, type Appliance } from './appliance.ts';
import { json, post, setupAdmin, type Admin } from './api.ts';
import { startLlmUpstream, type LlmUpstream } from './llm-upstream.ts';

export async function createProvider(app: Appliance, admin: Admin, body: Record<string, unknown>): Promise<{ id: string }> {
  const res = await post(`${app.url}/api/v1/providers`, body, { authorization: `Bearer ${admin.token}` });
  if (res.status !== 201) throw new Error(`provider: ${res.status} ${await res.text()}`);
  return json(res);
}

export async function createModel(app: Appliance, admin: Admin, body: Record<string, unknown>): Promise<{ id: string }> {
  const res = await post(`${app.url}/api/v1/models`, body, { authorization: `Bearer ${admin.token}` });
  if (res.status !== 201) throw new Error(`model: ${res.status} ${await res.text()}`);
  return json(res);
}

export async function createKey(app: Appliance, token: string, body: Record<string, unknown> = {}): Promise<{ id: string; key: string }> {
  const res = await post(`${app.url}/api/v1/virtual-keys`, { name: 'test', ...body }, { authorization: `Bearer ${token}` });
  if (res.status !== 201) throw new Error(`virtual key: ${res.status} ${await res.text()}`);
  return json(res);
}

/** One model name → one deployment on one provider, the common case in tests. */
export async function simpleModel(app: Appliance, admin: Admin, providerId: string, name: string, upstream = name, prices: Record<string, number> = {}) {
  return createModel(app, admin, { name, deployments: [{ provider_id: providerId, upstream_model: upstream }], ...prices });
}

export const PROVIDER_TYPES = ['openai', 'openai-compatible', 'azure', 'glm', 'gemini', 'anthropic'] as const;
export type ProviderType = (typeof PROVIDER_TYPES)[number];

/** Where a provider of each type finds the mock upstream (test/helpers/llm-upstream.ts) at `upUrl`. */
function mockUpstreamFields(type: ProviderType, upUrl: string): Record<string, unknown> {
  switch (type) {
    case 'openai':
    case 'openai-compatible':
      return { base_url: `${upUrl}/v1` };
    case 'azure':
      return { base_url: upUrl, api_version: '2024-10-21' };
    case 'glm':
      return { base_url: `${upUrl}/api/paas/v4` };
    default:
      return { base_url: upUrl };
  }
}

/**
 * A provider `p-<type>` (key `key-<type>`) for each type against the mock upstream, each serving a
 * model `m-<type>` as `up-<type>` at $1 per Mtok in and out. Returns the provider ids by type.
 */
export async function providerPerType(app: Appliance, admin: Admin, upUrl: string, types: readonly ProviderType[] = PROVIDER_TYPES): Promise<Record<ProviderType, string>> {
  const ids = {} as Record<ProviderType, string>;
  for (const type of types) {
    const { id } = await createProvider(app, admin, { name: `p-${type}`, type, api_key: `key-${type}`, ...mockUpstreamFields(type, upUrl) });
    await simpleModel(app, admin, id, `m-${type}`, `up-${type}`, { input_price_per_mtok: 1, output_price_per_mtok: 1 });
    ids[type] = id;
  }
  return ids;
}

export interface PricedGateway {
  app: Appliance;
  admin: Admin;
  up: LlmUpstream;
  providerId: string;
}

/**
 * A fresh appliance with its admin, and a local mock upstream as provider "local" (type openai) serving
 * model "priced" with input free and output at $1000 per million tokens: the mock answers "echo: hi"
 * (2 tokens), so `pricedChat` costs exactly $0.002, which budget tests count in.
 */
export async function pricedGateway(): Promise<PricedGateway> {
  const [app, up] = await Promise.all([startAppliance(), startLlmUpstream()]);
  const admin = await setupAdmin(app);
  const { id } = await createProvider(app, admin, { name: 'local', type: 'openai', base_url: `${up.url}/v1`, api_key: 'sk-x' });
  await simpleModel(app, admin, id, 'priced', 'mock-priced', { input_price_per_mtok: 0, output_price_per_mtok: 1000 });
  return { app, admin, up, providerId: id };
}

/** One chat call of exactly $0.002 to "priced" (see pricedGateway) with virtual key `key`. */
export function pricedChat(app: Appliance, key: string): Promise<Response> {
  return post(`${app.url}/v1/chat/completions`, { model: 'priced', max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${key}` });
}
