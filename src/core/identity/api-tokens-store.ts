import type { Db } from '../db/db.ts';

export interface ApiToken {
  id: string;
  user_id: string;
  name: string;
  hint: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface ApiTokensStore {
  create(t: { id: string; userId: string; name: string; tokenHash: string; hint: string; expiresAt: string | null }): ApiToken;
  getByHash(hash: string): ApiToken | undefined;
  get(id: string): ApiToken | undefined;
  listForUser(userId: string): ApiToken[];
  revoke(id: string): boolean;
  revokeForUser(userId: string): string[];
  touch(ids: string[], at: string): void;
}

const COLS = 'id, user_id, name, hint, created_at, expires_at, last_used_at, revoked_at';

export function createApiTokensStore(db: Db): ApiTokensStore {
  const insert = db.prepare(`INSERT INTO api_tokens (id, user_id, name, token_hash, hint, created_at, expires_at)
    VALUES (?, ?, ?, ?, ?, ?, ?)`);
  const byHash = db.prepare(`SELECT ${COLS} FROM api_tokens WHERE token_hash = ?`);
  const byId = db.prepare(`SELECT ${COLS} FROM api_tokens WHERE id = ?`);
  const forUser = db.prepare(`SELECT ${COLS} FROM api_tokens WHERE user_id = ? ORDER BY created_at DESC`);
  const revoke = db.prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL');
  const revokeUser = db.prepare('UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL RETURNING id');
  const touch = db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?');
  const touchMany = db.transaction((ids: string[], at: string) => {
    for (const id of ids) touch.run(at, id);
  });
  return {
    create(t) {
      insert.run(t.id, t.userId, t.name, t.tokenHash, t.hint, new Date().toISOString(), t.expiresAt);
      return byId.get(t.id) as ApiToken;
    },
    getByHash: (hash) => byHash.get(hash) as ApiToken | undefined,
    get: (id) => byId.get(id) as ApiToken | undefined,
    listForUser: (userId) => forUser.all(userId) as ApiToken[],
    revoke: (id) => revoke.run(new Date().toISOString(), id).changes > 0,
    revokeForUser: (userId) => (revokeUser.all(new Date().toISOString(), userId) as { id: string }[]).map((r) => r.id),
    touch: (ids, at) => touchMany(ids, at),
  };
}
