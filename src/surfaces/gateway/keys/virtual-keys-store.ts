// SQL for virtual keys. Secrets are stored only as a SHA-256 hash (and, for id.secret keys, the
// HMAC secret sealed by the secret box).
import type { Db } from '../../../core/db/db.ts';
import type { WriteOp } from '../../../core/db/write-ops.ts';
import type { BudgetPeriod } from './limits.ts';

export interface VirtualKeyRow {
  id: string;
  name: string;
  key_hash: string;
  hint: string;
  format: 'standard' | 'id_secret';
  public_id: string | null;
  secret_sealed: string | null;
  user_id: string;
  /** The group the key's calls are charged to as well (its budget applies); null: none. */
  group_id: string | null;
  models: string | null;
  max_budget_usd: number | null;
  budget_period: BudgetPeriod | null;
  /** The start of the period spent_usd counts (ISO); null without a period. */
  budget_period_start: string | null;
  spent_usd: number;
  rpm: number | null;
  tpm: number | null;
  expires_at: string | null;
  revoked_at: string | null;
  created_at: string;
  last_used_at: string | null;
  /** The secret before the last rotation (never shown): its hash, or public id and sealed secret. */
  previous_key_hash: string | null;
  previous_public_id: string | null;
  previous_secret_sealed: string | null;
  /** Until when that secret still works (ISO); null: it stopped at the rotation. */
  previous_valid_until: string | null;
  rotated_at: string | null;
}

/** A new secret for a key (the row's current one becomes its previous). */
export interface Rotation {
  id: string;
  key_hash: string;
  hint: string;
  public_id: string | null;
  secret_sealed: string | null;
  previous_valid_until: string | null;
  rotated_at: string;
}

export interface VirtualKeysStore {
  insert(row: Omit<VirtualKeyRow, 'spent_usd' | 'revoked_at' | 'last_used_at' | 'previous_key_hash' | 'previous_public_id' | 'previous_secret_sealed' | 'previous_valid_until' | 'rotated_at'>): void;
  get(id: string): VirtualKeyRow | undefined;
  getByHash(hash: string): VirtualKeyRow | undefined;
  getByPublicId(publicId: string): VirtualKeyRow | undefined;
  /** The key whose secret before its last rotation was this one. */
  getByPreviousHash(hash: string): VirtualKeyRow | undefined;
  getByPreviousPublicId(publicId: string): VirtualKeyRow | undefined;
  /** Replaces a key's secret, keeping the current one as previous; false when revoked or gone. */
  rotate(r: Rotation): boolean;
  list(userId: string | null): VirtualKeyRow[];
  revoke(id: string, at: string): boolean;
  /**
   * Edits a key that is not revoked; false when it is (or does not exist). `rebase` restarts the spend
   * count (a new budget period); otherwise spent_usd and its period are left to the spend batches.
   */
  update(row: KeyUpdate): boolean;
  /** What the key's usage rows cost from `since` (ISO) on. */
  costSince(id: string, since: string): number;
  /** What a user's usage rows (all their keys) cost from `since` on. */
  userCostSince(userId: string, since: string): number;
  /** What the usage rows of the keys charged to a group cost from `since` on. */
  groupCostSince(groupId: string, since: string): number;
}

export type KeyUpdate = Pick<VirtualKeyRow, 'id' | 'name' | 'group_id' | 'models' | 'max_budget_usd' | 'budget_period' | 'rpm' | 'tpm' | 'expires_at'> & {
  rebase: { spent_usd: number; budget_period_start: string | null } | null;
};

/** Settled spend for one key, and the budget period it belongs to (null: the key has none). */
export interface PendingSpend {
  usd: number;
  since: string | null;
}

/**
 * The batch that adds settled spend to keys and marks them used (committed with the usage rows).
 * Spend of a period the row does not hold yet replaces the old period's figure.
 */
export function spendOp(entries: Iterable<[id: string, spend: PendingSpend]>, at: string): WriteOp {
  const params: unknown[][] = [];
  for (const [id, { usd, since }] of entries) params.push([since, usd, usd, since, at, id]);
  return {
    sql: `UPDATE gateway_virtual_keys SET spent_usd = CASE WHEN budget_period_start IS ? THEN spent_usd + ? ELSE ? END,
      budget_period_start = ?, last_used_at = ? WHERE id = ?`,
    params,
  };
}

export function createVirtualKeysStore(db: Db): VirtualKeysStore {
  const insert = db.prepare(`INSERT INTO gateway_virtual_keys
    (id, name, key_hash, hint, format, public_id, secret_sealed, user_id, group_id, models, max_budget_usd, budget_period, budget_period_start, rpm, tpm, expires_at, created_at)
    VALUES (@id, @name, @key_hash, @hint, @format, @public_id, @secret_sealed, @user_id, @group_id, @models, @max_budget_usd, @budget_period, @budget_period_start, @rpm, @tpm, @expires_at, @created_at)`);
  const get = db.prepare('SELECT * FROM gateway_virtual_keys WHERE id = ?');
  const getByHash = db.prepare('SELECT * FROM gateway_virtual_keys WHERE key_hash = ?');
  const getByPublicId = db.prepare('SELECT * FROM gateway_virtual_keys WHERE public_id = ?');
  const getByPreviousHash = db.prepare('SELECT * FROM gateway_virtual_keys WHERE previous_key_hash = ?');
  const getByPreviousPublicId = db.prepare('SELECT * FROM gateway_virtual_keys WHERE previous_public_id = ?');
  const rotate = db.prepare(`UPDATE gateway_virtual_keys SET previous_key_hash = key_hash, previous_public_id = public_id,
    previous_secret_sealed = secret_sealed, previous_valid_until = @previous_valid_until, rotated_at = @rotated_at,
    key_hash = @key_hash, hint = @hint, public_id = @public_id, secret_sealed = @secret_sealed
    WHERE id = @id AND revoked_at IS NULL`);
  const listAll = db.prepare('SELECT * FROM gateway_virtual_keys ORDER BY created_at DESC, id');
  const listForUser = db.prepare('SELECT * FROM gateway_virtual_keys WHERE user_id = ? ORDER BY created_at DESC, id');
  const revoke = db.prepare('UPDATE gateway_virtual_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL');
  const update = db.prepare(`UPDATE gateway_virtual_keys SET name = @name, group_id = @group_id, models = @models, max_budget_usd = @max_budget_usd,
    budget_period = @budget_period,
    budget_period_start = CASE WHEN @rebase THEN @budget_period_start ELSE budget_period_start END,
    spent_usd = CASE WHEN @rebase THEN @spent_usd ELSE spent_usd END,
    rpm = @rpm, tpm = @tpm, expires_at = @expires_at WHERE id = @id AND revoked_at IS NULL`);
  const costSince = db.prepare('SELECT COALESCE(SUM(cost_usd), 0) AS usd FROM gateway_usage WHERE key_id = ? AND ts >= ?');
  const userCostSince = db.prepare('SELECT COALESCE(SUM(cost_usd), 0) AS usd FROM gateway_usage WHERE user_id = ? AND ts >= ?');
  const groupCostSince = db.prepare(`SELECT COALESCE(SUM(cost_usd), 0) AS usd FROM gateway_usage
    WHERE key_id IN (SELECT id FROM gateway_virtual_keys WHERE group_id = ?) AND ts >= ?`);

  return {
    insert: (row) => void insert.run(row),
    get: (id) => get.get(id) as VirtualKeyRow | undefined,
    getByHash: (hash) => getByHash.get(hash) as VirtualKeyRow | undefined,
    getByPublicId: (publicId) => getByPublicId.get(publicId) as VirtualKeyRow | undefined,
    getByPreviousHash: (hash) => getByPreviousHash.get(hash) as VirtualKeyRow | undefined,
    getByPreviousPublicId: (publicId) => getByPreviousPublicId.get(publicId) as VirtualKeyRow | undefined,
    rotate: (r) => rotate.run(r).changes > 0,
    list: (userId) => (userId === null ? listAll.all() : listForUser.all(userId)) as VirtualKeyRow[],
    revoke: (id, at) => revoke.run(at, id).changes > 0,
    update: ({ rebase, ...row }) => update.run({ ...row, rebase: rebase ? 1 : 0, spent_usd: rebase?.spent_usd ?? 0, budget_period_start: rebase?.budget_period_start ?? null }).changes > 0,
    costSince: (id, since) => (costSince.get(id, since) as { usd: number }).usd,
    userCostSince: (userId, since) => (userCostSince.get(userId, since) as { usd: number }).usd,
    groupCostSince: (groupId, since) => (groupCostSince.get(groupId, since) as { usd: number }).usd,
  };
}
