// Gateway setup over the real admin API: providers, models, virtual keys.
import type { Appliance } from './appliance.ts';
import { json, post, type Admin } from './api.ts';

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
