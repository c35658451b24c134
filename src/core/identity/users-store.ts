import { randomUUID } from 'node:crypto';
import { statementCache, type Db } from '../db/db.ts';

export type Role = 'admin' | 'member';
export type UserSource = 'local' | 'scim' | 'oidc';

export interface User {
  id: string;
  username: string;
  email: string | null;
  display_name: string | null;
  role: Role;
  active: boolean;
  source: UserSource;
  external_id: string | null;
  created_at: string;
  updated_at: string;
  deactivated_at: string | null;
  /** The user's AI gateway budget across all their virtual keys (USD), and when it renews. */
  max_budget_usd: number | null;
  budget_period: 'day' | 'week' | 'month' | null;
}

interface UserRow extends Omit<User, 'active'> {
  active: number;
  password_hash: string | null;
}

export interface NewUser {
  id?: string;
  username: string;
  email?: string | null;
  display_name?: string | null;
  password_hash?: string | null;
  role?: Role;
  active?: boolean;
  source?: UserSource;
  external_id?: string | null;
}

export type UserPatch = Partial<Pick<NewUser, 'username' | 'email' | 'display_name' | 'role' | 'active' | 'external_id' | 'password_hash'>>
  & Partial<Pick<User, 'max_budget_usd' | 'budget_period'>>;

function toUser(row: UserRow): User {
  const { password_hash: _omit, ...rest } = row;
  return { ...rest, active: row.active === 1 };
}

export interface UsersStore {
  create(user: NewUser): User;
  get(id: string): User | undefined;
  getByUsername(username: string): User | undefined;
  getByEmail(email: string): User | undefined;
  passwordHash(id: string): string | null;
  list(opts: { limit: number; after?: string }): User[];
  update(id: string, patch: UserPatch): User | undefined;
  delete(id: string): boolean;
  countAdmins(): number;
}

export function createUsersStore(db: Db): UsersStore {
  const insert = db.prepare(`INSERT INTO users
    (id, username, email, display_name, password_hash, role, active, source, external_id, created_at, updated_at)
    VALUES (@id, @username, @email, @display_name, @password_hash, @role, @active, @source, @external_id, @now, @now)`);
  const byId = db.prepare('SELECT * FROM users WHERE id = ?');
  const byUsername = db.prepare('SELECT * FROM users WHERE username = ?');
  const byEmail = db.prepare('SELECT * FROM users WHERE email = ? ORDER BY created_at LIMIT 1');
  const admins = db.prepare("SELECT count(*) AS n FROM users WHERE role = 'admin' AND active = 1");
  const listFirst = db.prepare('SELECT * FROM users ORDER BY username LIMIT ?');
  const listAfter = db.prepare('SELECT * FROM users WHERE username > ? ORDER BY username LIMIT ?');
  const del = db.prepare('DELETE FROM users WHERE id = ?');
  // One prepared statement per distinct set of changed columns (a handful exist); SCIM updates
  // users on every provisioning write.
  const updateStatement = statementCache(db);

  const store: UsersStore = {
    create(u) {
      const id = u.id ?? randomUUID();
      insert.run({
        id,
        username: u.username,
        email: u.email ?? null,
        display_name: u.display_name ?? null,
        password_hash: u.password_hash ?? null,
        role: u.role ?? 'member',
        active: u.active === false ? 0 : 1,
        source: u.source ?? 'local',
        external_id: u.external_id ?? null,
        now: new Date().toISOString(),
      });
      return store.get(id)!;
    },
    get(id) {
      const row = byId.get(id) as UserRow | undefined;
      return row && toUser(row);
    },
    getByUsername(username) {
      const row = byUsername.get(username) as UserRow | undefined;
      return row && toUser(row);
    },
    getByEmail(email) {
      const row = byEmail.get(email) as UserRow | undefined;
      return row && toUser(row);
    },
    passwordHash(id) {
      const row = byId.get(id) as UserRow | undefined;
      return row?.password_hash ?? null;
    },
    list({ limit, after }) {
      const rows = (after ? listAfter.all(after, limit) : listFirst.all(limit)) as UserRow[];
      return rows.map(toUser);
    },
    update(id, patch) {
      const sets: string[] = [];
      const params: Record<string, unknown> = { id, now: new Date().toISOString() };
      for (const [k, v] of Object.entries(patch)) {
        if (v === undefined) continue;
        sets.push(`${k} = @${k}`);
        params[k] = k === 'active' ? (v ? 1 : 0) : v;
      }
      if ('active' in patch && patch.active !== undefined) {
        sets.push(patch.active ? 'deactivated_at = NULL' : 'deactivated_at = coalesce(deactivated_at, @now)');
      }
      if (sets.length) updateStatement(`UPDATE users SET ${sets.join(', ')}, updated_at = @now WHERE id = @id`).run(params);
      return store.get(id);
    },
    delete(id) {
      return del.run(id).changes > 0;
    },
    countAdmins() {
      return (admins.get() as { n: number }).n;
    },
  };
  return store;
}
