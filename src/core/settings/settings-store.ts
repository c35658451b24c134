import type { Db } from '../db/db.ts';

/** Settings more than one module reads (the console edits them; server/context.ts applies them). */
export const SETTING = {
  publicUrl: 'console.public_url',
  sessionTtlSeconds: 'console.session_ttl_seconds',
} as const;

export interface SettingsStore {
  get<T>(key: string): T | undefined;
  set(key: string, value: unknown): void;
  delete(key: string): void;
}

export function createSettingsStore(db: Db): SettingsStore {
  const get = db.prepare('SELECT value FROM settings WHERE key = ?');
  const put = db.prepare(
    `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
  );
  const del = db.prepare('DELETE FROM settings WHERE key = ?');
  return {
    get<T>(key: string) {
      const row = get.get(key) as { value: string } | undefined;
      return row ? (JSON.parse(row.value) as T) : undefined;
    },
    set(key, value) {
      put.run(key, JSON.stringify(value), new Date().toISOString());
    },
    delete(key) {
      del.run(key);
    },
  };
}
