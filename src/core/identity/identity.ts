// Who is calling: users, their password logins, browser sessions and personal API tokens. Shared by
// every surface (the proxy authenticates with personal tokens, SCIM writes users), hence in core/.
import { randomUUID } from 'node:crypto';
import type { Db } from '../db/db.ts';
import { AppError } from '../errors/errors.ts';
import type { Events } from '../events/events.ts';
import { dummyPasswordHash, hashPassword, verifyPassword } from '../crypto/passwords.ts';
import { hashToken, mintToken, randomToken, tokenHint, TOKEN_PREFIX } from '../crypto/tokens.ts';
import { createApiTokensStore, type ApiToken } from './api-tokens-store.ts';
import { createGroups, type Groups } from './groups.ts';
import { createSessionsStore } from './sessions-store.ts';
import { createUsersStore, type NewUser, type Role, type User, type UserPatch } from './users-store.ts';

export type { User, Role, ApiToken };

export interface Principal {
  kind: 'session' | 'token';
  userId: string;
  username: string;
  role: Role;
  /** API token id, or the session hash prefix; used as the audit actor detail. */
  credentialId: string;
}

export const PASSWORD_MIN = 10;
export const PASSWORD_MAX = 1024;
/** What the printed setup command has where the password goes; refused as a password, so pasting it unedited fails. */
export const SETUP_PASSWORD_PLACEHOLDER = '<at least 10 characters>';

export interface Identity {
  users: ReturnType<typeof createUsersStore>;
  groups: Groups;
  hasAdmin(): boolean;
  createUser(u: Omit<NewUser, 'password_hash'> & { password?: string }): Promise<User>;
  updateUser(id: string, patch: Omit<UserPatch, 'password_hash'> & { password?: string }): Promise<User>;
  deleteUser(id: string): boolean;
  verifyLogin(username: string, password: string): Promise<User | null>;
  createSession(userId: string, meta: { sourceIp?: string; userAgent?: string }): { token: string; expiresAt: string };
  resolveSession(token: string): Principal | null;
  endSession(token: string): void;
  createApiToken(userId: string, name: string, expiresAt: string | null): { token: string; record: ApiToken };
  resolveApiToken(token: string): Principal | null;
  listApiTokens(userId: string): ApiToken[];
  getApiToken(id: string): ApiToken | undefined;
  revokeApiToken(id: string): boolean;
  /**
   * Whether a user may sign in with a password (SSO-only mode keeps only a break-glass admin);
   * the console surface installs the policy. Consulted only after the password matched.
   */
  passwordLoginAllowed: (user: User) => boolean;
  /** Drops cached token lookups and flushes last-used times; called on shutdown. */
  close(): void;
}

interface CachedToken {
  principal: Principal;
  expiresAt: number | null;
}

export function createIdentity(db: Db, events: Events, opts: { sessionTtlSeconds: number | (() => number) }): Identity {
  const users = createUsersStore(db);
  const sessions = createSessionsStore(db);
  const tokens = createApiTokensStore(db);
  const groups = createGroups(db, events);

  // Personal tokens authenticate every proxied request, so lookups are cached; every way a token can
  // stop working (revoke, user deactivated/deleted/changed) evicts it here, so the cache is exact.
  const tokenCache = new Map<string, CachedToken>();
  const pendingTouches = new Set<string>();
  const evictUser = (userId: string) => {
    for (const [k, v] of tokenCache) if (v.principal.userId === userId) tokenCache.delete(k);
  };
  const flushTouches = () => {
    if (!pendingTouches.size) return;
    tokens.touch([...pendingTouches], new Date().toISOString());
    pendingTouches.clear();
  };
  const touchTimer = setInterval(flushTouches, 30_000);
  touchTimer.unref();

  const revokeAllFor = (userId: string) => {
    sessions.deleteForUser(userId);
    tokens.revokeForUser(userId);
    evictUser(userId);
  };

  const validatePassword = (pw: string) => {
    if (pw.length < PASSWORD_MIN) throw new AppError('validation_failed', `password must be at least ${PASSWORD_MIN} characters`, { details: { param: 'password' } });
    if (pw.length > PASSWORD_MAX) throw new AppError('validation_failed', `password must be at most ${PASSWORD_MAX} characters`, { details: { param: 'password' } });
  };

  const identity: Identity = {
    users,
    groups,
    hasAdmin: () => users.countAdmins() > 0,

    async createUser({ password, ...u }) {
      if (password !== undefined) validatePassword(password);
      const password_hash = password === undefined ? null : await hashPassword(password);
      if (users.getByUsername(u.username)) throw new AppError('conflict', `user "${u.username}" already exists`);
      return users.create({ ...u, password_hash });
    },

    async updateUser(id, { password, ...patch }) {
      const before = users.get(id);
      if (!before) throw new AppError('not_found', 'user not found');
      if (password !== undefined) validatePassword(password);
      const password_hash = password === undefined ? undefined : await hashPassword(password);
      if (patch.username && patch.username.toLowerCase() !== before.username.toLowerCase() && users.getByUsername(patch.username)) {
        throw new AppError('conflict', `user "${patch.username}" already exists`);
      }
      const after = users.update(id, { ...patch, ...(password_hash ? { password_hash } : {}) })!;
      if (before.active && !after.active) {
        revokeAllFor(id);
        events.emit('user.deactivated', { userId: id });
      } else if (password_hash || before.role !== after.role) {
        // A password reset or a role change ends other sessions: they were granted under old facts.
        sessions.deleteForUser(id);
        evictUser(id);
      }
      events.emit('user.changed', { userId: id });
      return after;
    },

    deleteUser(id) {
      revokeAllFor(id);
      const ok = users.delete(id);
      if (ok) events.emit('user.deleted', { userId: id });
      return ok;
    },

    async verifyLogin(username, password) {
      const user = users.getByUsername(username);
      const hash = user ? users.passwordHash(user.id) : null;
      // Always run scrypt, so a missing user or a user without a password costs the same time.
      const ok = await verifyPassword(password, hash ?? (await dummyPasswordHash()));
      if (!user || !hash || !ok || !user.active) return null;
      if (!identity.passwordLoginAllowed(user)) throw new AppError('forbidden', 'password sign-in is turned off; sign in with single sign-on');
      return user;
    },

    createSession(userId, meta) {
      const token = randomToken(32);
      const ttl = typeof opts.sessionTtlSeconds === 'function' ? opts.sessionTtlSeconds() : opts.sessionTtlSeconds;
      const expiresAt = new Date(Date.now() + ttl * 1000).toISOString();
      sessions.create({ idHash: hashToken(token), userId, expiresAt, ...meta });
      if (Math.random() < 0.05) sessions.deleteExpired(new Date().toISOString());
      return { token, expiresAt };
    },

    resolveSession(token) {
      if (!token || token.length > 100) return null;
      const idHash = hashToken(token);
      const row = sessions.get(idHash);
      if (!row) return null;
      if (row.expires_at <= new Date().toISOString()) {
        sessions.delete(idHash);
        return null;
      }
      const user = users.get(row.user_id);
      if (!user || !user.active) return null;
      return { kind: 'session', userId: user.id, username: user.username, role: user.role, credentialId: idHash.slice(0, 12) };
    },

    endSession(token) {
      sessions.delete(hashToken(token));
    },

    createApiToken(userId, name, expiresAt) {
      const token = mintToken(TOKEN_PREFIX.pat);
      const record = tokens.create({ id: randomUUID(), userId, name, tokenHash: hashToken(token), hint: tokenHint(token), expiresAt });
      return { token, record };
    },

    resolveApiToken(token) {
      if (!token.startsWith(TOKEN_PREFIX.pat) || token.length > 100) return null;
      const hash = hashToken(token);
      const cached = tokenCache.get(hash);
      if (cached) {
        if (cached.expiresAt !== null && cached.expiresAt <= Date.now()) {
          tokenCache.delete(hash);
          return null;
        }
        pendingTouches.add(cached.principal.credentialId);
        return cached.principal;
      }
      const record = tokens.getByHash(hash);
      if (!record || record.revoked_at) return null;
      const expiresAt = record.expires_at ? Date.parse(record.expires_at) : null;
      if (expiresAt !== null && expiresAt <= Date.now()) return null;
      const user = users.get(record.user_id);
      if (!user || !user.active) return null;
      const principal: Principal = { kind: 'token', userId: user.id, username: user.username, role: user.role, credentialId: record.id };
      if (tokenCache.size > 10_000) tokenCache.clear();
      tokenCache.set(hash, { principal, expiresAt });
      pendingTouches.add(record.id);
      return principal;
    },

    listApiTokens: (userId) => tokens.listForUser(userId),
    getApiToken: (id) => tokens.get(id),

    revokeApiToken(id) {
      const record = tokens.get(id);
      const ok = tokens.revoke(id);
      if (record) {
        for (const [k, v] of tokenCache) if (v.principal.credentialId === id) tokenCache.delete(k);
        if (ok) events.emit('token.revoked', { tokenId: id, userId: record.user_id });
      }
      return ok;
    },

    passwordLoginAllowed: () => true,

    close() {
      clearInterval(touchTimer);
      if (db.open) flushTouches();
      tokenCache.clear();
    },
  };

  // Users provisioned by SCIM take their role from their groups' mapping; a changed role ends their
  // sessions like any other role change.
  events.on('groups.changed', ({ userIds }) => {
    for (const id of userIds) {
      evictUser(id);
      const user = users.get(id);
      if (!user || user.source !== 'scim') continue;
      const role = groups.roleForUser(id);
      if (role === user.role) continue;
      users.update(id, { role });
      sessions.deleteForUser(id);
      events.emit('user.changed', { userId: id });
    }
  });
  return identity;
}
