// Virtual keys: minted once (nx_vk_…), stored hashed, resolved on every gateway request through an
// exact cache. Every way a key can stop working (revocation, owner deactivated or deleted) evicts it,
// so the next request sees the change. Limit counters live apart from the cache, keyed by key id,
// so an eviction never forgets money that is reserved or spent but not yet written.
import { randomUUID } from 'node:crypto';
import type { SecretBox } from '../../../core/crypto/secret-box.ts';
import { hashToken, mintToken, randomToken, tokenHint, TOKEN_PREFIX } from '../../../core/crypto/tokens.ts';
import type { Db } from '../../../core/db/db.ts';
import { AppError, notFound } from '../../../core/errors/errors.ts';
import type { Events } from '../../../core/events/events.ts';
import type { Group, GroupsStore } from '../../../core/identity/groups-store.ts';
import type { GroupBudgetStatus } from '../../../core/identity/groups.ts';
import type { UsersStore } from '../../../core/identity/users-store.ts';
import { KeyLimits, periodOf, type BudgetPeriod } from './limits.ts';
import { createVirtualKeysStore, type PendingSpend, type VirtualKeyRow } from './virtual-keys-store.ts';
import { looksLikeJwt, parseZhipuJwt, verifyZhipuSignature } from './zhipu-jwt.ts';

export interface ResolvedKey {
  id: string;
  name: string;
  userId: string;
  /** Allowed public model names; null allows all. */
  models: ReadonlySet<string> | null;
  expiresAt: number | null;
  limits: KeyLimits;
  /** The owner's budget across all their keys (a KeyLimits with only a budget; none set admits all). */
  ownerLimits: KeyLimits;
  /** The budget of the group the key is charged to, across all the group's keys; null: no group. */
  groupLimits: KeyLimits | null;
  /** What a call reserves against, in order: the key's limits, its owner's budget, its group's. */
  chain: readonly KeyLimits[];
  /** Resolved from the secret a rotation replaced: when its grace period ends (ms), after which it is
   *  refused as rotated. */
  previousUntil?: number;
}

export interface NewVirtualKey {
  name: string;
  models?: string[];
  max_budget_usd?: number;
  budget_period?: BudgetPeriod;
  rpm?: number;
  tpm?: number;
  expires_at?: string;
  user_id?: string;
  /** The group the key's calls are charged to (id or name); its owner must be a member. */
  group_id?: string;
  format?: 'standard' | 'id_secret';
}

/** PATCH /api/v1/virtual-keys/{id}: never the secret, the owner or the format; null removes a limit. */
export interface VirtualKeyPatch {
  name?: string;
  models?: string[] | null;
  max_budget_usd?: number | null;
  /** A new period (or none) restarts the count from the key's usage since that period began. */
  budget_period?: BudgetPeriod | null;
  rpm?: number | null;
  tpm?: number | null;
  expires_at?: string | null;
  /** Another group of the owner's (id or name), or null to charge the key to none; recounts both groups. */
  group_id?: string | null;
}

/** A key as the API shows it: the stored row without its hash or sealed secret, models as a list. */
export interface VirtualKeyView extends Omit<VirtualKeyRow, 'key_hash' | 'public_id' | 'secret_sealed' | 'models' | 'previous_key_hash' | 'previous_public_id' | 'previous_secret_sealed'> {
  models: string[] | null;
  /** When a periodic budget renews (the next period's start); null without a period. */
  budget_resets_at: string | null;
}

export type KeyFailure = { reason: 'unknown' | 'revoked' | 'expired' | 'rotated' | 'owner_inactive' | 'group_left' | 'malformed'; message: string };

export interface VirtualKeys {
  /** `asAdmin`: the caller is an administrator, who is told why a group_id is refused (see groupIdFor). */
  create(input: NewVirtualKey, asAdmin?: boolean): { key: string; record: VirtualKeyView };
  list(userId: string | null): VirtualKeyView[];
  get(id: string): VirtualKeyView;
  revoke(id: string): void;
  /**
   * A new secret for the key, shown once; id, limits, spend and usage stay. The old secret keeps
   * working for `graceSeconds` (0: stops now), then is refused as rotated. A revoked key cannot be (409).
   */
  rotate(id: string, graceSeconds: number): { key: string; record: VirtualKeyView };
  /** Edits a key; the next request through it sees the change. A revoked key cannot be edited (409). */
  update(id: string, patch: VirtualKeyPatch, asAdmin?: boolean): { before: VirtualKeyView; after: VirtualKeyView };
  /** Hot path: a presented credential (nx_vk_… or a Zhipu JWT) to its key, or why not. */
  resolve(credential: string): ResolvedKey | KeyFailure;
  /** Settled spend waiting to be written; drained by the usage writer in its batch. */
  drainSpend(): Map<string, PendingSpend>;
  addSpend(keyId: string, usd: number): void;
  /** A group's budget as of now, counted from the usage rows of the keys charged to it. */
  groupBudget(group: Group): GroupBudgetStatus;
  close(): void;
}

const MAX_CREDENTIAL = 512;

export interface VirtualKeysDeps {
  db: Db;
  secretBox: SecretBox;
  events: Events;
  users: Pick<UsersStore, 'get'>;
  /** Groups a key may be charged to, and whether its owner still belongs to them. */
  groups: Pick<GroupsStore, 'get' | 'getByName' | 'groupsOfUser'>;
  /** Models the owner's groups allow (SCIM group → models mapping); null when no group restricts. */
  allowedModelsForUser?: (userId: string) => string[] | null;
  /** Commits queued usage rows and spend, so that usage totals can be read (a budget period change). */
  flushUsage?: () => void;
}

/** A key may use a model only if both the key's own list and its owner's groups allow it. */
export function effectiveModels(keyModels: string[] | null, groupModels: string[] | null): ReadonlySet<string> | null {
  if (!keyModels && !groupModels) return null;
  if (!keyModels) return new Set(groupModels);
  if (!groupModels) return new Set(keyModels);
  const allowed = new Set(groupModels);
  return new Set(keyModels.filter((m) => allowed.has(m)));
}

const modelsColumn = (models: string[] | null | undefined) => (models ? JSON.stringify([...new Set(models)]) : null);

export function createVirtualKeys(deps: VirtualKeysDeps): VirtualKeys {
  const store = createVirtualKeysStore(deps.db);
  const byHash = new Map<string, ResolvedKey>();
  const byPublicId = new Map<string, { key: ResolvedKey; secret: string }>();
  const counters = new Map<string, KeyLimits>();
  let pendingSpend = new Map<string, PendingSpend>();

  const specOf = (r: Pick<VirtualKeyRow, 'rpm' | 'tpm' | 'max_budget_usd' | 'budget_period'>) => ({ rpm: r.rpm, tpm: r.tpm, budgetUsd: r.max_budget_usd, budgetPeriod: r.budget_period });

  const view = (r: VirtualKeyRow): VirtualKeyView => {
    const now = Date.now();
    // The live counter when the key has one; else the stored figure, if it is for the current period.
    const limits = counters.get(r.id) ?? new KeyLimits(specOf(r), r.spent_usd, r.budget_period_start, now);
    const resets = limits.renewsAt(now);
    return {
      id: r.id,
      name: r.name,
      hint: r.hint,
      format: r.format,
      user_id: r.user_id,
      group_id: r.group_id,
      models: r.models ? (JSON.parse(r.models) as string[]) : null,
      max_budget_usd: r.max_budget_usd,
      budget_period: r.budget_period,
      budget_period_start: limits.periodAt(now),
      budget_resets_at: resets === null ? null : new Date(resets).toISOString(),
      spent_usd: limits.spentAt(now),
      rpm: r.rpm,
      tpm: r.tpm,
      expires_at: r.expires_at,
      revoked_at: r.revoked_at,
      created_at: r.created_at,
      last_used_at: r.last_used_at,
      rotated_at: r.rotated_at,
      // Shown while the secret before the last rotation still works.
      previous_valid_until: r.previous_valid_until && Date.parse(r.previous_valid_until) > now ? r.previous_valid_until : null,
    };
  };

  const evict = (pred: (k: ResolvedKey) => boolean) => {
    for (const [h, k] of byHash) if (pred(k)) byHash.delete(h);
    for (const [p, e] of byPublicId) if (pred(e.key)) byPublicId.delete(p);
  };

  const ROTATED: KeyFailure = { reason: 'rotated', message: 'this virtual key was rotated: use the new key shown when it was rotated' };

  /**
   * Budgets shared by many keys (an owner's, a group's), one counter per holder kept in step with its
   * row (a period change recounts). Counted from the usage rows (committing queued ones first): at
   * start they hold every finished call; afterwards the counter follows settled calls itself. Only a
   * holder with a budget is counted, so a restart does not sum the history of everyone who has none.
   */
  const sharedBudgets = (whose: 'user' | 'group', costSince: (id: string, since: string) => number) => {
    const held = new Map<string, KeyLimits>();
    /** Holders whose counter started without a budget and has not been counted from usage yet. */
    const uncounted = new Set<string>();
    const spentSince = (id: string, since: string | null) => {
      deps.flushUsage?.();
      return costSince(id, since ?? '');
    };
    return {
      limitsFor(holder: { id: string; max_budget_usd?: number | null; budget_period?: BudgetPeriod | null }): KeyLimits {
        const spec = { rpm: null, tpm: null, budgetUsd: holder.max_budget_usd ?? null, budgetPeriod: holder.budget_period ?? null };
        const now = Date.now();
        const since = spec.budgetPeriod ? new Date(periodOf(spec.budgetPeriod, now).start).toISOString() : null;
        let l = held.get(holder.id);
        if (!l) {
          l = new KeyLimits(spec, spec.budgetUsd === null ? 0 : spentSince(holder.id, since), since, now, whose);
          held.set(holder.id, l);
          if (spec.budgetUsd === null) uncounted.add(holder.id);
        } else if (l.spec.budgetPeriod !== spec.budgetPeriod || (spec.budgetUsd !== null && uncounted.has(holder.id))) {
          l.retune(spec, now, spentSince(holder.id, since));
          uncounted.delete(holder.id);
        } else if (l.spec.budgetUsd !== spec.budgetUsd) {
          l.retune(spec, now);
        }
        return l;
      },
      /** Counts the current period again from the usage rows (the keys that count toward it changed). */
      recount(id: string): void {
        const l = held.get(id);
        if (!l || uncounted.has(id)) return;
        const now = Date.now();
        l.retune(l.spec, now, spentSince(id, l.periodAt(now)));
      },
      forget(id: string): void {
        held.delete(id);
        uncounted.delete(id);
      },
    };
  };
  const ownerBudgets = sharedBudgets('user', (id, since) => store.userCostSince(id, since));
  const groupBudgets = sharedBudgets('group', (id, since) => store.groupCostSince(id, since));

  /** The key's group among its owner's groups, or why the key may not be used through it. */
  const chargedGroup = (row: VirtualKeyRow): Group | KeyFailure => {
    const group = deps.groups.groupsOfUser(row.user_id).find((g) => g.id === row.group_id);
    if (group) return group;
    const name = deps.groups.get(row.group_id!)?.display_name;
    return {
      reason: 'group_left',
      message: `the owner of this virtual key is no longer a member of group ${name ? `"${name}"` : `${row.group_id} (deleted)`}, which the key is charged to: re-assign the key's group or clear it`,
    };
  };

  /**
   * Checks a stored row and builds the resolved key; the one place the rules live. `previous`: the
   * credential was the secret the last rotation replaced, valid only within its grace period.
   */
  const load = (row: VirtualKeyRow | undefined, previous = false): ResolvedKey | KeyFailure => {
    if (!row) return { reason: 'unknown', message: 'invalid virtual key' };
    if (row.revoked_at) return { reason: 'revoked', message: 'this virtual key has been revoked' };
    let expiresAt = row.expires_at ? Date.parse(row.expires_at) : null;
    if (expiresAt !== null && expiresAt <= Date.now()) return { reason: 'expired', message: 'this virtual key has expired' };
    let previousUntil: number | undefined;
    if (previous) {
      previousUntil = row.previous_valid_until ? Date.parse(row.previous_valid_until) : 0;
      if (previousUntil <= Date.now()) return ROTATED;
      expiresAt = expiresAt === null ? previousUntil : Math.min(expiresAt, previousUntil);
    }
    const owner = deps.users.get(row.user_id);
    if (!owner || !owner.active) return { reason: 'owner_inactive', message: 'the owner of this virtual key is not active' };
    const group = row.group_id ? chargedGroup(row) : null;
    if (group && 'reason' in group) return group;
    let limits = counters.get(row.id);
    if (!limits) {
      limits = new KeyLimits(specOf(row), row.spent_usd, row.budget_period_start, Date.now());
      counters.set(row.id, limits);
    }
    const ownerLimits = ownerBudgets.limitsFor(owner);
    const groupLimits = group ? groupBudgets.limitsFor(group) : null;
    return {
      id: row.id,
      name: row.name,
      userId: row.user_id,
      models: effectiveModels(row.models ? (JSON.parse(row.models) as string[]) : null, deps.allowedModelsForUser?.(row.user_id) ?? null),
      expiresAt,
      limits,
      ownerLimits,
      groupLimits,
      chain: groupLimits ? [limits, ownerLimits, groupLimits] : [limits, ownerLimits],
      ...(previousUntil !== undefined ? { previousUntil } : {}),
    };
  };

  const refusePastExpiry = (expiresAt: string | null | undefined) => {
    if (expiresAt && Date.parse(expiresAt) <= Date.now()) {
      throw new AppError('validation_failed', 'expires_at is in the past', { details: { param: 'expires_at' } });
    }
  };

  const stillValid = (k: ResolvedKey): ResolvedKey | KeyFailure => {
    const now = Date.now();
    if (k.expiresAt === null || k.expiresAt > now) return k;
    return k.previousUntil !== undefined && k.previousUntil <= now ? ROTATED : { reason: 'expired', message: 'this virtual key has expired' };
  };

  const resolveBearer = (token: string): ResolvedKey | KeyFailure => {
    const hash = hashToken(token);
    const cached = byHash.get(hash);
    if (cached) return stillValid(cached);
    const row = store.getByHash(hash);
    const res = row ? load(row) : load(store.getByPreviousHash(hash), true);
    if ('id' in res) {
      if (byHash.size > 50_000) byHash.clear();
      byHash.set(hash, res);
    }
    return res;
  };

  const resolveJwt = (jwt: string): ResolvedKey | KeyFailure => {
    const claims = parseZhipuJwt(jwt, Date.now());
    if (typeof claims === 'string') return { reason: 'malformed', message: claims };
    let entry = byPublicId.get(claims.apiKeyId);
    if (!entry) {
      const current = store.getByPublicId(claims.apiKeyId);
      const row = current ?? store.getByPreviousPublicId(claims.apiKeyId);
      const res = load(row, !current);
      if (!('id' in res)) return res;
      const sealed = current ? row!.secret_sealed! : row!.previous_secret_sealed!;
      entry = { key: res, secret: deps.secretBox.open(sealed, `vk:${row!.id}`) };
      if (byPublicId.size > 50_000) byPublicId.clear();
      byPublicId.set(claims.apiKeyId, entry);
    }
    if (!verifyZhipuSignature(claims, entry.secret)) return { reason: 'unknown', message: 'token signature does not verify' };
    return stillValid(entry.key);
  };

  /** A new secret in the key's format; an id.secret key's secret is also kept sealed (JWTs are verified with it). */
  const mint = (id: string, format: VirtualKeyRow['format']) => {
    if (format !== 'id_secret') return { key: mintToken(TOKEN_PREFIX.vk), publicId: null, secretSealed: null };
    // `id.secret`, the shape Zhipu's SDKs split on "." to sign their JWTs.
    const publicId = TOKEN_PREFIX.vk + randomToken(16);
    const secret = randomToken(32);
    return { key: `${publicId}.${secret}`, publicId, secretSealed: deps.secretBox.seal(secret, `vk:${id}`) };
  };

  const offUser = (userId: string) => evict((k) => k.userId === userId);
  const unsubscribe = [
    deps.events.on('user.deactivated', ({ userId }) => offUser(userId)),
    deps.events.on('user.deleted', ({ userId }) => {
      offUser(userId);
      ownerBudgets.forget(userId);
    }),
    deps.events.on('user.changed', ({ userId }) => offUser(userId)),
    // Group membership or a group's mapping or budget changed: the members' keys are re-resolved (a
    // key charged to a group its owner left is refused; a budget change is picked up by its counter).
    deps.events.on('groups.changed', ({ userIds }) => {
      const ids = new Set(userIds);
      evict((k) => ids.has(k.userId));
    }),
  ];

  /** The id of the group a key of `userId` is to be charged to (given by id or name); only the owner's own. */
  /**
   * The id of the group `value` (an id or a name) names, which the key's owner must belong to. A member
   * gets one answer for a group that does not exist and one they are not in, so group_id cannot probe
   * which names exist or show another group's display name; an administrator, who may list groups
   * anyway, is told which it is.
   */
  const groupIdFor = (value: string, userId: string, asAdmin: boolean): string => {
    const group = deps.groups.get(value) ?? deps.groups.getByName(value);
    const member = !!group && deps.groups.groupsOfUser(userId).some((g) => g.id === group.id);
    if (group && member) return group.id;
    const invalid = (message: string) => new AppError('validation_failed', message, { details: { param: 'group_id' } });
    if (!asAdmin) throw invalid('group_id names no group of yours: a key can be charged only to a group its owner belongs to');
    if (!group) throw invalid('group_id names no group');
    throw invalid(`the key's owner is not a member of group "${group.display_name}": a key can be charged only to a group its owner belongs to`);
  };

  return {
    create(input, asAdmin = false) {
      refusePastExpiry(input.expires_at);
      const userId = input.user_id!;
      const owner = deps.users.get(userId);
      if (!owner) throw new AppError('validation_failed', 'user_id names no user', { details: { param: 'user_id' } });
      if (!owner.active) throw new AppError('validation_failed', 'user_id names an inactive user', { details: { param: 'user_id' } });
      const groupId = input.group_id !== undefined ? groupIdFor(input.group_id, userId, asAdmin) : null;
      const id = randomUUID();
      const format = input.format ?? 'standard';
      const { key, publicId, secretSealed } = mint(id, format);
      const row = {
        id,
        name: input.name,
        key_hash: hashToken(key),
        hint: tokenHint(key),
        format,
        public_id: publicId,
        secret_sealed: secretSealed,
        user_id: userId,
        group_id: groupId,
        models: modelsColumn(input.models),
        max_budget_usd: input.max_budget_usd ?? null,
        budget_period: input.budget_period ?? null,
        budget_period_start: input.budget_period ? new Date(periodOf(input.budget_period, Date.now()).start).toISOString() : null,
        rpm: input.rpm ?? null,
        tpm: input.tpm ?? null,
        expires_at: input.expires_at ? new Date(input.expires_at).toISOString() : null,
        created_at: new Date().toISOString(),
      };
      store.insert(row);
      return { key, record: view(store.get(id)!) };
    },
    list: (userId) => store.list(userId).map(view),
    get(id) {
      const row = store.get(id);
      if (!row) throw notFound('virtual key');
      return view(row);
    },
    revoke(id) {
      const row = store.get(id);
      if (!row) throw notFound('virtual key');
      store.revoke(id, new Date().toISOString());
      evict((k) => k.id === id);
    },
    rotate(id, graceSeconds) {
      const row = store.get(id);
      if (!row) throw notFound('virtual key');
      if (row.revoked_at) throw new AppError('conflict', 'this virtual key is revoked and cannot be rotated');
      const now = Date.now();
      const minted = mint(row.id, row.format);
      const rotated = store.rotate({
        id,
        key_hash: hashToken(minted.key),
        hint: tokenHint(minted.key),
        public_id: minted.publicId,
        secret_sealed: minted.secretSealed,
        previous_valid_until: graceSeconds > 0 ? new Date(now + graceSeconds * 1000).toISOString() : null,
        rotated_at: new Date(now).toISOString(),
      });
      if (!rotated) throw new AppError('conflict', 'this virtual key is revoked and cannot be rotated');
      // Both secrets' cache entries go: the next request with either is judged by the new row.
      evict((k) => k.id === id);
      return { key: minted.key, record: view(store.get(id)!) };
    },
    update(id, patch, asAdmin = false) {
      const row = store.get(id);
      if (!row) throw notFound('virtual key');
      if (row.revoked_at) throw new AppError('conflict', 'this virtual key is revoked and cannot be changed');
      refusePastExpiry(patch.expires_at);
      const groupId = patch.group_id === undefined ? row.group_id : patch.group_id === null ? null : groupIdFor(patch.group_id, row.user_id, asAdmin);
      const now = Date.now();
      const period = patch.budget_period !== undefined ? patch.budget_period : row.budget_period;
      let rebase: { spent_usd: number; budget_period_start: string | null } | null = null;
      if (period !== row.budget_period) {
        // A new period counts what the key's usage cost since that period began (all of it without
        // one): queued usage rows and spend are committed first, so none is missed or counted twice.
        deps.flushUsage?.();
        const since = period ? new Date(periodOf(period, now).start).toISOString() : null;
        rebase = { spent_usd: store.costSince(id, since ?? ''), budget_period_start: since };
      }
      const next = {
        id,
        name: patch.name ?? row.name,
        group_id: groupId,
        models: patch.models !== undefined ? modelsColumn(patch.models) : row.models,
        max_budget_usd: patch.max_budget_usd !== undefined ? patch.max_budget_usd : row.max_budget_usd,
        budget_period: period,
        rpm: patch.rpm !== undefined ? patch.rpm : row.rpm,
        tpm: patch.tpm !== undefined ? patch.tpm : row.tpm,
        expires_at: patch.expires_at !== undefined ? (patch.expires_at === null ? null : new Date(patch.expires_at).toISOString()) : row.expires_at,
        rebase,
      };
      if (!store.update(next)) throw new AppError('conflict', 'this virtual key is revoked and cannot be changed');
      counters.get(id)?.retune(specOf(next), now, rebase?.spent_usd);
      evict((k) => k.id === id);
      if (groupId !== row.group_id) {
        // The key's spend this period moves from one group's count to the other's.
        if (row.group_id) groupBudgets.recount(row.group_id);
        if (groupId) groupBudgets.recount(groupId);
      }
      return { before: view(row), after: view(store.get(id)!) };
    },

    resolve(credential) {
      if (credential.length > MAX_CREDENTIAL) return { reason: 'malformed', message: 'credential is too long' };
      if (credential.startsWith(TOKEN_PREFIX.vk)) return resolveBearer(credential);
      if (looksLikeJwt(credential)) return resolveJwt(credential);
      // The usual first mistakes: the personal token from the console, or the provider's own key.
      if (credential.startsWith(TOKEN_PREFIX.pat)) {
        return { reason: 'unknown', message: 'this is a personal token (nx_pat_…); the AI gateway takes a virtual key (nx_vk_…): create one with POST /api/v1/virtual-keys or nexus key create' };
      }
      return { reason: 'unknown', message: 'invalid virtual key: the AI gateway takes a Nexus virtual key (nx_vk_…), not a provider key' };
    },

    addSpend(keyId, usd) {
      if (!(usd >= 0)) return;
      // Tagged with its budget period: spend of a period the stored row does not hold replaces it.
      const since = counters.get(keyId)?.periodAt(Date.now()) ?? null;
      const e = pendingSpend.get(keyId);
      if (e && e.since === since) e.usd += usd;
      else pendingSpend.set(keyId, { usd, since });
    },
    groupBudget(group) {
      if (group.max_budget_usd === null) return { spent_usd: null, budget_period_start: null, budget_resets_at: null };
      const l = groupBudgets.limitsFor(group);
      const now = Date.now();
      const resets = l.renewsAt(now);
      return { spent_usd: l.spentAt(now), budget_period_start: l.periodAt(now), budget_resets_at: resets === null ? null : new Date(resets).toISOString() };
    },
    drainSpend() {
      const out = pendingSpend;
      pendingSpend = new Map();
      return out;
    },
    close() {
      for (const off of unsubscribe) off();
      byHash.clear();
      byPublicId.clear();
    },
  };
}
