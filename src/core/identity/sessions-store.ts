import type { Db } from '../db/db.ts';

export interface SessionRow {
  id_hash: string;
  user_id: string;
  created_at: string;
  expires_at: string;
}

export interface SessionsStore {
  create(s: { idHash: string; userId: string; expiresAt: string; sourceIp?: string; userAgent?: string }): void;
  get(idHash: string): SessionRow | undefined;
  delete(idHash: string): void;
  deleteForUser(userId: string): number;
  deleteExpired(now: string): number;
}

export function createSessionsStore(db: Db): SessionsStore {
  const insert = db.prepare(`INSERT INTO sessions (id_hash, user_id, created_at, expires_at, source_ip, user_agent)
    VALUES (?, ?, ?, ?, ?, ?)`);
  const get = db.prepare('SELECT id_hash, user_id, created_at, expires_at FROM sessions WHERE id_hash = ?');
  const del = db.prepare('DELETE FROM sessions WHERE id_hash = ?');
  const delUser = db.prepare('DELETE FROM sessions WHERE user_id = ?');
  const delExpired = db.prepare('DELETE FROM sessions WHERE expires_at <= ?');
  return {
    create(s) {
      insert.run(s.idHash, s.userId, new Date().toISOString(), s.expiresAt, s.sourceIp ?? null, s.userAgent?.slice(0, 256) ?? null);
    },
    get: (idHash) => get.get(idHash) as SessionRow | undefined,
    delete: (idHash) => void del.run(idHash),
    deleteForUser: (userId) => delUser.run(userId).changes,
    deleteExpired: (now) => delExpired.run(now).changes,
  };
}
