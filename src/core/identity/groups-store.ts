import { randomUUID } from 'node:crypto';
import { statementCache, type Db } from '../db/db.ts';
import type { Role } from './users-store.ts';

export interface Group {
  id: string;
  display_name: string;
  external_id: string | null;
  source: 'local' | 'scim';
  role: Role | null;
  models: string[] | null;
  /** The AI gateway budget across the virtual keys charged to the group (USD), and when it renews. */
  max_budget_usd: number | null;
  budget_period: BudgetPeriod | null;
  version: number;
  created_at: string;
  updated_at: string;
}

interface GroupRow extends Omit<Group, 'models'> {
  models: string | null;
}

export type BudgetPeriod = 'day' | 'week' | 'month';

/** What the control plane sets on a group (never SCIM): its role and models mapping, and its budget. */
export interface GroupMapping {
  role?: Role | null;
  models?: string[] | null;
  max_budget_usd?: number | null;
  budget_period?: BudgetPeriod | null;
}

export interface GroupMember {
  user_id: string;
  display: string | null;
}

export interface GroupsStore {
  create(g: { id?: string; displayName: string; externalId?: string | null; source?: Group['source'] }): Group;
  get(id: string): Group | undefined;
  getByName(displayName: string): Group | undefined;
  list(opts: { limit: number; after?: string }): Group[];
  /** Changes SCIM-owned fields and bumps the version. */
  update(id: string, patch: { displayName?: string; externalId?: string | null }): Group | undefined;
  setMapping(id: string, mapping: GroupMapping): Group | undefined;
  /** Bumps version and updated_at (membership changed). */
  touch(id: string): void;
  delete(id: string): boolean;
  members(groupId: string): GroupMember[];
  memberIds(groupId: string): string[];
  /** Adds members that exist as users; returns the ids actually added. */
  addMembers(groupId: string, members: GroupMember[]): string[];
  removeMembers(groupId: string, userIds: string[]): string[];
  groupsOfUser(userId: string): Group[];
}

function toGroup(row: GroupRow): Group {
  return { ...row, models: row.models ? (JSON.parse(row.models) as string[]) : null };
}

export function createGroupsStore(db: Db): GroupsStore {
  const insert = db.prepare(`INSERT INTO groups (id, display_name, external_id, source, created_at, updated_at)
    VALUES (?, ?, ?, ?, ?, ?)`);
  const byId = db.prepare('SELECT * FROM groups WHERE id = ?');
  const byName = db.prepare('SELECT * FROM groups WHERE display_name = ?');
  const listFirst = db.prepare('SELECT * FROM groups ORDER BY display_name LIMIT ?');
  const listAfter = db.prepare('SELECT * FROM groups WHERE display_name > ? ORDER BY display_name LIMIT ?');
  const touch = db.prepare('UPDATE groups SET version = version + 1, updated_at = ? WHERE id = ?');
  const del = db.prepare('DELETE FROM groups WHERE id = ?');
  const members = db.prepare('SELECT user_id, display FROM group_members WHERE group_id = ? ORDER BY rowid');
  const memberIds = db.prepare('SELECT user_id FROM group_members WHERE group_id = ?').pluck();
  const addMember = db.prepare(`INSERT INTO group_members (group_id, user_id, display)
    SELECT ?, id, ? FROM users WHERE id = ? ON CONFLICT (group_id, user_id) DO UPDATE SET display = coalesce(excluded.display, display)`);
  const isMember = db.prepare('SELECT 1 FROM group_members WHERE group_id = ? AND user_id = ?').pluck();
  const removeMember = db.prepare('DELETE FROM group_members WHERE group_id = ? AND user_id = ?');
  const prepared = statementCache(db);
  const ofUser = db.prepare('SELECT g.* FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.user_id = ? ORDER BY g.display_name');

  const store: GroupsStore = {
    create(g) {
      const id = g.id ?? randomUUID();
      const now = new Date().toISOString();
      insert.run(id, g.displayName, g.externalId ?? null, g.source ?? 'scim', now, now);
      return store.get(id)!;
    },
    get(id) {
      const row = byId.get(id) as GroupRow | undefined;
      return row && toGroup(row);
    },
    getByName(name) {
      const row = byName.get(name) as GroupRow | undefined;
      return row && toGroup(row);
    },
    list({ limit, after }) {
      return ((after ? listAfter.all(after, limit) : listFirst.all(limit)) as GroupRow[]).map(toGroup);
    },
    update(id, patch) {
      const sets = ['version = version + 1', 'updated_at = @now'];
      if (patch.displayName !== undefined) sets.push('display_name = @displayName');
      if (patch.externalId !== undefined) sets.push('external_id = @externalId');
      prepared(`UPDATE groups SET ${sets.join(', ')} WHERE id = @id`).run({ id, now: new Date().toISOString(), ...patch });
      return store.get(id);
    },
    setMapping(id, mapping) {
      const sets = ['updated_at = @now'];
      if (mapping.role !== undefined) sets.push('role = @role');
      if (mapping.models !== undefined) sets.push('models = @models');
      if (mapping.max_budget_usd !== undefined) sets.push('max_budget_usd = @max_budget_usd');
      if (mapping.budget_period !== undefined) sets.push('budget_period = @budget_period');
      prepared(`UPDATE groups SET ${sets.join(', ')} WHERE id = @id`).run({
        id,
        now: new Date().toISOString(),
        role: mapping.role ?? null,
        models: mapping.models ? JSON.stringify(mapping.models) : null,
        max_budget_usd: mapping.max_budget_usd ?? null,
        budget_period: mapping.budget_period ?? null,
      });
      return store.get(id);
    },
    touch: (id) => void touch.run(new Date().toISOString(), id),
    delete: (id) => del.run(id).changes > 0,
    members: (groupId) => members.all(groupId) as GroupMember[],
    memberIds: (groupId) => memberIds.all(groupId) as string[],
    addMembers(groupId, list) {
      const added: string[] = [];
      for (const m of list) {
        const existed = isMember.get(groupId, m.user_id);
        if (addMember.run(groupId, m.display, m.user_id).changes > 0 && !existed) added.push(m.user_id);
      }
      return added;
    },
    removeMembers(groupId, userIds) {
      return userIds.filter((u) => removeMember.run(groupId, u).changes > 0);
    },
    groupsOfUser: (userId) => (ofUser.all(userId) as GroupRow[]).map(toGroup),
  };
  return store;
}
