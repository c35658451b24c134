// SQL for virtual keys. Secrets are stored only as a SHA-256 hash (and, for id.secret keys, the
// HMAC secret sealed by the secret box).
import type { Db } from '../../../core/db/db.ts';
import type { WriteOp } from '../../../core/db/write-ops.ts';

export interface VirtualKeyRow {
  id: string;
  name: string;
  key_hash: string;
  hint: string;
  format: 'standard' | 'id_secret';
  public_id: string | null;
  secret_sealed: string | null;
  user_id: string;
  models: string | null;
  max_budget_usd: number | null;
  spent_usd: number;
  rpm: number | null;
  tpm: number | null;
  expires_at: string | null;
  revoked_at: string | null;
  created_at: string;
  last_used_at: string | null;
}

export interface VirtualKeysStore {
  insert(row: Omit<VirtualKeyRow, 'spent_usd' | 'revoked_at' | 'last_used_at'>): void;
  get(id: string): VirtualKeyRow | undefined;
  getByHash(hash: string): VirtualKeyRow | undefined;
  getByPublicId(publicId: string): VirtualKeyRow | undefined;
  list(userId: string | null): VirtualKeyRow[];
  revoke(id: string, at: string): boolean;
  /** Edits a key that is not revoked; false when it is (or does not exist). */
  update(row: Pick<VirtualKeyRow, 'id' | 'name' | 'models' | 'max_budget_usd' | 'rpm' | 'tpm' | 'expires_at'>): boolean;
  /** Adds settled spend and marks keys used; one transaction per batch. */
}

/** The batch that adds settled spend to keys and marks them used (committed with the usage rows). */
export function spendOp(entries: Iterable<[id: string, usd: number]>, at: string): WriteOp {
  const params: unknown[][] = [];
  for (const [id, usd] of entries) params.push([usd, at, id]);
  return { sql: 'UPDATE gateway_virtual_keys SET spent_usd = spent_usd + ?, last_used_at = ? WHERE id = ?', params };
}

export function createVirtualKeysStore(db: Db): VirtualKeysStore {
  const insert = db.prepare(`INSERT INTO gateway_virtual_keys
    (id, name, key_hash, hint, format, public_id, secret_sealed, user_id, models, max_budget_usd, rpm, tpm, expires_at, created_at)
    VALUES (@id, @name, @key_hash, @hint, @format, @public_id, @secret_sealed, @user_id, @models, @max_budget_usd, @rpm, @tpm, @expires_at, @created_at)`);
  const get = db.prepare('SELECT * FROM gateway_virtual_keys WHERE id = ?');
  const getByHash = db.prepare('SELECT * FROM gateway_virtual_keys WHERE key_hash = ?');
  const getByPublicId = db.prepare('SELECT * FROM gateway_virtual_keys WHERE public_id = ?');
  const listAll = db.prepare('SELECT * FROM gateway_virtual_keys ORDER BY created_at DESC, id');
  const listForUser = db.prepare('SELECT * FROM gateway_virtual_keys WHERE user_id = ? ORDER BY created_at DESC, id');
  const revoke = db.prepare('UPDATE gateway_virtual_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL');
  const update = db.prepare(`UPDATE gateway_virtual_keys SET name = @name, models = @models, max_budget_usd = @max_budget_usd,
    rpm = @rpm, tpm = @tpm, expires_at = @expires_at WHERE id = @id AND revoked_at IS NULL`);

  return {
    insert: (row) => void insert.run(row),
    get: (id) => get.get(id) as VirtualKeyRow | undefined,
    getByHash: (hash) => getByHash.get(hash) as VirtualKeyRow | undefined,
    getByPublicId: (publicId) => getByPublicId.get(publicId) as VirtualKeyRow | undefined,
    list: (userId) => (userId === null ? listAll.all() : listForUser.all(userId)) as VirtualKeyRow[],
    revoke: (id, at) => revoke.run(at, id).changes > 0,
    update: (row) => update.run(row).changes > 0,
  };
}
