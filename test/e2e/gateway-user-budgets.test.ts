// A user's budget across all of their virtual keys: set by an admin on the user, counted from the
// gateway's usage rows (so it survives restarts), held under concurrency across keys, renewing by UTC
// period when asked, refused with a message that names the user's budget; bad values are refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authed, json, login, post, type Admin } from '../helpers/api.ts';
import { startAppliance, type Appliance } from '../helpers/appliance.ts';
import { createKey, pricedChat, pricedGateway } from '../helpers/gateway.ts';
import type { LlmUpstream } from '../helpers/llm-upstream.ts';

let app: Appliance;
let admin: Admin;
let up: LlmUpstream;

// Input free, output $1000 per Mtok: a call with max_tokens 2 costs exactly $0.002.
const chat = (key: string) => pricedChat(app, key);
const patchUser = (id: string, body: unknown, token = admin.token) =>
  fetch(`${app.url}/api/v1/users/${id}`, authed(token, { method: 'PATCH', body: JSON.stringify(body) }));
const newMember = async (username: string, budget: Record<string, unknown> = {}) => {
  const res = await post(`${app.url}/api/v1/users`, { username, password: 'member-password-1', ...budget }, { authorization: `Bearer ${admin.token}` });
  expect(res.status).toBe(201);
  const user = await json(res);
  return { user, session: await login(app, username, 'member-password-1') };
};

beforeAll(async () => {
  ({ app, admin, up } = await pricedGateway());
});
afterAll(async () => {
  await app?.stop();
  await up?.close();
});

describe('user budgets', () => {
  it('caps what all of a user\'s keys spend together, and lets a raised budget through at once', async () => {
    const { user, session } = await newMember('budget-alice', { max_budget_usd: 0.004 });
    expect(user).toMatchObject({ max_budget_usd: 0.004, budget_period: null });
    const k1 = await createKey(app, session.token);
    const k2 = await createKey(app, session.token);
    expect((await chat(k1.key)).status).toBe(200);
    expect((await chat(k2.key)).status).toBe(200);
    const refused = await chat(k1.key);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('x-nexus-limit')).toBe('budget');
    expect((await json(refused)).error).toMatchObject({ code: 'budget_exceeded', type: 'insufficient_quota', message: 'user budget of $0.004 is spent' });
    expect((await chat(k2.key)).status).toBe(429);
    // Each key spent only its own share; the refused calls reserved nothing.
    for (const k of [k1, k2]) expect((await json(await fetch(`${app.url}/api/v1/virtual-keys/${k.id}`, authed(admin.token)))).spent_usd).toBeCloseTo(0.002, 9);
    expect((await patchUser(user.id, { max_budget_usd: 0.006 })).status).toBe(200);
    expect((await chat(k2.key)).status).toBe(200);
    expect((await chat(k1.key)).status).toBe(429);
    // No budget: no cap.
    expect((await patchUser(user.id, { max_budget_usd: null })).status).toBe(200);
    expect((await chat(k1.key)).status).toBe(200);
  });

  it('gives a key\'s reservation back when the user\'s budget refuses the call', async () => {
    const { user, session } = await newMember('budget-frank', { max_budget_usd: 0.002 });
    const k = await createKey(app, session.token, { max_budget_usd: 0.01 });
    expect((await chat(k.key)).status).toBe(200);
    const refused = await Promise.all(Array.from({ length: 10 }, () => chat(k.key)));
    expect(refused.map((r) => r.status)).toEqual(Array(10).fill(429));
    await Promise.all(refused.map((r) => r.text()));
    // Had the key kept those ten reservations ($0.02), its own budget would refuse every call now.
    expect((await patchUser(user.id, { max_budget_usd: null })).status).toBe(200);
    const after = await Promise.all(Array.from({ length: 4 }, () => chat(k.key)));
    expect(after.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect((await chat(k.key)).status).toBe(429);
  });

  it('holds under concurrency across keys: 40 calls at once against a budget for 5', async () => {
    const { session } = await newMember('budget-bob', { max_budget_usd: 0.01 });
    const keys = await Promise.all([createKey(app, session.token), createKey(app, session.token)]);
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => chat(keys[i % 2]!.key)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(5);
    expect(results.filter((r) => r.status === 429)).toHaveLength(35);
    await Promise.all(results.map((r) => r.text()));
    const usage = (await json(await fetch(`${app.url}/api/v1/usage?group_by=user`, authed(session.token)))).items;
    expect(usage[0].cost_usd).toBeCloseTo(0.01, 9);
  });

  it('renews by period, recounting from usage when the period is set, and keeps the count across a restart', async () => {
    const { user, session } = await newMember('budget-carol', { max_budget_usd: 0.004 });
    const k = await createKey(app, session.token);
    expect((await chat(k.key)).status).toBe(200);
    expect((await chat(k.key)).status).toBe(200);
    expect((await chat(k.key)).status).toBe(429);
    // A daily budget counts today's calls: both were today, so it stays spent, and says when it renews.
    expect(await json(await patchUser(user.id, { budget_period: 'day' }))).toMatchObject({ budget_period: 'day', max_budget_usd: 0.004 });
    const daily = await chat(k.key);
    expect(daily.status).toBe(429);
    expect((await json(daily)).error.message).toMatch(/^user budget of \$0\.004 is spent today; it renews at \d{4}-\d\d-\d\dT00:00:00\.000Z$/);
    const audit = await json(await fetch(`${app.url}/api/v1/audit?action=user.update&limit=5`, authed(admin.token)));
    expect(audit.items[0].details.budget).toEqual({ from: { max_budget_usd: 0.004, budget_period: null }, to: { max_budget_usd: 0.004, budget_period: 'day' } });

    expect(await app.stop('SIGTERM')).toBe(0);
    app = await startAppliance({ dataDir: app.dataDir });
    admin = await login(app, 'admin', 'correct-horse-battery');
    expect((await chat(k.key)).status).toBe(429);
    expect((await patchUser(user.id, { max_budget_usd: 0.006 })).status).toBe(200);
    expect((await chat(k.key)).status).toBe(200);
    expect((await chat(k.key)).status).toBe(429);
  });

  it('counts what a user spent before any budget was set, across a restart, once one is set', async () => {
    const { user, session } = await newMember('budget-gina');
    const k = await createKey(app, session.token);
    expect((await chat(k.key)).status).toBe(200);
    expect((await chat(k.key)).status).toBe(200);
    expect(await app.stop('SIGTERM')).toBe(0);
    app = await startAppliance({ dataDir: app.dataDir });
    admin = await login(app, 'admin', 'correct-horse-battery');
    // No budget yet: nothing to count; the call passes and the spend is now $0.006 in all.
    expect((await chat(k.key)).status).toBe(200);
    expect((await patchUser(user.id, { max_budget_usd: 0.006 })).status).toBe(200);
    expect((await chat(k.key)).status).toBe(429);
  });

  it('is the admin\'s to set, with bad values refused in the control plane\'s format', async () => {
    const { user, session } = await newMember('budget-dave');
    for (const bad of [{ max_budget_usd: -1 }, { max_budget_usd: '5' }, { max_budget_usd: 2e9 }, { budget_period: 'yearly' }, { budget_period: 7 }]) {
      const res = await patchUser(user.id, bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect((await json(res)).error.code).toBe('validation_failed');
    }
    const created = await post(`${app.url}/api/v1/users`, { username: 'budget-erin', password: 'member-password-1', budget_period: 'fortnight' }, { authorization: `Bearer ${admin.token}` });
    expect(created.status).toBe(400);
    // A member cannot raise their own budget.
    expect((await patchUser(user.id, { max_budget_usd: 100 }, session.token)).status).toBe(403);
    expect((await json(await fetch(`${app.url}/api/v1/users/${user.id}`, authed(admin.token))))).toMatchObject({ max_budget_usd: null, budget_period: null });
  });
});
