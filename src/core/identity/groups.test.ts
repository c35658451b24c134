// Groups as other surfaces read them: derived role, allowed models, and the events that announce changes.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { closeDatabase, openDatabase } from '../db/db.ts';
import { Events } from '../events/events.ts';
import { createIdentity } from './identity.ts';

describe('groups', () => {
  const db = openDatabase(join(mkdtempSync(join(tmpdir(), 'nexus-groups-')), 'nexus.db'));
  const events = new Events((err) => {
    throw err;
  });
  const identity = createIdentity(db, events, { sessionTtlSeconds: 3600 });
  const { groups } = identity;
  afterAll(() => {
    identity.close();
    closeDatabase(db);
  });

  it('derives allowed models (union, or null when no group restricts) and the role of SCIM users', async () => {
    const seen: string[][] = [];
    events.on('groups.changed', ({ userIds }) => seen.push(userIds));
    const scimUser = await identity.createUser({ username: 'sam', source: 'scim' });
    const local = await identity.createUser({ username: 'lou', source: 'local', role: 'admin' });
    const a = groups.store.create({ displayName: 'A' });
    const b = groups.store.create({ displayName: 'B' });
    groups.store.addMembers(a.id, [{ user_id: scimUser.id, display: null }, { user_id: local.id, display: null }, { user_id: 'no-such-user', display: null }]);
    groups.store.addMembers(b.id, [{ user_id: scimUser.id, display: null }]);
    expect(groups.store.memberIds(a.id).sort()).toEqual([scimUser.id, local.id].sort());
    expect(groups.allowedModelsForUser(scimUser.id)).toBeNull();

    groups.setMapping(a.id, { models: ['gpt-4o', 'glm-4'] });
    groups.setMapping(b.id, { models: ['gemini-2.5-pro', 'gpt-4o'], role: 'admin' });
    expect(groups.allowedModelsForUser(scimUser.id)).toEqual(['gemini-2.5-pro', 'glm-4', 'gpt-4o']);
    expect(groups.allowedModelsForUser(local.id)).toEqual(['glm-4', 'gpt-4o']);
    expect(seen.at(-1)).toEqual([scimUser.id]);
    // The SCIM user's role follows the admin mapping; the local admin's role is never touched.
    expect(identity.users.get(scimUser.id)!.role).toBe('admin');
    groups.setMapping(a.id, { role: 'member' });
    expect(identity.users.get(local.id)!.role).toBe('admin');

    const { token } = identity.createApiToken(scimUser.id, 't', null);
    expect(identity.resolveApiToken(token)!.role).toBe('admin');
    groups.store.removeMembers(b.id, [scimUser.id]);
    groups.changed([scimUser.id]);
    expect(identity.users.get(scimUser.id)!.role).toBe('member');
    // The cached principal does not keep the old role.
    expect(identity.resolveApiToken(token)!.role).toBe('member');
    groups.setMapping(a.id, { models: null });
    expect(groups.allowedModelsForUser(scimUser.id)).toBeNull();
  });
});
