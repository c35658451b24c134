// Usage aggregates filter by key, user and time: each of those filters has an index to use (the table
// takes a row per gateway call).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { closeDatabase, openDatabase } from '../../../core/db/db.ts';
import { usageSelect, type UsageQuery } from './usage-store.ts';

describe('usage store', () => {
  const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'nexus-usage-')), 'nexus.db'));
  afterAll(() => closeDatabase(db));
  const plan = (q: Partial<UsageQuery>) => {
    const { sql, params } = usageSelect({ groupBy: ['model'], limit: 100, ...q });
    return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(params) as { detail: string }[]).map((r) => r.detail).join('; ');
  };

  it('has an index for the key, user, group and time filters', () => {
    expect(plan({ keyId: 'k' })).toContain('USING INDEX gateway_usage_key');
    expect(plan({ keyId: 'k', since: '2026-01-01' })).toContain('USING INDEX gateway_usage_key');
    expect(plan({ userId: 'u', groupBy: ['day'] })).toContain('USING INDEX gateway_usage_user');
    expect(plan({ since: '2026-01-01', until: '2026-02-01', groupBy: ['key', 'day'] })).toContain('USING INDEX gateway_usage_ts');
    // A group's calls: its keys by the partial index on group_id, then each key's rows by key and time.
    expect(plan({ groupId: 'g', since: '2026-01-01', groupBy: ['group'] })).toMatch(/gateway_usage_key[\s\S]*gateway_virtual_keys_group|gateway_virtual_keys_group[\s\S]*gateway_usage_key/);
  });
});
