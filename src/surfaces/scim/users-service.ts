// SCIM Users (RFC 7644 §3.3–3.6) on top of the appliance's own users: the user row in core's
// `users` table (source 'scim'), SCIM-only attributes in scim_users. Activation changes, renames and
// deletes go through ctx.identity, which revokes sessions and tokens and tells other surfaces.
import type { AppContext } from '../../core/context.ts';
import type { UserPatch } from '../../core/identity/users-store.ts';
import { auditScim, type ScimActor } from './actor.ts';
import { scimError } from './errors.ts';
import { checkIfMatch, etagOf } from './http.ts';
import { listResponse, toPage, totalOf, wanted, type ListQuery } from './list.ts';
import { applyPatch, parsePatchRequest } from './patch/patch.ts';
import { canonicalise, checkRequired, project, type Json } from './resource.ts';
import { URN, USER_SCHEMA } from './schemas.ts';
import { createScimUsersStore, userSqlMapping, type ScimUserRow } from './users-store.ts';
import { AppError } from '../../core/errors/errors.ts';

const USERNAME_MAX = 256;

export interface Projection {
  attributes?: string | undefined;
  excludedAttributes?: string | undefined;
}

/** The primary (else first work, else first) email: the one the appliance shows and signs in with. */
function primaryEmail(res: Json): string | null {
  const emails = Array.isArray(res.emails) ? (res.emails as Json[]) : [];
  const pick = emails.find((e) => e.primary === true) ?? emails.find((e) => e.type === 'work') ?? emails[0];
  return typeof pick?.value === 'string' ? pick.value.slice(0, 254) : null;
}

function checkUserName(res: Json): string {
  const name = res.userName as string;
  if (name.length > USERNAME_MAX) throw scimError('invalidValue', `userName is longer than ${USERNAME_MAX} characters`);
  if (/[\x00-\x1f\x7f]/.test(name) || name.trim() !== name) throw scimError('invalidValue', 'userName has control characters or surrounding spaces');
  return name;
}

/** The SCIM-only part of a canonical user (what goes into scim_users.attrs). */
function splitColumns(res: Json): { attrs: Json; externalId: string | null } {
  const { userName: _u, displayName: _d, active: _a, externalId, ...attrs } = res;
  return { attrs, externalId: (externalId as string | undefined) ?? null };
}

export function createUsersService(ctx: AppContext) {
  const store = createScimUsersStore(ctx.db);
  const base = () => `${ctx.publicUrl()}/scim/v2`;

  const canonicalOf = (row: ScimUserRow): Json => ({
    userName: row.username,
    ...(row.display_name !== null ? { displayName: row.display_name } : {}),
    active: row.active === 1,
    ...(row.external_id !== null ? { externalId: row.external_id } : {}),
    ...(JSON.parse(row.attrs) as Json),
  });

  const render = (row: ScimUserRow, groups: { id: string; display_name: string }[] | undefined): Json => {
    const c = canonicalOf(row);
    const { externalId, userName, ...rest } = c;
    const b = base();
    const location = `${b}/Users/${row.id}`;
    return {
      schemas: rest[URN.enterprise] ? [URN.user, URN.enterprise] : [URN.user],
      id: row.id,
      ...(externalId !== undefined ? { externalId } : {}),
      userName,
      ...rest,
      ...(groups ? { groups: groups.map((g) => ({ value: g.id, display: g.display_name, type: 'direct', $ref: `${b}/Groups/${g.id}` })) } : {}),
      meta: { resourceType: 'User', created: row.created_at, lastModified: row.updated_at, location, version: etagOf(row.version) },
    };
  };

  const load = (id: string): ScimUserRow => {
    const row = typeof id === 'string' && id.length <= 64 ? store.get(id) : undefined;
    if (!row) throw new AppError('not_found', `User ${id} not found`);
    return row;
  };

  const renderOne = (row: ScimUserRow, p: Projection = {}) =>
    project(USER_SCHEMA, render(row, wanted('groups', p.attributes, p.excludedAttributes) ? (store.groupsOf([row.id]).get(row.id) ?? []) : undefined), p.attributes, p.excludedAttributes);

  /** Writes a canonical user over the current one; identity handles activation, rename and revocation. */
  const write = async (row: ScimUserRow, next: Json): Promise<ScimUserRow> => {
    checkRequired(USER_SCHEMA, next);
    const userName = checkUserName(next);
    const active = next.active === undefined ? true : (next.active as boolean);
    const patch: UserPatch = {
      username: userName,
      display_name: (next.displayName as string | undefined) ?? null,
      email: primaryEmail(next),
      active,
    };
    const { attrs, externalId } = splitColumns(next);
    try {
      await ctx.identity.updateUser(row.id, patch);
    } catch (err) {
      if (err instanceof AppError && err.code === 'conflict') throw scimError('uniqueness', `userName "${userName}" is already taken`);
      throw err;
    }
    store.update(row.id, externalId, attrs);
    return load(row.id);
  };

  const changedFields = (before: Json, after: Json) =>
    [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));

  return {
    store,
    etag: (id: string) => etagOf(load(id).version),

    get(id: string, p: Projection) {
      const row = load(id);
      return { body: renderOne(row, p), etag: etagOf(row.version) };
    },

    list(q: ListQuery & Projection) {
      const page = toPage(q, USER_SCHEMA, userSqlMapping);
      const rows = page.limit > 0 ? store.search(page) : [];
      const total = totalOf(page, rows.length, () => store.count(page.where));
      const groups = wanted('groups', q.attributes, q.excludedAttributes) ? store.groupsOf(rows.map((r) => r.id)) : null;
      const resources = rows.map((r) => project(USER_SCHEMA, render(r, groups ? (groups.get(r.id) ?? []) : undefined), q.attributes, q.excludedAttributes));
      return listResponse(total, page.startIndex, resources);
    },

    create(body: unknown, actor: ScimActor, p: Projection) {
      const res = canonicalise(USER_SCHEMA, body);
      checkRequired(USER_SCHEMA, res);
      const userName = checkUserName(res);
      if (ctx.identity.users.getByUsername(userName)) throw scimError('uniqueness', `userName "${userName}" is already taken`);
      const { attrs, externalId } = splitColumns(res);
      const user = ctx.db.transaction(() => {
        const u = ctx.identity.users.create({
          username: userName,
          display_name: (res.displayName as string | undefined) ?? null,
          email: primaryEmail(res),
          active: res.active === undefined ? true : (res.active as boolean),
          source: 'scim',
        });
        store.insert(u.id, externalId, attrs);
        return u;
      })();
      auditScim(ctx, actor, 'scim.user.create', { type: 'user', id: user.id }, { userName, active: user.active });
      const row = load(user.id);
      return { body: renderOne(row, p), etag: etagOf(row.version), location: `${base()}/Users/${row.id}` };
    },

    async replace(id: string, body: unknown, ifMatch: string | string[] | undefined, actor: ScimActor, p: Projection) {
      const row = load(id);
      checkIfMatch(ifMatch, etagOf(row.version));
      const next = canonicalise(USER_SCHEMA, body);
      const before = canonicalOf(row);
      const after = await write(row, next);
      auditScim(ctx, actor, 'scim.user.replace', { type: 'user', id }, { userName: after.username, fields: changedFields(before, next), active: after.active === 1 });
      return { body: renderOne(after, p), etag: etagOf(after.version) };
    },

    async patch(id: string, body: unknown, ifMatch: string | string[] | undefined, actor: ScimActor, p: Projection) {
      const ops = parsePatchRequest(body);
      const row = load(id);
      checkIfMatch(ifMatch, etagOf(row.version));
      const before = canonicalOf(row);
      const next = applyPatch(USER_SCHEMA, before, ops);
      const after = await write(row, next);
      auditScim(ctx, actor, 'scim.user.patch', { type: 'user', id }, { userName: after.username, fields: changedFields(before, next), active: after.active === 1 });
      return { body: renderOne(after, p), etag: etagOf(after.version) };
    },

    delete(id: string, ifMatch: string | string[] | undefined, actor: ScimActor) {
      const row = load(id);
      checkIfMatch(ifMatch, etagOf(row.version));
      const groupIds = store.groupsOf([id]).get(id)?.map((g) => g.id) ?? [];
      ctx.identity.deleteUser(id);
      auditScim(ctx, actor, 'scim.user.delete', { type: 'user', id }, { userName: row.username, groups: groupIds.length });
    },
  };
}

export type UsersService = ReturnType<typeof createUsersService>;
