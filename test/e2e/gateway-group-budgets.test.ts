// Team budgets: a virtual key may be charged to a group its owner belongs to (SCIM-provisioned), and the
// group's budget caps what all of its keys spend together, on top of each key's and each owner's own.
// Held under concurrency across users, given back when the group refuses, counted from the usage rows
// (so it survives restarts and follows a key moved between groups), refused in every wire format, and a
// key whose owner left the group is refused until it is re-assigned.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authed, json, login, post, type Admin } from '../helpers/api.ts';
import { nexus, startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { createKey, pricedChat, pricedGateway } from '../helpers/gateway.ts';
import type { LlmUpstream } from '../helpers/llm-upstream.ts';

const USER_URN = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP_URN = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH_URN = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

let app: Appliance;
let admin: Admin;
let up: LlmUpstream;
let scimToken: string;

// Input free, output $1000 per Mtok: a call with max_tokens 2 costs exactly $0.002.
const chat = (key: string) => pricedChat(app, key);
const adminAuth = () => ({ authorization: `Bearer ${admin.token}` });
const scim = (method: string, path: string, body?: unknown) => fetch(`${app.url}/scim/v2${path}`, {
  method,
  headers: { authorization: `Bearer ${scimToken}`, 'content-type': 'application/scim+json' },
  ...(body === undefined ? {} : { body: JSON.stringify(body) }),
});
const patchGroup = (id: string, body: unknown, token = admin.token) =>
  fetch(`${app.url}/api/v1/groups/${id}`, authed(token, { method: 'PATCH', body: JSON.stringify(body) }));
const getGroup = async (id: string) => json(await fetch(`${app.url}/api/v1/groups/${id}`, authed(admin.token)));
const patchKey = (id: string, body: unknown, token = admin.token) =>
  fetch(`${app.url}/api/v1/virtual-keys/${id}`, authed(token, { method: 'PATCH', body: JSON.stringify(body) }));

/** A user provisioned by SCIM (so groups can hold them), given a password to sign in with. */
async function scimMember(userName: string): Promise<{ id: string; session: Admin }> {
  const res = await scim('POST', '/Users', { schemas: [USER_URN], userName, active: true });
  expect(res.status).toBe(201);
  const { id } = await json(res);
  const pw = await fetch(`${app.url}/api/v1/users/${id}`, authed(admin.token, { method: 'PATCH', body: JSON.stringify({ password: 'member-password-1' }) }));
  expect(pw.status).toBe(200);
  return { id, session: await login(app, userName, 'member-password-1') };
}

async function scimGroup(displayName: string, memberIds: string[], budget?: Record<string, unknown>): Promise<string> {
  const res = await scim('POST', '/Groups', { schemas: [GROUP_URN], displayName, members: memberIds.map((value) => ({ value })) });
  expect(res.status).toBe(201);
  const { id } = await json(res);
  if (budget) expect((await patchGroup(id, budget)).status).toBe(200);
  return id;
}

const removeMember = (groupId: string, userId: string) =>
  scim('PATCH', `/Groups/${groupId}`, { schemas: [PATCH_URN], Operations: [{ op: 'remove', path: `members[value eq "${userId}"]` }] });

beforeAll(async () => {
  ({ app, admin, up } = await pricedGateway());
  const minted = await post(`${app.url}/api/v1/scim/tokens`, { name: 'idp' }, adminAuth());
  scimToken = (await json(minted)).token;
});
afterAll(async () => {
  await app?.stop();
  await up?.close();
});

describe('group budgets', () => {
  it('caps what the keys of two members charged to the group spend together; SCIM leaves the budget alone', async () => {
    const alice = await scimMember('alice@team-a.example');
    const bob = await scimMember('bob@team-a.example');
    const group = await scimGroup('team-a', [alice.id, bob.id], { max_budget_usd: 0.004 });
    // A member charges their own key by the group's name; an admin charges a member's key by its id.
    const ka = await createKey(app, alice.session.token, { group_id: 'team-a' });
    const kbRes = await post(`${app.url}/api/v1/virtual-keys`, { name: 'bob-key', user_id: bob.id, group_id: group }, adminAuth());
    expect(kbRes.status).toBe(201);
    const kb = await json(kbRes);
    expect(kb.group_id).toBe(group);
    expect((await json(await fetch(`${app.url}/api/v1/virtual-keys/${ka.id}`, authed(admin.token)))).group_id).toBe(group);
    expect((await json(await fetch(`${app.url}/api/v1/me`, authed(alice.session.token)))).groups).toEqual([{ id: group, display_name: 'team-a' }]);

    expect((await chat(ka.key)).status).toBe(200);
    expect((await chat(kb.key)).status).toBe(200);
    const refused = await chat(ka.key);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('x-nexus-limit')).toBe('budget');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await json(refused)).error).toMatchObject({ code: 'budget_exceeded', type: 'insufficient_quota', message: 'group budget of $0.004 is spent' });
    expect((await chat(kb.key)).status).toBe(429);
    expect(await getGroup(group)).toMatchObject({ max_budget_usd: 0.004, budget_period: null, budget_period_start: null, budget_resets_at: null, member_count: 2 });
    expect((await getGroup(group)).spent_usd).toBeCloseTo(0.004, 9);
    const listed = (await json(await fetch(`${app.url}/api/v1/groups`, authed(admin.token)))).items.find((g: { id: string }) => g.id === group);
    expect(listed.spent_usd).toBeCloseTo(0.004, 9);

    // The IdP renames the group and replaces its members (same ones): the budget is Nexus's, it stays.
    const renamed = await scim('PATCH', `/Groups/${group}`, { schemas: [PATCH_URN], Operations: [{ op: 'replace', path: 'displayName', value: 'team-a-renamed' }] });
    expect(renamed.status).toBe(200);
    const put = await scim('PUT', `/Groups/${group}`, { schemas: [GROUP_URN], displayName: 'team-a', members: [{ value: alice.id }, { value: bob.id }] });
    expect(put.status).toBe(200);
    expect(await getGroup(group)).toMatchObject({ display_name: 'team-a', max_budget_usd: 0.004 });
    expect((await chat(kb.key)).status).toBe(429);

    // Raised: one more call at once; removed: no group cap.
    expect((await patchGroup(group, { max_budget_usd: 0.006 })).status).toBe(200);
    expect((await chat(kb.key)).status).toBe(200);
    expect((await chat(ka.key)).status).toBe(429);
    const removed = await patchGroup(group, { max_budget_usd: null });
    expect(await json(removed)).toMatchObject({ max_budget_usd: null, spent_usd: null });
    expect((await chat(ka.key)).status).toBe(200);

    // Usage by the key's group: both members' calls in one row (refused ones are rows too, at $0).
    const byGroup = (await json(await fetch(`${app.url}/api/v1/usage?group_by=group`, authed(admin.token)))).items;
    const row = byGroup.find((i: { group_id: string | null }) => i.group_id === group);
    expect(row.cost_usd).toBeCloseTo(0.008, 9);
    expect(row.requests).toBe(8);
    const filtered = (await json(await fetch(`${app.url}/api/v1/usage?group_by=user&group_id=${group}`, authed(admin.token)))).items;
    expect(filtered.map((i: { user_id: string }) => i.user_id).sort()).toEqual([alice.id, bob.id].sort());
    // A member's usage by group is their own calls only.
    const own = (await json(await fetch(`${app.url}/api/v1/usage?group_by=group`, authed(alice.session.token)))).items;
    expect(own).toEqual([expect.objectContaining({ group_id: group, cost_usd: expect.closeTo(0.004, 9) })]);

    const audit = (await json(await fetch(`${app.url}/api/v1/audit?action=group.mapping.update&limit=1`, authed(admin.token)))).items[0];
    expect(audit.details.budget).toEqual({ from: { max_budget_usd: 0.006, budget_period: null }, to: { max_budget_usd: null, budget_period: null } });
  });

  it('holds under concurrency across two members\' keys: 40 calls at once against a group budget for 5', async () => {
    const carl = await scimMember('carl@team-b.example');
    const dina = await scimMember('dina@team-b.example');
    const group = await scimGroup('team-b', [carl.id, dina.id], { max_budget_usd: 0.01 });
    const keys = await Promise.all([createKey(app, carl.session.token, { group_id: group }), createKey(app, dina.session.token, { group_id: group })]);
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => chat(keys[i % 2]!.key)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(5);
    expect(results.filter((r) => r.status === 429)).toHaveLength(35);
    await Promise.all(results.map((r) => r.text()));
    expect((await getGroup(group)).spent_usd).toBeCloseTo(0.01, 9);
    const row = (await json(await fetch(`${app.url}/api/v1/usage?group_by=group&group_id=${group}`, authed(admin.token)))).items[0];
    expect(row).toMatchObject({ group_id: group, requests: 40 });
    expect(row.cost_usd).toBeCloseTo(0.01, 9);
  });

  it('gives the key\'s and the owner\'s reservations back (rpm slot too) when the group refuses', async () => {
    const erin = await scimMember('erin@team-c.example');
    expect((await fetch(`${app.url}/api/v1/users/${erin.id}`, authed(admin.token, { method: 'PATCH', body: JSON.stringify({ max_budget_usd: 0.012 }) }))).status).toBe(200);
    const group = await scimGroup('team-c', [erin.id], { max_budget_usd: 0.002 });
    const k = await createKey(app, erin.session.token, { group_id: group, max_budget_usd: 0.01, rpm: 6 });
    expect((await chat(k.key)).status).toBe(200);
    const refused = await Promise.all(Array.from({ length: 10 }, () => chat(k.key)));
    expect(refused.map((r) => r.status)).toEqual(Array(10).fill(429));
    for (const r of refused) expect((await json(r)).error.message).toBe('group budget of $0.002 is spent');
    // Had the key or the owner kept those ten reservations ($0.02, ten rpm slots), they would refuse now.
    expect((await patchGroup(group, { max_budget_usd: null })).status).toBe(200);
    const after = await Promise.all(Array.from({ length: 4 }, () => chat(k.key)));
    expect(after.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    const last = await chat(k.key);
    expect(last.status).toBe(429);
    expect((await json(last)).error.message).toBe('virtual key budget of $0.01 is spent');
  });

  it('refuses a key whose owner left the group (SCIM removal or deletion) with 403, until it is re-assigned', async () => {
    const fay = await scimMember('fay@team-d.example');
    const group = await scimGroup('team-d', [fay.id]);
    const other = await scimGroup('team-d2', [fay.id]);
    const k = await createKey(app, fay.session.token, { group_id: group });
    expect((await chat(k.key)).status).toBe(200);
    expect((await removeMember(group, fay.id)).status).toBe(200);
    const left = await chat(k.key);
    expect(left.status).toBe(403);
    expect((await json(left)).error.message).toContain('is no longer a member of group "team-d"');
    // The same refusal in Gemini's format.
    const gemini = await post(`${app.url}/v1beta/models/priced:generateContent`, { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }, { 'x-goog-api-key': k.key });
    expect(gemini.status).toBe(403);
    expect((await json(gemini)).error).toMatchObject({ code: 403, status: 'PERMISSION_DENIED', message: expect.stringContaining('no longer a member of group') });
    // Re-assigned to a group the owner is still in: works again.
    expect((await patchKey(k.id, { group_id: other }, fay.session.token)).status).toBe(200);
    expect((await chat(k.key)).status).toBe(200);
    // The group is deleted by the IdP: refused again; cleared: works.
    expect((await scim('DELETE', `/Groups/${other}`)).status).toBe(204);
    const deleted = await chat(k.key);
    expect(deleted.status).toBe(403);
    expect((await json(deleted)).error.message).toContain(`no longer a member of group ${other} (deleted)`);
    const reassign = await patchKey(k.id, { group_id: other }, fay.session.token);
    expect(reassign.status).toBe(400);
    expect((await json(reassign)).error.message).toBe('group_id names no group of yours: a key can be charged only to a group its owner belongs to');
    expect((await patchKey(k.id, { group_id: null }, fay.session.token)).status).toBe(200);
    expect((await chat(k.key)).status).toBe(200);
  });

  it('says so in every wire format: OpenAI, Gemini, GLM and Anthropic', async () => {
    const gus = await scimMember('gus@team-e.example');
    const group = await scimGroup('team-e', [gus.id], { max_budget_usd: 0.002, budget_period: 'month' });
    const k = await createKey(app, gus.session.token, { group_id: group });
    expect((await chat(k.key)).status).toBe(200);
    const message = /^group budget of \$0\.002 is spent this month; it renews at \d{4}-\d\d-01T00:00:00\.000Z$/;
    const calls: [string, Promise<Response>, (b: any) => string][] = [ // eslint-disable-line @typescript-eslint/no-explicit-any
      ['openai', chat(k.key), (b) => b.error.message],
      ['gemini', post(`${app.url}/v1beta/models/priced:generateContent`, { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }, { 'x-goog-api-key': k.key }), (b) => b.error.message],
      ['glm', post(`${app.url}/api/paas/v4/chat/completions`, { model: 'priced', max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${k.key}` }), (b) => b.error.message],
      ['anthropic', post(`${app.url}/v1/messages`, { model: 'priced', max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] }, { 'x-api-key': k.key, 'anthropic-version': '2023-06-01' }), (b) => b.error.message],
    ];
    for (const [format, pending, messageOf] of calls) {
      const res = await pending;
      expect(res.status, format).toBe(429);
      expect(res.headers.get('x-nexus-limit'), format).toBe('budget');
      expect(Number(res.headers.get('retry-after')), format).toBeGreaterThan(0);
      expect(messageOf(await json(res)), format).toMatch(message);
    }
  });

  it('renews daily, recounts when a key joins or leaves the group, and keeps the count across a restart', async () => {
    const hal = await scimMember('hal@team-f.example');
    const group = await scimGroup('team-f', [hal.id], { max_budget_usd: 0.004 });
    const k = await createKey(app, hal.session.token, { group_id: group });
    const loose = await createKey(app, hal.session.token);
    expect((await chat(k.key)).status).toBe(200);
    expect((await chat(loose.key)).status).toBe(200);
    expect((await getGroup(group)).spent_usd).toBeCloseTo(0.002, 9);
    // The loose key joins: its spend counts toward the group now; it leaves again: it does not.
    expect((await patchKey(loose.id, { group_id: group })).status).toBe(200);
    expect((await getGroup(group)).spent_usd).toBeCloseTo(0.004, 9);
    expect((await chat(k.key)).status).toBe(429);
    expect((await patchKey(loose.id, { group_id: null })).status).toBe(200);
    expect((await getGroup(group)).spent_usd).toBeCloseTo(0.002, 9);
    const audit = (await json(await fetch(`${app.url}/api/v1/audit?action=gateway.virtual_key.update&limit=1`, authed(admin.token)))).items[0];
    expect(audit.details.changes.group_id).toEqual({ from: group, to: null });

    expect((await chat(k.key)).status).toBe(200);
    // A daily budget counts today's calls: both were today, so it stays spent, and says when it renews.
    const daily = await json(await patchGroup(group, { budget_period: 'day' }));
    const today = new Date().toISOString().slice(0, 10);
    expect(daily).toMatchObject({ budget_period: 'day', max_budget_usd: 0.004, budget_period_start: `${today}T00:00:00.000Z` });
    expect(daily.spent_usd).toBeCloseTo(0.004, 9);
    expect(Date.parse(daily.budget_resets_at) - Date.parse(daily.budget_period_start)).toBe(86_400_000);
    const refused = await chat(k.key);
    expect(refused.status).toBe(429);
    expect((await json(refused)).error.message).toMatch(/^group budget of \$0\.004 is spent today; it renews at \d{4}-\d\d-\d\dT00:00:00\.000Z$/);

    expect(await app.stop('SIGTERM')).toBe(0);
    app = await startAppliance({ dataDir: app.dataDir });
    admin = await login(app, 'admin', 'correct-horse-battery');
    expect((await chat(k.key)).status).toBe(429);
    expect((await getGroup(group)).spent_usd).toBeCloseTo(0.004, 9);
    expect((await patchGroup(group, { max_budget_usd: 0.006 })).status).toBe(200);
    expect((await chat(k.key)).status).toBe(200);
    expect((await chat(k.key)).status).toBe(429);
  });

  it('refuses hostile and mistaken input in the control plane\'s format', async () => {
    const ivy = await scimMember('ivy@team-g.example');
    const jon = await scimMember('jon@team-h.example');
    const group = await scimGroup('team-g', [ivy.id]);
    const others = await scimGroup('team-h', [jon.id]);
    for (const bad of [{ max_budget_usd: -1 }, { max_budget_usd: '5' }, { max_budget_usd: 2e9 }, { max_budget_usd: [] }, { budget_period: 'yearly' }, { budget_period: 7 }, { spent_usd: 0 }, {}]) {
      const res = await patchGroup(group, bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect((await json(res)).error.code).toBe('validation_failed');
    }
    // Only admins set a group's budget; an unknown group is 404.
    expect((await patchGroup(group, { max_budget_usd: 100 }, ivy.session.token)).status).toBe(403);
    expect((await patchGroup('no-such-group', { max_budget_usd: 1 })).status).toBe(404);
    expect(await getGroup(group)).toMatchObject({ max_budget_usd: null, budget_period: null, spent_usd: null });

    const create = (body: Record<string, unknown>, token = ivy.session.token) => post(`${app.url}/api/v1/virtual-keys`, { name: 'k', ...body }, { authorization: `Bearer ${token}` });
    const refused = async (res: Response, message: string | RegExp) => {
      expect(res.status).toBe(400);
      const err = (await json(res)).error;
      expect(err.code).toBe('validation_failed');
      expect(err.message).toMatch(message);
    };
    await refused(await create({ group_id: 42 }), /group_id/);
    await refused(await create({ group_id: null }), /group_id/);
    await refused(await create({ group_id: '' }), /group_id/);
    await refused(await create({ group_id: 'x'.repeat(300) }), /group_id/);
    // A member cannot charge a key to a group of another member's, and cannot tell it from a group that
    // does not exist: the same answer, by id or name, without the other group's display name.
    for (const value of ['no-such-group', others, 'team-h']) {
      await refused(await create({ group_id: value }), 'group_id names no group of yours: a key can be charged only to a group its owner belongs to');
    }
    // An admin is told which it is.
    await refused(await create({ group_id: 'no-such-group', user_id: ivy.id }, admin.token), 'group_id names no group');
    await refused(await create({ group_id: others, user_id: ivy.id }, admin.token), 'the key\'s owner is not a member of group "team-h": a key can be charged only to a group its owner belongs to');
    await refused(await create({ group: group }), /must NOT have additional properties|group/);
    const k = await createKey(app, ivy.session.token);
    for (const value of ['no-such-group', others, 'team-h']) {
      const res = await patchKey(k.id, { group_id: value }, ivy.session.token);
      expect(await res.clone().text()).not.toContain('team-h');
      await refused(res, 'group_id names no group of yours: a key can be charged only to a group its owner belongs to');
    }
    await refused(await patchKey(k.id, { group_id: 'no-such-group' }), 'group_id names no group');
    await refused(await patchKey(k.id, { group_id: 'team-h' }), /not a member of group "team-h"/);
    await refused(await patchKey(k.id, { group_id: 7 }, ivy.session.token), /group_id/);
    expect((await json(await fetch(`${app.url}/api/v1/virtual-keys/${k.id}`, authed(ivy.session.token)))).group_id).toBeNull();
    const usage = await fetch(`${app.url}/api/v1/usage?group_by=team`, authed(admin.token));
    expect(usage.status).toBe(400);
    expect((await fetch(`${app.url}/api/v1/usage?group_id=${'x'.repeat(100)}`, authed(admin.token))).status).toBe(400);
  });

  it('charges a key to a group from the CLI (by name), clears it with none, and reports usage by group', async () => {
    const kim = await scimMember('kim@team-i.example');
    const group = await scimGroup('team-i', [kim.id]);
    await scimGroup('team-j', []);
    const env = { NEXUS_URL: app.url, NEXUS_TOKEN: kim.session.token, XDG_CONFIG_HOME: tempDir('nexus-cli-cfg-') };
    const created = await nexus(['key', 'create', 'team-key', '--group', 'team-i', '--json'], { env });
    expect(created.code, created.stderr).toBe(0);
    const key = JSON.parse(created.stdout);
    expect(key.group_id).toBe(group);
    expect((await chat(key.key)).status).toBe(200);
    const usage = await nexus(['usage', '--by', 'group', '--json'], { env });
    expect(usage.code, usage.stderr).toBe(0);
    expect(JSON.parse(usage.stdout).items).toEqual([expect.objectContaining({ group_id: group, requests: 1 })]);
    const table = await nexus(['usage', '--by', 'group'], { env });
    expect(table.stdout).toContain(group);
    const cleared = await nexus(['key', 'update', key.id, '--group', 'none', '--json'], { env });
    expect(cleared.code, cleared.stderr).toBe(0);
    expect(JSON.parse(cleared.stdout).group_id).toBeNull();
    const stranger = await nexus(['key', 'update', key.id, '--group', 'team-j'], { env });
    expect(stranger.code).not.toBe(0);
    expect(stranger.stderr).toContain('group_id names no group of yours');
    expect(stranger.stderr).not.toContain('team-j');
    const badBy = await nexus(['usage', '--by', 'team'], { env });
    expect(badBy.code).toBe(2);
    expect(badBy.stderr).toContain('key, user, group, model, provider, day');
  });
});
