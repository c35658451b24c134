// The console in Chromium against a real appliance from a fresh data dir: the first-boot wizard,
// sign-in, the pages that exist, and the rules of serving the SPA (never shadowing an API path).
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { authed, json, login, post, type Admin } from '../helpers/api.ts';
import { agentCli, startAgent, type AgentProcess } from '../helpers/agent.ts';
import { launchChromium, openPage, SHOTS } from '../helpers/browser.ts';
import { startLlmUpstream } from '../helpers/llm-upstream.ts';
import OpenAI from 'openai';

let app: Appliance;
let browser: Browser;
let admin: Admin;
let agent: AgentProcess | undefined;
const PASSWORD = 'wizard-password-1';

function selfSigned(cn: string) {
  const dir = tempDir('nexus-cert-');
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
    '-days', '30', '-subj', `/CN=${cn}`, '-addext', `subjectAltName=DNS:${cn}`], { stdio: 'ignore' });
  return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
}

beforeAll(async () => {
  [app, browser] = await Promise.all([startAppliance(), launchChromium()]);
});
afterAll(async () => {
  await agent?.stop();
  await browser?.close();
  await app?.stop();
});

describe('serving the SPA', () => {
  it('never answers an API path with HTML, even for surfaces not yet served', async () => {
    for (const path of ['/v1/models', '/v1beta/models', '/openai/deployments/x/chat/completions', '/scim/v2/Users', '/api/v1/nope', '/api/paas/v4/models',
      '/oauth/authorize', '/.well-known/openid-configuration', '/%761/models', '/ws/x', '/metrics']) {
      const res = await fetch(`${app.url}${path}`);
      // 404 where nothing serves the path yet; 401 where a surface does and wants a credential.
      expect([401, 404], path).toContain(res.status);
      expect(res.headers.get('content-type'), path).toMatch(/^application\/(scim\+)?json/);
      expect(await res.text(), path).not.toContain('<html');
    }
  });

  it('serves index.html with a strict CSP for client routes and hashed assets with a long cache', async () => {
    const res = await fetch(`${app.url}/audit?actor=x`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const html = await res.text();
    const script = /src="(\/assets\/app-[A-Z0-9]{8}\.js)"/.exec(html)![1]!;
    const js = await fetch(`${app.url}${script}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toContain('text/javascript');
    expect(js.headers.get('cache-control')).toContain('immutable');
    for (const bad of ['/assets/app-ZZZZZZZZ.js', '/assets/..%2Fpackage.json', '/assets/index.html']) {
      const r = await fetch(`${app.url}${bad}`);
      expect(r.status, bad).toBe(404);
      expect(r.headers.get('content-type'), bad).not.toContain('text/html');
    }
    expect((await fetch(`${app.url}/setup`, { method: 'POST' })).headers.get('content-type')).toContain('application/json');
  });
});

describe('first-boot wizard', () => {
  it('refuses a wrong token, creates the admin, confirms the URL, takes a certificate and finishes with curl', async () => {
    const context = await browser.newContext({ baseURL: app.url });
    const { page, problems, shot } = await openPage(context, { ignore: [/status of 40[019]/] });
    await page.goto('/');
    await page.waitForURL('**/setup');
    await page.getByLabel('Setup token').fill('nx_setup_wrong');
    await page.getByLabel('Admin username').fill('admin');
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByLabel('Confirm password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create administrator' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('setup token is not valid');
    await shot('setup-1-wrong-token');
    expect((await json(await fetch(`${app.url}/api/v1/setup/status`))).setup_required).toBe(true);

    await page.getByLabel('Setup token').fill(app.setupToken!);
    await page.getByRole('button', { name: 'Create administrator' }).click();
    await page.getByLabel('Public URL').waitFor();
    expect(await page.getByLabel('Public URL').inputValue()).toBe(app.url);
    await shot('setup-2-public-url');
    await page.getByLabel('Public URL').fill('https://nexus.example.test/path');
    await page.getByRole('button', { name: 'Save and continue' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('without a path');
    await page.getByLabel('Public URL').fill('https://nexus.example.test');
    await page.getByRole('button', { name: 'Save and continue' }).click();

    await page.getByLabel('Certificate chain (PEM)').waitFor();
    const mine = selfSigned('nexus.example.test');
    const other = selfSigned('other.example.test');
    await page.getByLabel('Certificate chain (PEM)').fill(mine.cert);
    await page.getByLabel('Private key (PEM)').fill(other.key);
    await page.getByRole('button', { name: 'Upload certificate' }).click();
    await expect.poll(() => page.getByRole('alert').first().textContent()).toContain('does not belong');
    await page.getByLabel('Private key (PEM)').fill(mine.key);
    await page.getByRole('button', { name: 'Upload certificate' }).click();
    await page.getByText('CN=nexus.example.test').first().waitFor();
    await shot('setup-3-tls');
    const keyFile = join(app.dataDir, 'tls', 'key.pem');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    await page.getByRole('button', { name: 'Continue' }).click();

    // First provider: offered when the gateway is served, otherwise skipped with an explanation.
    await page.getByRole('button', { name: 'Skip for now' }).waitFor();
    const gateway = await page.getByLabel('Provider API key').count() > 0;
    const upstream = gateway ? await startLlmUpstream() : null;
    if (upstream) {
      const type = page.getByLabel('Type');
      const baseUrl = page.getByLabel('Base URL');
      const version = page.getByLabel(/^API version/);
      const submit = page.getByRole('button', { name: 'Add provider and create a virtual key' });
      const alert = page.getByRole('alert');
      // Nothing is filled in as the model: a name the admin did not choose would be stored as one.
      expect([await page.getByLabel('Upstream model').inputValue(), await page.getByLabel('Public model name').inputValue()]).toEqual(['', '']);
      expect(await page.getByLabel('Upstream model').getAttribute('placeholder')).toBe("the provider's model name");
      // The base URL follows the type (the API's defaults, docs/gateway.md); the API version shows for
      // the types that take one, required for azure.
      expect(await baseUrl.inputValue()).toBe('https://api.openai.com/v1');
      expect(await version.isVisible()).toBe(false);
      await type.selectOption('gemini');
      expect(await baseUrl.inputValue()).toBe('https://generativelanguage.googleapis.com');
      expect(await page.getByLabel('Provider name').inputValue()).toBe('gemini');
      expect(await page.getByLabel('API version (optional)').isVisible()).toBe(true);
      await type.selectOption('anthropic');
      expect(await baseUrl.inputValue()).toBe('https://api.anthropic.com');
      await type.selectOption('glm');
      expect(await baseUrl.inputValue()).toBe('https://open.bigmodel.cn/api/paas/v4');
      await type.selectOption('azure');
      expect(await baseUrl.inputValue()).toBe('');
      expect(await baseUrl.getAttribute('placeholder')).toBe('https://YOUR-RESOURCE.openai.azure.com');
      expect(await page.getByLabel('API version', { exact: true }).isVisible()).toBe(true);
      // A URL the user typed stays when the type changes.
      await baseUrl.fill('https://me:pw@my-resource.openai.azure.com');
      await type.selectOption('gemini');
      await type.selectOption('azure');
      expect(await baseUrl.inputValue()).toBe('https://me:pw@my-resource.openai.azure.com');
      // What is missing is said inline before anything is sent; then the API's refusal in plain words.
      await page.getByLabel('Upstream model').fill('my-deployment');
      await submit.click();
      await expect.poll(() => alert.textContent()).toBe('Enter the API key Azure OpenAI gave you; Azure OpenAI refuses calls without one.');
      await page.getByLabel('Provider API key').fill('azure-key');
      await submit.click();
      await expect.poll(() => alert.textContent()).toBe('Enter the Azure OpenAI API version, e.g. 2024-10-21 (or v1).');
      await page.getByLabel('API version', { exact: true }).fill('2024-10-21');
      await submit.click();
      await expect.poll(() => alert.textContent()).toBe('Base URL must not carry credentials, a query or a fragment.');
      await shot('setup-4-provider-error');
      // A keyless OpenAI-compatible server (Ollama) with an upstream name that is no valid public name.
      await type.selectOption('openai-compatible');
      expect(await baseUrl.inputValue()).toBe('https://me:pw@my-resource.openai.azure.com');
      await baseUrl.fill(`${upstream.url}/v1`);
      expect(await version.isVisible()).toBe(false);
      await page.getByLabel('Provider API key (optional)').fill('');
      await page.getByLabel('Provider name').fill('ollama');
      await page.getByLabel('Upstream model').fill('llama3:8b');
      expect(await page.getByLabel('Public model name').inputValue()).toBe('llama3-8b');
      await page.getByLabel('Public model name').fill('llama3:8b');
      await submit.click();
      await expect.poll(() => alert.textContent()).toContain('The public model name "llama3:8b" is not allowed: Letters, digits and . _ / @ + - only');
      // The API refuses the model after the provider was stored: the retry changes that provider
      // instead of colliding with it.
      const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
      const other = await json(await post(`${app.url}/api/v1/providers`, { name: 'elsewhere', type: 'openai-compatible', base_url: `${upstream.url}/v1` }, { cookie }));
      expect((await post(`${app.url}/api/v1/models`, { name: 'taken', deployments: [{ provider_id: other.id, upstream_model: 'm' }] }, { cookie })).status).toBe(201);
      await page.getByLabel('Public model name').fill('taken');
      await submit.click();
      await expect.poll(() => alert.textContent()).toBe('Model "taken" already exists.');
      await page.getByLabel('Public model name').fill('llama3-8b');
      await shot('setup-4-provider');
      await submit.click();
    } else {
      await shot('setup-4-provider');
      await page.getByRole('button', { name: 'Skip for now' }).click();
    }
    await page.getByText('curl https://nexus.example.test/v1/models').waitFor();
    await shot('setup-5-done');
    if (upstream) {
      // The curl line works (against the listener; the public name is not resolvable here), and so
      // does a chat through the model the wizard made: sent upstream as llama3:8b, with no key.
      const key = (await page.getByTestId('secret').textContent())!;
      expect(key).toMatch(/^nx_vk_/);
      const out = execFileSync('curl', ['-sS', '--max-time', '20', `${app.url}/v1/models`, '-H', `Authorization: Bearer ${key}`], { encoding: 'utf8' });
      expect(JSON.parse(out).data.map((m: { id: string }) => m.id)).toEqual(['llama3-8b']);
      const client = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: key, maxRetries: 0 });
      const res = await client.chat.completions.create({ model: 'llama3-8b', messages: [{ role: 'user', content: 'Hello' }] });
      expect(res.choices[0]!.message.content).toBeTruthy();
      const seen = upstream.requests.filter((r) => r.path.endsWith('/chat/completions'));
      expect(seen).toHaveLength(1);
      expect(seen[0]!.body!.model).toBe('llama3:8b');
      expect(seen[0]!.headers.authorization).toBeUndefined();
      // One provider from the wizard, stored once: the refused azure one never was.
      const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
      const providers = await json(await fetch(`${app.url}/api/v1/providers`, { headers: { cookie } }));
      expect(providers.items.map((p: { name: string; type: string; has_api_key: boolean }) => [p.name, p.type, p.has_api_key]))
        .toEqual([['elsewhere', 'openai-compatible', false], ['ollama', 'openai-compatible', false]]);
      await upstream.close();
    }
    await page.getByRole('button', { name: 'Open the console' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await shot('overview');
    expect(problems).toEqual([]);
    await context.close();

    admin = await login(app, 'admin', PASSWORD);
    const settings = await json(await fetch(`${app.url}/api/v1/settings`, authed(admin.token)));
    expect(settings.public_url).toBe('https://nexus.example.test');
  });

  it('is closed for good once an admin exists', async () => {
    const context = await browser.newContext({ baseURL: app.url });
    const { page, shot } = await openPage(context);
    await page.goto('/setup');
    await page.getByRole('heading', { name: 'Setup is complete' }).waitFor();
    expect(await page.getByLabel('Setup token').count()).toBe(0);
    await shot('setup-closed');
    await context.close();
    const again = await post(`${app.url}/api/v1/setup`, { setup_token: app.setupToken, username: 'again', password: PASSWORD });
    expect(again.status).toBe(409);
  });
});

describe('signed-in pages', () => {
  it('signs in, manages users and tokens, filters and exports the audit log, edits settings', async () => {
    const context = await browser.newContext({ baseURL: app.url, acceptDownloads: true });
    const { page, problems, shot } = await openPage(context, { ignore: [/status of 401/] });
    await page.goto('/users');
    await page.waitForURL('**/login?return_to=%2Fusers');
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('username or password is wrong');
    await shot('login-error');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Users', exact: true }).waitFor();

    await page.getByLabel('Username').fill('dana');
    await page.getByLabel('Email').fill('dana@example.test');
    await page.getByLabel('Password').fill('dana-password-1');
    await page.getByRole('button', { name: 'Add user' }).click();
    await page.getByRole('cell', { name: 'dana@example.test' }).waitFor();
    // A monthly gateway budget across all of dana's keys.
    await page.getByRole('button', { name: 'Budget of dana' }).click();
    const budget = page.getByRole('form', { name: 'Budget of dana' });
    await budget.getByLabel('Budget (USD)').fill('50');
    await budget.getByLabel('Budget renews').selectOption('month');
    await budget.getByRole('button', { name: 'Save budget' }).click();
    await page.getByRole('cell', { name: '$50 per month' }).waitFor();
    expect(await budget.count()).toBe(0);
    await shot('users');

    await page.getByRole('link', { name: 'Personal tokens' }).click();
    await page.getByRole('heading', { name: 'Personal tokens' }).waitFor();
    await page.getByLabel('Name', { exact: true }).fill('laptop');
    await page.getByRole('button', { name: 'Create token' }).click();
    const token = (await page.getByTestId('secret').textContent())!;
    expect(token).toMatch(/^nx_pat_/);
    expect((await fetch(`${app.url}/api/v1/me`, authed(token))).status).toBe(200);
    await shot('tokens');
    await page.reload();
    await page.getByRole('button', { name: 'Revoke laptop' }).waitFor();
    expect(await page.getByTestId('secret').count()).toBe(0); // shown once
    await page.getByRole('button', { name: 'Revoke laptop' }).click();
    await page.getByRole('cell', { name: 'revoked' }).waitFor();
    expect((await fetch(`${app.url}/api/v1/me`, authed(token))).status).toBe(401);

    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
    await page.getByLabel('Action').fill('token.*');
    await page.getByRole('button', { name: 'Apply' }).click();
    await expect.poll(() => page.getByRole('cell', { name: 'auth.login' }).count()).toBe(0);
    await page.getByRole('cell', { name: 'token.revoke' }).waitFor();
    await shot('audit');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
    const csv = readFileSync((await download.path())!, 'utf8');
    expect(csv.split('\r\n')[0]).toBe('id,ts,actor_type,actor_name,action,target_type,target_id,outcome,source_ip,routed_via,node_id,status,details');
    expect(csv).toContain('token.revoke');
    expect(csv).not.toContain('auth.login');
    expect(csv).not.toContain(token);

    await page.getByRole('link', { name: 'Settings' }).click();
    await page.getByRole('heading', { name: 'Settings' }).waitFor();
    await page.getByLabel('Session lifetime (hours)').fill('2');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByText('Saved.').first().waitFor();
    await shot('settings');
    const [backup] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download a backup' }).click()]);
    expect(backup.suggestedFilename()).toMatch(/^nexus-backup-\d{8}T\d{6}Z\.nxbackup$/);
    const backupFile = readFileSync((await backup.path())!);
    expect(backupFile.subarray(0, 15).toString()).toBe('NEXUS-BACKUP 1\n');
    expect(JSON.parse(backupFile.toString('utf8', 15, backupFile.indexOf(10, 15)))).toMatchObject({ format: 1, files: [], seal: null });
    // SCIM: a token with the tenant URL to paste into the IdP; a provisioned group mapped to a role.
    await page.getByRole('link', { name: 'SCIM provisioning' }).click();
    await page.getByRole('heading', { name: 'SCIM provisioning' }).waitFor();
    expect(await page.getByTestId('tenant-url').textContent()).toBe('https://nexus.example.test/scim/v2');
    // Where each identity provider wants the two values.
    await page.getByText(/^Okta: SCIM connector base URL is the tenant URL/).waitFor();
    await page.getByText(/^Entra ID: Provisioning, mode Automatic; the tenant URL and the token as Secret Token/).waitFor();
    await page.getByLabel('Name', { exact: true }).fill('Okta');
    await page.getByRole('button', { name: 'Create SCIM token' }).click();
    const scimToken = (await page.getByTestId('secret').textContent())!;
    expect(scimToken).toMatch(/^nx_scim_/);
    await shot('scim');
    const group = await fetch(`${app.url}/scim/v2/Groups`, { method: 'POST', headers: { authorization: `Bearer ${scimToken}`, 'content-type': 'application/scim+json' },
      body: JSON.stringify({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Engineers' }) });
    expect(group.status).toBe(201);
    await page.getByRole('link', { name: 'Groups' }).click();
    await page.getByRole('heading', { name: 'Groups' }).waitFor();
    await page.getByLabel('Role for Engineers').selectOption('admin');
    await page.getByLabel('Models for Engineers').fill('gpt-4o-mini, gemini-2.0-flash');
    await page.getByRole('button', { name: 'Save mapping of Engineers' }).click();
    await expect.poll(async () => (await json(await fetch(`${app.url}/api/v1/groups`, authed(admin.token)))).items[0]).toMatchObject({ role: 'admin', models: ['gpt-4o-mini', 'gemini-2.0-flash'] });
    await shot('groups');
    // A provisioned user's role follows their groups: the Users page offers the groups, not a role button.
    const provisioned = await fetch(`${app.url}/scim/v2/Users`, { method: 'POST', headers: { authorization: `Bearer ${scimToken}`, 'content-type': 'application/scim+json' },
      body: JSON.stringify({ schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'pat@example.test' }) });
    expect(provisioned.status).toBe(201);
    await page.getByRole('link', { name: 'Users' }).click();
    const patRow = page.getByRole('row').filter({ hasText: 'pat@example.test' });
    await patRow.getByRole('link', { name: 'Role from groups' }).waitFor();
    expect(await patRow.getByRole('button', { name: /^Make / }).count()).toBe(0);
    expect(await page.getByRole('row').filter({ hasText: 'dana@example.test' }).getByRole('button', { name: 'Make admin' }).count()).toBe(1);

    // Services: a routing card per service; with no nodes yet it points to the nodes page.
    const caps = await json(await fetch(`${app.url}/api/v1/console/capabilities`, authed(admin.token)));
    const wiki = await json(await post(`${app.url}/api/v1/keys`, { slug: 'wiki', label: 'Team wiki', endpoint_url: 'http://127.0.0.1:9/api', auth_method: 'none' },
      { authorization: `Bearer ${admin.token}` }));
    await page.getByRole('link', { name: 'Services' }).click();
    const card = page.getByRole('region', { name: 'Service wiki' });
    await card.getByRole('link', { name: 'Register a node' }).waitFor();
    await shot('services-no-nodes');

    // Nodes (hub): register → the single-use token once, with the exact enroll command.
    if (caps.nodes) {
      await page.getByRole('link', { name: 'Nodes' }).click();
      await page.getByRole('heading', { name: 'Nodes' }).waitFor();
      await page.getByLabel('Node name').fill('edge-1');
      await page.getByRole('button', { name: 'Register node' }).click();
      const reg = (await page.getByTestId('secret').textContent())!;
      expect(reg).toMatch(/^nx_nreg_/);
      // The appliance serves the self-signed certificate uploaded above: the agent is given it (--ca),
      // and the page offers it for download.
      expect(await page.locator('pre code').textContent()).toBe(`nexus agent enroll --url wss://nexus.example.test/ws --token ${reg} --ca appliance.pem\nnexus agent start`);
      const download = page.getByRole('link', { name: 'download appliance.pem' });
      expect(await download.getAttribute('download')).toBe('appliance.pem');
      const served = (await json(await fetch(`${app.url}/api/v1/settings/tls`, authed(admin.token)))).certificate;
      expect(served.self_signed).toBe(true);
      expect(decodeURIComponent((await download.getAttribute('href'))!.replace(/^data:application\/x-pem-file;charset=utf-8,/, ''))).toBe(served.pem);
      await page.getByRole('cell', { name: 'pending' }).waitFor(); // registered, not yet enrolled
      await shot('nodes');
      // A new token for the same node (enrolling again): the old one is replaced, --force in the command.
      await page.getByRole('button', { name: 'New token for edge-1' }).click();
      await page.getByText('New registration token for edge-1').waitFor();
      const again = (await page.getByTestId('secret').textContent())!;
      expect(again).toMatch(/^nx_nreg_/);
      expect(again).not.toBe(reg);
      expect(await page.locator('pre code').textContent()).toBe(`nexus agent enroll --url wss://nexus.example.test/ws --token ${again} --ca appliance.pem --force\nnexus agent start`);
      const stale = await post(`${app.url}/api/internal/things/enroll`, { registration_token: reg });
      expect(stale.status).toBe(401);
    }

    // A second node with a real agent connected (enrolled through the CLI entry point), so it is online.
    const live = await json(await post(`${app.url}/api/v1/nodes`, { name: 'edge-live' }, { authorization: `Bearer ${admin.token}` }));
    const agentHome = tempDir('nexus-console-agent-');
    const enrolled = await agentCli(agentHome, ['enroll', '--url', `${app.url.replace('http', 'ws')}/ws`, '--token', live.registration_token]);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    agent = startAgent(agentHome);
    await agent.waitFor(/Connected to hub/);

    // Bind the service to the nodes through its routing card, with the keyboard where it counts.
    await page.getByRole('link', { name: 'Services' }).click();
    await card.getByLabel('Add a node to wiki').selectOption({ label: 'edge-live (online)' });
    await card.getByRole('button', { name: 'Add node' }).click();
    await card.getByLabel('Add a node to wiki').selectOption({ label: 'edge-1 (pending)' });
    await card.getByRole('button', { name: 'Add node' }).press('Enter');
    await expect.poll(() => page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe('Priority for edge-1');
    await page.keyboard.press('Control+A');
    await page.keyboard.type('-1');
    await card.getByRole('button', { name: 'Save routing' }).click();
    await expect.poll(() => card.getByRole('alert').textContent()).toBe('Priority for edge-1 must be a whole number from 0 to 1000.');
    await card.getByLabel('Priority for edge-1').fill('2');
    await card.getByLabel('Weight for edge-1').fill('3');
    await card.getByRole('button', { name: 'Save routing' }).click();
    await card.getByRole('status').filter({ hasText: 'Routing saved.' }).waitFor();
    await page.reload();
    await card.getByLabel('Priority for edge-1').waitFor();
    expect(await card.getByLabel('Priority for edge-1').inputValue()).toBe('2');
    expect(await card.getByLabel('Weight for edge-1').inputValue()).toBe('3');
    expect(await card.getByLabel('Priority for edge-live').inputValue()).toBe('0');
    expect(await card.getByRole('cell', { name: 'pending' }).count()).toBe(1);
    expect(await card.getByRole('cell', { name: 'online' }).count()).toBe(1);
    const bound = await json(await fetch(`${app.url}/api/v1/keys/${wiki.id}`, authed(admin.token)));
    expect(bound).toMatchObject({ routed_via: 'node', nodes: [{ node_id: live.id, priority: 0, weight: 1 }, { priority: 2, weight: 3 }] });
    await shot('services-routing');
    // Edit the endpoint in the card: saved through PATCH, and a node-routed service gets the agent line.
    await card.getByRole('button', { name: 'Edit endpoint of wiki' }).click();
    await card.getByLabel('Endpoint URL').fill('ftp://192.168.1.20');
    await shot('services-endpoint-form');
    await card.getByRole('button', { name: 'Save endpoint' }).click();
    await expect.poll(() => card.getByRole('alert').textContent()).toBe('Enter the endpoint as an http:// or https:// URL.');
    await card.getByLabel('Endpoint URL').fill('http://192.168.1.20:3000/api');
    await card.getByRole('button', { name: 'Save endpoint' }).click();
    await card.getByRole('status').filter({ hasText: 'Endpoint saved.' }).waitFor();
    await shot('services-endpoint');
    // wiki takes no credential (auth none): nothing to store again on the node, so no agent line.
    expect(await card.locator('.hint.warn code').count()).toBe(0);
    expect(await card.getByText('Warning:').count()).toBe(0); // the node dials it, not the appliance
    expect((await json(await fetch(`${app.url}/api/v1/keys/${wiki.id}`, authed(admin.token)))).endpoint_url).toBe('http://192.168.1.20:3000/api');
    // Removing the nodes makes the service direct again (auth none: no credential asked).
    await card.getByRole('button', { name: 'Remove edge-live from wiki' }).click();
    await card.getByRole('button', { name: 'Remove edge-1 from wiki' }).click();
    await card.getByRole('button', { name: 'Save routing' }).click();
    await card.getByRole('status').filter({ hasText: 'Routing saved.' }).waitFor();
    expect((await json(await fetch(`${app.url}/api/v1/keys/${wiki.id}`, authed(admin.token)))).routed_via).toBe('direct');
    // Now the appliance dials 192.168.1.20 itself, which its proxy refuses until allowed: said in the card.
    await card.getByRole('status').filter({ hasText: 'Warning: endpoint_url names a private, loopback or link-local address (192.168.1.20): the proxy refuses it until proxy.allowPrivateTargets is set' }).waitFor();
    // A service that needs a credential asks for it when its last node goes, and keeps it secret.
    const ledger = await json(await post(`${app.url}/api/v1/keys`, { slug: 'ledger', endpoint_url: 'http://127.0.0.1:9', auth_method: 'bearer', nodes: [{ node_id: live.id }] },
      { authorization: `Bearer ${admin.token}` }));
    await page.reload();
    const ledgerCard = page.getByRole('region', { name: 'Service ledger' });
    // Its endpoint moved while routed through a node: the line to store the credential again, format included.
    await ledgerCard.getByRole('button', { name: 'Edit endpoint of ledger' }).click();
    await ledgerCard.getByLabel('Endpoint URL').fill('http://127.0.0.1:9/v2');
    await ledgerCard.getByRole('button', { name: 'Save endpoint' }).click();
    await ledgerCard.getByRole('status').filter({ hasText: 'Endpoint saved.' }).waitFor();
    expect(await ledgerCard.locator('.hint.warn code').textContent()).toBe('nexus agent credentials add --service ledger --url http://127.0.0.1:9/v2 --secret-format bearer');
    await ledgerCard.getByRole('button', { name: 'Remove edge-live from ledger' }).click();
    await ledgerCard.getByRole('button', { name: 'Save routing' }).click();
    await expect.poll(() => ledgerCard.getByRole('alert').textContent()).toMatch(/enter the credential it should send/);
    await ledgerCard.screenshot({ path: join(SHOTS, 'services-credential.png') });
    await ledgerCard.getByLabel('Credential for direct access').fill('ledger-secret-1');
    await ledgerCard.getByRole('button', { name: 'Save routing' }).click();
    await ledgerCard.getByRole('status').filter({ hasText: 'Routing saved.' }).waitFor();
    await ledgerCard.getByRole('status').filter({ hasText: 'Warning: endpoint_url names a private, loopback or link-local address (127.0.0.1)' }).waitFor();
    // Moved to a host name, the endpoint is the proxy's to check at each request: no warning.
    await ledgerCard.getByRole('button', { name: 'Edit endpoint of ledger' }).click();
    await ledgerCard.getByLabel('Endpoint URL').fill('http://ledger.example.test:9');
    await ledgerCard.getByLabel('New credential').fill('ledger-secret-2');
    await ledgerCard.getByRole('button', { name: 'Save endpoint' }).click();
    await ledgerCard.getByRole('status').filter({ hasText: 'Endpoint saved.' }).waitFor();
    expect(await ledgerCard.getByText('Warning:').count()).toBe(0);
    expect(await json(await fetch(`${app.url}/api/v1/keys/${ledger.id}`, authed(admin.token)))).toMatchObject({ routed_via: 'direct', has_credential: true });
    expect(await page.content()).not.toContain('ledger-secret-1');
    expect(await page.content()).not.toContain('ledger-secret-2');

    // Removing a node names what routes through it first; confirmed, such a service stays node-routed.
    const stranded = await json(await post(`${app.url}/api/v1/keys`, { slug: 'stranded', endpoint_url: 'http://127.0.0.1:9', auth_method: 'bearer', nodes: [{ node_id: live.id }] },
      { authorization: `Bearer ${admin.token}` }));
    await page.goto('/nodes');
    await page.getByRole('heading', { name: 'Nodes' }).waitFor();
    const asked: string[] = [];
    page.once('dialog', (d) => void (asked.push(d.message()), d.dismiss()));
    await page.getByRole('button', { name: 'Remove edge-live' }).click();
    await expect.poll(() => asked.length).toBe(1);
    expect(asked[0]).toContain('Services with no other node: stranded. They stay routed through nodes and answer 503');
    expect((await fetch(`${app.url}/api/v1/nodes/${live.id}`, authed(admin.token))).status).toBe(200);
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Remove edge-live' }).click();
    await expect.poll(async () => (await fetch(`${app.url}/api/v1/nodes/${live.id}`, authed(admin.token))).status).toBe(404);
    expect(await json(await fetch(`${app.url}/api/v1/keys/${stranded.id}`, authed(admin.token)))).toMatchObject({ routed_via: 'node', nodes: [] });

    for (const path of ['/providers', '/virtual-keys', '/services', '/no-such-page']) {
      await page.goto(path);
      await page.locator('main h1').waitFor();
      await shot(`page${path.replaceAll('/', '-')}`);
    }
    expect(problems).toEqual([]);
    await context.close();
    const s = await json(await fetch(`${app.url}/api/v1/settings`, authed(admin.token)));
    expect(s.session_ttl_seconds).toBe(7200);
  });
});

describe('settings API', () => {
  it('is admin only and refuses bad input clearly', async () => {
    expect((await fetch(`${app.url}/api/v1/settings`)).status).toBe(401);
    const member = await login(app, 'dana', 'dana-password-1');
    expect((await fetch(`${app.url}/api/v1/settings`, authed(member.token))).status).toBe(403);
    const put = (body: unknown) => fetch(`${app.url}/api/v1/settings`, authed(admin.token, { method: 'PUT', body: JSON.stringify(body) }));
    for (const body of [{ public_url: 'javascript:alert(1)' }, { public_url: 'https://u:p@x.test' }, { public_url: 42 }, { session_ttl_seconds: 5 }, { surprise: true }, {}]) {
      const res = await put(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((await json(res)).error.code).toBe('validation_failed');
    }
    const tls = (body: unknown) => fetch(`${app.url}/api/v1/settings/tls`, authed(admin.token, { method: 'PUT', body: JSON.stringify(body) }));
    const garbage = await tls({ certificate: '-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----', private_key: '-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----' });
    expect(garbage.status).toBe(400);
    const big = await tls({ certificate: 'x'.repeat(300_000), private_key: 'y' });
    expect(big.status).toBe(413);
    const res = await json(await fetch(`${app.url}/api/v1/settings/tls`, authed(admin.token)));
    expect(JSON.stringify(res)).not.toContain('PRIVATE KEY');
    expect(res.certificate.subject).toContain('nexus.example.test');
  });
});

describe('AI gateway from the console', () => {
  it('adds a provider and a model, creates a virtual key shown once with snippets, and the openai SDK uses it', async (t) => {
    const caps = await json(await fetch(`${app.url}/api/v1/console/capabilities`, authed(admin.token)));
    if (!caps.virtual_keys || !caps.providers) t.skip(); // the gateway surface's APIs
    const upstream = await startLlmUpstream();
    const context = await browser.newContext({ baseURL: app.url });
    const [name, value] = admin.cookie.split(';')[0]!.split('=');
    await context.addCookies([{ name: name!, value: value!, url: app.url }]);
    // The edits below send a bad budget and a taken provider name on purpose; the browser logs the 400 and 409.
    const { page, problems, shot } = await openPage(context, { ignore: [/status of 40[09]/] });
    try {
      await page.goto('/providers');
      // The same provider fields as the wizard's: the base URL follows the type, the key is required
      // where the type needs one, and the API's errors are said in plain words.
      const addLocal = async () => {
        await page.getByLabel('Name', { exact: true }).fill('local');
        await page.getByLabel('Type').selectOption('openai-compatible');
        await page.getByLabel('Base URL').fill(`${upstream.url}/v1`);
        await page.getByLabel('API key (optional)').fill('sk-upstream-test');
        await page.getByRole('button', { name: 'Add provider' }).click();
      };
      await page.getByLabel('Name', { exact: true }).fill('local');
      await page.getByLabel('Type').selectOption('gemini');
      expect(await page.getByLabel('Base URL').inputValue()).toBe('https://generativelanguage.googleapis.com');
      await page.getByRole('button', { name: 'Add provider' }).click();
      await expect.poll(() => page.getByRole('alert').first().textContent()).toBe('Enter the API key Google Gemini gave you; Google Gemini refuses calls without one.');
      await addLocal();
      await page.getByRole('cell', { name: 'local', exact: true }).waitFor();
      expect(await page.getByLabel('Base URL').inputValue()).toBe('https://api.openai.com/v1');
      await addLocal();
      await expect.poll(() => page.getByRole('alert').first().textContent()).toBe('Provider "local" already exists.');
      await page.getByLabel('Provider', { exact: true }).selectOption({ label: 'local' });
      await page.getByLabel('Public model name').fill('team-chat');
      await page.getByLabel('Upstream model').fill('upstream-model');
      await page.getByRole('button', { name: 'Add model' }).click();
      await page.getByRole('cell', { name: 'local → upstream-model' }).waitFor();
      // The next model's example is what the chosen provider already serves, not a model it may not have.
      await page.getByLabel('Provider', { exact: true }).selectOption({ label: 'local' });
      expect(await page.getByLabel('Upstream model').getAttribute('placeholder')).toBe('upstream-model');
      await page.getByText("The model's name at the provider, sent upstream unchanged, e.g. upstream-model.").waitFor();
      // Edit in place: a new provider key (never shown) and the model's prices.
      await page.getByRole('button', { name: 'Edit local' }).click();
      const pEdit = page.getByRole('form', { name: 'Edit local' });
      await pEdit.getByLabel('New API key').fill('sk-upstream-rotated');
      await pEdit.getByRole('button', { name: 'Save changes' }).click();
      await pEdit.waitFor({ state: 'detached' });
      await page.getByRole('button', { name: 'Edit team-chat' }).click();
      const mEdit = page.getByRole('form', { name: 'Edit team-chat' });
      await mEdit.getByLabel('Output $ / M tokens').fill('-2');
      await mEdit.getByRole('button', { name: 'Save changes' }).click();
      await mEdit.getByRole('alert').filter({ hasText: 'output_price_per_mtok' }).waitFor();
      await mEdit.getByLabel('Output $ / M tokens').fill('2');
      await mEdit.getByLabel('Cached input $ / M tokens').fill('0.5');
      await mEdit.getByLabel('Audio input $ / minute').fill('0.006');
      await mEdit.getByLabel('Cache answers for (seconds)').fill('600');
      await mEdit.getByLabel('Routing within a priority').selectOption('least_busy');
      await mEdit.getByRole('button', { name: 'Add deployment' }).click();
      await mEdit.getByLabel('Provider of deployment 2').selectOption({ label: 'local' });
      await mEdit.getByLabel('Upstream model of deployment 2').fill('backup-model');
      await shot('providers-edit-model');
      await mEdit.getByRole('button', { name: 'Save changes' }).click();
      await page.getByRole('cell', { name: '$0 / $2 / $0.5; audio $0.006 / min' }).waitFor();
      await page.getByRole('cell', { name: '600 s' }).waitFor();
      await page.getByRole('cell', { name: 'local → upstream-model, local → backup-model (least busy)' }).waitFor();
      await shot('providers');

      await page.getByRole('link', { name: 'Virtual keys' }).click();
      await page.getByRole('heading', { name: 'Virtual keys' }).waitFor();
      const names = (await json(await fetch(`${app.url}/api/v1/models`, authed(admin.token)))).items.map((m: { name: string }) => m.name);
      expect(await page.getByLabel('Models').getAttribute('placeholder')).toBe(names.slice(0, 2).join(', '));
      await page.getByLabel('Name', { exact: true }).fill('sdk key');
      await page.getByLabel('Models').fill('team-chat');
      await page.getByRole('button', { name: 'Create virtual key' }).click();
      const key = (await page.getByTestId('secret').textContent())!;
      expect(key).toMatch(/^nx_vk_/);
      for (const title of ['openai SDK (Node)', '@google/genai', '@anthropic-ai/sdk', 'curl']) await page.getByText(title, { exact: true }).waitFor();
      expect(await page.locator('details.snippet pre').first().textContent()).toContain(`baseURL: 'https://nexus.example.test/v1', apiKey: '${key}'`);
      expect(await page.locator('details.snippet pre').nth(2).textContent()).toContain(`new Anthropic({ baseURL: 'https://nexus.example.test', apiKey: '${key}' })`);
      await shot('virtual-keys');
      // Every model it names is configured: nothing to warn of.
      expect(await page.getByText('Warning:').count()).toBe(0);

      const client = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: key, maxRetries: 0 });
      const res = await client.chat.completions.create({ model: 'team-chat', messages: [{ role: 'user', content: 'Hello' }] });
      expect(res.choices[0]!.message.content).toBeTruthy();
      const seen = upstream.requests.find((r) => r.path.endsWith('/chat/completions'))!;
      expect(seen.body!.model).toBe('upstream-model');
      expect(seen.headers.authorization).toBe('Bearer sk-upstream-rotated');

      // Edit in place: a limit takes effect on the next request; bad input is shown inline.
      await page.reload();
      await page.getByRole('button', { name: 'Edit sdk key' }).click();
      const editForm = page.getByRole('form', { name: 'Edit sdk key' });
      await editForm.getByLabel('Budget (USD)').fill('-1');
      await editForm.getByRole('button', { name: 'Save changes' }).click();
      await editForm.getByRole('alert').filter({ hasText: 'max_budget_usd' }).waitFor();
      await editForm.getByLabel('Budget (USD)').fill('');
      await editForm.getByLabel('Requests per minute').fill('1');
      // A name no configured model answers to (a typo) is saved all the same, and the admin is told.
      await editForm.getByLabel('Models').fill('team-chat, team-chta');
      await editForm.getByRole('button', { name: 'Save changes' }).click();
      await page.getByRole('cell', { name: '1 rpm' }).waitFor();
      expect(await editForm.count()).toBe(0);
      const typo = 'Warning: model "team-chta" is not configured (yet): this key cannot use it until a model of that name exists';
      expect(await page.getByRole('status').filter({ hasText: 'Warning:' }).allTextContents()).toEqual([typo]);
      await page.getByRole('cell', { name: 'team-chat, team-chta' }).waitFor();
      // A limit newly set counts from the edit: one request passes, the next is refused.
      await client.chat.completions.create({ model: 'team-chat', messages: [{ role: 'user', content: 'Hello' }] });
      await expect(client.chat.completions.create({ model: 'team-chat', messages: [{ role: 'user', content: 'Hello' }] })).rejects.toMatchObject({ status: 429 });

      // Rotate with a grace period: a new key shown once; the old one keeps working for now.
      await page.getByRole('button', { name: 'Rotate sdk key' }).click();
      const rotateForm = page.getByRole('form', { name: 'Rotate sdk key' });
      await rotateForm.getByLabel('The old key').selectOption('3600');
      await rotateForm.getByRole('button', { name: 'Rotate key' }).click();
      await page.getByRole('status').filter({ hasText: 'The old key keeps working until' }).waitFor();
      const rotatedKey = (await page.getByTestId('secret').textContent())!;
      expect(rotatedKey).toMatch(/^nx_vk_/);
      expect(rotatedKey).not.toBe(key);
      const rotatedClient = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: rotatedKey, maxRetries: 0 });
      expect((await rotatedClient.models.list()).data.map((m) => m.id)).toContain('team-chat');
      expect((await client.models.list()).data.map((m) => m.id)).toContain('team-chat');
      await shot('virtual-keys-rotated');

      await page.getByRole('button', { name: 'Revoke sdk key' }).click();
      await page.getByRole('cell', { name: 'revoked' }).waitFor();
      await expect(client.chat.completions.create({ model: 'team-chat', messages: [{ role: 'user', content: 'Hello' }] })).rejects.toMatchObject({ status: 401 });
      await expect(rotatedClient.models.list()).rejects.toMatchObject({ status: 401 });

      // Created with the typo: the key is shown, with the warning; edited to a known model: no warning.
      await page.getByLabel('Name', { exact: true }).fill('typo key');
      await page.getByLabel('Models').fill('team-chta');
      await page.getByRole('button', { name: 'Create virtual key' }).click();
      expect((await page.getByTestId('secret').textContent())!).toMatch(/^nx_vk_/);
      await page.getByRole('status').filter({ hasText: typo }).waitFor();
      await shot('virtual-keys-warning');
      await page.getByRole('button', { name: 'Edit typo key' }).click();
      const typoEdit = page.getByRole('form', { name: 'Edit typo key' });
      await typoEdit.getByLabel('Models').fill('team-chat');
      // A budget that renews every month: shown with its period, the renewal time on hover.
      await typoEdit.getByLabel('Budget (USD)').fill('5');
      await typoEdit.getByLabel('Budget renews').selectOption('month');
      await typoEdit.getByRole('button', { name: 'Save changes' }).click();
      await typoEdit.waitFor({ state: 'detached' });
      await page.getByRole('cell', { name: '$0.0000 / $5 per month' }).waitFor();
      await page.getByRole('row', { name: /typo key/ }).getByRole('cell', { name: 'team-chat', exact: true }).waitFor();
      // The edit's answer replaced the creation's: nothing to warn of any more.
      expect(await page.getByText('Warning:').count()).toBe(0);
      // A key for every model: its snippets name the first configured model, one the key can call.
      await page.getByLabel('Name', { exact: true }).fill('any model key');
      await page.getByRole('button', { name: 'Create virtual key' }).click();
      await page.getByRole('row', { name: /any model key/ }).waitFor();
      const anyKey = (await page.getByTestId('secret').textContent())!;
      const curl = (await page.locator('details.snippet pre').last().textContent())!;
      expect(curl).toContain(anyKey);
      const configured = (await json(await fetch(`${app.url}/api/v1/models`, authed(admin.token)))).items.map((m: { name: string }) => m.name);
      expect(curl).toContain(`"model":"${configured[0]}"`);
      const anyClient = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: anyKey, maxRetries: 0 });
      expect((await anyClient.models.list()).data.map((m) => m.id)).toContain(configured[0]);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
      await upstream.close();
    }
  });

  it('sets a group\'s budget, and charges a member\'s key to one of their groups on create and edit', async () => {
    const scimToken = (await json(await post(`${app.url}/api/v1/scim/tokens`, { name: 'team-idp' }, { authorization: `Bearer ${admin.token}` }))).token;
    const scim = async (path: string, body: unknown) => json(await fetch(`${app.url}/scim/v2${path}`, {
      method: 'POST', headers: { authorization: `Bearer ${scimToken}`, 'content-type': 'application/scim+json' }, body: JSON.stringify(body),
    }));
    const lee = await scim('/Users', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'lee@example.test', active: true });
    await fetch(`${app.url}/api/v1/users/${lee.id}`, authed(admin.token, { method: 'PATCH', body: JSON.stringify({ password: 'lee-password-1' }) }));
    const group = (displayName: string) => scim('/Groups', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName, members: [{ value: lee.id }] });
    const platform = await group('Platform');
    const data = await group('Data');

    const adminContext = await browser.newContext({ baseURL: app.url });
    const [name, value] = admin.cookie.split(';')[0]!.split('=');
    await adminContext.addCookies([{ name: name!, value: value!, url: app.url }]);
    const leeContext = await browser.newContext({ baseURL: app.url });
    try {
      const { page, problems, shot } = await openPage(adminContext, { ignore: [/status of 400/] });
      await page.goto('/groups');
      await page.getByRole('button', { name: 'Budget of Platform' }).click();
      const budget = page.getByRole('form', { name: 'Budget of Platform' });
      await budget.getByLabel('Budget (USD)').fill('-3');
      await budget.getByRole('button', { name: 'Save budget' }).click();
      await budget.getByRole('alert').filter({ hasText: 'max_budget_usd' }).waitFor();
      await budget.getByLabel('Budget (USD)').fill('0.5');
      await budget.getByLabel('Budget renews').selectOption('month');
      await budget.getByRole('button', { name: 'Save budget' }).click();
      await page.getByRole('cell', { name: '$0.0000 / $0.5 per month' }).waitFor();
      expect(await budget.count()).toBe(0);
      expect(await json(await fetch(`${app.url}/api/v1/groups/${platform.id}`, authed(admin.token)))).toMatchObject({ max_budget_usd: 0.5, budget_period: 'month', spent_usd: 0 });
      await shot('groups-budget');

      // The member creates a key charged to one of their groups, then moves it to the other.
      // The sign-in redirect is a 401 (and nothing on a member's page asks for what only admins may read).
      const member = await openPage(leeContext, { ignore: [/status of 401/] });
      await member.page.goto('/virtual-keys');
      await member.page.waitForURL('**/login?return_to=%2Fvirtual-keys');
      await member.page.getByLabel('Username').fill('lee@example.test');
      await member.page.getByLabel('Password').fill('lee-password-1');
      await member.page.getByRole('button', { name: 'Sign in' }).click();
      await member.page.getByRole('heading', { name: 'Virtual keys' }).waitFor();
      await member.page.getByLabel('Name', { exact: true }).fill('team key');
      await expect.poll(() => member.page.getByLabel('Charged to group').locator('option').allTextContents(), { timeout: 10_000 }).toEqual(['No group', 'Data', 'Platform']);
      await member.page.getByLabel('Charged to group').selectOption({ label: 'Platform' });
      await member.page.getByRole('button', { name: 'Create virtual key' }).click();
      expect((await member.page.getByTestId('secret').textContent())!).toMatch(/^nx_vk_/);
      // The member's snippets use the appliance's configured public URL, as an admin's do.
      expect(await member.page.locator('details.snippet pre').first().textContent()).toContain("baseURL: 'https://nexus.example.test/v1'");
      await member.page.getByRole('row', { name: /team key/ }).getByRole('cell', { name: 'Platform', exact: true }).waitFor();
      const [created] = (await json(await fetch(`${app.url}/api/v1/virtual-keys?user_id=${lee.id}`, authed(admin.token)))).items;
      expect(created.group_id).toBe(platform.id);
      await member.page.getByRole('button', { name: 'Edit team key' }).click();
      const edit = member.page.getByRole('form', { name: 'Edit team key' });
      await edit.getByLabel('Charged to group').selectOption({ label: 'Data' });
      await edit.getByRole('button', { name: 'Save changes' }).click();
      await edit.waitFor({ state: 'detached' });
      await member.page.getByRole('row', { name: /team key/ }).getByRole('cell', { name: 'Data', exact: true }).waitFor();
      await member.shot('virtual-keys-group');
      expect(member.problems).toEqual([]);

      // An admin editing the member's key chooses among the member's groups, and may clear it.
      await page.goto('/virtual-keys');
      await page.getByRole('button', { name: 'Edit team key' }).click();
      const adminEdit = page.getByRole('form', { name: 'Edit team key' });
      // The member's groups arrive with their own request after the form opens.
      await expect.poll(() => adminEdit.getByLabel('Charged to group').locator('option').allTextContents(), { timeout: 10_000 }).toEqual(['No group', 'Data', 'Platform']);
      await adminEdit.getByLabel('Charged to group').selectOption({ label: 'No group' });
      await adminEdit.getByRole('button', { name: 'Save changes' }).click();
      await adminEdit.waitFor({ state: 'detached' });
      await expect.poll(async () => (await json(await fetch(`${app.url}/api/v1/virtual-keys/${created.id}`, authed(admin.token)))).group_id).toBeNull();
      expect(data.id).toBeTruthy();
      expect(problems).toEqual([]);
    } finally {
      await adminContext.close();
      await leeContext.close();
    }
  });
});
