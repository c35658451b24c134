// Usage rows, spend and audit entries of gateway calls are committed by the write thread. Calls
// answered right before a SIGTERM must all be on disk after a restart: none lost in the thread's
// queue, none written twice.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authed, json, login, setupAdmin } from '../helpers/api.ts';
import { startAppliance, type Appliance } from '../helpers/appliance.ts';
import { createKey, createProvider, simpleModel } from '../helpers/gateway.ts';
import { startLlmUpstream, type LlmUpstream } from '../helpers/llm-upstream.ts';

let app: Appliance | undefined;
let up: LlmUpstream;

beforeAll(async () => {
  up = await startLlmUpstream({ record: false });
});
afterAll(async () => {
  await app?.stop();
  await up.close();
});

describe('gateway usage writes', () => {
  it('keeps every call answered before a SIGTERM: usage rows, spend and audit entries, once each', async () => {
    app = await startAppliance();
    const admin = await setupAdmin(app);
    const provider = await createProvider(app, admin, { name: 'mock', type: 'openai-compatible', base_url: `${up.url}/v1`, api_key: 'sk-up' });
    await simpleModel(app, admin, provider.id, 'priced', 'priced', { input_price_per_mtok: 1000, output_price_per_mtok: 2000 });
    const vk = await createKey(app, admin.token);
    const call = async () => {
      const res = await fetch(`${app!.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${vk.key}` },
        body: JSON.stringify({ model: 'priced', max_tokens: 16, messages: [{ role: 'user', content: 'hello' }] }),
      });
      expect(res.status).toBe(200);
      return (await res.json()) as { usage: { prompt_tokens: number; completion_tokens: number } };
    };
    let expectedCost = 0;
    for (let wave = 0; wave < 28; wave++) {
      for (const r of await Promise.all(Array.from({ length: 10 }, call))) {
        expectedCost += (r.usage.prompt_tokens * 1000 + r.usage.completion_tokens * 2000) / 1e6;
      }
    }
    // Straight to SIGTERM: nothing has read usage or audit yet, so the last batches are still queued.
    expect(await app.stop('SIGTERM')).toBe(0);
    expect(app.output()).not.toContain('write failed');
    const dataDir = app.dataDir;

    app = await startAppliance({ dataDir });
    const again = await login(app, 'admin', 'correct-horse-battery');
    const usage = await json(await fetch(`${app.url}/api/v1/usage?group_by=key`, authed(again.token)));
    expect(usage.items).toHaveLength(1);
    expect(usage.items[0]).toMatchObject({ key_id: vk.id, requests: 280 });
    expect(usage.items[0].cost_usd).toBeCloseTo(expectedCost, 6);
    const key = await json(await fetch(`${app.url}/api/v1/virtual-keys/${vk.id}`, authed(again.token)));
    expect(key.spent_usd).toBeCloseTo(expectedCost, 6);
    expect(key.last_used_at).toEqual(expect.any(String));
    let audited = 0;
    let cursor: string | null = null;
    for (let page = 0; page < 10; page++) {
      const res: { items: unknown[]; next_cursor: string | null } = await json(
        await fetch(`${app.url}/api/v1/audit?action=gateway.chat&limit=100${cursor ? `&cursor=${cursor}` : ''}`, authed(again.token)),
      );
      audited += res.items.length;
      cursor = res.next_cursor;
      if (!cursor) break;
    }
    expect(audited).toBe(280);
  });
});
