// SCIM Groups (RFC 7644 §3.3–3.6). Groups and memberships live in core (src/core/identity/groups*.ts)
// because the gateway and the control plane read them; every membership change emits
// 'groups.changed' so derived roles and allowed models follow at once.
import type { AppContext } from '../../core/context.ts';
import { AppError } from '../../core/errors/errors.ts';
import { auditScim, type ScimActor } from './actor.ts';
import { scimError } from './errors.ts';
import { checkIfMatch, etagOf } from './http.ts';
import { listResponse, toPage, totalOf, wanted, type ListQuery } from './list.ts';
import { applyPatch, parsePatchRequest } from './patch/patch.ts';
import { canonicalise, checkRequired, project, type Json } from './resource.ts';
import { GROUP_SCHEMA, URN } from './schemas.ts';
import { createScimGroupsStore, groupSqlMapping, type ScimGroupRow, type ScimMember } from './groups-store.ts';
import type { Projection } from './users-service.ts';
import type { ScimUsersStore } from './users-store.ts';

const DISPLAY_MAX = 256;

interface Member {
  value: string;
  display?: string;
}

export function createGroupsService(ctx: AppContext, users: ScimUsersStore) {
  const store = createScimGroupsStore(ctx.db);
  const groups = ctx.identity.groups;
  const base = () => `${ctx.publicUrl()}/scim/v2`;

  const load = (id: string): ScimGroupRow => {
    const row = typeof id === 'string' && id.length <= 64 ? store.get(id) : undefined;
    if (!row) throw new AppError('not_found', `Group ${id} not found`);
    return row;
  };

  const canonicalOf = (row: ScimGroupRow, members: ScimMember[]): Json => ({
    displayName: row.display_name,
    ...(row.external_id !== null ? { externalId: row.external_id } : {}),
    members: members.map((m) => ({ value: m.user_id, ...(m.display !== null ? { display: m.display } : {}) })),
  });

  const render = (row: ScimGroupRow, members: ScimMember[] | undefined): Json => {
    const b = base();
    return {
      schemas: [URN.group],
      id: row.id,
      ...(row.external_id !== null ? { externalId: row.external_id } : {}),
      displayName: row.display_name,
      ...(members ? { members: members.map((m) => ({ value: m.user_id, display: m.display, type: 'User', $ref: `${b}/Users/${m.user_id}` })) } : {}),
      meta: { resourceType: 'Group', created: row.created_at, lastModified: row.updated_at, location: `${b}/Groups/${row.id}`, version: etagOf(row.version) },
    };
  };

  const renderOne = (row: ScimGroupRow, p: Projection = {}) =>
    project(GROUP_SCHEMA, render(row, wanted('members', p.attributes, p.excludedAttributes) ? (store.membersOf([row.id]).get(row.id) ?? []) : undefined), p.attributes, p.excludedAttributes);

  const checkName = (res: Json) => {
    checkRequired(GROUP_SCHEMA, res);
    const name = res.displayName as string;
    if (name.length > DISPLAY_MAX) throw scimError('invalidValue', `displayName is longer than ${DISPLAY_MAX} characters`);
    return name;
  };

  /** Members that are SCIM users of this appliance; unknown ids are ignored (documented in docs/scim.md). */
  const knownMembers = (res: Json): Member[] => {
    const list = Array.isArray(res.members) ? (res.members as Json[]) : [];
    const ids = list.map((m) => m.value).filter((v): v is string => typeof v === 'string' && v.length <= 64);
    const exist = users.existing([...new Set(ids)]);
    const seen = new Set<string>();
    const out: Member[] = [];
    for (const m of list) {
      const v = m.value as string;
      if (!exist.has(v) || seen.has(v)) continue;
      seen.add(v);
      out.push({ value: v, ...(typeof m.display === 'string' ? { display: m.display } : {}) });
    }
    return out;
  };

  /** Writes name, externalId and the full member list; returns the users whose membership changed. */
  const write = (row: ScimGroupRow, next: Json): string[] => {
    const name = checkName(next);
    if (name.toLowerCase() !== row.display_name.toLowerCase() && groups.store.getByName(name)) throw scimError('uniqueness', `a group named "${name}" already exists`);
    const wantedMembers = knownMembers(next);
    return ctx.db.transaction(() => {
      const current = new Set(groups.store.memberIds(row.id));
      const want = new Set(wantedMembers.map((m) => m.value));
      const removed = groups.store.removeMembers(row.id, [...current].filter((u) => !want.has(u)));
      const added = groups.store.addMembers(row.id, wantedMembers.filter((m) => !current.has(m.value)).map((m) => ({ user_id: m.value, display: m.display ?? null })));
      groups.store.update(row.id, { displayName: name, externalId: (next.externalId as string | undefined) ?? null });
      return [...added, ...removed];
    })();
  };

  return {
    get(id: string, p: Projection) {
      const row = load(id);
      return { body: renderOne(row, p), etag: etagOf(row.version) };
    },

    list(q: ListQuery & Projection) {
      const page = toPage(q, GROUP_SCHEMA, groupSqlMapping);
      const rows = page.limit > 0 ? store.search(page) : [];
      const total = totalOf(page, rows.length, () => store.count(page.where));
      // Entra lists groups with excludedAttributes=members: no member query at all then.
      const members = wanted('members', q.attributes, q.excludedAttributes) ? store.membersOf(rows.map((r) => r.id)) : null;
      const resources = rows.map((r) => project(GROUP_SCHEMA, render(r, members ? (members.get(r.id) ?? []) : undefined), q.attributes, q.excludedAttributes));
      return listResponse(total, page.startIndex, resources);
    },

    create(body: unknown, actor: ScimActor, p: Projection) {
      const res = canonicalise(GROUP_SCHEMA, body);
      const name = checkName(res);
      if (groups.store.getByName(name)) throw scimError('uniqueness', `a group named "${name}" already exists`);
      const members = knownMembers(res);
      const group = ctx.db.transaction(() => {
        const g = groups.store.create({ displayName: name, externalId: (res.externalId as string | undefined) ?? null, source: 'scim' });
        groups.store.addMembers(g.id, members.map((m) => ({ user_id: m.value, display: m.display ?? null })));
        return g;
      })();
      groups.changed(members.map((m) => m.value));
      auditScim(ctx, actor, 'scim.group.create', { type: 'group', id: group.id }, { displayName: name, members: members.length });
      const row = load(group.id);
      return { body: renderOne(row, p), etag: etagOf(row.version), location: `${base()}/Groups/${row.id}` };
    },

    replace(id: string, body: unknown, ifMatch: string | string[] | undefined, actor: ScimActor, p: Projection) {
      const row = load(id);
      checkIfMatch(ifMatch, etagOf(row.version));
      const changed = write(row, canonicalise(GROUP_SCHEMA, body));
      groups.changed(changed);
      auditScim(ctx, actor, 'scim.group.replace', { type: 'group', id }, { displayName: load(id).display_name, membersChanged: changed.length });
      const after = load(id);
      return { body: renderOne(after, p), etag: etagOf(after.version) };
    },

    patch(id: string, body: unknown, ifMatch: string | string[] | undefined, actor: ScimActor, p: Projection) {
      const ops = parsePatchRequest(body);
      const row = load(id);
      checkIfMatch(ifMatch, etagOf(row.version));
      const before = canonicalOf(row, store.membersOf([id]).get(id) ?? []);
      const changed = write(row, applyPatch(GROUP_SCHEMA, before, ops));
      groups.changed(changed);
      const after = load(id);
      auditScim(ctx, actor, 'scim.group.patch', { type: 'group', id }, { displayName: after.display_name, membersChanged: changed.length, operations: ops.map((o) => `${o.op} ${o.path ?? ''}`.trim()).slice(0, 20) });
      return { body: renderOne(after, p), etag: etagOf(after.version) };
    },

    delete(id: string, ifMatch: string | string[] | undefined, actor: ScimActor) {
      const row = load(id);
      checkIfMatch(ifMatch, etagOf(row.version));
      const members = groups.store.memberIds(id);
      groups.store.delete(id);
      groups.changed(members);
      auditScim(ctx, actor, 'scim.group.delete', { type: 'group', id }, { displayName: row.display_name, members: members.length });
    },
  };
}

export type GroupsService = ReturnType<typeof createGroupsService>;
