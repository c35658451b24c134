import type { Db } from '../../../core/db/db.ts';

export interface PendingLogin {
  nonce: string;
  code_verifier: string;
  return_to: string;
}

export interface OidcLoginsStore {
  create(l: PendingLogin & { stateHash: string; expiresAt: string }): void;
  /** Deletes and returns the pending login if it exists and has not expired: single use, atomic. */
  consume(stateHash: string, now: string): PendingLogin | undefined;
  deleteExpired(now: string): number;
}

export function createOidcLoginsStore(db: Db): OidcLoginsStore {
  const insert = db.prepare(`INSERT INTO oidc_logins (state_hash, nonce, code_verifier, return_to, created_at, expires_at)
    VALUES (?, ?, ?, ?, ?, ?)`);
  const take = db.prepare('DELETE FROM oidc_logins WHERE state_hash = ? RETURNING nonce, code_verifier, return_to, expires_at');
  const expired = db.prepare('DELETE FROM oidc_logins WHERE expires_at <= ?');
  return {
    create(l) {
      insert.run(l.stateHash, l.nonce, l.code_verifier, l.return_to, new Date().toISOString(), l.expiresAt);
    },
    consume(stateHash, now) {
      const row = take.get(stateHash) as (PendingLogin & { expires_at: string }) | undefined;
      if (!row || row.expires_at <= now) return undefined;
      return { nonce: row.nonce, code_verifier: row.code_verifier, return_to: row.return_to };
    },
    deleteExpired: (now) => expired.run(now).changes,
  };
}
