// Editing the gateway's providers, models and virtual keys in place (PATCH): validation like the
// POSTs, owner rules, audit entries, and every change seen by the very next gateway request.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nexus, startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { authed, json, login, post, setupAdmin, type Admin } from '../helpers/api.ts';
import { createKey, createModel, createProvider, simpleModel } from '../helpers/gateway.ts';
import { startLlmUpstream, type LlmUpstream } from '../helpers/llm-upstream.ts';

let app: Appliance;
let admin: Admin;
let up1: LlmUpstream;
let up2: LlmUpstream;
let vk: string;

const patch = (path: string, body: unknown, token = admin.token) =>
  fetch(`${app.url}/api/v1/${path}`, authed(token, { method: 'PATCH', body: typeof body === 'string' ? body : JSON.stringify(body) }));
const get = async (path: string, token = admin.token) => json(await fetch(`${app.url}/api/v1/${path}`, authed(token)));
const chat = (model: string, key = vk) =>
  post(`${app.url}/v1/chat/completions`, { model, messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${key}` });
const lastAudit = async (action: string) => (await get(`audit?action=${action}&limit=1`)).items[0];

beforeAll(async () => {
  [app, up1, up2] = await Promise.all([startAppliance(), startLlmUpstream(), startLlmUpstream()]);
  admin = await setupAdmin(app);
  ({ key: vk } = await createKey(app, admin.token));
});
afterAll(async () => {
  await app?.stop();
  await Promise.all([up1?.close(), up2?.close()]);
});

describe('PATCH /api/v1/providers/{id}', () => {
  it('moves a provider to a new address and key, effective on the next request, key never shown', async () => {
    const p = await createProvider(app, admin, { name: 'movable', type: 'openai-compatible', base_url: `${up1.url}/v1`, api_key: 'sk-old-key-1111' });
    await simpleModel(app, admin, p.id, 'movable-model', 'mock-a');
    expect((await chat('movable-model')).status).toBe(200);
    expect(up1.requests.at(-1)!.headers.authorization).toBe('Bearer sk-old-key-1111');

    const res = await patch(`providers/${p.id}`, { name: 'moved', base_url: `${up2.url}/v1/`, api_key: 'sk-new-key-2222' });
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toMatchObject({ id: p.id, name: 'moved', type: 'openai-compatible', base_url: `${up2.url}/v1`, has_api_key: true });
    expect(JSON.stringify(body)).not.toContain('sk-new-key');

    const before2 = up2.requests.length;
    expect((await chat('movable-model')).status).toBe(200);
    expect(up2.requests).toHaveLength(before2 + 1);
    expect(up2.requests.at(-1)!.headers.authorization).toBe('Bearer sk-new-key-2222');
    expect(readFileSync(`${app.dataDir}/nexus.db`).includes('sk-new-key-2222')).toBe(false);

    const entry = await lastAudit('gateway.provider.update');
    expect(entry).toMatchObject({ target_id: p.id, outcome: 'success' });
    expect(entry.details.fields).toEqual(['name', 'base_url', 'api_key']);
    expect(entry.details.changes.name).toEqual({ from: 'movable', to: 'moved' });
    expect(JSON.stringify(entry)).not.toContain('sk-new-key');

    // null removes the key: the upstream is then called without one.
    expect((await json(await patch(`providers/${p.id}`, { api_key: null }))).has_api_key).toBe(false);
    await chat('movable-model');
    expect(up2.requests.at(-1)!.headers.authorization).toBeUndefined();
  });

  it('refuses bad edits with the POST’s rules', async () => {
    const p = await createProvider(app, admin, { name: 'strict', type: 'azure', base_url: up1.url, api_version: '2024-10-21' });
    const cases: [unknown, number, string][] = [
      [{}, 400, ''],
      [{ type: 'openai' }, 400, '"type"'],
      [{ name: 42 }, 400, 'name'],
      [{ base_url: 'ftp://x' }, 400, 'base_url'],
      [{ base_url: null }, 400, 'base_url'],
      [{ api_version: null }, 400, 'api_version'],
      [{ name: 'MOVED' }, 409, 'already exists'],
      ['{"name":', 400, 'JSON'],
    ];
    for (const [body, status, text] of cases) {
      const res = await patch(`providers/${p.id}`, body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect((await json(res)).error.message).toContain(text);
    }
    expect((await patch('providers/no-such-id', { name: 'x' })).status).toBe(404);
    expect((await get(`providers/${p.id}`)).name).toBe('strict');
  });

  it('forgets the cooldown of a provider that was fixed', async () => {
    const broken = await createProvider(app, admin, { name: 'broken', type: 'openai', base_url: 'http://127.0.0.1:1/v1' });
    const backup = await createProvider(app, admin, { name: 'backup', type: 'openai', base_url: `${up2.url}/v1` });
    await createModel(app, admin, { name: 'failover', deployments: [{ provider_id: broken.id, upstream_model: 'mock-primary', priority: 0 }, { provider_id: backup.id, upstream_model: 'mock-backup', priority: 1 }] });
    expect((await chat('failover')).status).toBe(200); // the primary is unreachable and now cools down
    expect(up2.requests.at(-1)!.body!.model).toBe('mock-backup');
    await patch(`providers/${broken.id}`, { base_url: `${up1.url}/v1` });
    expect((await chat('failover')).status).toBe(200);
    expect(up1.requests.at(-1)!.body!.model).toBe('mock-primary');
  });
});

describe('PATCH /api/v1/models/{id or name}', () => {
  it('replaces deployments and prices, by id or by name, keeping unchanged deployments', async () => {
    const a = await createProvider(app, admin, { name: 'model-a', type: 'openai', base_url: `${up1.url}/v1` });
    const b = await createProvider(app, admin, { name: 'model-b', type: 'openai', base_url: `${up2.url}/v1` });
    const m = await createModel(app, admin, { name: 'team/editable', deployments: [{ provider_id: a.id, upstream_model: 'mock-one' }], input_price_per_mtok: 1 });
    const keep = (await get(`models/${m.id}`)).deployments[0].id;

    const res = await patch(`models/${encodeURIComponent('team/editable')}`, {
      deployments: [{ provider_id: a.id, upstream_model: 'mock-one', priority: 1 }, { provider_id: b.id, upstream_model: 'mock-two', priority: 0 }],
      output_price_per_mtok: 3,
      cached_input_price_per_mtok: 0.1,
    });
    expect(res.status).toBe(200);
    const after = await json(res);
    expect(after).toMatchObject({ id: m.id, name: 'team/editable', input_price_per_mtok: 1, output_price_per_mtok: 3, cached_input_price_per_mtok: 0.1 });
    expect(after.deployments.map((d: { upstream_model: string }) => d.upstream_model)).toEqual(['mock-one', 'mock-two']);
    expect(after.deployments[0].id).toBe(keep);

    const n = up2.requests.length;
    expect((await chat('team/editable')).status).toBe(200);
    expect(up2.requests).toHaveLength(n + 1);
    expect(up2.requests.at(-1)!.body!.model).toBe('mock-two');

    // Removing a provider's last deployment frees the provider for deletion.
    await patch(`models/${m.id}`, { deployments: [{ provider_id: b.id, upstream_model: 'mock-two' }], cached_input_price_per_mtok: null });
    expect((await get(`models/${m.id}`)).cached_input_price_per_mtok).toBeNull();
    expect((await fetch(`${app.url}/api/v1/providers/${a.id}`, authed(admin.token, { method: 'DELETE' }))).status).toBe(204);
    const entry = await lastAudit('gateway.model.update');
    expect(entry.details).toMatchObject({ name: 'team/editable', deployments: [{ provider_id: b.id, upstream_model: 'mock-two' }] });
  });

  it('lets a stream in flight finish on the deployment it started on while the model is edited', async () => {
    const p = await createProvider(app, admin, { name: 'inflight', type: 'openai', base_url: `${up1.url}/v1` });
    await simpleModel(app, admin, p.id, 'inflight', 'mock-chunks-6-tick-40');
    const res = await post(`${app.url}/v1/chat/completions`, { model: 'inflight', stream: true, messages: [{ role: 'user', content: 'x' }] }, { authorization: `Bearer ${vk}` });
    const reader = res.body!.getReader();
    await reader.read(); // the stream is under way
    expect((await patch('models/inflight', { deployments: [{ provider_id: p.id, upstream_model: 'mock-replaced' }] })).status).toBe(200);
    let text = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += Buffer.from(r.value).toString();
    expect(text).toContain('w5 ');
    expect(text.trim().endsWith('data: [DONE]')).toBe(true);
    expect((await chat('inflight')).status).toBe(200);
    expect(up1.requests.at(-1)!.body!.model).toBe('mock-replaced');
  });

  it('prices cached input tokens at their own rate, from the next request after an edit', async () => {
    const p = await createProvider(app, admin, { name: 'cache', type: 'openai', base_url: `${up1.url}/v1` });
    const { key, id: keyId } = await createKey(app, admin.token, { name: 'cache-cost' });
    // The upstream reports 4 of the prompt's tokens as cache reads.
    await simpleModel(app, admin, p.id, 'cached', 'mock-cached-4', { input_price_per_mtok: 10, output_price_per_mtok: 0 });
    const cost = async () => {
      const res = await chat('cached', key);
      const body = await json(res);
      expect(body.usage.prompt_tokens_details.cached_tokens).toBe(4);
      const usage = await get(`usage?key_id=${keyId}&group_by=model`);
      return { prompt: body.usage.prompt_tokens as number, total: usage.items[0].cost_usd as number };
    };
    const first = await cost(); // no cached price: cached tokens cost like other input
    expect(first.total).toBeCloseTo((first.prompt * 10) / 1e6, 12);
    await patch('models/cached', { cached_input_price_per_mtok: 1 });
    const second = await cost();
    expect(second.total - first.total).toBeCloseTo(((second.prompt - 4) * 10 + 4 * 1) / 1e6, 12);
  });

  it('refuses bad edits', async () => {
    const p = await createProvider(app, admin, { name: 'model-c', type: 'openai', base_url: `${up1.url}/v1` });
    await simpleModel(app, admin, p.id, 'fixed', 'mock-fixed');
    const cases: [unknown, number][] = [
      [{}, 400],
      [{ name: 'renamed' }, 400],
      [{ deployments: [] }, 400],
      [{ deployments: [{ provider_id: 'ghost', upstream_model: 'x' }] }, 400],
      [{ deployments: [{ provider_id: p.id }] }, 400],
      [{ input_price_per_mtok: '1' }, 400],
      [{ output_price_per_mtok: -1 }, 400],
      [{ input_price_per_mtok: null }, 400],
    ];
    for (const [body, status] of cases) expect((await patch('models/fixed', body)).status, JSON.stringify(body)).toBe(status);
    expect((await patch('models/nothing', { input_price_per_mtok: 1 })).status).toBe(404);
    const member = await json(await post(`${app.url}/api/v1/users`, { username: 'pricer', password: 'member-password-1' }, { authorization: `Bearer ${admin.token}` }));
    expect(member.id).toBeTruthy();
    const m = await login(app, 'pricer', 'member-password-1');
    expect((await patch('models/fixed', { input_price_per_mtok: 0 }, m.token)).status).toBe(403);
    expect((await chat('fixed')).status).toBe(200);
  });
});

describe('PATCH /api/v1/virtual-keys/{id}', () => {
  let pid: string;
  beforeAll(async () => {
    ({ id: pid } = await createProvider(app, admin, { name: 'keys', type: 'openai', base_url: `${up1.url}/v1` }));
    await simpleModel(app, admin, pid, 'k-priced', 'mock-priced', { output_price_per_mtok: 1000 });
    await simpleModel(app, admin, pid, 'k-other', 'mock-other');
  });

  it('changes scope and limits for the very next request', async () => {
    const { id, key } = await createKey(app, admin.token, { models: ['k-other'] });
    expect((await chat('k-priced', key)).status).toBe(403);
    const res = await patch(`virtual-keys/${id}`, { models: null, rpm: 1, name: 'renamed' });
    expect(res.status).toBe(200);
    const view = await json(res);
    expect(view).toMatchObject({ id, name: 'renamed', models: null, rpm: 1 });
    expect(JSON.stringify(view)).not.toContain(key);
    expect((await chat('k-priced', key)).status).toBe(200);
    const limited = await chat('k-other', key);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('x-nexus-limit')).toBe('rpm');
    await patch(`virtual-keys/${id}`, { rpm: null });
    expect((await chat('k-other', key)).status).toBe(200);
    const entry = await lastAudit('gateway.virtual_key.update');
    expect(entry.details.changes.rpm).toEqual({ from: 1, to: null });
    expect(JSON.stringify(entry)).not.toContain(key);
  });

  it('says which named models do not exist (a typo, or one not configured yet), and still makes the key', async () => {
    const created = await post(`${app.url}/api/v1/virtual-keys`, { name: 'typo', models: ['k-other', 'k-otehr'] }, { authorization: `Bearer ${admin.token}` });
    expect(created.status).toBe(201);
    const body = await json(created);
    expect(body.key).toMatch(/^nx_vk_/);
    expect(body.warnings).toEqual(['model "k-otehr" is not configured (yet): this key cannot use it until a model of that name exists']);
    const clean = await json(await post(`${app.url}/api/v1/virtual-keys`, { name: 'clean', models: ['k-other'] }, { authorization: `Bearer ${admin.token}` }));
    expect(clean.warnings).toBeUndefined();
    const edited = await json(await patch(`virtual-keys/${clean.id}`, { models: ['k-priced', 'nope'] }));
    expect(edited.warnings).toEqual(['model "nope" is not configured (yet): this key cannot use it until a model of that name exists']);
    expect((await json(await patch(`virtual-keys/${clean.id}`, { rpm: 5 }))).warnings).toBeUndefined();
    // Once a model of that name exists, the key reaches it.
    await simpleModel(app, admin, (await get('providers')).items.find((p: { name: string }) => p.name === 'keys').id, 'k-otehr', 'mock-otehr');
    expect((await chat('k-otehr', body.key)).status).toBe(200);
    // The CLI says it on stderr and still prints the key.
    const cli = await nexus(['key', 'create', 'cli-typo', '--models', 'k-other,k-nope'], { env: { NEXUS_URL: app.url, NEXUS_TOKEN: admin.token, XDG_CONFIG_HOME: tempDir('nexus-cli-cfg-') } });
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stderr).toBe('warning: model "k-nope" is not configured (yet): this key cannot use it until a model of that name exists\n');
    expect(cli.stdout).toMatch(/nx_vk_/);
    expect(cli.stdout).toContain(`base URL ${app.url}/v1 (OpenAI SDKs) or ${app.url} (Gemini and Anthropic SDKs)`);
  });

  it('refuses at once when the budget is lowered below what was spent', async () => {
    // Without max_tokens a request reserves 1024 output tokens ($1.024 here) and settles at 2 ("echo: hi").
    const { id, key } = await createKey(app, admin.token, { max_budget_usd: 10 });
    expect((await chat('k-priced', key)).status).toBe(200);
    await fetch(`${app.url}/api/v1/usage`, authed(admin.token)); // flushes the spend
    expect((await get(`virtual-keys/${id}`)).spent_usd).toBeCloseTo(0.002, 9);
    const res = await patch(`virtual-keys/${id}`, { max_budget_usd: 0.001 });
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ max_budget_usd: 0.001 });
    const refused = await chat('k-priced', key);
    expect(refused.status).toBe(429);
    expect((await json(refused)).error.code).toBe('budget_exceeded');
    await patch(`virtual-keys/${id}`, { max_budget_usd: null });
    expect((await chat('k-priced', key)).status).toBe(200);
  });

  it('applies concurrent edits whole, one after another', async () => {
    const { id } = await createKey(app, admin.token);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => patch(`virtual-keys/${id}`, { name: `n${i}`, rpm: 100 + i, tpm: 1000 + i })));
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    const final = await get(`virtual-keys/${id}`);
    const i = Number(final.name.slice(1));
    expect(final).toMatchObject({ rpm: 100 + i, tpm: 1000 + i });
  });

  it('keeps a revoked key revoked and follows the owner rules', async () => {
    const { id, key } = await createKey(app, admin.token);
    await fetch(`${app.url}/api/v1/virtual-keys/${id}`, authed(admin.token, { method: 'DELETE' }));
    const res = await patch(`virtual-keys/${id}`, { name: 'back from the dead', expires_at: null });
    expect(res.status).toBe(409);
    expect((await get(`virtual-keys/${id}`)).revoked_at).not.toBeNull();
    expect((await chat('k-other', key)).status).toBe(401);

    await post(`${app.url}/api/v1/users`, { username: 'owner', password: 'member-password-2' }, { authorization: `Bearer ${admin.token}` });
    const owner = await login(app, 'owner', 'member-password-2');
    const own = await createKey(app, owner.token);
    expect((await patch(`virtual-keys/${own.id}`, { rpm: 5 }, owner.token)).status).toBe(200);
    const adminsKey = await createKey(app, admin.token);
    expect((await patch(`virtual-keys/${adminsKey.id}`, { rpm: 5 }, owner.token)).status).toBe(404);
    expect((await patch(`virtual-keys/${own.id}`, { rpm: 6 })).status).toBe(200); // an admin edits anyone's

    const bad: unknown[] = [{}, { key: 'nx_vk_x' }, { models: Array.from({ length: 501 }, (_, i) => `m${i}`) }, { name: 'x'.repeat(201) }, { user_id: admin.username }, { format: 'id_secret' }, { rpm: '5' }, { rpm: 0 },
      { models: 'k-other' }, { expires_at: 'tomorrow' }, { expires_at: '2001-01-01T00:00:00Z' }, { max_budget_usd: -1 }];
    for (const body of bad) expect((await patch(`virtual-keys/${own.id}`, body, owner.token)).status, JSON.stringify(body)).toBe(400);
    expect((await patch('virtual-keys/nope', { rpm: 1 })).status).toBe(404);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    expect((await json(await patch(`virtual-keys/${own.id}`, { expires_at: future }, owner.token))).expires_at).toBe(future);
    expect((await chat('k-other', own.key)).status).toBe(200);
  });
});
