// SQL for enrolled nodes. The only module that touches the `nodes` table (it also reads which AI
// gateway providers name a node, for what deleting one would affect).
import type { Db } from '../../core/db/db.ts';

export interface NodeRow {
  id: string;
  owner_id: string;
  name: string;
  registration_expires_at: string | null;
  enrolled_at: string | null;
  last_seen_at: string | null;
  created_at: string;
}

export interface NodeSecrets {
  id: string;
  auth_token_hash: string | null;
  signing_secret_sealed: string | null;
}

const PUBLIC = 'id, owner_id, name, registration_expires_at, enrolled_at, last_seen_at, created_at';

export function createNodesStore(db: Db) {
  const insert = db.prepare(`INSERT INTO nodes (id, owner_id, name, registration_token_hash, registration_expires_at, created_at, updated_at)
    VALUES (@id, @owner_id, @name, @hash, @expires_at, @now, @now)`);
  // One statement: the token is checked and cleared atomically, so two racing enrolls cannot both win.
  const consume = db.prepare(`UPDATE nodes SET registration_token_hash = NULL, registration_expires_at = NULL,
      auth_token_hash = @auth_hash, signing_secret_sealed = NULL, enrolled_at = @now, updated_at = @now
    WHERE registration_token_hash = @hash AND registration_expires_at > @now RETURNING id`);
  const setSecret = db.prepare('UPDATE nodes SET signing_secret_sealed = ? WHERE id = ?');
  // A node may be given a new registration token at any time (to enroll again on a new host, or after
  // its credentials were rotated); the one it replaces stops working, its live credentials do not.
  const reissue = db.prepare(`UPDATE nodes SET registration_token_hash = @hash, registration_expires_at = @expires_at, updated_at = @now
    WHERE id = @id`);
  const rotate = db.prepare(`UPDATE nodes SET auth_token_hash = @auth_hash, signing_secret_sealed = @sealed, updated_at = @now
    WHERE id = @id AND enrolled_at IS NOT NULL`);
  const byId = db.prepare(`SELECT ${PUBLIC} FROM nodes WHERE id = ?`);
  const byAuth = db.prepare('SELECT id, auth_token_hash, signing_secret_sealed FROM nodes WHERE id = ? AND auth_token_hash IS NOT NULL');
  const list = db.prepare(`SELECT ${PUBLIC} FROM nodes ORDER BY created_at, id`);
  const listOwner = db.prepare(`SELECT ${PUBLIC} FROM nodes WHERE owner_id = ? ORDER BY created_at, id`);
  const del = db.prepare('DELETE FROM nodes WHERE id = ?');
  const seen = db.prepare('UPDATE nodes SET last_seen_at = ? WHERE id = ?');
  const named = db.prepare('SELECT id FROM nodes WHERE owner_id = ? AND name = ? LIMIT 1').pluck();
  const providers = db.prepare('SELECT id, name FROM gateway_providers WHERE node_id = ? ORDER BY name, id');

  return {
    /** Inserts the node unless its owner has one of that name already: returns that one's id, else null. */
    create: db.transaction((row: { id: string; owner_id: string; name: string; hash: string; expires_at: string }): string | null => {
      const taken = named.get(row.owner_id, row.name) as string | undefined;
      if (taken) return taken;
      insert.run({ ...row, now: new Date().toISOString() });
      return null;
    }),
    /** Consumes a registration token; returns the node id, or null when unknown, used or expired. */
    consumeRegistration: db.transaction((hash: string, authHash: string, seal: (id: string) => string): string | null => {
      const row = consume.get({ hash, auth_hash: authHash, now: new Date().toISOString() }) as { id: string } | undefined;
      if (!row) return null;
      setSecret.run(seal(row.id), row.id);
      return row.id;
    }),
    reissueRegistration(id: string, hash: string, expiresAt: string): boolean {
      return reissue.run({ id, hash, expires_at: expiresAt, now: new Date().toISOString() }).changes === 1;
    },
    rotate(id: string, authHash: string, sealed: string): boolean {
      return rotate.run({ id, auth_hash: authHash, sealed, now: new Date().toISOString() }).changes === 1;
    },
    get: (id: string) => byId.get(id) as NodeRow | undefined,
    secrets: (id: string) => byAuth.get(id) as NodeSecrets | undefined,
    list: (ownerId?: string) => (ownerId ? listOwner.all(ownerId) : list.all()) as NodeRow[],
    delete: (id: string) => del.run(id).changes === 1,
    touch: (id: string, at: string) => void seen.run(at, id),
    /** The AI gateway providers whose traffic goes through this node. */
    providersUsing: (id: string) => providers.all(id) as Array<{ id: string; name: string }>,
  };
}

export type NodesStore = ReturnType<typeof createNodesStore>;
