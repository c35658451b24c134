// The control plane over real HTTP against a real `nexus serve` process and SQLite file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAppliance, type Appliance } from '../helpers/appliance.ts';
import { authed, json, login, post, type Admin } from '../helpers/api.ts';

let app: Appliance;
let admin: Admin;

beforeAll(async () => {
  // A small, configured body limit: oversized bodies are tested against it (and it proves the setting works).
  app = await startAppliance({ env: { NEXUS_BODY_LIMIT_BYTES: String(256 * 1024) } });
});
afterAll(async () => {
  await app?.stop();
});

describe('first start and setup', () => {
  it('refuses a wrong setup token, then sets up once, then answers 409', async () => {
    expect(app.setupToken).toMatch(/^nx_setup_/);
    expect((await json(await fetch(`${app.url}/api/v1/setup/status`))).setup_required).toBe(true);
    const wrong = await post(`${app.url}/api/v1/setup`, { setup_token: 'nx_setup_wrong', username: 'admin', password: 'correct-horse-battery' });
    expect(wrong.status).toBe(401);
    expect((await json(wrong)).error.code).toBe('unauthorized');
    // The command printed at first start, pasted without replacing its placeholder, sets nothing.
    const pasted = await post(`${app.url}/api/v1/setup`, { setup_token: app.setupToken, username: 'admin', password: '<at least 10 characters>' });
    expect(pasted.status).toBe(400);
    expect((await json(pasted)).error).toMatchObject({ code: 'validation_failed', param: 'password' });
    expect((await json(await fetch(`${app.url}/api/v1/setup/status`))).setup_required).toBe(true);
    // Two racing setups with the right token: exactly one wins.
    const [a, b] = await Promise.all([
      post(`${app.url}/api/v1/setup`, { setup_token: app.setupToken, username: 'admin', password: 'correct-horse-battery' }),
      post(`${app.url}/api/v1/setup`, { setup_token: app.setupToken, username: 'admin2', password: 'correct-horse-battery' }),
    ]);
    expect([a.status, b.status].sort()).toEqual([201, 409]);
    const winner = a.status === 201 ? 'admin' : 'admin2';
    const reuse = await post(`${app.url}/api/v1/setup`, { setup_token: app.setupToken, username: 'again', password: 'correct-horse-battery' });
    expect(reuse.status).toBe(409);
    expect((await json(reuse)).error.code).toBe('setup_complete');
    // Once set up, that is the answer whatever the body: a short password, a missing field, broken JSON.
    for (const body of [{ setup_token: app.setupToken, username: 'again', password: 'short' }, { username: 'again' }, '{"setup_token":']) {
      const late = await fetch(`${app.url}/api/v1/setup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
      expect(late.status, JSON.stringify(body)).toBe(409);
      expect((await json(late)).error.code).toBe('setup_complete');
    }
    admin = await login(app, winner, 'correct-horse-battery');
  });

  it('issues personal tokens shown once, usable as Bearer and X-API-Key, and revocable', async () => {
    const created = await json(await post(`${app.url}/api/v1/tokens`, { name: 'ci' }, { cookie: admin.cookie }));
    expect(created.token).toMatch(/^nx_pat_/);
    const me = await fetch(`${app.url}/api/v1/me`, { headers: { 'x-api-key': created.token } });
    expect(me.status).toBe(200);
    const list = await json(await fetch(`${app.url}/api/v1/tokens`, authed(created.token)));
    expect(JSON.stringify(list)).not.toContain(created.token);
    const del = await fetch(`${app.url}/api/v1/tokens/${created.id}`, authed(admin.token, { method: 'DELETE' }));
    expect(del.status).toBe(204);
    expect((await fetch(`${app.url}/api/v1/me`, authed(created.token))).status).toBe(401);
  });

  it('records state changes in the audit log with filters and cursor paging', async () => {
    const page1 = await json(await fetch(`${app.url}/api/v1/audit?limit=2`, authed(admin.token)));
    expect(page1.items).toHaveLength(2);
    expect(page1.next_cursor).toBeTruthy();
    const page2 = await json(await fetch(`${app.url}/api/v1/audit?limit=2&cursor=${page1.next_cursor}`, authed(admin.token)));
    expect(page2.items[0].id).toBeLessThan(page1.items[1].id);
    const revokes = await json(await fetch(`${app.url}/api/v1/audit?action=token.revoke`, authed(admin.token)));
    expect(revokes.items.length).toBe(1);
    expect(revokes.items[0]).toMatchObject({ action: 'token.revoke', outcome: 'success', actor_name: admin.username, source_ip: '127.0.0.1' });
    const setups = await json(await fetch(`${app.url}/api/v1/audit?action=setup.*`, authed(admin.token)));
    expect(setups.items.map((i: { outcome: string }) => i.outcome)).toContain('denied');
    const bad = await fetch(`${app.url}/api/v1/audit?cursor=zzz`, authed(admin.token));
    expect(bad.status).toBe(400);
  });

  it('takes the audit query exactly as documented, an empty parameter meaning "not given", and a date alone', async () => {
    const audit = async (qs: string) => {
      const res = await fetch(`${app.url}/api/v1/audit?${qs}`, authed(admin.token));
      expect(res.status, qs).toBe(200);
      return (await json(res)).items as Array<{ id: number; ts: string }>;
    };
    const all = await audit('');
    expect(all.length).toBeGreaterThan(3);
    // The form printed in the design and in docs/api.md, every filter left empty.
    expect(await audit('action=&actor=&routed_via=&node_id=&since=&cursor=')).toEqual(all);
    expect(await audit('action=&actor=&routed_via=&node_id=&outcome=&since=&until=&cursor=&limit=')).toEqual(all);
    // A date alone is the start of that day in UTC: `since` of the oldest entry's day keeps it,
    // `until` of that day (exclusive) leaves it out.
    const oldest = all.at(-1)!;
    const day = oldest.ts.slice(0, 10);
    expect((await audit(`since=${day}`)).map((i) => i.id)).toContain(oldest.id);
    expect((await audit(`since=${day}T00:00:00Z`)).map((i) => i.id)).toEqual((await audit(`since=${day}`)).map((i) => i.id));
    expect((await audit(`until=${day}`)).map((i) => i.id)).not.toContain(oldest.id);
    expect(await audit('since=2999-01-01')).toEqual([]);

    // A malformed value is still refused, in the control plane's format, naming the parameter. A
    // leap second is a valid RFC 3339 time that no Date holds: refused too, not a 500.
    const refused: Array<[string, string]> = [
      ['routed_via=sideways', 'routed_via'], ['outcome=maybe', 'outcome'], ['since=yesterday', 'since'],
      ['since=2026-13-01', 'since'], ['until=2026-12-07T25:00:00Z', 'until'], ['since=2026-12-31T23:59:60Z', 'since'],
      ['limit=many', 'limit'], ['bogus=', 'bogus'],
    ];
    for (const [qs, param] of refused) {
      const res = await fetch(`${app.url}/api/v1/audit?${qs}`, authed(admin.token));
      expect(res.status, qs).toBe(400);
      expect((await json(res)).error, qs).toMatchObject({ code: 'validation_failed', param, message: expect.stringContaining(param) });
    }
  });

  it('reads empty query parameters as absent on the other list endpoints too', async () => {
    const get = (path: string) => fetch(`${app.url}${path}`, authed(admin.token));
    const usage = await get('/api/v1/usage?group_by=&since=&until=&key_id=&user_id=&model=&limit=');
    expect(usage.status).toBe(200);
    expect((await json(usage)).group_by).toEqual(['key', 'model', 'day']);
    expect((await get('/api/v1/usage?since=2026-01-01&until=2999-01-01')).status).toBe(200);
    const badUsage = await get('/api/v1/usage?until=soon');
    expect(badUsage.status).toBe(400);
    expect((await json(badUsage)).error).toMatchObject({ code: 'validation_failed', param: 'until' });
    const users = await get('/api/v1/users?limit=&after=');
    expect(users.status).toBe(200);
    expect((await json(users)).items.map((u: { username: string }) => u.username)).toContain(admin.username);
    // An admin's `user_id=` lists every key, as no `user_id` does, not the keys of a user named "".
    const key = await json(await post(`${app.url}/api/v1/virtual-keys`, { name: 'listed' }, { authorization: `Bearer ${admin.token}` }));
    expect((await json(await get('/api/v1/virtual-keys?user_id='))).items.map((k: { id: string }) => k.id)).toContain(key.id);
  });
});

describe('bad input', () => {
  it('answers malformed JSON, wrong content type, unknown fields, oversized bodies clearly', async () => {
    const url = `${app.url}/api/v1/auth/login`;
    const malformed = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username":' });
    expect(malformed.status).toBe(400);
    expect((await json(malformed)).error.code).toBe('invalid_json');
    const wrongType = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: '<a/>' });
    expect(wrongType.status).toBe(415);
    expect((await json(wrongType)).error.code).toBe('unsupported_media_type');
    const unknown = await post(url, { username: 'admin', password: 'x', admin: true });
    expect(unknown.status).toBe(400);
    expect((await json(unknown)).error.message).toContain('"admin"');
    const wrongTypeField = await post(url, { username: 42, password: ['x'] });
    expect(wrongTypeField.status).toBe(400);
    for (const name of ['line\nbreak', 'nul\u0000', '\u001b[31mred', '']) {
      const bad = await post(`${app.url}/api/v1/tokens`, { name }, { authorization: `Bearer ${admin.token}` });
      expect([name, bad.status, (await json(bad)).error.param]).toEqual([name, 400, 'name']);
    }
    const huge = await post(`${app.url}/api/v1/tokens`, { name: 'x'.repeat(300 * 1024) }, { authorization: `Bearer ${admin.token}` });
    expect(huge.status).toBe(413);
    expect((await json(huge)).error.code).toBe('payload_too_large');
  });

  it('treats SQL-looking strings as data', async () => {
    const name = "x'); DROP TABLE users; --";
    const res = await post(`${app.url}/api/v1/tokens`, { name }, { authorization: `Bearer ${admin.token}` });
    expect(res.status).toBe(201);
    const list = await json(await fetch(`${app.url}/api/v1/tokens`, authed(admin.token)));
    expect(list.items.some((t: { name: string }) => t.name === name)).toBe(true);
    const login = await post(`${app.url}/api/v1/auth/login`, { username: "admin'--", password: "' OR '1'='1" });
    expect(login.status).toBe(401);
  });

  it('gives JSON 404 on API paths, never HTML', async () => {
    const res = await fetch(`${app.url}/api/v1/does-not-exist`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect((await json(res)).error.code).toBe('not_found');
  });

  it('limits brute-force sign-in with 429 and Retry-After', async () => {
    let last: Response | undefined;
    for (let i = 0; i < 12; i++) last = await post(`${app.url}/api/v1/auth/login`, { username: 'victim', password: `guess-${i}` });
    expect(last!.status).toBe(429);
    expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await json(last!)).error.code).toBe('rate_limited');
  });

  it('requires admin for admin routes and a credential for everything else', async () => {
    expect((await fetch(`${app.url}/api/v1/audit`)).status).toBe(401);
    expect((await fetch(`${app.url}/api/v1/me`, authed('nx_pat_forged'))).status).toBe(401);
    const member = await json(await post(`${app.url}/api/v1/users`, { username: 'member1', password: 'member-password-1' }, { authorization: `Bearer ${admin.token}` }));
    expect(member.role).toBe('member');
    const m = await login(app, 'member1', 'member-password-1');
    expect((await fetch(`${app.url}/api/v1/audit`, authed(m.token))).status).toBe(403);
    // Deactivating the member cuts its session and tokens at once.
    const patch = await fetch(`${app.url}/api/v1/users/${member.id}`, authed(admin.token, { method: 'PATCH', body: JSON.stringify({ active: false }) }));
    expect(patch.status).toBe(200);
    expect((await fetch(`${app.url}/api/v1/me`, authed(m.token))).status).toBe(401);
    expect((await fetch(`${app.url}/api/v1/me`, { headers: { cookie: m.cookie } })).status).toBe(401);
  });
});

describe('health and metrics', () => {
  it('serves /healthz, /ready, and /metrics only on the admin listener', async () => {
    expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${app.url}/ready`)).status).toBe(200);
    expect((await fetch(`${app.url}/metrics`)).status).toBe(404);
    const metrics = await fetch(`${app.adminUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('nexus_http_requests_total');
    expect(app.output()).not.toContain('not a loopback address');
  });

  it('warns at start when the admin listener is not on a loopback address, and still serves it', async () => {
    const exposed = await startAppliance({ args: ['--admin-listen', '0.0.0.0:0'] });
    try {
      const warning = exposed.output().split('\n').find((l) => l.includes('not a loopback address'));
      expect(warning).toBeDefined();
      expect(JSON.parse(warning!)).toMatchObject({ level: 40, adminListen: '0.0.0.0', msg: expect.stringContaining('/api/hub/*') });
      const port = new URL(exposed.adminUrl).port;
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    } finally {
      await exposed.stop();
    }
  });
});
