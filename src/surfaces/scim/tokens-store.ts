import type { Db } from '../../core/db/db.ts';

export interface ScimToken {
  id: string;
  name: string;
  hint: string;
  created_by: string | null;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface ScimTokensStore {
  create(t: { id: string; name: string; tokenHash: string; hint: string; createdBy: string | null }): ScimToken;
  list(): ScimToken[];
  get(id: string): ScimToken | undefined;
  getByHash(hash: string): ScimToken | undefined;
  revoke(id: string): boolean;
  touch(id: string, at: string): void;
}

const COLS = 'id, name, hint, created_by, created_at, last_used_at, revoked_at';

export function createScimTokensStore(db: Db): ScimTokensStore {
  const insert = db.prepare('INSERT INTO scim_tokens (id, name, token_hash, hint, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)');
  const list = db.prepare(`SELECT ${COLS} FROM scim_tokens ORDER BY created_at DESC`);
  const byId = db.prepare(`SELECT ${COLS} FROM scim_tokens WHERE id = ?`);
  const byHash = db.prepare(`SELECT ${COLS} FROM scim_tokens WHERE token_hash = ?`);
  const revoke = db.prepare('UPDATE scim_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL');
  const touch = db.prepare('UPDATE scim_tokens SET last_used_at = ? WHERE id = ?');
  return {
    create(t) {
      insert.run(t.id, t.name, t.tokenHash, t.hint, t.createdBy, new Date().toISOString());
      return byId.get(t.id) as ScimToken;
    },
    list: () => list.all() as ScimToken[],
    get: (id) => byId.get(id) as ScimToken | undefined,
    getByHash: (hash) => byHash.get(hash) as ScimToken | undefined,
    revoke: (id) => revoke.run(new Date().toISOString(), id).changes > 0,
    touch: (id, at) => void touch.run(at, id),
  };
}
