// SCIM 2.0 over real HTTP against a real `nexus serve`: Microsoft's validation collection with
// newman (on an empty store), then provisioning sequences as Okta and Entra ID send them, the
// effects inside the appliance (deprovisioning cuts access, group mapping), and hostile input.
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, run, startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { authed, json, login, post, setupAdmin, type Admin } from '../helpers/api.ts';

const CORE = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
const COLLECTION = '/work/shared/conformance/scim/entra-reference.postman_collection.json';

let app: Appliance;
let admin: Admin;
let scimToken: string;
let scimTokenId: string;

function scim(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  return fetch(`${app.url}/scim/v2${path}`, {
    method,
    headers: { authorization: `Bearer ${scimToken}`, accept: 'application/scim+json', ...(body === undefined ? {} : { 'content-type': 'application/scim+json' }), ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
}

async function ok(res: Response, status: number): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const text = await res.text();
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Announces a body larger than the limit and waits for the answer without writing it all (no EPIPE race). */
function oversized(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${app.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${scimToken}`, 'content-type': 'application/scim+json', 'content-length': String(64 * 1024 * 1024) } }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('no answer to an oversized body')));
    req.write('{"userName":"big","title":"');
  });
}

async function scimErr(res: Response, status: number, scimType?: string) {
  expect(res.headers.get('content-type')).toContain('application/scim+json');
  const body = await ok(res, status);
  expect(body.schemas).toEqual([ERROR]);
  expect(body.status).toBe(String(status));
  if (scimType) expect(body.scimType).toBe(scimType);
  return body;
}

beforeAll(async () => {
  app = await startAppliance();
  admin = await setupAdmin(app);
  const minted = await ok(await post(`${app.url}/api/v1/scim/tokens`, { name: 'idp' }, { authorization: `Bearer ${admin.token}` }), 201);
  expect(minted.token).toMatch(/^nx_scim_/);
  scimToken = minted.token;
  scimTokenId = minted.id;
});
afterAll(async () => {
  await app?.stop();
});

describe("Microsoft's SCIM validation collection (newman)", () => {
  it('passes every assertion except the four that require 204 from PATCH (docs/scim.md)', async () => {
    // GET /Token exists only on Microsoft's reference server; its test script would overwrite the
    // token given on the command line with `undefined`, so the run leaves that one request out.
    const collection = JSON.parse(readFileSync(COLLECTION, 'utf8')) as { item: { name: string }[] };
    collection.item = collection.item.filter((i) => i.name !== 'Get Token');
    const dir = tempDir('nexus-newman-');
    const file = join(dir, 'collection.json');
    const report = join(dir, 'report.json');
    writeFileSync(file, JSON.stringify(collection));
    const { host, port } = new URL(app.url);
    const res = await run(process.execPath, [join(REPO, 'node_modules/newman/bin/newman.js'), 'run', file,
      '--env-var', 'Protocol=http', '--env-var', `Server=${host.split(':')[0]}`, '--env-var', `Port=:${port}`, '--env-var', 'Api=scim/v2',
      '--env-var', `token=${scimToken}`, '--reporters', 'cli,json', '--reporter-json-export', report, '--color', 'off'], { timeoutMs: 90_000 });
    const summary = JSON.parse(readFileSync(report, 'utf8')) as { run: { stats: { assertions: { total: number; failed: number } }; failures: { source: { name: string }; error: { test: string; message: string } }[] } };
    const failures = summary.run.failures.map((f) => `${f.source.name}: ${f.error.test}: ${f.error.message}`);
    expect(summary.run.stats.assertions.total).toBeGreaterThanOrEqual(100);
    expect(failures).toEqual([
      'Patch user omalley new username: Status code is 204: expected response to have status code 204 but got 200',
      'patch user omalley active with boolean: Status code is 204: expected response to have status code 204 but got 200',
      'Group patch add member: Status code is 204: expected response to have status code 204 but got 200',
      'Group patch add member2: Status code is 204: expected response to have status code 204 but got 200',
    ]);
    expect(res.stdout).toContain('assertions');
  });
});

describe('Okta provisioning sequence', () => {
  it('looks up, creates, reads, replaces, deactivates a user and pushes a group', async () => {
    const userName = 'dade.murphy@example.com';
    const lookup = await ok(await scim('GET', `/Users?filter=${encodeURIComponent(`userName eq "${userName}"`)}&startIndex=1&count=100`), 200);
    expect(lookup).toMatchObject({ totalResults: 0, Resources: [] });

    const createRes = await scim('POST', '/Users', {
      schemas: [CORE], userName, name: { givenName: 'Dade', familyName: 'Murphy' },
      emails: [{ primary: true, value: userName, type: 'work' }], displayName: 'Dade Murphy', locale: 'en-US',
      externalId: '00ujl29u0le5T6Aj10h7', groups: [], password: '1mz050nq', active: true,
    });
    const created = await ok(createRes, 201);
    expect(createRes.headers.get('location')).toBe(`${app.url}/scim/v2/Users/${created.id}`);
    expect(createRes.headers.get('etag')).toBe(created.meta.version);
    expect(created).toMatchObject({ userName, active: true, externalId: '00ujl29u0le5T6Aj10h7', meta: { resourceType: 'User' } });
    expect(JSON.stringify(created)).not.toContain('1mz050nq');

    // Case-insensitive userName: Okta's lookup of the same user in another case finds it; a create conflicts.
    const again = await ok(await scim('GET', `/Users?filter=${encodeURIComponent(`userName eq "DADE.MURPHY@example.com"`)}`), 200);
    expect(again.totalResults).toBe(1);
    await scimErr(await scim('POST', '/Users', { schemas: [CORE], userName: 'Dade.Murphy@Example.com' }), 409, 'uniqueness');

    const put = await ok(await scim('PUT', `/Users/${created.id}`, {
      schemas: [CORE], id: created.id, userName, name: { givenName: 'Dade', familyName: 'Murphy-Burns' },
      emails: [{ primary: true, value: userName, type: 'work' }], displayName: 'Dade Murphy-Burns', active: true,
    }), 200);
    expect(put.name.familyName).toBe('Murphy-Burns');
    expect(put.externalId).toBeUndefined(); // PUT replaces: what is not sent is gone
    expect(put.meta.version).not.toBe(created.meta.version);

    const deactivated = await ok(await scim('PATCH', `/Users/${created.id}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { active: false } }] }), 200);
    expect(deactivated.active).toBe(false);
    // Inactive users stay visible to SCIM GETs.
    expect((await ok(await scim('GET', `/Users/${created.id}`), 200)).active).toBe(false);

    const member = await ok(await scim('POST', '/Users', { schemas: [CORE], userName: 'okta.member@example.com', active: true }), 201);
    const g = await ok(await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'Test SCIMv2', members: [] }), 201);
    const renamed = await ok(await scim('PATCH', `/Groups/${g.id}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { id: g.id, displayName: 'Test SCIMv2 renamed' } }] }), 200);
    expect(renamed.displayName).toBe('Test SCIMv2 renamed');
    const added = await ok(await scim('PATCH', `/Groups/${g.id}`, { schemas: [PATCH], Operations: [{ op: 'add', path: 'members', value: [{ value: member.id, display: member.userName }] }] }), 200);
    expect(added.members).toEqual([expect.objectContaining({ value: member.id, display: member.userName })]);
    const userView = await ok(await scim('GET', `/Users/${member.id}`), 200);
    expect(userView.groups).toEqual([expect.objectContaining({ value: g.id, display: 'Test SCIMv2 renamed' })]);
    const removed = await ok(await scim('PATCH', `/Groups/${g.id}`, { schemas: [PATCH], Operations: [{ op: 'remove', path: `members[value eq "${member.id}"]` }] }), 200);
    expect(removed.members).toEqual([]);
    const found = await ok(await scim('GET', `/Groups?filter=${encodeURIComponent('displayName eq "test scimv2 RENAMED"')}&startIndex=1&count=100`), 200);
    expect(found.Resources.map((r: { id: string }) => r.id)).toEqual([g.id]);
    expect((await scim('DELETE', `/Groups/${g.id}`)).status).toBe(204);
    await scimErr(await scim('GET', `/Groups/${g.id}`), 404);
  });
});

describe('Entra ID provisioning sequence', () => {
  it('creates with the enterprise extension, patches the way Entra does, pushes groups, deletes', async () => {
    const userName = 'Test_User_dfeef4c5-5681-4387-b016-bdf221e82081';
    expect((await ok(await scim('GET', `/Users?filter=userName+eq+%22${userName}%22`), 200)).totalResults).toBe(0);
    const manager = await ok(await scim('POST', '/Users', { schemas: [CORE], userName: 'Test_Manager_1', active: true, displayName: 'Boss' }), 201);
    const created = await ok(await scim('POST', '/Users', {
      schemas: [CORE, ENT], externalId: '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef', userName, active: true,
      emails: [{ primary: true, type: 'work', value: 'Test_User_11bb6cb0@testuser.com' }],
      meta: { resourceType: 'User' }, name: { formatted: 'givenName familyName', familyName: 'familyName', givenName: 'givenName' },
      roles: [], [ENT]: { employeeNumber: '1234', department: 'Sales', manager: { value: manager.id } },
    }), 201);
    expect(created.schemas).toEqual([CORE, ENT]);
    expect(created[ENT]).toMatchObject({ employeeNumber: '1234', manager: { value: manager.id } });

    const byName = await ok(await scim('GET', `/Users?filter=userName eq "${userName.toLowerCase()}"`), 200);
    expect(byName.Resources[0].id).toBe(created.id);
    const byExt = await ok(await scim('GET', `/Users?filter=${encodeURIComponent(`externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"`)}`), 200);
    expect(byExt.totalResults).toBe(1);

    const patched = await ok(await scim('PATCH', `/Users/${created.id}`, {
      schemas: [PATCH],
      Operations: [
        { op: 'Replace', path: 'emails[type eq "work"].value', value: 'updatedEmail@microsoft.com' },
        { op: 'Replace', path: 'name.familyName', value: 'updatedFamilyName' },
        { op: 'Add', path: 'phoneNumbers[type eq "mobile"].value', value: '+1 425 555 0100' },
        { op: 'Replace', value: { [`${ENT}:department`]: 'Marketing', 'name.givenName': 'updatedGiven' } },
        { op: 'Add', path: `${ENT}:manager`, value: manager.id },
      ],
    }), 200);
    expect(patched.emails).toEqual([{ primary: true, type: 'work', value: 'updatedEmail@microsoft.com' }]);
    expect(patched.name).toMatchObject({ familyName: 'updatedFamilyName', givenName: 'updatedGiven' });
    expect(patched.phoneNumbers).toEqual([{ type: 'mobile', value: '+1 425 555 0100' }]);
    expect(patched[ENT]).toMatchObject({ department: 'Marketing', manager: { value: manager.id } });
    const byManager = await ok(await scim('GET', `/Users?filter=${encodeURIComponent(`${ENT}:manager.value eq "${manager.id}"`)}`), 200);
    expect(byManager.totalResults).toBe(1);

    // Entra lists groups without members, then creates and fills one.
    const none = await ok(await scim('GET', `/Groups?excludedAttributes=members&filter=${encodeURIComponent('displayName eq "Entra Group"')}`), 200);
    expect(none.totalResults).toBe(0);
    const g = await ok(await scim('POST', '/Groups', { schemas: [GROUP], externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159', displayName: 'Entra Group', members: [] }), 201);
    await ok(await scim('PATCH', `/Groups/${g.id}`, { schemas: [PATCH], Operations: [{ op: 'Add', path: 'members', value: [{ value: created.id }, { value: manager.id }] }] }), 200);
    const listed = await ok(await scim('GET', `/Groups?excludedAttributes=members&filter=${encodeURIComponent('displayName eq "Entra Group"')}`), 200);
    expect(listed.Resources[0].members).toBeUndefined();
    await ok(await scim('PATCH', `/Groups/${g.id}`, { schemas: [PATCH], Operations: [{ op: 'Remove', path: 'members', value: [{ value: manager.id }] }] }), 200);
    const oneLeft = await ok(await scim('GET', `/Groups/${g.id}`), 200);
    expect(oneLeft.members.map((m: { value: string }) => m.value)).toEqual([created.id]);
    await ok(await scim('PATCH', `/Groups/${g.id}`, { schemas: [PATCH], Operations: [{ op: 'Replace', path: 'displayName', value: 'Entra Group 2' }, { op: 'Replace', path: 'members', value: [] }] }), 200);
    expect((await ok(await scim('GET', `/Groups/${g.id}`), 200)).members).toEqual([]);

    const off = await ok(await scim('PATCH', `/Users/${created.id}`, { schemas: [PATCH], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] }), 200);
    expect(off.active).toBe(false);
    expect((await scim('DELETE', `/Users/${created.id}`)).status).toBe(204);
    await scimErr(await scim('GET', `/Users/${created.id}`), 404);
    await scimErr(await scim('DELETE', `/Users/${created.id}`), 404);
  });
});

describe('effects inside the appliance', () => {
  it('deactivation by SCIM makes the user\'s personal token, session and virtual key fail on the next call', async () => {
    const u = await ok(await scim('POST', '/Users', { schemas: [CORE], userName: 'deprov@example.com', active: true }), 201);
    // The user signs in (password set by an admin here; in production the IdP signs them in) and mints a token.
    await ok(await fetch(`${app.url}/api/v1/users/${u.id}`, authed(admin.token, { method: 'PATCH', body: JSON.stringify({ password: 'deprov-password-1' }) })), 200);
    const session = await login(app, 'deprov@example.com', 'deprov-password-1');
    expect((await fetch(`${app.url}/api/v1/me`, authed(session.token))).status).toBe(200);
    // A virtual key of theirs on the AI gateway works until the IdP deactivates them.
    const vk = await ok(await post(`${app.url}/api/v1/virtual-keys`, { name: 'deprov-key', user_id: u.id }, { authorization: `Bearer ${admin.token}` }), 201);
    expect((await fetch(`${app.url}/v1/models`, { headers: { authorization: `Bearer ${vk.key}` } })).status).toBe(200);
    await ok(await scim('PATCH', `/Users/${u.id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: false }] }), 200);
    expect((await fetch(`${app.url}/api/v1/me`, authed(session.token))).status).toBe(401);
    expect((await fetch(`${app.url}/api/v1/me`, { headers: { cookie: session.cookie } })).status).toBe(401);
    expect((await fetch(`${app.url}/v1/models`, { headers: { authorization: `Bearer ${vk.key}` } })).status).toBe(401);
    // Reactivation does not bring revoked tokens back.
    await ok(await scim('PATCH', `/Users/${u.id}`, { schemas: [PATCH], Operations: [{ op: 'replace', value: { active: 'True' } }] }), 200);
    expect((await fetch(`${app.url}/api/v1/me`, authed(session.token))).status).toBe(401);
    // The virtual key was refused, not revoked: it works again with its owner (docs/scim.md).
    expect((await fetch(`${app.url}/v1/models`, { headers: { authorization: `Bearer ${vk.key}` } })).status).toBe(200);
    // Every SCIM write is audited with actor_type scim.
    const audit = await json(await fetch(`${app.url}/api/v1/audit?action=scim.user.patch&limit=5`, authed(admin.token)));
    expect(audit.items[0]).toMatchObject({ actor_type: 'scim', actor_id: scimTokenId, actor_name: 'idp', target_id: u.id, outcome: 'success' });
    expect(JSON.stringify(audit)).not.toContain(scimToken);
  });

  it('maps a group to a role and models; membership changes move the role at once', async () => {
    const u = await ok(await scim('POST', '/Users', { schemas: [CORE], userName: 'mapped@example.com' }), 201);
    const g = await ok(await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'AI Admins', members: [{ value: u.id }] }), 201);
    const mapped = await ok(await fetch(`${app.url}/api/v1/groups/${g.id}`, authed(admin.token, { method: 'PATCH', body: JSON.stringify({ role: 'admin', models: ['gpt-4o', 'gemini-2.5-pro'] }) })), 200);
    expect(mapped).toMatchObject({ role: 'admin', models: ['gpt-4o', 'gemini-2.5-pro'], member_count: 1 });
    expect((await json(await fetch(`${app.url}/api/v1/users/${u.id}`, authed(admin.token)))).role).toBe('admin');
    // Set by hand, the role would be undone by the next group change: refused, with the way to do it.
    const byHand = await fetch(`${app.url}/api/v1/users/${u.id}`, authed(admin.token, { method: 'PATCH', body: JSON.stringify({ role: 'member' }) }));
    expect(byHand.status).toBe(409);
    expect((await json(byHand)).error.message).toBe('the role of mapped@example.com follows their SCIM groups; map one of their groups to a role instead (PATCH /api/v1/groups/{id})');
    expect((await fetch(`${app.url}/api/v1/users/${u.id}`, authed(admin.token, { method: 'PATCH', body: JSON.stringify({ role: 'admin', display_name: 'Mapped' }) }))).status).toBe(200);
    await ok(await scim('PATCH', `/Groups/${g.id}`, { schemas: [PATCH], Operations: [{ op: 'remove', path: 'members' }] }), 200);
    expect((await json(await fetch(`${app.url}/api/v1/users/${u.id}`, authed(admin.token)))).role).toBe('member');
    expect((await fetch(`${app.url}/api/v1/users/${u.id}`, authed(admin.token, { method: 'PATCH', body: JSON.stringify({ role: 'admin' }) }))).status).toBe(409);
    const bad = await fetch(`${app.url}/api/v1/groups/${g.id}`, authed(admin.token, { method: 'PATCH', body: JSON.stringify({ role: 'owner' }) }));
    expect(bad.status).toBe(400);
    expect((await json(bad)).error.code).toBe('validation_failed');
    expect((await fetch(`${app.url}/api/v1/groups/nope`, authed(admin.token))).status).toBe(404);
  });
});

describe('group model mapping on the AI gateway', () => {
  it('limits a member\'s virtual keys to the models their groups allow, at once on every change', async () => {
    const h = { authorization: `Bearer ${admin.token}` };
    const provider = await ok(await post(`${app.url}/api/v1/providers`, { name: 'grp-upstream', type: 'openai-compatible', base_url: 'http://127.0.0.1:9/v1', api_key: 'sk-unused' }, h), 201);
    for (const name of ['grp-gpt', 'grp-glm']) {
      await ok(await post(`${app.url}/api/v1/models`, { name, deployments: [{ provider_id: provider.id, upstream_model: name }] }, h), 201);
    }
    const u = await ok(await scim('POST', '/Users', { schemas: [CORE], userName: 'models@example.com' }), 201);
    const vk = await ok(await post(`${app.url}/api/v1/virtual-keys`, { name: 'grp-key', user_id: u.id }, h), 201);
    const visible = async () => {
      const res = await fetch(`${app.url}/v1/models`, { headers: { authorization: `Bearer ${vk.key}` } });
      expect(res.status).toBe(200);
      return (await json(res)).data.map((m: { id: string }) => m.id).filter((id: string) => id.startsWith('grp-')).sort();
    };
    expect(await visible()).toEqual(['grp-glm', 'grp-gpt']);
    const g = await ok(await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'GPT only', members: [{ value: u.id }] }), 201);
    await ok(await fetch(`${app.url}/api/v1/groups/${g.id}`, authed(admin.token, { method: 'PATCH', body: JSON.stringify({ models: ['grp-gpt'] }) })), 200);
    expect(await visible()).toEqual(['grp-gpt']);
    // The IdP removes the member: the restriction goes with the membership.
    await ok(await scim('PATCH', `/Groups/${g.id}`, { schemas: [PATCH], Operations: [{ op: 'remove', path: `members[value eq "${u.id}"]` }] }), 200);
    expect(await visible()).toEqual(['grp-glm', 'grp-gpt']);
  });
});

describe('protocol details and hostile input', () => {
  it('requires a live SCIM token; other credentials and revoked tokens get 401 in the SCIM schema', async () => {
    await scimErr(await fetch(`${app.url}/scim/v2/Users`), 401);
    await scimErr(await fetch(`${app.url}/scim/v2/Users`, { headers: { authorization: `Bearer ${admin.token}` } }), 401);
    const t = await ok(await post(`${app.url}/api/v1/scim/tokens`, { name: 'temp' }, { authorization: `Bearer ${admin.token}` }), 201);
    expect((await fetch(`${app.url}/scim/v2/ServiceProviderConfig`, { headers: { authorization: `Bearer ${t.token}` } })).status).toBe(200);
    const list = await json(await fetch(`${app.url}/api/v1/scim/tokens`, authed(admin.token)));
    expect(JSON.stringify(list)).not.toContain(t.token);
    expect((await fetch(`${app.url}/api/v1/scim/tokens/${t.id}`, authed(admin.token, { method: 'DELETE' }))).status).toBe(204);
    await scimErr(await fetch(`${app.url}/scim/v2/ServiceProviderConfig`, { headers: { authorization: `Bearer ${t.token}` } }), 401);
    // Minting needs an admin, and a name without control characters (it is the audit log's actor).
    expect((await post(`${app.url}/api/v1/scim/tokens`, { name: 'x' })).status).toBe(401);
    for (const name of ['okta\nentra', 'nul\u0000', '', 'x'.repeat(201), 42]) {
      const bad = await post(`${app.url}/api/v1/scim/tokens`, { name }, { authorization: `Bearer ${admin.token}` });
      expect([name, bad.status, (await json(bad)).error.code]).toEqual([name, 400, 'validation_failed']);
    }
  });

  it('serves discovery read-only with 405 for other methods, and SCIM 404s for unknown paths', async () => {
    const spc = await ok(await scim('GET', '/ServiceProviderConfig'), 200);
    expect(spc).toMatchObject({ patch: { supported: true }, filter: { supported: true }, etag: { supported: true }, sort: { supported: true } });
    const types = await ok(await scim('GET', '/ResourceTypes'), 200);
    expect(types.Resources.map((r: { endpoint: string }) => r.endpoint)).toEqual(['/Users', '/Groups']);
    expect((await ok(await scim('GET', `/Schemas/${ENT}`), 200)).attributes.map((a: { name: string }) => a.name)).toContain('manager');
    await scimErr(await scim('POST', '/Schemas', {}), 405);
    await scimErr(await scim('DELETE', '/ServiceProviderConfig'), 405);
    await scimErr(await scim('GET', '/Nope'), 404);
  });

  it('pages with a stable order, sorts, projects attributes, and answers POST /.search', async () => {
    for (let i = 0; i < 5; i++) await ok(await scim('POST', '/Users', { schemas: [CORE], userName: `page-${i}@example.com`, displayName: `P${4 - i}` }), 201);
    const filter = encodeURIComponent('userName sw "page-"');
    const p1 = await ok(await scim('GET', `/Users?filter=${filter}&startIndex=1&count=2`), 200);
    const p2 = await ok(await scim('GET', `/Users?filter=${filter}&startIndex=3&count=2`), 200);
    const p3 = await ok(await scim('GET', `/Users?filter=${filter}&startIndex=5&count=2`), 200);
    expect([p1, p2, p3].map((p) => [p.totalResults, p.itemsPerPage])).toEqual([[5, 2], [5, 2], [5, 1]]);
    // Pages are in id order: together they hold every match exactly once.
    const paged = [...p1.Resources, ...p2.Resources, ...p3.Resources];
    expect(paged.map((r: { userName: string }) => r.userName).sort()).toEqual([0, 1, 2, 3, 4].map((i) => `page-${i}@example.com`));
    expect(paged.map((r: { id: string }) => r.id)).toEqual(paged.map((r: { id: string }) => r.id).sort());
    const all = await ok(await scim('GET', '/Users?count=1000&attributes=userName'), 200);
    const unfiltered = [];
    for (let i = 1; i <= all.totalResults; i += 3) unfiltered.push(...(await ok(await scim('GET', `/Users?startIndex=${i}&count=3&attributes=userName`), 200)).Resources);
    expect(unfiltered.map((r: { id: string }) => r.id)).toEqual(all.Resources.map((r: { id: string }) => r.id));
    const sorted = await ok(await scim('GET', `/Users?filter=${filter}&sortBy=displayName&sortOrder=descending&attributes=displayName`), 200);
    expect(sorted.Resources.map((r: { displayName: string }) => r.displayName)).toEqual(['P4', 'P3', 'P2', 'P1', 'P0']);
    expect(Object.keys(sorted.Resources[0]).sort()).toEqual(['displayName', 'id', 'schemas']);
    const excl = await ok(await scim('GET', `/Users?filter=${filter}&excludedAttributes=emails,meta,groups&count=1`), 200);
    expect(excl.Resources[0].meta).toBeUndefined();
    const search = await ok(await scim('POST', '/Users/.search', { schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'], filter: 'userName sw "page-"', startIndex: 2, count: 1, attributes: ['userName'] }), 200);
    expect(search).toMatchObject({ totalResults: 5, itemsPerPage: 1, startIndex: 2, Resources: [{ id: paged[1].id, userName: paged[1].userName }] });
    const zero = await ok(await scim('GET', `/Users?filter=${filter}&count=0`), 200);
    expect(zero).toMatchObject({ totalResults: 5, Resources: [] });
  });

  it('honours If-Match with 412 and If-None-Match with 304', async () => {
    const u = await ok(await scim('POST', '/Users', { schemas: [CORE], userName: 'etag@example.com' }), 201);
    await scimErr(await scim('PUT', `/Users/${u.id}`, { schemas: [CORE], userName: 'etag@example.com' }, { 'if-match': 'W/"999"' }), 412);
    const put = await scim('PUT', `/Users/${u.id}`, { schemas: [CORE], userName: 'etag@example.com', title: 'T' }, { 'if-match': u.meta.version });
    expect(put.status).toBe(200);
    const etag = put.headers.get('etag')!;
    expect((await scim('GET', `/Users/${u.id}`, undefined, { 'if-none-match': etag })).status).toBe(304);
    await scimErr(await scim('DELETE', `/Users/${u.id}`, undefined, { 'if-match': u.meta.version }), 412);
  });

  it('answers malformed, oversized, wrongly typed and hostile input with 400 and a scimType', async () => {
    await scimErr(await scim('POST', '/Users', '{"userName": '), 400, 'invalidSyntax');
    await scimErr(await scim('POST', '/Users', '[1,2]'), 400, 'invalidSyntax');
    await scimErr(await scim('POST', '/Users', { schemas: [CORE] }), 400, 'invalidValue');
    await scimErr(await scim('POST', '/Users', { userName: 'x', active: 'perhaps' }), 400, 'invalidValue');
    await scimErr(await scim('POST', '/Users', { userName: { nested: true } }), 400, 'invalidValue');
    await scimErr(await scim('POST', '/Users', { userName: 'a'.repeat(300) }), 400, 'invalidValue');
    await scimErr(await scim('GET', `/Users?filter=${encodeURIComponent('('.repeat(3000) + 'userName eq "a"' + ')'.repeat(3000))}`), 400, 'invalidFilter');
    await scimErr(await scim('GET', `/Users?filter=${encodeURIComponent('userName eq "bad \\x escape"')}`), 400, 'invalidFilter');
    await scimErr(await scim('GET', `/Users?filter=${encodeURIComponent(Array.from({ length: 300 }, (_, i) => `userName eq "${i}"`).join(' or '))}`), 400, 'invalidFilter');
    await scimErr(await scim('GET', '/Users?filter=nosuch+eq+1'), 400, 'invalidFilter');
    await scimErr(await scim('GET', '/Users?startIndex=abc'), 400, 'invalidValue');
    const g = await ok(await scim('POST', '/Groups', { displayName: 'Hostile' }), 201);
    await scimErr(await scim('POST', '/Groups', { displayName: 'HOSTILE' }), 409, 'uniqueness');
    await scimErr(await scim('PATCH', `/Groups/${g.id}`, { Operations: [{ op: 'frobnicate', path: 'members' }] }), 400, 'invalidSyntax');
    await scimErr(await scim('PATCH', `/Groups/${g.id}`, { Operations: [{ op: 'remove', path: 'members[value eq "x"' }] }), 400, 'invalidPath');
    await scimErr(await scim('PATCH', `/Groups/${g.id}`, { Operations: [{ op: 'replace', path: 'id', value: 'x' }] }), 400, 'mutability');
    const refused = await json(await fetch(`${app.url}/api/v1/audit?action=scim.group.create&outcome=failure&limit=5`, authed(admin.token)));
    expect(refused.items[0]).toMatchObject({ actor_type: 'scim', outcome: 'failure', details: { status: 409 } });
    const sqlish = await ok(await scim('GET', `/Users?filter=${encodeURIComponent(`userName eq "x' OR '1'='1"`)}`), 200);
    expect(sqlish.totalResults).toBe(0);
    const big = await oversized('/scim/v2/Users');
    expect(big.status).toBe(413);
    expect(JSON.parse(big.body)).toMatchObject({ schemas: [ERROR], status: '413' });
    await scimErr(await scim('POST', '/Users', 'userName=x', { 'content-type': 'application/x-www-form-urlencoded' }), 415);
    // Concurrent creates of one userName: exactly one wins.
    const racers = await Promise.all(Array.from({ length: 5 }, () => scim('POST', '/Users', { userName: 'race@example.com' })));
    expect(racers.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409]);
    // The process is still healthy after all of it.
    expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
  });
});
