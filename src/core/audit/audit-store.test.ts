// The audit log's filters against the migrated schema: right rows, and an index for every filter the
// audit API offers that one can serve (the table takes a row per proxied request and gateway call).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { closeDatabase, openDatabase } from '../db/db.ts';
import { auditSelect, createAuditStore, type AuditEntry, type AuditQuery } from './audit-store.ts';

describe('audit store', () => {
  const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'nexus-audit-')), 'nexus.db'));
  const store = createAuditStore(db);
  afterAll(() => closeDatabase(db));

  const entry = (i: number): AuditEntry => ({
    ts: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
    actor_type: i % 2 ? 'virtual_key' : 'token',
    actor_id: `id-${i % 3}`,
    actor_name: `name-${i % 3}`,
    action: i % 2 ? 'gateway.chat' : 'proxy.request',
    outcome: i % 5 ? 'success' : 'failure',
    routed_via: i % 4 === 0 ? 'node' : 'direct',
    node_id: i % 4 === 0 ? `node-${i % 8}` : null,
    status: 200,
    details: { i },
  });
  store.insertMany(Array.from({ length: 200 }, (_, i) => entry(i)));
  const ids = (q: Partial<AuditQuery>) => store.query({ limit: 1000, ...q }).map((r) => (r.details as { i: number }).i);
  const expected = (pred: (i: number) => boolean) => Array.from({ length: 200 }, (_, i) => i).filter(pred).reverse();

  it('finds the rows each filter names, newest first', () => {
    expect(ids({ node_id: 'node-4' })).toEqual(expected((i) => i % 8 === 4));
    expect(ids({ node_id: 'node-4', before: 101 })).toEqual(expected((i) => i % 8 === 4 && i < 100));
    expect(ids({ routed_via: 'node' })).toEqual(expected((i) => i % 4 === 0));
    expect(ids({ actor: 'name-1' })).toEqual(expected((i) => i % 3 === 1));
    expect(ids({ actor: 'id-2' })).toEqual(expected((i) => i % 3 === 2));
    expect(ids({ action: 'gateway.*' })).toEqual(expected((i) => i % 2 === 1));
    expect(ids({ action: 'proxy.request', outcome: 'failure' })).toEqual(expected((i) => i % 2 === 0 && i % 5 === 0));
    const since = new Date(Date.UTC(2026, 0, 1, 0, 1, 0)).toISOString();
    const until = new Date(Date.UTC(2026, 0, 1, 0, 2, 0)).toISOString();
    expect(ids({ since, until })).toEqual(expected((i) => i >= 60 && i < 120));
  });

  it('has an index for the action, node and time-range filters', () => {
    const plan = (q: Partial<AuditQuery>) => {
      const { sql, params } = auditSelect({ limit: 100, ...q });
      return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(params) as { detail: string }[]).map((r) => r.detail).join('; ');
    };
    expect(plan({ action: 'gateway.chat' })).toContain('USING INDEX audit_action');
    // audit_node is partial (WHERE node_id IS NOT NULL): an equality filter still uses it.
    expect(plan({ node_id: 'n' })).toContain('USING INDEX audit_node');
    expect(plan({ node_id: 'n', before: 10 })).toContain('USING INDEX audit_node');
    expect(plan({ since: '2026-01-01T00:00:00.000Z', until: '2026-01-02T00:00:00.000Z' })).toContain('USING INDEX audit_ts');
  });
});
