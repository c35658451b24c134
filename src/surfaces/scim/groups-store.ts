// SQL for SCIM's reads of groups (filters, pages, members). Writes go through core's groups store.
import { statementCache, type Db } from '../../core/db/db.ts';
import type { ResolvedAttr } from './schemas.ts';
import type { SqlCondition, SqlMapping, Target } from './filter/sql.ts';
import type { Page } from './users-store.ts';

export interface ScimGroupRow {
  id: string;
  display_name: string;
  external_id: string | null;
  created_at: string;
  updated_at: string;
  version: number;
}

export interface ScimMember {
  group_id: string;
  user_id: string;
  display: string | null;
}

export interface ScimGroupsStore {
  get(id: string): ScimGroupRow | undefined;
  search(page: Page): ScimGroupRow[];
  count(where: SqlCondition | null): number;
  membersOf(groupIds: string[]): Map<string, ScimMember[]>;
}

const COLUMNS: Record<string, string> = { id: 'g.id', externalId: 'g.external_id', displayName: 'g.display_name' };
const META: Record<string, string> = { created: 'g.created_at', lastModified: 'g.updated_at' };

export const groupSqlMapping: SqlMapping = (r: ResolvedAttr): Target | null => {
  const { def, sub } = r;
  if (COLUMNS[def.name]) return { kind: 'scalar', sql: COLUMNS[def.name]! };
  if (def.name === 'meta') return sub && META[sub.name] ? { kind: 'scalar', sql: META[sub.name]! } : null;
  if (def.name === 'members') {
    return {
      kind: 'multi',
      from: 'FROM group_members gm JOIN users mu ON mu.id = gm.user_id WHERE gm.group_id = g.id',
      element: (s) => (!s || s.name === 'value' ? 'gm.user_id' : s.name === 'display' ? 'coalesce(gm.display, mu.display_name, mu.username)' : s.name === 'type' ? "'User'" : null),
    };
  }
  return null;
};

const SELECT = 'SELECT g.id, g.display_name, g.external_id, g.created_at, g.updated_at, g.version FROM groups g';

export function createScimGroupsStore(db: Db): ScimGroupsStore {
  const get = db.prepare(`${SELECT} WHERE g.id = ?`);
  const countAll = db.prepare('SELECT count(*) FROM groups').pluck();
  const prepared = statementCache(db);
  return {
    get: (id) => get.get(id) as ScimGroupRow | undefined,
    search({ where, orderBy, descending, limit, offset }) {
      const order = orderBy ? `${orderBy} ${descending ? 'DESC' : 'ASC'}, g.id` : 'g.id';
      return prepared(`${SELECT}${where ? ` WHERE ${where.sql}` : ''} ORDER BY ${order} LIMIT ? OFFSET ?`).all(...(where?.params ?? []), limit, offset) as ScimGroupRow[];
    },
    count(where) {
      if (!where) return countAll.get() as number;
      return prepared(`SELECT count(*) FROM groups g WHERE ${where.sql}`).pluck().get(...where.params) as number;
    },
    membersOf(groupIds) {
      const out = new Map<string, ScimMember[]>();
      if (!groupIds.length) return out;
      const rows = db.prepare(`SELECT gm.group_id, gm.user_id, coalesce(gm.display, u.display_name, u.username) AS display
        FROM group_members gm JOIN users u ON u.id = gm.user_id WHERE gm.group_id IN (${groupIds.map(() => '?').join(',')}) ORDER BY gm.rowid`)
        .all(...groupIds) as ScimMember[];
      for (const r of rows) {
        let list = out.get(r.group_id);
        if (!list) out.set(r.group_id, (list = []));
        list.push(r);
      }
      return out;
    },
  };
}
