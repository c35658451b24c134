import type { Db } from '../db/db.ts';
import { createOpsApplier, type WriteOp } from '../db/write-ops.ts';

export type Outcome = 'success' | 'failure' | 'denied';

export interface AuditEntry {
  actor_type: 'user' | 'token' | 'virtual_key' | 'scim' | 'node' | 'system' | 'anonymous';
  actor_id?: string | null;
  actor_name?: string | null;
  action: string;
  target_type?: string | null;
  target_id?: string | null;
  outcome: Outcome;
  source_ip?: string | null;
  routed_via?: 'direct' | 'node' | null;
  node_id?: string | null;
  status?: number | null;
  details?: Record<string, unknown> | null;
  ts?: string;
}

export interface AuditRecord extends Omit<AuditEntry, 'details'> {
  id: number;
  ts: string;
  details: Record<string, unknown> | null;
}

export interface AuditQuery {
  action?: string;
  actor?: string;
  routed_via?: string;
  node_id?: string;
  outcome?: string;
  since?: string;
  until?: string;
  /** Return rows with id < before (descending pages). */
  before?: number;
  limit: number;
}

export interface AuditStore {
  insertMany(entries: AuditEntry[]): void;
  query(q: AuditQuery): AuditRecord[];
}

/** The SELECT behind `query` (exported so a test can check that each filter has an index to use). */
export function auditSelect(q: AuditQuery): { sql: string; params: Record<string, unknown> } {
  const where: string[] = [];
  const params: Record<string, unknown> = { limit: q.limit };
  if (q.action) {
    // "proxy.*" matches every proxy action; anything else is exact.
    if (q.action.endsWith('.*')) {
      where.push("action LIKE @action ESCAPE '\\'");
      params.action = q.action.slice(0, -1).replace(/[\\%_]/g, (c) => '\\' + c) + '%';
    } else {
      where.push('action = @action');
      params.action = q.action;
    }
  }
  if (q.actor) {
    where.push('(actor_name = @actor OR actor_id = @actor)');
    params.actor = q.actor;
  }
  if (q.routed_via) {
    where.push('routed_via = @routed_via');
    params.routed_via = q.routed_via;
  }
  if (q.node_id) {
    where.push('node_id = @node_id');
    params.node_id = q.node_id;
  }
  if (q.outcome) {
    where.push('outcome = @outcome');
    params.outcome = q.outcome;
  }
  if (q.since) {
    where.push('ts >= @since');
    params.since = q.since;
  }
  if (q.until) {
    where.push('ts < @until');
    params.until = q.until;
  }
  if (q.before !== undefined) {
    where.push('id < @before');
    params.before = q.before;
  }
  return { sql: `SELECT * FROM audit_log ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT @limit`, params };
}

const AUDIT_COLUMNS = ['ts', 'actor_type', 'actor_id', 'actor_name', 'action', 'target_type', 'target_id', 'outcome', 'source_ip', 'routed_via', 'node_id', 'status', 'details'] as const;

/** The batch that appends these entries (committed by the write thread or by `insertMany`). */
export function auditInsertOp(entries: readonly AuditEntry[]): WriteOp {
  const values: unknown[] = [];
  for (const e of entries) {
    values.push(
      e.ts ?? new Date().toISOString(), e.actor_type, e.actor_id ?? null, e.actor_name ?? null, e.action, e.target_type ?? null, e.target_id ?? null,
      e.outcome, e.source_ip ?? null, e.routed_via ?? null, e.node_id ?? null, e.status ?? null, e.details ? JSON.stringify(e.details) : null,
    );
  }
  return { insert: 'audit_log', columns: AUDIT_COLUMNS, values };
}

export function createAuditStore(db: Db): AuditStore {
  const apply = createOpsApplier(db);
  return {
    insertMany: (entries) => apply([auditInsertOp(entries)]),
    query(q) {
      const { sql, params } = auditSelect(q);
      return (db.prepare(sql).all(params) as (AuditRecord & { details: string | null })[]).map((r) => ({
        ...r,
        details: r.details ? (JSON.parse(r.details) as Record<string, unknown>) : null,
      }));
    },
  };
}
