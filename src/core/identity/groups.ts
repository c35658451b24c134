// Groups as the rest of the appliance sees them: which role a group grants its members and which
// models their virtual keys may use. Membership arrives by SCIM; the mapping is set in the control
// plane. Every change emits 'groups.changed' with the users whose derived facts may have moved.
import type { Db } from '../db/db.ts';
import type { Events } from '../events/events.ts';
import { createGroupsStore, type Group, type GroupMember, type GroupsStore } from './groups-store.ts';
import type { Role } from './users-store.ts';

export type { Group, GroupMember };

export interface Groups {
  store: GroupsStore;
  /**
   * Models the user's virtual keys may use: the union over the user's groups that restrict models,
   * or null when none of them does (no group restriction applies).
   */
  allowedModelsForUser(userId: string): string[] | null;
  /** The role the user's groups grant: admin if any group grants admin, else member. */
  roleForUser(userId: string): Role;
  setMapping(groupId: string, mapping: { role?: Role | null; models?: string[] | null }): Group | undefined;
  /** Tells listeners that these users' groups or their groups' mapping changed. */
  changed(userIds: string[]): void;
}

export function createGroups(db: Db, events: Events): Groups {
  const store = createGroupsStore(db);
  const changed = (userIds: string[]) => {
    if (userIds.length) events.emit('groups.changed', { userIds: [...new Set(userIds)] });
  };
  return {
    store,
    allowedModelsForUser(userId) {
      let allowed: Set<string> | null = null;
      for (const g of store.groupsOfUser(userId)) {
        if (!g.models) continue;
        allowed ??= new Set();
        for (const m of g.models) allowed.add(m);
      }
      return allowed ? [...allowed].sort() : null;
    },
    roleForUser(userId) {
      return store.groupsOfUser(userId).some((g) => g.role === 'admin') ? 'admin' : 'member';
    },
    setMapping(groupId, mapping) {
      const group = store.setMapping(groupId, mapping);
      if (group) changed(store.memberIds(groupId));
      return group;
    },
    changed,
  };
}
