// The operator CLI for the gateway's keys and usage against a real appliance: `nexus key update` sets
// and removes limits and scopes (`none`, `all`), refuses bad flags with exit 2, and `nexus usage`
// prints what the calls used and cost, grouped as asked.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authed, json, post, type Admin } from '../helpers/api.ts';
import { nexus, tempDir, type Appliance } from '../helpers/appliance.ts';
import { createKey, pricedChat, pricedGateway, simpleModel } from '../helpers/gateway.ts';
import type { LlmUpstream } from '../helpers/llm-upstream.ts';

let app: Appliance;
let admin: Admin;
let up: LlmUpstream;
let env: Record<string, string>;
let providerId: string;

beforeAll(async () => {
  ({ app, admin, up, providerId } = await pricedGateway());
  await simpleModel(app, admin, providerId, 'other', 'mock-other');
  env = { NEXUS_URL: app.url, NEXUS_TOKEN: admin.token, XDG_CONFIG_HOME: tempDir('nexus-cli-cfg-') };
});
afterAll(async () => {
  await app?.stop();
  await up?.close();
});

const getKey = async (id: string) => json(await fetch(`${app.url}/api/v1/virtual-keys/${id}`, authed(admin.token)));

describe('nexus key update', () => {
  it('sets and removes limits and scopes, only those named', async () => {
    const { id } = await createKey(app, admin.token, { models: ['other'], rpm: 5 });
    const set = await nexus(['key', 'update', id, '--budget', '12.5', '--budget-period', 'week', '--tpm', '1000', '--models', 'priced,other', '--name', 'renamed'], { env });
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('Virtual key "renamed" updated: name, models, max_budget_usd, budget_period, tpm.');
    expect(await getKey(id)).toMatchObject({ name: 'renamed', models: ['priced', 'other'], max_budget_usd: 12.5, budget_period: 'week', rpm: 5, tpm: 1000 });
    const cleared = await nexus(['key', 'update', id, '--budget', 'none', '--budget-period', 'none', '--rpm', 'none', '--models', 'all', '--expires', '2099-01-31', '--json'], { env });
    expect(cleared.code, cleared.stderr).toBe(0);
    expect(JSON.parse(cleared.stdout)).toMatchObject({ models: null, max_budget_usd: null, budget_period: null, rpm: null, tpm: 1000, expires_at: '2099-01-31T00:00:00.000Z' });
    // A typo'd model is saved all the same, with the API's warning on stderr.
    const typo = await nexus(['key', 'update', id, '--models', 'prcied'], { env });
    expect(typo.code).toBe(0);
    expect(typo.stderr).toContain('warning: model "prcied" is not configured');
  });

  it('refuses bad flags and an empty change with exit 2, before asking the appliance', async () => {
    const { id } = await createKey(app, admin.token);
    for (const [args, text] of [
      [[], 'nothing to change'],
      [['--rpm', '1.5'], '--rpm must be a positive integer'],
      [['--budget=-3'], '--budget must be a positive number'],
      [['--budget', '-3'], '--budget must not be negative (got -3)'],
      [['--name', '-x'], "--name -x: a value starting with '-' is written --name=-x"],
      [['--budget-period', 'monthly'], 'day, week, month or none'],
      [['--expires', 'someday'], '--expires must be a date'],
      [['--models', ' , '], '--models needs model names'],
      [['--name', ' '], '--name must not be empty'],
      [['--bogus'], 'bogus'],
    ] as const) {
      const r = await nexus(['key', 'update', id, ...args], { env });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(text);
    }
    const missing = await nexus(['key', 'update', '00000000-0000-4000-8000-000000000000', '--rpm', '3'], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('nexus key update: no virtual key with the id or name "00000000-0000-4000-8000-000000000000" (nexus key list)\n');
  });
});

describe('nexus usage', () => {
  it('prints calls, tokens and cost grouped as asked, with a total', async () => {
    const { id, key } = await createKey(app, admin.token, { name: 'usage-key' });
    const other = () => post(`${app.url}/v1/chat/completions`, { model: 'other', messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${key}` });
    for (const call of [() => pricedChat(app, key), () => pricedChat(app, key), other]) expect((await call()).status).toBe(200);
    const r = await nexus(['usage', '--by', 'model', '--key', id], { env });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^MODEL\s+REQUESTS\s+ERRORS\s+INPUT\s+OUTPUT\s+COST USD\s+AVG MS/);
    expect(lines.find((l) => l.startsWith('priced'))).toMatch(/^priced\s+2\s+0\s+\d+\s+4\s+0\.0040\s+\d+/);
    expect(r.stdout).toContain('total: 3 requests, $0.0040');
    const byDay = JSON.parse((await nexus(['usage', '--by', 'key,day', '--key', id, '--json'], { env })).stdout);
    expect(byDay.items).toEqual([expect.objectContaining({ key_id: id, day: new Date().toISOString().slice(0, 10), requests: 3 })]);
    const none = await nexus(['usage', '--since', '2099-01-01'], { env });
    expect(none.stdout).toContain('No gateway calls in that range.');
    const bad = await nexus(['usage', '--by', 'model,colour'], { env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('not "colour"');
    // Looks like a date to the CLI; the appliance refuses it and says what it takes.
    const badDate = await nexus(['usage', '--since', '2026-12-01 09:00'], { env });
    expect([badDate.code, badDate.stderr]).toEqual([1, 'nexus usage: querystring.since must match format "date-time-or-date" (a date such as 2026-12-01 or an RFC 3339 time such as 2026-12-01T09:30:00Z)\n']);
  });
});
