// `nexus login` and `nexus service add` with Chromium completing the browser side, as a user
// would: the CLI prints and "opens" (BROWSER=true) the console URL, Playwright signs the page
// through, the page redirects to the CLI's loopback callback and the CLI finishes.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext } from 'playwright-core';
import { MAIN, nexus, startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { authed, json, post, setupAdmin, type Admin } from '../helpers/api.ts';
import { launchChromium, openPage } from '../helpers/browser.ts';

let app: Appliance;
let browser: Browser;
let signedIn: BrowserContext;
let admin: Admin;

interface Cli {
  proc: ChildProcessWithoutNullStreams;
  out: () => string;
  err: () => string;
  /** Resolves with the first match of `re` on stderr (bounded). */
  waitErr(re: RegExp, ms?: number): Promise<RegExpExecArray>;
  exit: Promise<number | null>;
}

function cli(args: string[], env: Record<string, string>): Cli {
  const proc = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, BROWSER: 'true', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (err += d));
  const exit = new Promise<number | null>((res) => proc.on('exit', (code) => res(code)));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
  void exit.then(() => clearTimeout(timer));
  return {
    proc,
    out: () => out,
    err: () => err,
    exit,
    waitErr: (re, ms = 15_000) => new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`timed out waiting for ${re} in:\n${err}\n${out}`)), ms);
      const check = () => {
        const m = re.exec(err);
        if (m) {
          clearTimeout(t);
          proc.stderr.off('data', check);
          res(m);
        }
      };
      proc.stderr.on('data', check);
      check();
    }),
  };
}

beforeAll(async () => {
  [app, browser] = await Promise.all([startAppliance(), launchChromium()]);
  admin = await setupAdmin(app);
  signedIn = await browser.newContext({ baseURL: app.url });
  const [name, value] = admin.cookie.split(';')[0]!.split('=');
  await signedIn.addCookies([{ name: name!, value: value!, url: app.url }]);
});
afterAll(async () => {
  await browser?.close();
  await app?.stop();
});

describe('nexus login', () => {
  it('opens /cli-auth, refuses a callback with a wrong or missing state, and stores a working token 0600', async () => {
    const home = tempDir('nexus-cli-');
    const run = cli(['login', '--url', app.url], { XDG_CONFIG_HOME: home });
    const [, page] = await run.waitErr(/(http:\/\/\S+\/cli-auth\?port=(\d+)&state=([0-9a-f]{32}))/);
    const m = /port=(\d+)&state=([0-9a-f]{32})/.exec(page!)!;
    const callback = `http://127.0.0.1:${m[1]}/callback`;
    // Hostile callbacks: refused, and the CLI keeps waiting for the real one.
    expect((await fetch(`${callback}?code=nx_cli_forged`)).status).toBe(400);
    expect((await fetch(`${callback}?state=${'0'.repeat(32)}&code=nx_cli_forged`)).status).toBe(400);
    expect((await fetch(`http://127.0.0.1:${m[1]}/elsewhere?state=${m[2]}`)).status).toBe(404);

    const { page: tab, problems, shot } = await openPage(signedIn);
    await tab.goto(page!);
    await tab.getByRole('button', { name: 'Authorize' }).waitFor();
    await shot('cli-auth');
    await tab.getByRole('button', { name: 'Authorize' }).click();
    await tab.waitForURL(`${callback}?**`);
    expect(await tab.textContent('h1')).toBe('Done');
    expect(await run.exit).toBe(0);
    expect(run.out()).toContain(`Signed in to ${app.url} as admin`);
    const file = join(home, 'nexus', 'credentials.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(readFileSync(file, 'utf8'));
    expect(stored.token).toMatch(/^nx_pat_/);
    expect(run.out() + run.err()).not.toContain(stored.token);
    expect((await fetch(`${app.url}/api/v1/me`, authed(stored.token))).status).toBe(200);
    expect(problems).toEqual([]);
    await tab.close();

    // The stored credentials drive the other commands.
    const list = await nexus(['service', 'list'], { env: { XDG_CONFIG_HOME: home } });
    expect(list.stderr).not.toContain('not signed in');
  });

  it('--no-browser prints the URL and takes a pasted one-time code, which works once', async () => {
    const home = tempDir('nexus-cli-');
    const run = cli(['login', '--url', app.url, '--no-browser'], { XDG_CONFIG_HOME: home });
    await run.waitErr(/Paste the one-time code/);
    expect(run.err()).toContain(`${app.url}/cli-auth`);
    const { page: tab, shot } = await openPage(signedIn);
    await tab.goto('/cli-auth');
    await tab.getByRole('button', { name: 'Authorize' }).click();
    const code = (await tab.getByTestId('secret').textContent())!;
    expect(code).toMatch(/^nx_cli_/);
    await shot('cli-auth-code');
    await tab.close();
    run.proc.stdin.end(`${code}\n`);
    expect(await run.exit).toBe(0);
    const replay = await post(`${app.url}/api/v1/cli/codes/exchange`, { code });
    expect(replay.status).toBe(401);
    expect((await json(replay)).error.code).toBe('unauthorized');
  });

  it('exchanges a code exactly once under concurrency and refuses hostile input', async () => {
    const mint = await json(await post(`${app.url}/api/v1/cli/codes`, {}, { cookie: admin.cookie }));
    const results = await Promise.all(Array.from({ length: 5 }, () => post(`${app.url}/api/v1/cli/codes/exchange`, { code: mint.code })));
    expect(results.map((r) => r.status).sort()).toEqual([201, 401, 401, 401, 401]);
    // Only a browser session mints codes; a personal token cannot turn itself into more tokens.
    expect((await post(`${app.url}/api/v1/cli/codes`, {}, { authorization: `Bearer ${admin.token}` })).status).toBe(403);
    expect((await post(`${app.url}/api/v1/cli/codes`, {})).status).toBe(401);
    for (const body of [{}, { code: 42 }, { code: 'x'.repeat(500) }, { code: 'nx_cli_x', extra: 1 }]) {
      expect((await post(`${app.url}/api/v1/cli/codes/exchange`, body)).status, JSON.stringify(body)).toBe(400);
    }
    const bad = await fetch(`${app.url}/api/v1/cli/codes/exchange`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"code":' });
    expect((await json(bad)).error.code).toBe('invalid_json');
  });

  it('explains usage errors without touching the network', async () => {
    const home = tempDir('nexus-cli-');
    const env = { XDG_CONFIG_HOME: home, NEXUS_URL: app.url, NEXUS_TOKEN: admin.token };
    const [noUrl, badUrl, notSignedIn, noSlug, slugAndCustom, method, rpm] = await Promise.all([
      nexus(['login'], { env: { XDG_CONFIG_HOME: home, NEXUS_URL: '' } }),
      nexus(['login', '--url', 'ftp://x'], { env: { XDG_CONFIG_HOME: home } }),
      nexus(['service', 'list', '--url', app.url], { env: { XDG_CONFIG_HOME: home } }),
      nexus(['service', 'add'], { env }),
      nexus(['service', 'add', 'x', '--custom'], { env }),
      nexus(['service', 'add', '--custom', '--auth-method', 'magic'], { env }),
      nexus(['key', 'create', 'k', '--rpm', '-3'], { env }),
    ]);
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr).toContain('--url');
    expect(badUrl.code).toBe(2);
    expect(notSignedIn.code).toBe(2);
    expect(notSignedIn.stderr).toContain('nexus login');
    expect(noSlug.code).toBe(2);
    expect(slugAndCustom.code).toBe(2);
    expect(method.code).toBe(2);
    expect(method.stderr).toContain('bearer');
    expect(rpm.code).toBe(2);
  });
});

describe('nexus service add', () => {
  it('takes the credential in the browser and returns the new service to the CLI', async (t) => {
    const caps = await json(await fetch(`${app.url}/api/v1/console/capabilities`, authed(admin.token)));
    if (!caps.services) t.skip(); // POST /api/v1/keys is the hub surface's; this runs once it is served
    const upstream = 'https://api.example.test/v1';
    const home = tempDir('nexus-cli-');
    const run = cli(['service', 'add', '--custom', '--label', 'Example API', '--endpoint-url', upstream, '--auth-method', 'header'],
      { XDG_CONFIG_HOME: home, NEXUS_URL: app.url, NEXUS_TOKEN: admin.token });
    const [, page] = await run.waitErr(/(http:\/\/\S+\/cli\/add-credential\?\S+)/);
    const { page: tab, problems, shot } = await openPage(signedIn);
    await tab.goto(page!);
    expect(await tab.getByLabel('Endpoint URL').inputValue()).toBe(upstream);
    expect(await tab.getByLabel('Auth key name').inputValue()).toBe('X-API-Key');
    await tab.getByLabel('API Key').fill('upstream-secret-value');
    await shot('cli-add-credential');
    await tab.getByRole('button', { name: 'Save' }).click();
    await tab.waitForURL(/\/callback\?/);
    expect(await run.exit).toBe(0);
    expect(run.out()).toMatch(/Service "example-api[^"]*" added/);
    expect(run.out()).toContain('/api/v1/proxy/s/');
    expect(run.out() + run.err()).not.toContain('upstream-secret-value');
    expect(run.out()).toMatch(/\nSlug: example-api\S*  \(derived from the label or the endpoint; choose one with --slug\)\n/);
    expect(problems).toEqual([]);
  });

  it('passes --slug through the page to the new service', async (t) => {
    const caps = await json(await fetch(`${app.url}/api/v1/console/capabilities`, authed(admin.token)));
    if (!caps.services) t.skip();
    const run = cli(['service', 'add', '--custom', '--slug', 'chosen-slug', '--label', 'Another API', '--endpoint-url', 'https://api.example.test/v2', '--auth-method', 'header'],
      { XDG_CONFIG_HOME: tempDir('nexus-cli-'), NEXUS_URL: app.url, NEXUS_TOKEN: admin.token });
    const [, page] = await run.waitErr(/(http:\/\/\S+\/cli\/add-credential\?\S+)/);
    expect(new URL(page!).searchParams.get('service_slug')).toBe('chosen-slug');
    const { page: tab, problems } = await openPage(signedIn);
    await tab.goto(page!);
    await tab.getByText('Slug: chosen-slug').waitFor();
    await tab.getByLabel('API Key').fill('another-secret-value');
    await tab.getByRole('button', { name: 'Save' }).click();
    await tab.waitForURL(/\/callback\?/);
    expect(await run.exit).toBe(0);
    expect(run.out()).toMatch(/^Service "chosen-slug" added \(id [0-9a-f-]+\)\nProxy: \S+\/api\/v1\/proxy\/s\/chosen-slug\n$/);
    expect(problems).toEqual([]);
  });

  it("prints the appliance's warning for an endpoint its proxy refuses until configured, as the page shows it", async (t) => {
    const caps = await json(await fetch(`${app.url}/api/v1/console/capabilities`, authed(admin.token)));
    if (!caps.services) t.skip();
    const run = cli(['service', 'add', '--custom', '--slug', 'lan-wiki', '--endpoint-url', 'http://10.20.30.40:8080', '--auth-method', 'header'],
      { XDG_CONFIG_HOME: tempDir('nexus-cli-'), NEXUS_URL: app.url, NEXUS_TOKEN: admin.token });
    const [, page] = await run.waitErr(/(http:\/\/\S+\/cli\/add-credential\?\S+)/);
    const { page: tab, problems } = await openPage(signedIn);
    await tab.goto(page!);
    await tab.getByLabel('API Key').fill('wiki-secret-value');
    await tab.getByRole('button', { name: 'Save' }).click();
    await tab.waitForURL(/\/callback\?/);
    expect(await run.exit).toBe(0);
    expect(run.err()).toContain('\nwarning: endpoint_url names a private, loopback or link-local address (10.20.30.40): the proxy refuses it until proxy.allowPrivateTargets is set');
    expect(run.out()).toMatch(/^Service "lan-wiki" added \(id [0-9a-f-]+\)\nProxy: \S+\/api\/v1\/proxy\/s\/lan-wiki\n$/);
    // Without the CLI, the page itself says it.
    await tab.goto('/cli/add-credential?custom=1&service_slug=lan-wiki-2&endpoint_url=http%3A%2F%2F10.20.30.41&auth_method=none');
    await tab.getByRole('button', { name: 'Save' }).click();
    await tab.getByRole('heading', { name: 'Service added' }).waitFor();
    await tab.getByRole('status').filter({ hasText: 'Warning: endpoint_url names a private, loopback or link-local address (10.20.30.41)' }).waitFor();
    expect(problems).toEqual([]);
  });
});

describe('nexus node and service list|nodes', () => {
  it('registers a node, routes a service through it without asking for a secret, and lists both', async (t) => {
    const caps = await json(await fetch(`${app.url}/api/v1/console/capabilities`, authed(admin.token)));
    if (!caps.nodes || !caps.services) t.skip(); // the hub surface's APIs
    const env = { XDG_CONFIG_HOME: tempDir('nexus-cli-'), NEXUS_URL: app.url, NEXUS_TOKEN: admin.token };
    const reg = await nexus(['node', 'register', 'edge-1'], { env });
    expect(reg.code).toBe(0);
    expect(reg.stdout).toMatch(new RegExp(`nexus agent enroll --url ws://127\\.0\\.0\\.1:\\d+/ws --token nx_nreg_\\S+`));
    const nodes = JSON.parse((await nexus(['node', 'list', '--json'], { env })).stdout);
    const node = nodes.find((n: { name: string }) => n.name === 'edge-1');
    expect(node).toMatchObject({ status: 'pending' }); // registered, not yet enrolled
    const via = await nexus(['service', 'add', '--custom', '--label', 'Intranet', '--endpoint-url', 'http://127.0.0.1:9/api', '--via-node', node.id, '--json'], { env });
    expect(via.code).toBe(0);
    expect(JSON.parse(via.stdout)).toMatchObject({ slug: 'intranet' });
    const list = await nexus(['service', 'list'], { env });
    expect(list.stdout).toMatch(/intranet\s+Intranet\s+http:\/\/127\.0\.0\.1:9\/api\s+bearer\s+1 node\(s\)/);
    const dup = await nexus(['node', 'register'], { env });
    expect(dup.code).toBe(2);

    // Re-bind with `nexus service nodes`: nodes by name or id, with priority and weight.
    const second = JSON.parse((await nexus(['node', 'register', 'edge-2', '--json'], { env })).stdout);
    const bound = await nexus(['service', 'nodes', 'intranet', '--node', 'edge-1:1', '--node', `${second.id}:0:5`, '--json'], { env });
    expect(bound.code, bound.stderr).toBe(0);
    expect(JSON.parse(bound.stdout)).toMatchObject({ routed_via: 'node', nodes: [{ node_id: second.id, priority: 0, weight: 5 }, { node_id: node.id, priority: 1, weight: 1 }] });
    const shown = await nexus(['service', 'nodes', 'intranet'], { env });
    expect(shown.stdout).toMatch(new RegExp(`edge-2\\s+${second.id}\\s+pending\\s+0\\s+5\\n`));
    for (const args of [['--node', 'edge-1:x'], ['--node', 'edge-1:1:0'], ['--node', 'edge-1:1001'], ['--node', 'edge-1', '--direct'], ['--credential-env', 'X'], ['extra']]) {
      const r = await nexus(['service', 'nodes', 'intranet', ...args], { env });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/^nexus service nodes: /);
    }
    const unknownNode = await nexus(['service', 'nodes', 'intranet', '--node', 'no-such-node'], { env });
    expect([unknownNode.code, unknownNode.stderr]).toEqual([1, 'nexus service nodes: node not found\n']);
    expect((await nexus(['service', 'nodes', 'no-such-service'], { env })).stderr).toMatch(/no service "no-such-service"/);
    // Back to direct: the credential comes from the environment and is never printed.
    const direct = await nexus(['service', 'nodes', 'intranet', '--direct', '--credential-env', 'INTRANET_TOKEN', '--json'], { env: { ...env, INTRANET_TOKEN: 'intranet-secret-7' } });
    expect(direct.code, direct.stderr).toBe(0);
    expect(JSON.parse(direct.stdout)).toMatchObject({ routed_via: 'direct', has_credential: true, nodes: [] });
    expect(direct.stdout + direct.stderr).not.toContain('intranet-secret-7');
    // The appliance now dials 127.0.0.1 itself, which it refuses without proxy.allowPrivateTargets.
    expect(direct.stderr).toBe('warning: endpoint_url names a private, loopback or link-local address (127.0.0.1): the proxy refuses it until proxy.allowPrivateTargets is set; a host on a private network is reached by routing the service through a node there (nexus service nodes SLUG --node NODE), or allow private targets (NEXUS_PROXY_ALLOW_PRIVATE_TARGETS=true) when the appliance itself should call it\n');
    expect((await nexus(['service', 'nodes', 'intranet'], { env })).stdout).toBe('intranet is direct: the appliance calls it with the credential it holds.\n');
  });
});
