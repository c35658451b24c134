// The operator CLI and the API at their edges, against a real appliance: output into a pipe that
// closes early, names where ids were needed, times people type, messages that name the field (and
// keep the pattern as it is), negative numbers, a restore on a running appliance, the warnings of a
// start on every interface with a shared data dir and mistyped NEXUS_* variables, and the 429s the
// openai SDK must not retry.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authed, json, post, type Admin } from '../helpers/api.ts';
import { MAIN, nexus, REPO, startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { createKey, pricedChat, pricedGateway } from '../helpers/gateway.ts';
import type { LlmUpstream } from '../helpers/llm-upstream.ts';
import { until } from '../helpers/until.ts';

let app: Appliance;
let admin: Admin;
let up: LlmUpstream;
let providerId: string;
let env: Record<string, string>;

beforeAll(async () => {
  ({ app, admin, up, providerId } = await pricedGateway());
  env = { NEXUS_URL: app.url, NEXUS_TOKEN: admin.token, XDG_CONFIG_HOME: tempDir('nexus-cli-cfg-'), NEXUS_BROWSER: 'none' };
});
afterAll(async () => {
  await app?.stop();
  await up?.close();
});

const bearer = () => ({ authorization: `Bearer ${admin.token}` });

describe('nexus key list | head -1', () => {
  it('stops quietly when the reader of its output goes away', async () => {
    // ~90 KB of rows: more than a pipe holds, so the CLI is still writing when the reader leaves.
    const long = 'k'.repeat(150);
    for (let i = 0; i < 300; i += 30) {
      await Promise.all(Array.from({ length: 30 }, (_, j) => createKey(app, admin.token, { name: `${long}-${i + j}` })));
    }
    const child = spawn(process.execPath, [MAIN, 'key', 'list'], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const first = await new Promise<string>((res, rej) => {
      let seen = '';
      const timer = setTimeout(() => rej(new Error('no first line in time')), 30_000);
      child.stdout.on('data', (d) => {
        seen += d;
        const nl = seen.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        child.stdout.destroy(); // `head -1`: one line, then the pipe's read end is closed
        res(seen.slice(0, nl));
      });
    });
    expect(first).toMatch(/^ID\s+NAME\s+KEY/);
    const code = await new Promise<number | null>((res) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('close', (c) => {
        clearTimeout(timer);
        res(c);
      });
    });
    expect(stderr).toBe('');
    expect(code).toBe(141);
  });
});

describe('names, times and numbers the CLI takes', () => {
  it('updates, rotates and revokes a key by its name, and refuses a name two keys share', async () => {
    const big = await createKey(app, admin.token, { name: 'big' });
    const upd = await nexus(['key', 'update', 'big', '--rpm', '7', '--json'], { env });
    expect(upd.code, upd.stderr).toBe(0);
    expect(JSON.parse(upd.stdout)).toMatchObject({ id: big.id, rpm: 7 });
    const rot = await nexus(['key', 'rotate', 'big'], { env });
    expect(rot.code, rot.stderr).toBe(0);
    expect(rot.stdout).toContain('Virtual key "big" rotated.');
    await createKey(app, admin.token, { name: 'twin' });
    await createKey(app, admin.token, { name: 'twin' });
    const twin = await nexus(['key', 'revoke', 'twin'], { env });
    expect(twin.code).toBe(1);
    expect(twin.stderr).toMatch(/^nexus key revoke: 2 keys are named "twin": give the id \([0-9a-f-]{36}, [0-9a-f-]{36}\)\n$/);
    const rev = await nexus(['key', 'revoke', 'big'], { env });
    expect([rev.code, rev.stdout]).toEqual([0, `Virtual key "big" (${big.id}) revoked.\n`]);
    // Revoked, it is still found by its name while no active key has it.
    expect((await nexus(['key', 'revoke', 'big'], { env })).stderr).not.toContain('no virtual key');
    const none = await nexus(['key', 'update', 'no-such-key', '--rpm', '1'], { env });
    expect([none.code, none.stderr]).toEqual([1, 'nexus key update: no virtual key with the id or name "no-such-key" (nexus key list)\n']);
  });

  it('takes today, yesterday and a time ago for usage, and says what it takes', async () => {
    const { key } = await createKey(app, admin.token);
    expect((await pricedChat(app, key)).status).toBe(200);
    for (const since of ['today', 'yesterday', '7d', '24h']) {
      const r = await nexus(['usage', '--since', since, '--json'], { env });
      expect(r.code, `${since}: ${r.stderr}`).toBe(0);
      expect(JSON.parse(r.stdout).items.length, since).toBeGreaterThan(0);
    }
    const bad = await nexus(['usage', '--since', 'last week'], { env });
    expect([bad.code, bad.stderr]).toEqual([2, 'nexus usage: --since takes a date (2026-12-01), an RFC 3339 time (2026-12-01T09:00:00Z), today, yesterday, or a time ago such as 30m, 24h, 7d or 2w; not "last week"\n']);
    // The API's own answer says what the format is.
    const api = await json(await fetch(`${app.url}/api/v1/usage?since=yesterday`, authed(admin.token)));
    expect(api.error).toMatchObject({ code: 'validation_failed', param: 'since' });
    expect(api.error.message).toBe('querystring.since must match format "date-time-or-date" (a date such as 2026-12-01 or an RFC 3339 time such as 2026-12-01T09:30:00Z)');
  });

  it('deploys upstream names with colons, and says that a price cannot be negative', async () => {
    const add = await nexus(['model', 'add', 'llama3', '--deploy', 'local:llama3:8b', '--deploy', 'local:qwen:7:1:3', '--json'], { env });
    expect(add.code, add.stderr).toBe(0);
    expect(JSON.parse(add.stdout).deployments.map((d: { upstream_model: string; priority: number; weight: number }) => [d.upstream_model, d.priority, d.weight]))
      .toEqual([['llama3:8b', 0, 1], ['qwen:7', 1, 3]]);
    const explicit = await nexus(['model', 'add', 'llama3-b', '--deploy', 'local:llama3:8b:0:1', '--json'], { env });
    expect(explicit.code, explicit.stderr).toBe(0);
    expect(JSON.parse(explicit.stdout).deployments).toMatchObject([{ provider_id: providerId, upstream_model: 'llama3:8b', priority: 0, weight: 1 }]);
    const negative = await nexus(['model', 'add', 'm', '--deploy', 'local:x', '--input-price', '-1'], { env });
    expect([negative.code, negative.stderr]).toEqual([2, 'nexus model: --input-price must not be negative (got -1): prices, limits and durations are zero or more (nexus model --help lists the options)\n']);
  });

  it('binds a service added --via-node at priority 0, as the docs and the console do', async () => {
    const node = await json(await post(`${app.url}/api/v1/nodes`, { name: 'edge-prio' }, bearer()));
    const via = await nexus(['service', 'add', '--custom', '--label', 'Prio', '--endpoint-url', 'http://10.0.0.5:80', '--via-node', 'edge-prio', '--json'], { env });
    expect(via.code, via.stderr).toBe(0);
    expect(JSON.parse(via.stdout)).toMatchObject({ routed_via: 'node', nodes: [{ node_id: node.id, priority: 0 }] });
  });

  it("prints one line for the agent's subcommands typed under nexus node", async () => {
    for (const [args, line] of [
      [['node', 'start'], 'nexus node start: that runs on the private host: nexus agent start …\n'],
      [['node', 'enroll', '--url', 'ws://x/ws'], 'nexus node enroll: that runs on the private host: nexus agent enroll …\n'],
      [['node', 'register', '--token', 'nx_nreg_secret'], 'nexus node register: enrolling with a token runs on the private host: nexus agent enroll --url wss://HOST/ws --token …\n'],
    ] as const) {
      const r = await nexus([...args], { env });
      expect([r.code, r.stdout, r.stderr], args.join(' ')).toEqual([2, '', line]);
    }
  });

  it('says the appliance must be stopped before asking for a restore passphrase', async () => {
    const out = join(tempDir('nexus-bk-'), 'b.nxbackup');
    const made = await nexus(['backup', '--data-dir', app.dataDir, '--out', out, '--passphrase-env', 'PASS'], { env: { PASS: 'a long enough passphrase' } });
    expect(made.code, made.stderr).toBe(0);
    const r = await nexus(['restore', out, '--data-dir', app.dataDir], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^nexus restore: another nexus process \(pid \d+\) is already using data dir \S+: stop it before restoring\n$/);
  });
});

describe('API answers', () => {
  it('keeps the pattern a model name must match as it is, and names the field of every validation_failed', async () => {
    const model = await json(await post(`${app.url}/api/v1/models`, { name: 'llama3:8b', deployments: [{ provider_id: providerId, upstream_model: 'x' }] }, bearer()));
    expect(model.error).toEqual({ code: 'validation_failed', param: 'name', message: 'body.name must match pattern "^[A-Za-z0-9][A-Za-z0-9._/@+-]*$"' });
    const past = await json(await post(`${app.url}/api/v1/tokens`, { name: 'old', expires_at: '2020-01-01T00:00:00Z' }, bearer()));
    expect(past.error).toEqual({ code: 'validation_failed', param: 'expires_at', message: 'expires_at is in the past' });
    const url = await json(await fetch(`${app.url}/api/v1/settings`, authed(admin.token, { method: 'PUT', body: JSON.stringify({ public_url: 'nexus.example.com' }) })));
    expect(url.error).toMatchObject({ code: 'validation_failed', param: 'public_url' });
    const svc = await json(await post(`${app.url}/api/v1/keys`, { endpoint_url: 'ftp://x', auth_method: 'none' }, bearer()));
    expect(svc.error).toMatchObject({ code: 'validation_failed', param: 'endpoint_url' });
    const cursor = await json(await fetch(`${app.url}/api/v1/audit?cursor=bogus`, authed(admin.token)));
    expect(cursor.error).toMatchObject({ code: 'validation_failed', param: 'cursor' });
  });

  it("warns of localhost endpoints as of 127.0.0.1, and says what to do; nexus service add ollama too", async () => {
    for (const [endpoint, host] of [['http://localhost:11434', 'localhost'], ['http://app.localhost:3000', 'app.localhost'], ['http://[::1]:3000', '[::1]'], ['http://0.0.0.0:80', '0.0.0.0']]) {
      const res = await json(await post(`${app.url}/api/v1/keys`, { endpoint_url: endpoint, auth_method: 'none' }, bearer()));
      expect(res.warnings, endpoint).toEqual([`endpoint_url names a private, loopback or link-local address (${host}): the proxy refuses it until proxy.allowPrivateTargets is set; a host on a private network is reached by routing the service through a node there (nexus service nodes SLUG --node NODE), or allow private targets (NEXUS_PROXY_ALLOW_PRIVATE_TARGETS=true) when the appliance itself should call it`]);
    }
    const ollama = await nexus(['service', 'add', 'ollama', '--json'], { env });
    expect(ollama.code, ollama.stderr).toBe(0);
    expect(ollama.stderr).toContain('warning: endpoint_url names a private, loopback or link-local address (localhost): the proxy refuses it until proxy.allowPrivateTargets is set');
  });

  it('tells a caller whose personal token was revoked that it is no longer valid', async () => {
    const made = await json(await post(`${app.url}/api/v1/tokens`, { name: 'short-lived' }, bearer()));
    await fetch(`${app.url}/api/v1/tokens/${made.id}`, authed(admin.token, { method: 'DELETE' }));
    const res = await fetch(`${app.url}/api/v1/proxy/s/ollama/api/tags`, { headers: { authorization: `Bearer ${made.token}` } });
    expect(res.status).toBe(401);
    expect((await json(res)).error.message).toBe('the personal token sent is not valid: it has expired, was revoked, or never existed; create a new one (console: Personal tokens, or nexus login)');
    const none = await json(await fetch(`${app.url}/api/v1/proxy/s/ollama/api/tags`));
    expect(none.error.message).toBe('send a personal token as Authorization: Bearer nx_pat_… or X-API-Key');
  });
});

describe('429s and the openai SDK', () => {
  /** An SDK client whose HTTP requests are counted (real fetch, real sockets). */
  const counted = (key: string) => {
    const calls = { n: 0 };
    const client = new OpenAI({ apiKey: key, baseURL: `${app.url}/v1`, fetch: (input, init) => (calls.n++, fetch(input, init)) });
    return { client, calls };
  };
  const ask = (client: OpenAI, signal?: AbortSignal) => client.chat.completions.create({ model: 'priced', max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] }, signal ? { signal } : {});

  it('does not retry a spent budget (x-should-retry: false), and does wait to retry a requests-per-minute limit', async () => {
    const spent = await createKey(app, admin.token, { max_budget_usd: 0.002 });
    expect((await pricedChat(app, spent.key)).status).toBe(200);
    const before = up.requests.length;
    const { client, calls } = counted(spent.key);
    const err = await ask(client).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).headers?.get('x-should-retry')).toBe('false');
    expect(calls.n).toBe(1);
    expect(up.requests.length).toBe(before);

    const rpm = await createKey(app, admin.token, { rpm: 1 });
    expect((await pricedChat(app, rpm.key)).status).toBe(200);
    const limited = await pricedChat(app, rpm.key);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('x-should-retry')).toBeNull();
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    const waiting = counted(rpm.key);
    const abort = new AbortController();
    let settled = false;
    const pending = ask(waiting.client, abort.signal).finally(() => (settled = true)).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 1500));
    // The SDK got the 429 and sleeps until Retry-After to try again.
    expect([settled, waiting.calls.n]).toEqual([false, 1]);
    abort.abort();
    expect(await pending).toBeInstanceOf(OpenAI.APIUserAbortError);
  });
});

describe('a start on every interface, with a shared data dir and mistyped variables', () => {
  it('prints URLs a person can open, says what is exposed, keeps the database owner-only, and leaves no pid', async () => {
    const dataDir = join(tempDir('nexus-wide-'), 'data');
    mkdirSync(dataDir);
    chmodSync(dataDir, 0o755);
    const wide = await startAppliance({
      dataDir,
      args: ['--listen', '0.0.0.0:0', '--admin-listen', '0.0.0.0:0'],
      env: { NEXUS_LISTN: '127.0.0.1:1', NEXUS_GATEWAY_MAX_STREAM_SECOND: '5', NEXUS_AGENT_HOME: tempDir('nexus-agent-home-'), NEXUS_URL: 'http://127.0.0.1:1' },
    });
    try {
      const port = new URL(wide.url).port;
      const adminPort = new URL(wide.adminUrl).port;
      const out = wide.output();
      expect(out).toContain(`  Nexus is running at http://127.0.0.1:${port}  (admin/metrics on http://127.0.0.1:${adminPort}, reachable from the network)\n`);
      expect(out).toContain(`  First start: finish setup at http://127.0.0.1:${port}/setup\n`);
      const banner = out.split('\n').filter((l) => !l.startsWith('{')).join('\n');
      expect(banner).not.toMatch(/0\.0\.0\.0:\d+\/setup|loopback only/);
      expect(out).toContain('  Warning: environment variable NEXUS_GATEWAY_MAX_STREAM_SECOND is not a Nexus setting and is ignored (did you mean NEXUS_GATEWAY_MAX_STREAM_SECONDS?)\n');
      expect(out).toContain('  Warning: environment variable NEXUS_LISTN is not a Nexus setting and is ignored (did you mean NEXUS_LISTEN?)\n');
      expect(out).toContain(`  Warning: data dir ${dataDir} is accessible to all users (mode 0755); restrict it with: chmod 700 ${dataDir}\n`);
      expect(out).not.toMatch(/NEXUS_AGENT_HOME|NEXUS_URL/);
      const logged = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string; variable?: string });
      expect(logged.filter((l) => l.variable).map((l) => [l.level, l.variable])).toEqual([[40, 'NEXUS_GATEWAY_MAX_STREAM_SECOND'], [40, 'NEXUS_LISTN']]);
      // The log's setup URL is one a person can open too.
      expect(logged.find((l) => l.msg === 'setup required')).toMatchObject({ setupUrl: `http://127.0.0.1:${port}/setup` });
      expect(statSync(dataDir).mode & 0o777).toBe(0o755); // said, not changed
      for (const f of ['nexus.db', 'nexus.db-wal', 'nexus.db-shm']) expect([f, statSync(join(dataDir, f)).mode & 0o777]).toEqual([f, 0o600]);

      // A wrong setup token: the answer names no path on the server.
      const refused = await post(`${wide.url}/api/v1/setup`, { setup_token: 'nx_setup_wrong', username: 'admin', password: 'correct-horse-battery' });
      expect(refused.status).toBe(401);
      const body = await refused.text();
      expect(body).not.toContain(dataDir);
      expect(JSON.parse(body).error.message).toBe("setup token is not valid; it is in the file setup-token in the appliance's data dir, and printed when it started");
      expect(existsSync(join(dataDir, 'nexus.pid'))).toBe(true);
    } finally {
      expect(await wide.stop()).toBe(0);
    }
    expect(existsSync(join(dataDir, 'nexus.pid'))).toBe(false);
  });
});

describe('the setup line printed for a shell, on an appliance whose public URL is not reachable from here', () => {
  it('goes to the listener on this host and creates the admin as printed; the placeholder password is refused', async () => {
    // An appliance behind nginx with a name that does not resolve here (and a self-signed certificate there).
    const behind = await startAppliance({ args: ['--public-url', 'https://nexus.invalid'] });
    try {
      // The banner follows the ready log line.
      const out = await until('the setup banner', async () => (behind.output().includes('  Or from a shell:') ? behind.output() : null), 20_000);
      expect(out).toContain('  Nexus is running at https://nexus.invalid  (admin/metrics on');
      expect(out).toContain(`  Listening on ${new URL(behind.url).host} (the URL above is where people reach it)\n`);
      expect(out).toContain('  First start: finish setup at https://nexus.invalid/setup\n');
      const banner = out.split('\n');
      const at = banner.indexOf('  Or from a shell:');
      expect(at).toBeGreaterThan(0);
      const command = `${banner[at + 1]!.trim().replace(/\\$/, '')} ${banner[at + 2]!.trim()}`;
      expect(command).toContain(`curl -X POST ${behind.url}/api/v1/setup `);
      const runAs = (password: string) => execFileSync('bash', ['-c', `${command.replace('<at least 10 characters>', password)} -sS --max-time 20 -w ' %{http_code}'`], { encoding: 'utf8' });
      // As printed, with the placeholder still in it: a clear refusal, nothing created.
      expect(runAs('<at least 10 characters>')).toMatch(/replace <at least 10 characters> in the setup command.* 400$/);
      expect(runAs('the-password-I-chose')).toMatch(/ 201$/);
      expect((await post(`${behind.url}/api/v1/auth/login`, { username: 'admin', password: 'the-password-I-chose' })).status).toBe(200);
    } finally {
      expect(await behind.stop()).toBe(0);
    }
  });
});
