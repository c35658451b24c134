// Periodic budgets against a real SQLite file: spend batches tagged with their period add to the row's
// figure or replace an older period's; changing a key's period recounts from its usage rows.
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createSecretBox } from '../../../core/crypto/secret-box.ts';
import { closeDatabase, openDatabase } from '../../../core/db/db.ts';
import { createOpsApplier } from '../../../core/db/write-ops.ts';
import { Events } from '../../../core/events/events.ts';
import { usageInsertOp, type UsageRow } from '../usage/usage-store.ts';
import { periodOf } from './limits.ts';
import { createVirtualKeys } from './virtual-keys.ts';
import { spendOp } from './virtual-keys-store.ts';
import { createGroupsStore } from '../../../core/identity/groups-store.ts';

const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'nexus-vk-')), 'nexus.db'));
afterAll(() => closeDatabase(db));
const apply = createOpsApplier(db);
const now = new Date().toISOString();
db.prepare("INSERT INTO users (id, username, created_at, updated_at) VALUES ('u1', 'alice', ?, ?)").run(now, now);

let flushes = 0;
const keys = createVirtualKeys({
  db,
  secretBox: createSecretBox(randomBytes(32)),
  events: new Events(),
  users: { get: (id: string) => (id === 'u1' ? ({ id, active: true } as never) : undefined) },
  groups: createGroupsStore(db),
  flushUsage: () => {
    flushes++;
    const drained = keys.drainSpend();
    if (drained.size) apply([spendOp(drained, new Date().toISOString())]);
  },
});
const stored = (id: string) => db.prepare('SELECT spent_usd, budget_period, budget_period_start FROM gateway_virtual_keys WHERE id = ?').get(id) as { spent_usd: number; budget_period: string | null; budget_period_start: string | null };
const usageRow = (keyId: string, ts: string, cost: number): UsageRow => ({
  ts, key_id: keyId, user_id: 'u1', model: 'm', provider_id: null, deployment_id: null, upstream_model: null, ingress: 'openai', operation: 'chat', stream: 0,
  input_tokens: 1, output_tokens: 1, cached_tokens: 0, reasoning_tokens: 0, audio_seconds: 0, input_characters: 0, cost_usd: cost, latency_ms: 1, ttft_ms: null, status: 200, error_code: null, routed_via: 'direct', node_id: null, cache_hit: 0,
});
const monthStart = new Date(periodOf('month', Date.now()).start).toISOString();

describe('periodic budgets in the store', () => {
  it('adds spend of the stored period and replaces an older period\'s', () => {
    const { record } = keys.create({ name: 'k', user_id: 'u1', max_budget_usd: 10, budget_period: 'month' });
    expect(stored(record.id)).toEqual({ spent_usd: 0, budget_period: 'month', budget_period_start: monthStart });
    apply([spendOp([[record.id, { usd: 1.5, since: monthStart }]], now)]);
    apply([spendOp([[record.id, { usd: 0.25, since: monthStart }]], now)]);
    expect(stored(record.id).spent_usd).toBeCloseTo(1.75, 9);
    // A later period's first spend replaces the figure and moves the period.
    apply([spendOp([[record.id, { usd: 0.5, since: '2099-01-01T00:00:00.000Z' }]], now)]);
    expect(stored(record.id)).toMatchObject({ spent_usd: 0.5, budget_period_start: '2099-01-01T00:00:00.000Z' });
  });

  it('shows a stored figure of an earlier period as nothing spent, and the renewal time', () => {
    const { record } = keys.create({ name: 'old', user_id: 'u1', max_budget_usd: 10, budget_period: 'day' });
    db.prepare("UPDATE gateway_virtual_keys SET spent_usd = 9, budget_period_start = '2020-01-01T00:00:00.000Z' WHERE id = ?").run(record.id);
    const v = keys.get(record.id);
    expect(v.spent_usd).toBe(0);
    expect(v.budget_period_start).toBe(new Date(periodOf('day', Date.now()).start).toISOString());
    expect(v.budget_resets_at).toBe(new Date(periodOf('day', Date.now()).end).toISOString());
    expect(keys.get(keys.create({ name: 'none', user_id: 'u1' }).record.id)).toMatchObject({ budget_period: null, budget_period_start: null, budget_resets_at: null });
  });

  it('tags settled spend with the key\'s period, and a period change recounts from usage', () => {
    const { key, record } = keys.create({ name: 'switch', user_id: 'u1', max_budget_usd: 100 });
    const resolved = keys.resolve(key);
    if (!('id' in resolved)) throw new Error(resolved.message);
    // Usage: 4 before this month, 3 in it (one row pending, its spend not yet drained).
    apply([usageInsertOp([usageRow(record.id, '2000-01-01T00:00:00.000Z', 4), usageRow(record.id, monthStart, 2)])]);
    apply([spendOp([[record.id, { usd: 6, since: null }]], now)]);
    apply([usageInsertOp([usageRow(record.id, new Date().toISOString(), 1)])]);
    keys.addSpend(record.id, 1);
    const before = flushes;
    const { after } = keys.update(record.id, { budget_period: 'month' });
    expect(flushes).toBe(before + 1);
    expect(after).toMatchObject({ budget_period: 'month', spent_usd: 3, budget_period_start: monthStart });
    expect(stored(record.id)).toMatchObject({ spent_usd: 3, budget_period_start: monthStart });
    expect(resolved.limits.spentUsd).toBe(3);
    // Spend settled now is tagged with this month and adds to it.
    keys.addSpend(record.id, 0.5);
    expect([...keys.drainSpend()]).toEqual([[record.id, { usd: 0.5, since: monthStart }]]);
    // Back to no period: everything the key's usage ever cost.
    expect(keys.update(record.id, { budget_period: null }).after).toMatchObject({ budget_period: null, spent_usd: 7, budget_period_start: null });
    // An edit that leaves the period alone leaves the stored figure to the spend batches.
    apply([spendOp([[record.id, { usd: 1, since: null }]], now)]);
    keys.update(record.id, { name: 'renamed', max_budget_usd: 50 });
    expect(stored(record.id).spent_usd).toBe(8);
  });
});
