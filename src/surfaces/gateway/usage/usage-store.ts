// SQL for per-request usage rows and their aggregates.
import { statementCache, type Db } from '../../../core/db/db.ts';
import type { WriteOp } from '../../../core/db/write-ops.ts';

export interface UsageRow {
  ts: string;
  key_id: string | null;
  user_id: string | null;
  model: string;
  provider_id: string | null;
  deployment_id: string | null;
  upstream_model: string | null;
  ingress: string;
  operation: string;
  stream: number;
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  /** Seconds of input audio charged for (transcriptions, translations: usage/audio-metering.ts). */
  audio_seconds: number;
  /** Characters of speech input charged for. */
  input_characters: number;
  cost_usd: number;
  latency_ms: number | null;
  ttft_ms: number | null;
  status: number;
  error_code: string | null;
  routed_via: 'direct' | 'node';
  node_id: string | null;
  /** 1: answered from the response cache. */
  cache_hit: 0 | 1;
}

const USAGE_COLUMNS = [
  'ts', 'key_id', 'user_id', 'model', 'provider_id', 'deployment_id', 'upstream_model', 'ingress', 'operation', 'stream', 'input_tokens',
  'output_tokens', 'cached_tokens', 'reasoning_tokens', 'audio_seconds', 'input_characters', 'cost_usd', 'latency_ms', 'ttft_ms', 'status', 'error_code', 'routed_via',
  'node_id', 'cache_hit',
] as const;

export const USAGE_GROUPS = ['key', 'user', 'group', 'model', 'day', 'provider'] as const;
export type UsageGroup = (typeof USAGE_GROUPS)[number];

export interface UsageQuery {
  groupBy: UsageGroup[];
  since?: string;
  until?: string;
  keyId?: string;
  userId?: string;
  /** The calls of the keys charged to this group (now). */
  groupId?: string;
  model?: string;
  limit: number;
}

export interface UsageAggregate {
  key_id?: string | null;
  user_id?: string | null;
  group_id?: string | null;
  model?: string;
  provider_id?: string | null;
  day?: string;
  requests: number;
  errors: number;
  cache_hits: number;
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  audio_seconds: number;
  input_characters: number;
  cost_usd: number;
  avg_latency_ms: number | null;
  avg_ttft_ms: number | null;
}

// Group-by columns come from this fixed map only, never from the caller's text.
const GROUP_SQL: Record<UsageGroup, [expr: string, alias: string]> = {
  key: ['key_id', 'key_id'],
  user: ['user_id', 'user_id'],
  // The group the call's key is charged to now (usage rows carry the key; a key's group may change).
  group: ['(SELECT k.group_id FROM gateway_virtual_keys k WHERE k.id = gateway_usage.key_id)', 'group_id'],
  model: ['model', 'model'],
  provider: ['provider_id', 'provider_id'],
  day: ['substr(ts, 1, 10)', 'day'],
};

export interface UsageStore {
  aggregate(q: UsageQuery): UsageAggregate[];
}

/** The SELECT behind `aggregate` (exported so a test can check that each filter has an index to use). */
export function usageSelect(q: UsageQuery): { sql: string; params: Record<string, unknown> } {
  const groups = q.groupBy.map((g) => GROUP_SQL[g]);
  const where: string[] = [];
  const params: Record<string, unknown> = { limit: q.limit };
  const filters: [string, string, unknown][] = [
    ['ts >= @since', 'since', q.since],
    ['ts < @until', 'until', q.until],
    ['key_id = @keyId', 'keyId', q.keyId],
    ['user_id = @userId', 'userId', q.userId],
    ['key_id IN (SELECT k.id FROM gateway_virtual_keys k WHERE k.group_id = @groupId)', 'groupId', q.groupId],
    ['model = @model', 'model', q.model],
  ];
  for (const [clause, name, value] of filters) {
    if (value === undefined) continue;
    where.push(clause);
    params[name] = value;
  }
  const select = groups.map(([expr, alias]) => `${expr} AS ${alias}`);
  const sql = `SELECT ${[...select,
    'COUNT(*) AS requests',
    'SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END) AS errors',
    'SUM(cache_hit) AS cache_hits',
    'SUM(input_tokens) AS input_tokens',
    'SUM(output_tokens) AS output_tokens',
    'SUM(cached_tokens) AS cached_tokens',
    'SUM(reasoning_tokens) AS reasoning_tokens',
    'SUM(audio_seconds) AS audio_seconds',
    'SUM(input_characters) AS input_characters',
    'SUM(cost_usd) AS cost_usd',
    'AVG(latency_ms) AS avg_latency_ms',
    'AVG(ttft_ms) AS avg_ttft_ms',
  ].join(', ')} FROM gateway_usage${where.length ? ` WHERE ${where.join(' AND ')}` : ''}${
    groups.length ? ` GROUP BY ${groups.map(([, alias]) => alias).join(', ')} ORDER BY ${groups.map(([, alias]) => alias).join(', ')}` : ''
  } LIMIT @limit`;
  return { sql, params };
}

/** The batch that appends these rows (committed by the write thread; usage-recorder.ts). */
export function usageInsertOp(rows: readonly UsageRow[]): WriteOp {
  const values: unknown[] = [];
  for (const r of rows) {
    values.push(
      r.ts, r.key_id, r.user_id, r.model, r.provider_id, r.deployment_id, r.upstream_model, r.ingress, r.operation, r.stream, r.input_tokens,
      r.output_tokens, r.cached_tokens, r.reasoning_tokens, r.audio_seconds, r.input_characters, r.cost_usd, r.latency_ms, r.ttft_ms, r.status, r.error_code,
      r.routed_via, r.node_id, r.cache_hit,
    );
  }
  return { insert: 'gateway_usage', columns: USAGE_COLUMNS, values };
}

export function createUsageStore(db: Db): UsageStore {
  const prepared = statementCache(db);

  return {
    aggregate(q) {
      const { sql, params } = usageSelect(q);
      return prepared(sql).all(params) as UsageAggregate[];
    },
  };
}
