// Rotating a virtual key: a new secret shown once, the same id, limits, spend and usage; the old
// secret works for the grace period asked (none by default) and is then refused as rotated; Zhipu
// id.secret keys too (JWTs signed with the old secret); concurrent rotations leave exactly the last
// two secrets usable; hostile input and other users' keys are refused.
import { SignJWT } from 'jose';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authed, json, login, post, type Admin } from '../helpers/api.ts';
import { nexus, tempDir, type Appliance } from '../helpers/appliance.ts';
import { createKey, createProvider, pricedChat, pricedGateway, simpleModel } from '../helpers/gateway.ts';
import type { LlmUpstream } from '../helpers/llm-upstream.ts';

let app: Appliance;
let admin: Admin;
let up: LlmUpstream;

// Each call costs exactly $0.002 (pricedGateway).
const chat = (key: string) => pricedChat(app, key);
const rotate = (id: string, body?: unknown, token = admin.token) =>
  fetch(`${app.url}/api/v1/virtual-keys/${id}/rotate`, { method: 'POST', headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });

beforeAll(async () => {
  ({ app, admin, up } = await pricedGateway());
  const glm = await createProvider(app, admin, { name: 'glm', type: 'glm', base_url: `${up.url}/api/paas/v4`, api_key: 'glm-x' });
  await simpleModel(app, admin, glm.id, 'm-glm', 'glm-4');
});
afterAll(async () => {
  await app?.stop();
  await up?.close();
});

describe('virtual key rotation', () => {
  it('gives a new secret at once, keeping id, limits, spend and usage; the old one is refused as rotated', async () => {
    const { id, key: old } = await createKey(app, admin.token, { max_budget_usd: 0.006, rpm: 100 });
    expect((await chat(old)).status).toBe(200);
    const res = await rotate(id); // no body: no grace
    expect(res.status).toBe(200);
    const rotated = await json(res);
    expect(rotated).toMatchObject({ id, max_budget_usd: 0.006, rpm: 100, previous_valid_until: null, rotated_at: expect.any(String) });
    expect(rotated.key).toMatch(/^nx_vk_/);
    expect(rotated.key).not.toBe(old);
    expect(rotated.spent_usd).toBeCloseTo(0.002, 9);
    const refused = await chat(old);
    expect(refused.status).toBe(401);
    expect((await json(refused)).error).toMatchObject({ code: 'invalid_api_key', message: 'this virtual key was rotated: use the new key shown when it was rotated' });
    // The same budget: two more calls fit, the third does not.
    expect((await chat(rotated.key)).status).toBe(200);
    expect((await chat(rotated.key)).status).toBe(200);
    expect((await chat(rotated.key)).status).toBe(429);
    const usage = (await json(await fetch(`${app.url}/api/v1/usage?group_by=key&key_id=${id}`, authed(admin.token)))).items;
    expect(usage[0]).toMatchObject({ key_id: id, requests: 4 });
    // The key is in no answer but the rotation's, and in no log line; the audit entry names the grace.
    const listed = JSON.stringify(await json(await fetch(`${app.url}/api/v1/virtual-keys/${id}`, authed(admin.token))));
    expect(listed).not.toContain(rotated.key);
    const audit = await json(await fetch(`${app.url}/api/v1/audit?action=gateway.virtual_key.rotate&limit=5`, authed(admin.token)));
    expect(audit.items[0]).toMatchObject({ target_id: id, details: { grace_seconds: 0 } });
    expect(JSON.stringify(audit)).not.toContain(rotated.key);
    expect(app.output()).not.toContain(rotated.key);
    expect(app.output()).not.toContain(old);
  });

  it('keeps the old secret working for the grace period, then refuses it', async () => {
    const { id, key: old } = await createKey(app, admin.token);
    const client = new OpenAI({ apiKey: old, baseURL: `${app.url}/v1`, maxRetries: 0 });
    await client.models.list(); // cached as the current secret before the rotation
    const rotated = await json(await rotate(id, { grace_seconds: 2 }));
    expect(Date.parse(rotated.previous_valid_until) - Date.now()).toBeGreaterThan(0);
    expect(Date.parse(rotated.previous_valid_until) - Date.now()).toBeLessThanOrEqual(2000);
    expect((await chat(old)).status).toBe(200);
    expect((await chat(rotated.key)).status).toBe(200);
    let status = 200;
    for (let i = 0; i < 40 && status === 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await chat(old)).status;
    }
    expect(status).toBe(401);
    await expect(client.models.list()).rejects.toMatchObject({ status: 401 });
    expect((await chat(rotated.key)).status).toBe(200);
    expect((await json(await fetch(`${app.url}/api/v1/virtual-keys/${id}`, authed(admin.token)))).previous_valid_until).toBeNull();
  });

  it('rotates an id.secret key: JWTs signed with the old secret work only within the grace period', async () => {
    const sign = (key: string) => {
      const [apiKey, secret] = key.split('.') as [string, string];
      return new SignJWT({ api_key: apiKey, exp: Date.now() + 60_000, timestamp: Date.now() })
        .setProtectedHeader({ alg: 'HS256', sign_type: 'SIGN' } as never).sign(new TextEncoder().encode(secret));
    };
    const glm = async (authorization: string) =>
      (await post(`${app.url}/api/paas/v4/chat/completions`, { model: 'm-glm', messages: [{ role: 'user', content: 'x' }] }, { authorization })).status;
    const { id, key: old } = await createKey(app, admin.token, { format: 'id_secret' });
    expect(await glm(await sign(old))).toBe(200);
    const rotated = await json(await rotate(id, { grace_seconds: 60 }));
    expect(rotated.key.split('.')).toHaveLength(2);
    expect(rotated.key.split('.')[0]).not.toBe(old.split('.')[0]);
    expect(await glm(await sign(old))).toBe(200);
    expect(await glm(await sign(rotated.key))).toBe(200);
    expect(await glm(`Bearer ${old}`)).toBe(200);
    // A second rotation without grace ends the first secret for good and the second at once.
    const again = await json(await rotate(id));
    expect(await glm(await sign(old))).toBe(401);
    expect(await glm(await sign(rotated.key))).toBe(401);
    expect(await glm(`Bearer ${rotated.key}`)).toBe(401);
    expect(await glm(await sign(again.key))).toBe(200);
  });

  it('leaves exactly the last two secrets usable after concurrent rotations with grace', async () => {
    const { id, key: original } = await createKey(app, admin.token);
    const answers = await Promise.all(Array.from({ length: 6 }, () => rotate(id, { grace_seconds: 600 })));
    expect(answers.map((a) => a.status)).toEqual(Array(6).fill(200));
    const keys = (await Promise.all(answers.map((a) => json(a)))).map((a) => a.key as string);
    expect(new Set(keys).size).toBe(6);
    const statuses = await Promise.all([original, ...keys].map(async (k) => (await chat(k)).status));
    expect(statuses.filter((s) => s === 200)).toHaveLength(2);
    expect(statuses[0]).toBe(401);
  });

  it('refuses bad grace values, revoked keys and other users\' keys, in the API\'s format', async () => {
    const { id } = await createKey(app, admin.token);
    for (const bad of [{ grace_seconds: -1 }, { grace_seconds: 7 * 24 * 3600 + 1 }, { grace_seconds: '60' }, { grace_seconds: 1.5 }, { grace: 60 }, [60], 'x']) {
      const res = await rotate(id, bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect((await json(res)).error.code).toBe('validation_failed');
    }
    const malformed = await fetch(`${app.url}/api/v1/virtual-keys/${id}/rotate`, { method: 'POST', headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/json' }, body: '{"grace_seconds":' });
    expect(malformed.status).toBe(400);
    expect((await rotate('no-such-key')).status).toBe(404);
    await post(`${app.url}/api/v1/users`, { username: 'rot-member', password: 'member-password-1' }, { authorization: `Bearer ${admin.token}` });
    const m = await login(app, 'rot-member', 'member-password-1');
    expect((await rotate(id, {}, m.token)).status).toBe(404);
    const mine = await createKey(app, m.token);
    expect((await rotate(mine.id, { grace_seconds: 5 }, m.token)).status).toBe(200);
    expect((await fetch(`${app.url}/api/v1/virtual-keys/${id}`, authed(admin.token, { method: 'DELETE' }))).status).toBe(204);
    const revoked = await rotate(id);
    expect(revoked.status).toBe(409);
    expect((await json(revoked)).error.code).toBe('conflict');
  });

  it('rotates from the CLI, printing the new key once', async () => {
    const env = { NEXUS_URL: app.url, NEXUS_TOKEN: admin.token, XDG_CONFIG_HOME: tempDir('nexus-cli-cfg-') };
    const { id, key: old } = await createKey(app, admin.token);
    const r = await nexus(['key', 'rotate', id, '--grace', '1h'], { env });
    expect(r.code, r.stderr).toBe(0);
    const fresh = /nx_vk_\S+/.exec(r.stdout)![0];
    expect(fresh).not.toBe(old);
    expect(r.stdout).toContain('keeps working until');
    expect((await chat(fresh)).status).toBe(200);
    expect((await chat(old)).status).toBe(200);
    const bad = await nexus(['key', 'rotate', id, '--grace', 'soon'], { env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--grace');
  });
});
