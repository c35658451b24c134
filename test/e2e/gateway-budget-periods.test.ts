// Budgets that renew every UTC day, week or month: refusals say when the budget renews (message and
// Retry-After), an edit of the period recounts from the key's usage, a stored figure of an earlier
// period counts as nothing spent after a restart, and bad periods are refused in the API's format.
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authed, json, login, post, type Admin } from '../helpers/api.ts';
import { nexus, startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { createKey, pricedChat, pricedGateway } from '../helpers/gateway.ts';
import type { LlmUpstream } from '../helpers/llm-upstream.ts';

let app: Appliance;
let admin: Admin;
let up: LlmUpstream;

// Each call costs exactly $0.002 (pricedGateway).
const chat = (key: string) => pricedChat(app, key);
const getKey = async (id: string) => json(await fetch(`${app.url}/api/v1/virtual-keys/${id}`, authed(admin.token)));
const patchKey = (id: string, body: unknown) => fetch(`${app.url}/api/v1/virtual-keys/${id}`, authed(admin.token, { method: 'PATCH', body: JSON.stringify(body) }));
const utcDay = (t: number, plusDays = 0) => {
  const d = new Date(t);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + plusDays)).toISOString();
};

beforeAll(async () => {
  ({ app, admin, up } = await pricedGateway());
});
afterAll(async () => {
  await app?.stop();
  await up?.close();
});

describe('budget periods', () => {
  it('refuses a spent daily budget until the next UTC midnight, and says so', async () => {
    const { id, key } = await createKey(app, admin.token, { max_budget_usd: 0.004, budget_period: 'day' });
    const now = Date.now();
    expect(await getKey(id)).toMatchObject({ budget_period: 'day', budget_period_start: utcDay(now), budget_resets_at: utcDay(now, 1), spent_usd: 0 });
    const results = await Promise.all(Array.from({ length: 20 }, () => chat(key)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(2);
    await Promise.all(results.map((r) => r.text()));
    const refused = await chat(key);
    expect(refused.status).toBe(429);
    const body = await json(refused);
    expect(body.error).toMatchObject({ type: 'insufficient_quota', code: 'budget_exceeded' });
    expect(body.error.message).toBe(`virtual key budget of $0.004 is spent today; it renews at ${utcDay(now, 1)}`);
    const untilMidnight = (Date.parse(utcDay(now, 1)) - Date.now()) / 1000;
    expect(Math.abs(Number(refused.headers.get('retry-after')) - untilMidnight)).toBeLessThan(30);
    expect((await getKey(id)).spent_usd).toBeCloseTo(0.004, 9);
  });

  it('recounts from the key\'s usage when the period changes, and keeps the count on other edits', async () => {
    const { id, key } = await createKey(app, admin.token, { max_budget_usd: 1 });
    for (let i = 0; i < 3; i++) expect((await chat(key)).status).toBe(200);
    const monthly = await patchKey(id, { budget_period: 'month' });
    expect(monthly.status).toBe(200);
    const m = await json(monthly);
    expect(m).toMatchObject({ budget_period: 'month', budget_resets_at: expect.stringMatching(/-01T00:00:00\.000Z$/) });
    expect(m.spent_usd).toBeCloseTo(0.006, 9); // all three calls were this month
    expect((await chat(key)).status).toBe(200);
    const renamed = await json(await patchKey(id, { name: 'renamed', max_budget_usd: 0.008 }));
    expect(renamed.spent_usd).toBeCloseTo(0.008, 9);
    expect((await chat(key)).status).toBe(429);
    const lifetime = await json(await patchKey(id, { budget_period: null }));
    expect(lifetime).toMatchObject({ budget_period: null, budget_period_start: null, budget_resets_at: null });
    expect(lifetime.spent_usd).toBeCloseTo(0.008, 9);
    // The change is audited with old and new values.
    const audit = await json(await fetch(`${app.url}/api/v1/audit?action=gateway.virtual_key.update&limit=10`, authed(admin.token)));
    expect(audit.items.some((e: { details: { changes?: Record<string, unknown> } }) => JSON.stringify(e.details.changes?.budget_period) === '{"from":"month","to":null}')).toBe(true);
  });

  it('refuses an unknown or mistyped period in the API\'s error format', async () => {
    const { id } = await createKey(app, admin.token);
    for (const bad of ['yearly', 'DAY', '', 30, ['month'], { every: 'day' }]) {
      const res = await patchKey(id, { budget_period: bad });
      expect(res.status).toBe(400);
      expect((await json(res)).error).toMatchObject({ code: 'validation_failed' });
    }
    const created = await post(`${app.url}/api/v1/virtual-keys`, { name: 'x', budget_period: 'fortnight' }, { authorization: `Bearer ${admin.token}` });
    expect(created.status).toBe(400);
    expect(JSON.stringify(await json(created))).toContain('budget_period');
    expect((await getKey(id)).budget_period).toBeNull();
  });

  it('offers the period in the CLI, refusing a period without a budget', async () => {
    const env = { NEXUS_URL: app.url, NEXUS_TOKEN: admin.token, XDG_CONFIG_HOME: tempDir('nexus-cli-cfg-') };
    const ok = await nexus(['key', 'create', 'weekly', '--budget', '5', '--budget-period', 'week', '--json'], { env });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ max_budget_usd: 5, budget_period: 'week' });
    const list = await nexus(['key', 'list'], { env });
    expect(list.stdout).toMatch(/\$0\.0000\/\$5 per week/);
    const bad = await nexus(['key', 'create', 'x', '--budget-period', 'month'], { env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--budget-period needs --budget');
    const typo = await nexus(['key', 'create', 'x', '--budget', '1', '--budget-period', 'monthly'], { env });
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('day, week or month');
  });

  it('after a restart, counts a stored figure of an earlier period as nothing spent', async () => {
    const { id, key } = await createKey(app, admin.token, { max_budget_usd: 0.002, budget_period: 'day' });
    expect((await chat(key)).status).toBe(200);
    expect((await chat(key)).status).toBe(429);
    expect(await app.stop('SIGTERM')).toBe(0);
    // As if the spend were yesterday's: the row still holds it when today begins.
    const db = new Database(join(app.dataDir, 'nexus.db'));
    const yesterday = utcDay(Date.now(), -1);
    expect(db.prepare('UPDATE gateway_virtual_keys SET budget_period_start = ? WHERE id = ?').run(yesterday, id).changes).toBe(1);
    db.close();
    app = await startAppliance({ dataDir: app.dataDir });
    admin = await login(app, 'admin', 'correct-horse-battery');
    expect(await getKey(id)).toMatchObject({ spent_usd: 0, budget_period_start: utcDay(Date.now()) });
    expect((await chat(key)).status).toBe(200);
    expect((await chat(key)).status).toBe(429);
    const check = new Database(join(app.dataDir, 'nexus.db'), { readonly: true });
    await json(await fetch(`${app.url}/api/v1/usage?group_by=key`, authed(admin.token))); // reading usage commits queued spend
    const row = check.prepare('SELECT spent_usd, budget_period_start FROM gateway_virtual_keys WHERE id = ?').get(id) as { spent_usd: number; budget_period_start: string };
    check.close();
    expect(row.budget_period_start).toBe(utcDay(Date.now()));
    expect(row.spent_usd).toBeCloseTo(0.002, 9);
  });
});
