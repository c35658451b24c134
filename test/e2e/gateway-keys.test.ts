// Virtual keys under load and over time: budgets that hold under concurrency, rate limits with
// Retry-After, scope, expiry, revocation, owner deactivation, and usage accounting.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAppliance, type Appliance } from '../helpers/appliance.ts';
import { authed, json, login, post, setupAdmin, type Admin } from '../helpers/api.ts';
import { createKey, createProvider, simpleModel } from '../helpers/gateway.ts';
import { startLlmUpstream, type LlmUpstream } from '../helpers/llm-upstream.ts';

let app: Appliance;
let admin: Admin;
let up: LlmUpstream;

const chat = (key: string, model: string, extra: Record<string, unknown> = {}) =>
  post(`${app.url}/v1/chat/completions`, { model, messages: [{ role: 'user', content: 'hi' }], ...extra }, { authorization: `Bearer ${key}` });

beforeAll(async () => {
  [app, up] = await Promise.all([startAppliance(), startLlmUpstream()]);
  admin = await setupAdmin(app);
  const { id } = await createProvider(app, admin, { name: 'local', type: 'openai', base_url: `${up.url}/v1`, api_key: 'sk-x' });
  // "echo: hi" is 2 output tokens; with input free, a request costs exactly max_tokens × price.
  await simpleModel(app, admin, id, 'priced', 'mock-priced', { input_price_per_mtok: 0, output_price_per_mtok: 1000 });
  await simpleModel(app, admin, id, 'other', 'mock-other');
  await simpleModel(app, admin, id, 'cut', 'mock-chunks-20-cut-5');
});
afterAll(async () => {
  await app?.stop();
  await up?.close();
});

describe('budgets and rate limits', () => {
  it('lets exactly 10 of 100 concurrent requests through a budget for 10', async () => {
    const { id, key } = await createKey(app, admin.token, { max_budget_usd: 0.02 });
    const results = await Promise.all(Array.from({ length: 100 }, () => chat(key, 'priced', { max_tokens: 2 })));
    const ok = results.filter((r) => r.status === 200);
    const limited = results.filter((r) => r.status === 429);
    expect(ok).toHaveLength(10);
    expect(limited).toHaveLength(90);
    const err = await json(limited[0]!);
    expect(err.error).toMatchObject({ type: 'insufficient_quota', code: 'budget_exceeded' });
    expect(Number(limited[0]!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited[0]!.headers.get('x-nexus-limit')).toBe('budget');
    await Promise.all(results.map((r) => (r.bodyUsed ? null : r.body?.cancel())));
    // Settled: the budget is spent, and the next request is refused for good.
    const after = await chat(key, 'priced', { max_tokens: 2 });
    expect(after.status).toBe(429);
    expect(Number(after.headers.get('retry-after'))).toBeGreaterThanOrEqual(60);
    const record = await json(await fetch(`${app.url}/api/v1/virtual-keys/${id}`, authed(admin.token)));
    expect(record.spent_usd).toBeCloseTo(0.02, 9);
  });

  it('limits requests per minute and tokens per minute, naming the limit', async () => {
    const { key } = await createKey(app, admin.token, { rpm: 2 });
    expect((await chat(key, 'other')).status).toBe(200);
    expect((await chat(key, 'other')).status).toBe(200);
    const third = await chat(key, 'other');
    expect(third.status).toBe(429);
    expect(third.headers.get('x-nexus-limit')).toBe('rpm');
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await json(third)).error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded' });

    // The first request reserves ~25 tokens and settles at its real 6; the second's reservation
    // no longer fits the 30 tokens left in the minute.
    const { key: tk } = await createKey(app, admin.token, { tpm: 30 });
    expect((await chat(tk, 'other', { max_tokens: 14 })).status).toBe(200);
    const over = await chat(tk, 'other', { max_tokens: 14 });
    expect(over.status).toBe(429);
    expect(over.headers.get('x-nexus-limit')).toBe('tpm');
    expect((await json(over)).error.type).toBe('tokens');
  });
});

describe('key lifecycle', () => {
  it('enforces model scope and expiry', async () => {
    const { key } = await createKey(app, admin.token, { models: ['other'], expires_at: new Date(Date.now() + 1500).toISOString() });
    const client = new OpenAI({ apiKey: key, baseURL: `${app.url}/v1`, maxRetries: 0 });
    expect((await client.models.list()).data.map((m) => m.id)).toEqual(['other']);
    await expect(client.chat.completions.create({ model: 'priced', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 403, code: 'model_not_allowed' });
    expect((await chat(key, 'other')).status).toBe(200);
    let status = 200;
    for (let i = 0; i < 40 && status === 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await chat(key, 'other')).status;
    }
    expect(status).toBe(401);
  });

  it('stops a revoked key and the keys of a deactivated or deleted owner on the next request', async () => {
    const { id, key } = await createKey(app, admin.token);
    expect((await chat(key, 'other')).status).toBe(200);
    expect((await fetch(`${app.url}/api/v1/virtual-keys/${id}`, authed(admin.token, { method: 'DELETE' }))).status).toBe(204);
    const revoked = await chat(key, 'other');
    expect(revoked.status).toBe(401);
    expect((await json(revoked)).error.message).toContain('revoked');

    const auth = { authorization: `Bearer ${admin.token}` };
    const member = await json(await post(`${app.url}/api/v1/users`, { username: 'member1', password: 'member-password-1' }, auth));
    const m = await login(app, 'member1', 'member-password-1');
    const mine = await createKey(app, m.token);
    // A member cannot mint keys for someone else, nor see others' keys.
    expect((await post(`${app.url}/api/v1/virtual-keys`, { name: 'x', user_id: (await json(await fetch(`${app.url}/api/v1/me`, authed(admin.token)))).user.id }, { authorization: `Bearer ${m.token}` })).status).toBe(403);
    expect((await fetch(`${app.url}/api/v1/virtual-keys/${id}`, authed(m.token))).status).toBe(404);
    expect((await chat(mine.key, 'other')).status).toBe(200);
    // A member reads their own usage only, and is refused someone else's.
    const adminId = (await json(await fetch(`${app.url}/api/v1/me`, authed(admin.token)))).user.id;
    const everyone = await json(await fetch(`${app.url}/api/v1/usage?group_by=user`, authed(admin.token)));
    expect(everyone.items.map((i: { user_id: string }) => i.user_id).sort()).toEqual([adminId, member.id].sort());
    const own = await json(await fetch(`${app.url}/api/v1/usage?group_by=user`, authed(m.token)));
    expect(own.items).toEqual([expect.objectContaining({ user_id: member.id, requests: 1 })]);
    expect((await fetch(`${app.url}/api/v1/usage?group_by=user&user_id=${member.id}`, authed(m.token))).status).toBe(200);
    const others = await fetch(`${app.url}/api/v1/usage?user_id=${adminId}`, authed(m.token));
    expect(others.status).toBe(403);
    expect((await json(others)).error.code).toBe('forbidden');
    await fetch(`${app.url}/api/v1/users/${member.id}`, authed(admin.token, { method: 'PATCH', body: JSON.stringify({ active: false }) }));
    expect((await chat(mine.key, 'other')).status).toBe(401);
    await fetch(`${app.url}/api/v1/users/${member.id}`, authed(admin.token, { method: 'PATCH', body: JSON.stringify({ active: true }) }));
    expect((await chat(mine.key, 'other')).status).toBe(200);
    await fetch(`${app.url}/api/v1/users/${member.id}`, authed(admin.token, { method: 'DELETE' }));
    expect((await chat(mine.key, 'other')).status).toBe(401);
  });
});

describe('usage', () => {
  it('records every request, streamed ones and cut-short ones too, and aggregates them', async () => {
    const { id, key } = await createKey(app, admin.token);
    expect((await chat(key, 'priced')).status).toBe(200);
    const streamed = await chat(key, 'priced', { stream: true });
    const text = await streamed.text();
    expect(text).not.toContain('"usage":{'); // the client did not ask for it
    const cut = await chat(key, 'cut', { stream: true });
    const cutText = await cut.text();
    expect(cutText).toContain('"error"'); // a well-formed error event ends the stream
    const items = (await json(await fetch(`${app.url}/api/v1/usage?group_by=key,model&key_id=${id}`, authed(admin.token)))).items;
    const priced = items.find((i: { model: string }) => i.model === 'priced');
    expect(priced).toMatchObject({ key_id: id, requests: 2, errors: 0, output_tokens: 4 });
    expect(priced.input_tokens).toBeGreaterThan(0);
    expect(priced.cost_usd).toBeCloseTo(0.004, 9);
    const cutRow = items.find((i: { model: string }) => i.model === 'cut');
    expect(cutRow).toMatchObject({ requests: 1, errors: 1 });
    expect(cutRow.output_tokens).toBeGreaterThan(0);
    // Each call is in the audit log too, under the key (never the key itself), routed directly.
    const audit = await json(await fetch(`${app.url}/api/v1/audit?action=gateway.*&actor=${id}&limit=10`, authed(admin.token)));
    expect(audit.items).toHaveLength(3);
    expect(audit.items.map((i: { outcome: string }) => i.outcome).sort()).toEqual(['failure', 'success', 'success']);
    expect(audit.items[0]).toMatchObject({ actor_type: 'virtual_key', actor_id: id, action: 'gateway.chat', routed_via: 'direct', source_ip: '127.0.0.1' });
    const pricedCall = audit.items.find((i: { target_id: string }) => i.target_id === 'priced');
    expect(pricedCall.details).toMatchObject({ ingress: 'openai', output_tokens: 2 });
    expect(pricedCall.details.input_tokens).toBeGreaterThan(0);
    expect(JSON.stringify(audit)).not.toContain(key);
    const byDay = await json(await fetch(`${app.url}/api/v1/usage?group_by=day,user`, authed(admin.token)));
    expect(byDay.items[0].day).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect((await fetch(`${app.url}/api/v1/usage?group_by=password`, authed(admin.token))).status).toBe(400);
  });
});

describe('usage is readable as soon as the answer is', () => {
  // The usage row and audit entry of a JSON answer are queued right after its bytes go to the socket
  // (same synchronous step); the next request is handled later and reads flush the queue first.
  it('shows each call in usage, audit and spend on the very next request', async () => {
    const { id, key } = await createKey(app, admin.token, {});
    for (let i = 1; i <= 15; i++) {
      const res = await chat(key, 'priced', { max_tokens: 2 });
      expect(res.status).toBe(200);
      await res.text();
      const [usage, audit, record] = await Promise.all([
        fetch(`${app.url}/api/v1/usage?group_by=key&key_id=${id}`, authed(admin.token)).then(json),
        fetch(`${app.url}/api/v1/audit?action=gateway.chat&actor=${id}&limit=100`, authed(admin.token)).then(json),
        fetch(`${app.url}/api/v1/virtual-keys/${id}`, authed(admin.token)).then(json),
      ]);
      expect(usage.items[0]).toMatchObject({ key_id: id, requests: i, output_tokens: 2 * i });
      expect(audit.items).toHaveLength(i);
      expect(record.spent_usd).toBeCloseTo(0.002 * i, 9);
    }
  });
});
