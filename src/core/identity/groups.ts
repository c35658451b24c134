// Groups as the rest of the appliance sees them: which role a group grants its members and which
// models their virtual keys may use. Membership arrives by SCIM; the mapping is set in the control
// plane. Every change emits 'groups.changed' with the users whose derived facts may have moved.
import type { Db } from '../db/db.ts';
import type { Events } from '../events/events.ts';
import { createGroupsStore, type Group, type GroupMapping, type GroupMember, type GroupsStore } from './groups-store.ts';
import type { Role } from './users-store.ts';

export type { Group, GroupMapping, GroupMember };

/** A group's budget as of now: spent in the current period (null without a budget) and its bounds. */
export interface GroupBudgetStatus {
  spent_usd: number | null;
  budget_period_start: string | null;
  budget_resets_at: string | null;
}

const NO_BUDGET_STATUS: GroupBudgetStatus = { spent_usd: null, budget_period_start: null, budget_resets_at: null };

export interface Groups {
  store: GroupsStore;
  /**
   * Models the user's virtual keys may use: the union over the user's groups that restrict models,
   * or null when none of them does (no group restriction applies).
   */
  allowedModelsForUser(userId: string): string[] | null;
  /** The role the user's groups grant: admin if any group grants admin, else member. */
  roleForUser(userId: string): Role;
  setMapping(groupId: string, mapping: GroupMapping): Group | undefined;
  /** Tells listeners that these users' groups or their groups' mapping changed. */
  changed(userIds: string[]): void;
  /** The group's spend for its current budget period, from whoever counts it (the AI gateway). */
  budgetStatus(group: Group): GroupBudgetStatus;
  /** The AI gateway registers how it counts a group's spend (it holds the usage rows and live counters). */
  countBudgetsWith(fn: (group: Group) => GroupBudgetStatus): void;
}

export function createGroups(db: Db, events: Events): Groups {
  const store = createGroupsStore(db);
  const changed = (userIds: string[]) => {
    if (userIds.length) events.emit('groups.changed', { userIds: [...new Set(userIds)] });
  };
  let budgetStatus = (_g: Group): GroupBudgetStatus => NO_BUDGET_STATUS;
  return {
    store,
    budgetStatus: (g) => budgetStatus(g),
    countBudgetsWith(fn) {
      budgetStatus = fn;
    },
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
