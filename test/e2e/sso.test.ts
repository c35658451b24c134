// OIDC single sign-on against a real OpenID Provider (oidc-provider) in Chromium: configuration
// in the console, sign-in matched to a SCIM-provisioned user, refusal of unknown people,
// just-in-time creation, SSO-only mode with a break-glass admin, and a forged callback refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startAppliance, type Appliance } from '../helpers/appliance.ts';
import { authed, json, post, setupAdmin, type Admin } from '../helpers/api.ts';
import { launchChromium, openPage } from '../helpers/browser.ts';
import { startIdp, type Idp } from '../helpers/oidc-idp.ts';

let app: Appliance;
let idp: Idp;
let browser: Browser;
let admin: Admin;
// The provider's own pages load a web font and a favicon it does not have; not ours to judge.
const IGNORE = [/fonts\.googleapis|ERR_NAME_NOT_RESOLVED|ERR_CONNECTION_REFUSED|ERR_INTERNET_DISCONNECTED|status of 40[134]/];

beforeAll(async () => {
  [app, browser] = await Promise.all([startAppliance(), launchChromium()]);
  admin = await setupAdmin(app);
  idp = await startIdp(`${app.url}/api/v1/auth/oidc/callback`, {
    'alice.idp': { email: 'alice@example.test', email_verified: true, preferred_username: 'alice.idp', name: 'Alice' },
    bob: { email: 'bob@example.test', email_verified: true, preferred_username: 'bob', name: 'Bob' },
    mallory: { email: 'alice@example.test', email_verified: false, preferred_username: 'mallory' },
    // Named like the appliance's own admin at the provider, and like a local user, without the verified email.
    'admin.idp': { email: 'someone@elsewhere.test', email_verified: true, preferred_username: 'admin' },
    'dana.unverified': { email: 'dana@example.test', preferred_username: 'dana' },
    'dana.idp': { email: 'dana@example.test', email_verified: true, preferred_username: 'dana.idp' },
  });
  // Alice is provisioned by SCIM under another userName; SSO finds her by email.
  const scim = await json(await post(`${app.url}/api/v1/scim/tokens`, { name: 'idp' }, { authorization: `Bearer ${admin.token}` }));
  const alice = await fetch(`${app.url}/scim/v2/Users`, {
    method: 'POST',
    headers: { authorization: `Bearer ${scim.token}`, 'content-type': 'application/scim+json' },
    body: JSON.stringify({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'alice', emails: [{ value: 'alice@example.test', primary: true }], active: true }),
  });
  expect(alice.status).toBe(201);
});
afterAll(async () => {
  await browser?.close();
  await idp?.close();
  await app?.stop();
});

async function ssoSignIn(page: Page, login: string): Promise<void> {
  await page.goto('/login');
  await page.getByRole('link', { name: 'Sign in with Example IdP' }).click();
  await page.waitForURL(`${idp.issuer}/**`);
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any-password');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL(`${app.url}/**`);
}

describe('single sign-on', () => {
  it('is configured in the console and signs a SCIM-provisioned user in by email', async () => {
    const adminCtx = await browser.newContext({ baseURL: app.url });
    const [name, value] = admin.cookie.split(';')[0]!.split('=');
    await adminCtx.addCookies([{ name: name!, value: value!, url: app.url }]);
    const { page, problems, shot } = await openPage(adminCtx);
    await page.goto('/settings');
    await page.getByLabel('Issuer URL').fill(idp.issuer);
    await page.getByLabel('Client ID').fill(idp.clientId);
    await page.getByLabel('Client secret').fill(idp.clientSecret);
    await page.getByLabel('Button label').fill('Example IdP');
    await page.getByLabel('Enable single sign-on').check();
    await page.getByRole('button', { name: 'Save single sign-on' }).click();
    await page.getByText('Saved.').last().waitFor();
    await shot('settings-sso');
    expect(problems).toEqual([]);
    await adminCtx.close();
    const view = await json(await fetch(`${app.url}/api/v1/settings/oidc`, authed(admin.token)));
    expect(view).toMatchObject({ enabled: true, client_secret_set: true, redirect_uri: `${app.url}/api/v1/auth/oidc/callback` });
    expect(JSON.stringify(view)).not.toContain(idp.clientSecret);

    const ctx = await browser.newContext({ baseURL: app.url });
    const w = await openPage(ctx, { ignore: IGNORE });
    await w.page.goto('/login');
    await w.shot('login-sso');
    await ssoSignIn(w.page, 'alice.idp');
    await w.page.getByRole('heading', { name: 'Overview' }).waitFor();
    expect(await w.page.textContent('.who')).toContain('alice');
    await w.shot('sso-signed-in');
    const me = await w.page.evaluate(async () => (await fetch('/api/v1/me')).json());
    expect(me.user).toMatchObject({ username: 'alice', source: 'scim' });
    await ctx.close();
  });

  it('refuses unknown people and unverified emails, then creates users just in time when allowed', async () => {
    // A fresh browser per person: the provider remembers who signed in to it.
    const fresh = async () => openPage(await browser.newContext({ baseURL: app.url }), { ignore: IGNORE });
    let w = await fresh();
    await ssoSignIn(w.page, 'bob');
    await w.page.waitForURL('**/login?error=*');
    expect(await w.page.getByRole('alert').textContent()).toContain('no Nexus account for bob');
    await w.shot('sso-refused');
    await w.page.context().close();
    w = await fresh();
    await ssoSignIn(w.page, 'mallory');
    await w.page.waitForURL('**/login?error=*');
    expect(await w.page.getByRole('alert').textContent()).toContain('no Nexus account for mallory');
    await w.page.context().close();

    const put = await fetch(`${app.url}/api/v1/settings/oidc`, authed(admin.token, { method: 'PUT', body: JSON.stringify({ jit: true }) }));
    expect(put.status).toBe(200);
    w = await fresh();
    const ctx = w.page.context();
    await ssoSignIn(w.page, 'bob');
    await w.page.getByRole('heading', { name: 'Overview' }).waitFor();
    const users = await json(await fetch(`${app.url}/api/v1/users`, authed(admin.token)));
    expect(users.items.find((u: { username: string }) => u.username === 'bob')).toMatchObject({ source: 'oidc', role: 'member', email: 'bob@example.test' });
    await ctx.close();
  });

  it('never opens a local password account by preferred_username, only by a verified email', async () => {
    // Just-in-time creation is on (previous test): a refused name must not be created or collide either.
    const created = await post(`${app.url}/api/v1/users`, { username: 'dana', email: 'dana@example.test', password: 'dana-password-1' }, { authorization: `Bearer ${admin.token}` });
    expect(created.status).toBe(201);
    const fresh = async () => openPage(await browser.newContext({ baseURL: app.url }), { ignore: IGNORE });
    for (const [login, name] of [['admin.idp', 'admin'], ['dana.unverified', 'dana']] as const) {
      const w = await fresh();
      await ssoSignIn(w.page, login);
      await w.page.waitForURL('**/login?error=*');
      expect(await w.page.getByRole('alert').textContent()).toContain(`the Nexus account ${name} signs in with its password`);
      expect(await w.page.evaluate(async () => (await fetch('/api/v1/me')).status)).toBe(401);
      await w.page.context().close();
    }
    const users = await json(await fetch(`${app.url}/api/v1/users`, authed(admin.token)));
    expect(users.items.map((u: { username: string }) => u.username).sort()).toEqual(['admin', 'alice', 'bob', 'dana']);
    const refused = await json(await fetch(`${app.url}/api/v1/audit?action=auth.login&outcome=failure`, authed(admin.token)));
    expect(refused.items.some((i: { details: { method?: string } }) => i.details?.method === 'oidc')).toBe(true);

    // The same local account, reached through the email the provider verified.
    const w = await fresh();
    await ssoSignIn(w.page, 'dana.idp');
    await w.page.getByRole('heading', { name: 'Overview' }).waitFor();
    const me = await w.page.evaluate(async () => (await fetch('/api/v1/me')).json());
    expect(me.user).toMatchObject({ username: 'dana', source: 'local' });
    await w.page.context().close();
  });

  it('refuses a callback that did not start in this browser, and a replayed one', async () => {
    const ctx = await browser.newContext({ baseURL: app.url });
    const w = await openPage(ctx, { ignore: IGNORE });
    // Start a sign-in but finish it in a browser that never started it (login CSRF).
    const start = await fetch(`${app.url}/api/v1/auth/oidc/start`, { redirect: 'manual' });
    const state = new URL(start.headers.get('location')!).searchParams.get('state')!;
    await w.page.goto(`/api/v1/auth/oidc/callback?state=${state}&code=forged`);
    await w.page.waitForURL('**/login?error=*');
    expect(await w.page.getByRole('alert').textContent()).toContain('did not start in this browser');
    // With the state cookie but a code the provider never issued: refused by the provider.
    const cookie = start.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const forged = await fetch(`${app.url}/api/v1/auth/oidc/callback?state=${state}&code=forged`, { headers: { cookie }, redirect: 'manual' });
    expect(forged.status).toBe(303);
    expect(decodeURIComponent(forged.headers.get('location')!)).toContain('refused the sign-in');
    expect(forged.headers.getSetCookie().some((c) => c.startsWith('nx_session='))).toBe(false);
    const replay = await fetch(`${app.url}/api/v1/auth/oidc/callback?state=${state}&code=forged`, { headers: { cookie }, redirect: 'manual' });
    expect(decodeURIComponent(replay.headers.get('location')!)).toContain('expired or was already used');
    const audit = await json(await fetch(`${app.url}/api/v1/audit?action=auth.login&outcome=failure`, authed(admin.token)));
    expect(audit.items.length).toBeGreaterThanOrEqual(3);
    await ctx.close();
  });

  it('SSO-only mode turns passwords off except for the break-glass admin', async () => {
    await post(`${app.url}/api/v1/users`, { username: 'carol', password: 'carol-password-1' }, { authorization: `Bearer ${admin.token}` });
    const set = (body: unknown) => fetch(`${app.url}/api/v1/settings/oidc`, authed(admin.token, { method: 'PUT', body: JSON.stringify(body) }));
    const noBreakGlass = await set({ sso_only: true, break_glass_username: 'carol' });
    expect(noBreakGlass.status).toBe(400);
    expect((await json(noBreakGlass)).error.message).toContain('break_glass_username');
    expect((await set({ sso_only: true, break_glass_username: 'admin' })).status).toBe(200);

    const carol = await post(`${app.url}/api/v1/auth/login`, { username: 'carol', password: 'carol-password-1' });
    expect(carol.status).toBe(403);
    expect((await json(carol)).error.message).toContain('single sign-on');
    const wrong = await post(`${app.url}/api/v1/auth/login`, { username: 'carol', password: 'wrong-password-1' });
    expect(wrong.status).toBe(401); // without the password nothing about the account is revealed
    expect((await post(`${app.url}/api/v1/auth/login`, { username: 'admin', password: admin.password })).status).toBe(200);

    const ctx = await browser.newContext({ baseURL: app.url });
    const w = await openPage(ctx, { ignore: IGNORE });
    await w.page.goto('/login');
    await w.page.getByText('Break-glass administrator sign-in').waitFor();
    expect(await w.page.getByLabel('Username').isVisible()).toBe(false);
    await w.shot('login-sso-only');
    await ctx.close();
    expect((await set({ sso_only: false })).status).toBe(200);
    expect((await post(`${app.url}/api/v1/auth/login`, { username: 'carol', password: 'carol-password-1' })).status).toBe(200);
  });

  it('refuses settings that cannot work', async () => {
    const set = (body: unknown) => fetch(`${app.url}/api/v1/settings/oidc`, authed(admin.token, { method: 'PUT', body: JSON.stringify(body) }));
    for (const body of [{ issuer: 'http://idp.example.test' }, { issuer: 'not a url' }, { scopes: 'profile email' }, { surprise: 1 }, { enabled: 'yes' }]) {
      const res = await set(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    const unreachable = await set({ issuer: 'http://127.0.0.1:9' });
    expect(unreachable.status).toBe(502);
    const member = await post(`${app.url}/api/v1/auth/login`, { username: 'carol', password: 'carol-password-1' });
    const cookie = member.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    expect((await fetch(`${app.url}/api/v1/settings/oidc`, { headers: { cookie } })).status).toBe(403);
  });
});
