import type { Db } from '../../core/db/db.ts';

export interface CliCodesStore {
  create(c: { codeHash: string; userId: string; expiresAt: string }): void;
  /** Deletes the code and returns its user if it existed and had not expired: single use, atomic. */
  consume(codeHash: string, now: string): { user_id: string } | undefined;
  deleteExpired(now: string): number;
}

export function createCliCodesStore(db: Db): CliCodesStore {
  const insert = db.prepare('INSERT INTO cli_codes (code_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)');
  const take = db.prepare('DELETE FROM cli_codes WHERE code_hash = ? RETURNING user_id, expires_at');
  const expired = db.prepare('DELETE FROM cli_codes WHERE expires_at <= ?');
  return {
    create(c) {
      insert.run(c.codeHash, c.userId, new Date().toISOString(), c.expiresAt);
    },
    consume(codeHash, now) {
      const row = take.get(codeHash) as { user_id: string; expires_at: string } | undefined;
      return row && row.expires_at > now ? { user_id: row.user_id } : undefined;
    },
    deleteExpired: (now) => expired.run(now).changes,
  };
}
