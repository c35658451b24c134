// What a new operator meets first, on real processes: the CLI's help and usage errors, the
// appliance's start-up messages and data dir, and the errors an SDK or curl gets for the usual
// first mistakes (an oversized body, a personal token as gateway key, a base URL without /v1, a
// field with a wrong value).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import OpenAI from 'openai';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAIN, nexus, startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { authed, json, post, setupAdmin, type Admin } from '../helpers/api.ts';
import { agentCli, startAgent } from '../helpers/agent.ts';
import { createKey, createProvider, simpleModel } from '../helpers/gateway.ts';

const LIMIT = 64 * 1024;
/** Far more than a loopback socket buffers, so the client is still sending when the answer comes. */
const HUGE = 16 * 1024 * 1024;

let app: Appliance;
let admin: Admin;
let vk: string;
let notNexus: Server;

beforeAll(async () => {
  app = await startAppliance({ env: { NEXUS_BODY_LIMIT_BYTES: String(LIMIT), NEXUS_GATEWAY_BODY_LIMIT_BYTES: String(LIMIT) } });
  admin = await setupAdmin(app);
  // Nothing listens on port 9: every request here is refused before the upstream would be called.
  const { id } = await createProvider(app, admin, { name: 'nowhere', type: 'openai-compatible', base_url: 'http://127.0.0.1:9/v1' });
  await simpleModel(app, admin, id, 'gpt-test');
  ({ key: vk } = await createKey(app, admin.token));
  // Some other HTTP service a mistyped --url may point at: it answers any request with a JSON object.
  notNexus = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"id":"x","object":"thing"}'));
  await new Promise<void>((r) => notNexus.listen(0, '127.0.0.1', r));
});
afterAll(async () => {
  await app?.stop();
  await new Promise((r) => notNexus?.close(r));
});

/** What a WebSocket handshake to `url` meets: `upgraded`, `http STATUS` or `error …`. */
async function handshake(url: string, protocol?: string): Promise<string> {
  const ws = protocol ? new WebSocket(url, protocol) : new WebSocket(url);
  const outcome = await new Promise<string>((resolve) => {
    const timer = setTimeout(() => resolve('no answer'), 10_000);
    ws.once('unexpected-response', (_req, res) => (clearTimeout(timer), resolve(`http ${res.statusCode}`)));
    ws.once('open', () => (clearTimeout(timer), resolve('upgraded')));
    ws.once('error', (e) => (clearTimeout(timer), resolve(`error ${e.message}`)));
  });
  ws.terminate();
  return outcome;
}

describe('the CLI', () => {
  it('prints the usage for --help after any subcommand, on stdout, with exit 0', async () => {
    const cases: [string[], RegExp][] = [
      [['agent', 'enroll', '--help'], /nexus agent <command>[\s\S]*--force/],
      [['agent', 'credentials', 'add', '-h'], /credentials add --service SLUG/],
      [['agent', 'start', '--help'], /--transport auto\|ws\|http/],
      [['agent', 'daemon', 'install', '--help'], /--dry-run/],
      [['node', 'register', '--help'], /nexus node register NAME/],
      [['key', 'create', 'ci', '--help'], /nexus key create NAME/],
      [['service', 'list', '--help'], /nexus service list/],
      [['service', 'update', 'x', '--help'], /nexus service update SLUG\|ID/],
      [['serve', '--help'], /--data-dir DIR/],
    ];
    for (const [args, usage] of cases) {
      const r = await nexus(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.stdout, args.join(' ')).toMatch(usage);
      expect(r.stderr, args.join(' ')).toBe('');
    }
  });

  it('answers --version, and lists every command group in nexus --help', async () => {
    const v = await nexus(['--version']);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^nexus \d+\.\d+\.\d+\n$/);
    const help = await nexus(['--help']);
    expect(help.stdout).toContain('nexus service add|list|nodes');
    expect(help.stdout).toContain('--help');
  });

  it('names an unknown option and where to look, without parseArgs advice, exit 2', async () => {
    const r = await nexus(['key', 'create', 'ci', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("nexus key: Unknown option '--bogus' (nexus key --help lists the options)\n");
  });

  it('says the URL is not a Nexus appliance instead of printing an empty list', async () => {
    const url = `http://127.0.0.1:${(notNexus.address() as AddressInfo).port}`;
    const env = { XDG_CONFIG_HOME: tempDir('nexus-cli-cfg-'), NEXUS_URL: url, NEXUS_TOKEN: 'nx_pat_whatever' };
    for (const args of [['node', 'list'], ['key', 'list'], ['service', 'list']]) {
      const r = await nexus(args, { env });
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toContain('is the URL a Nexus appliance?');
      expect(r.stdout, args.join(' ')).not.toMatch(/No \w+ yet/);
    }
  });

  it('adds a service that needs no credential without a browser, and takes a node by name for --via-node', async () => {
    const env = { XDG_CONFIG_HOME: tempDir('nexus-cli-cfg-'), NEXUS_URL: app.url, NEXUS_TOKEN: admin.token, NEXUS_BROWSER: 'none' };
    const open = await nexus(['service', 'add', '--custom', '--label', 'Open', '--endpoint-url', 'http://127.0.0.1:9', '--auth-method', 'none', '--json'], { env, timeoutMs: 20_000 });
    expect(open.code, open.stderr).toBe(0);
    expect(JSON.parse(open.stdout)).toMatchObject({ slug: 'open', auth_method: 'none' });
    expect(open.stderr).not.toContain('browser');
    const ollama = await nexus(['service', 'add', 'ollama', '--json'], { env, timeoutMs: 20_000 });
    expect(ollama.code, ollama.stderr).toBe(0);
    expect(JSON.parse(ollama.stdout)).toMatchObject({ slug: 'ollama', auth_method: 'none' });
    const node = await json(await post(`${app.url}/api/v1/nodes`, { name: 'edge-by-name' }, { authorization: `Bearer ${admin.token}` }));
    const via = await nexus(['service', 'add', '--custom', '--label', 'Behind', '--endpoint-url', 'http://127.0.0.1:9', '--via-node', 'edge-by-name', '--json'], { env });
    expect(via.code, via.stderr).toBe(0);
    expect(JSON.parse(via.stdout)).toMatchObject({ routed_via: 'node', nodes: [{ node_id: node.id }] });
  });

  it('takes --slug for service add and names a derived or taken slug, with the node-side command', async () => {
    const env = { XDG_CONFIG_HOME: tempDir('nexus-cli-cfg-'), NEXUS_URL: app.url, NEXUS_TOKEN: admin.token, NEXUS_BROWSER: 'none' };
    await post(`${app.url}/api/v1/nodes`, { name: 'home-server' }, { authorization: `Bearer ${admin.token}` });
    const add = (extra: string[]) => nexus(['service', 'add', '--custom', '--label', 'Home Grafana', '--endpoint-url', 'http://localhost:3000',
      '--auth-method', 'bearer', '--auth-key-name', 'Authorization', '--via-node', 'home-server', ...extra], { env });
    const chosen = await add(['--slug', 'grafana']);
    expect(chosen.code, chosen.stderr).toBe(0);
    expect(chosen.stdout).toMatch(/^Service "grafana" added \(id [0-9a-f-]+\)\nProxy: \S+\/api\/v1\/proxy\/s\/grafana\n/);
    expect(chosen.stdout).toContain('\n  nexus agent credentials add --service grafana --url http://localhost:3000 --header Authorization --secret-format bearer\n');
    const derived = await add([]);
    expect(derived.code, derived.stderr).toBe(0);
    expect(derived.stdout).toContain('Slug: home-grafana  (derived from the label; choose one with --slug)\n');
    expect(derived.stdout).toContain('--service home-grafana ');
    const taken = await add(['--slug', 'grafana']);
    expect(taken.stdout).toContain('Slug: grafana-2  ("grafana" was taken)\n');
    const json = await add(['--slug', 'grafana-json', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ slug: 'grafana-json', routed_via: 'node' });
    const bad = await add(['--slug', 'Grafana_1']);
    expect([bad.code, bad.stderr]).toEqual([2, 'nexus service add: --slug must be lowercase letters, digits and dashes (1-64, no dash at either end)\n']);
  });

  it('changes a service with service update and prints the agent line for one routed through nodes', async () => {
    const env = { XDG_CONFIG_HOME: tempDir('nexus-cli-cfg-'), NEXUS_URL: app.url, NEXUS_TOKEN: admin.token, NEXUS_BROWSER: 'none' };
    const bearer = { authorization: `Bearer ${admin.token}` };
    const service = async (id: string) => json(await fetch(`${app.url}/api/v1/keys/${id}`, authed(admin.token)));
    const node = await json(await post(`${app.url}/api/v1/nodes`, { name: 'lan-box' }, bearer));
    const routed = await json(await post(`${app.url}/api/v1/keys`, { slug: 'lan-grafana', endpoint_url: 'http://localhost:3000', auth_method: 'bearer',
      auth_key_name: 'Authorization', nodes: [{ node_id: node.id }] }, bearer));
    const moved = await nexus(['service', 'update', 'lan-grafana', '--endpoint-url', 'http://192.168.1.20:3000', '--label', 'Grafana on the LAN'], { env });
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.stdout).toMatch(/^Service "lan-grafana" updated \(id [0-9a-f-]+\)\nEndpoint: http:\/\/192\.168\.1\.20:3000\nLabel: Grafana on the LAN\n/);
    expect(moved.stdout).toContain('\n  nexus agent credentials add --service lan-grafana --url http://192.168.1.20:3000 --header Authorization --secret-format bearer\n');
    expect(await service(routed.id)).toMatchObject({ slug: 'lan-grafana', endpoint_url: 'http://192.168.1.20:3000', label: 'Grafana on the LAN', routed_via: 'node' });
    // By id, as JSON: stdout is the service alone; an empty --label clears it, and a label alone needs nothing on the node.
    const byId = await nexus(['service', 'update', routed.id, '--label', '', '--json'], { env });
    expect([byId.code, byId.stderr]).toEqual([0, '']);
    expect(JSON.parse(byId.stdout)).toMatchObject({ id: routed.id, label: null, endpoint_url: 'http://192.168.1.20:3000' });
    const onNode = await nexus(['service', 'update', 'lan-grafana', '--credential-env', 'HOME'], { env });
    expect(onNode.code).toBe(2);
    expect(onNode.stderr).toMatch(/^nexus service update: lan-grafana is routed through nodes and its credential stays on the node/);

    // A direct service keeps its credential on the same origin; another origin needs it again.
    const direct = await json(await post(`${app.url}/api/v1/keys`, { slug: 'billing', endpoint_url: 'https://billing.example.test/v1', auth_method: 'bearer', credential: 'old-secret' }, bearer));
    const samePath = await nexus(['service', 'update', 'billing', '--endpoint-url', 'https://billing.example.test/v2'], { env });
    expect([samePath.code, samePath.stderr]).toEqual([0, '']);
    expect(samePath.stdout).not.toContain('agent credentials');
    const noSecret = await nexus(['service', 'update', 'billing', '--endpoint-url', 'https://billing2.example.test/v2'], { env });
    expect(noSecret.code).toBe(1);
    expect(noSecret.stderr).toContain('The stored credential does not follow billing to https://billing2.example.test; enter the one to send there.\n');
    expect((await service(direct.id)).endpoint_url).toBe('https://billing.example.test/v2');
    const withEnv = await nexus(['service', 'update', 'billing', '--endpoint-url', 'https://billing2.example.test/v2', '--credential-env', 'BILLING_TOKEN'],
      { env: { ...env, BILLING_TOKEN: 'new-secret-42' } });
    expect(withEnv.code, withEnv.stderr).toBe(0);
    expect(withEnv.stdout).toContain('Credential: replaced (stored encrypted)\n');
    expect(withEnv.stdout + withEnv.stderr).not.toContain('new-secret-42');
    expect(await service(direct.id)).toMatchObject({ endpoint_url: 'https://billing2.example.test/v2', has_credential: true, routed_via: 'direct' });

    // The SSRF guard: a metadata address is refused before a credential is asked for (the API
    // refuses it too, below); a private one is stored, with the appliance's warning on stderr.
    const meta = await nexus(['service', 'update', 'billing', '--endpoint-url', 'http://169.254.169.254/latest'], { env });
    expect([meta.code, meta.stderr]).toEqual([2, 'nexus service update: http://169.254.169.254/latest is a cloud metadata address, which the appliance never proxies to\n']);
    const open = await json(await post(`${app.url}/api/v1/keys`, { slug: 'open-meta', endpoint_url: 'https://open.example.test', auth_method: 'none' }, bearer));
    const lan = await nexus(['service', 'update', 'open-meta', '--endpoint-url', 'http://10.0.0.5:8080'], { env });
    expect(lan.code, lan.stderr).toBe(0);
    expect(lan.stderr).toBe(`warning: ${PRIVATE_WARNING('10.0.0.5')}\n`);
    expect(lan.stdout).toBe(`Service "open-meta" updated (id ${open.id})\nEndpoint: http://10.0.0.5:8080\n`);
    const lanJson = await nexus(['service', 'update', 'open-meta', '--endpoint-url', 'http://10.0.0.6:8080', '--json'], { env });
    expect(lanJson.stderr).toBe(`warning: ${PRIVATE_WARNING('10.0.0.6')}\n`);
    expect(JSON.parse(lanJson.stdout).warnings).toEqual([PRIVATE_WARNING('10.0.0.6')]);
    const named = await nexus(['service', 'update', 'open-meta', '--endpoint-url', 'http://intranet.example.test:8080'], { env });
    expect([named.code, named.stderr]).toEqual([0, '']);
    const added = await nexus(['service', 'add', '--custom', '--slug', 'lan-open', '--endpoint-url', 'http://[fd12::7]:8080', '--auth-method', 'none'], { env });
    expect(added.code, added.stderr).toBe(0);
    expect(added.stderr).toBe(`warning: ${PRIVATE_WARNING('[fd12::7]')}\n`);
    expect(added.stdout).toMatch(/^Service "lan-open" added/);

    // Hostile or empty input: usage errors exit 2, what the appliance refuses exits 1, nothing changes.
    const cases: [string[], number, string][] = [
      [['service', 'update'], 2, 'nexus service update: usage: nexus service update SLUG|ID [--endpoint-url URL] [--label TEXT] [--auth-method METHOD] [--auth-key-name NAME] [--credential-env VAR]\n'],
      [['service', 'update', 'billing'], 2, 'nexus service update: nothing to change: give --endpoint-url, --label, --auth-method, --auth-key-name or --credential-env\n'],
      [['service', 'update', 'billing', '--endpoint-url', 'ftp://billing.example.test'], 2, 'nexus service update: --endpoint-url must be an http(s) URL\n'],
      [['service', 'update', 'billing', '--endpoint-url', 'not a url'], 2, 'nexus service update: --endpoint-url must be an http(s) URL\n'],
      [['service', 'update', 'billing', '--auth-method', 'constructor'], 2, `nexus service update: --auth-method must be one of bearer, bot_bearer, header, query, path, basic, body, none\n`],
      [['service', 'update', 'no-such-service', '--label', 'x'], 1, 'nexus service update: no service "no-such-service" (nexus service list shows yours)\n'],
      [['service', 'update', 'billing', '--endpoint-url', 'https://user:hunter2@billing.example.test/v2'], 2, 'nexus service update: --endpoint-url must not carry user:password@; the credential is asked for separately\n'],
      [['service', 'update', 'open-meta', '--endpoint-url', 'https://open.example.test/?token=1'], 1, 'nexus service update: endpoint_url must not have a query or fragment\n'],
      [['service', 'update', 'lan-grafana', '--auth-method', 'header', '--auth-key-name', ''], 1, 'nexus service update: auth_method "header" needs auth_key_name\n'],
      [['service', 'update', 'lan-grafana', 'extra', '--label', 'x'], 2, 'nexus service update: usage: nexus service update SLUG|ID [--endpoint-url URL] [--label TEXT] [--auth-method METHOD] [--auth-key-name NAME] [--credential-env VAR]\n'],
    ];
    for (const [args, code, stderr] of cases) {
      const r = await nexus(args, { env });
      expect([r.code, r.stderr], args.join(' ')).toEqual([code, stderr]);
    }
    expect(await service(direct.id)).toMatchObject({ endpoint_url: 'https://billing2.example.test/v2', auth_method: 'bearer' });
    expect(await service(routed.id)).toMatchObject({ endpoint_url: 'http://192.168.1.20:3000', auth_method: 'bearer', auth_key_name: 'Authorization' });
  });

  it("points the agent's subcommands and flags under nexus node to nexus agent, exit 2", async () => {
    for (const sub of ['start', 'daemon', 'credentials', 'enroll']) {
      const r = await nexus(['node', sub, 'install']);
      expect(r.code, sub).toBe(2);
      expect(r.stderr, sub).toBe(`nexus node ${sub}: that runs on the private host: nexus agent ${sub} …\n`);
      expect(r.stdout, sub).toBe(''); // one line, not the whole usage
    }
    for (const args of [['--token', 'nx_nreg_secret', '--url', 'wss://h/ws'], ['--token=nx_nreg_secret']]) {
      const r = await nexus(['node', 'register', ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe('nexus node register: enrolling with a token runs on the private host: nexus agent enroll --url wss://HOST/ws --token …\n');
      expect(r.stdout + r.stderr).not.toContain('nx_nreg_secret');
    }
  });

  it('enrolls nowhere at a /api/v1/nodes/ws address and names the /ws one, leaving the token usable', async () => {
    const reg = await json(await post(`${app.url}/api/v1/nodes`, { name: 'guide-path' }, { authorization: `Bearer ${admin.token}` }));
    const home = tempDir('nexus-agent-');
    const ws = app.url.replace('http://', 'ws://');
    const wrong = await agentCli(home, ['enroll', '--url', `${ws}/api/v1/nodes/ws`, '--token', reg.registration_token]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^nexus agent enroll: enrollment refused \(404[^\n]*; use --url ws:\/\/127\.0\.0\.1:\d+\/ws \(the hub's WebSocket is \/ws on the appliance's address\)\n$/);
    expect(wrong.stderr).toContain(`use --url ${ws}/ws `);
    const right = await agentCli(home, ['enroll', '--url', `${ws}/ws`, '--token', reg.registration_token]);
    expect(right.code, right.stderr).toBe(0);
  });

  it('refuses a --secret-format or agent command that is only an Object property, and removes only stored credentials', async () => {
    const home = tempDir('nexus-agent-');
    const fmt = await agentCli(home, ['credentials', 'add', '--service', 'grafana', '--url', 'http://localhost:3000', '--secret-format', 'toString', '--secret-env', 'S'], { S: 'x' });
    expect([fmt.code, fmt.stderr]).toEqual([2, 'nexus agent credentials: --secret-format must be one of bearer, bot, raw, basic, query, path, body\n']);
    for (const name of ['constructor', 'toString', '__proto__']) {
      const r = await nexus(['agent', name]);
      expect(r.code, name).toBe(2);
      expect(r.stderr, name).toContain(`nexus agent: unknown command "${name}"`);
    }
    const rm = await agentCli(home, ['credentials', 'remove', '--service', 'constructor']);
    expect([rm.code, rm.stderr]).toEqual([1, 'nexus agent credentials: no credential for constructor\n']);
  });

  it('tells once, not twice, to run nexus login after a refused code', async () => {
    const r = await nexus(['login', '--url', app.url, '--no-browser'], { env: { XDG_CONFIG_HOME: tempDir('nexus-cli-cfg-') }, input: 'not-a-code\n' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('this code is not valid');
    expect(r.stderr.match(/run nexus login/g)).toHaveLength(1);
  });
});

describe('starting the appliance', () => {
  it('leaves no probe file in the data dir', () => {
    expect(readdirSync(app.dataDir)).not.toContain('.write-test');
    expect(readdirSync(app.dataDir)).toContain('nexus.db');
  });

  it('refuses an unknown log level with one line, not a stack trace', async () => {
    const r = await nexus(['serve', '--data-dir', tempDir(), '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--log-level', 'loud']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('nexus serve: log level "loud": expected one of trace, debug, info, warn, error, fatal, silent\n');
  });

  it('names the address in use, once, and exits 1', async () => {
    const taken = app.url.replace('http://', '');
    const r = await nexus(['serve', '--data-dir', tempDir(), '--listen', taken, '--admin-listen', '127.0.0.1:0'], { env: { NEXUS_LOG_LEVEL: 'error' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`nexus serve: ${taken} is already in use; choose another with --listen/--admin-listen\n`);
    expect(r.stderr).not.toContain('address already in use');
  });
});

describe('an oversized body', () => {
  it('reaches the openai SDK as a 413 APIError, never a connection error', async () => {
    const client = new OpenAI({ apiKey: vk, baseURL: `${app.url}/v1`, maxRetries: 0 });
    for (let i = 0; i < 3; i++) {
      const err = await client.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'a'.repeat(HUGE) }] }).then(() => null, (e: unknown) => e);
      expect(err, `attempt ${i}`).toBeInstanceOf(OpenAI.APIError);
      expect((err as InstanceType<typeof OpenAI.APIError>).status, `attempt ${i}: ${String(err)}`).toBe(413);
      expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('payload_too_large');
    }
  });

  it('reaches fetch as a JSON 413 on the control plane, and a 415 for a huge body of another type', async () => {
    for (let i = 0; i < 3; i++) {
      const big = await fetch(`${app.url}/api/v1/tokens`, authed(admin.token, { method: 'POST', body: JSON.stringify({ name: 'x'.repeat(HUGE) }) }));
      expect(big.status).toBe(413);
      expect((await json(big)).error.code).toBe('payload_too_large');
      const xml = await fetch(`${app.url}/api/v1/tokens`, authed(admin.token, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: 'x'.repeat(HUGE) }));
      expect(xml.status).toBe(415);
    }
  });

  it('leaves the connection usable: the rest of the body is read and dropped, the next request answered', async () => {
    const sock = connect(Number(new URL(app.url).port), '127.0.0.1');
    let got = '';
    let closed = false;
    sock.on('data', (d) => (got += d));
    sock.on('error', () => {});
    sock.on('close', () => (closed = true));
    await new Promise((r) => sock.once('connect', r));
    const size = 4 * 1024 * 1024;
    sock.write(`POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${admin.token}\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`);
    const until = async (what: string, ok: () => boolean) => {
      for (let i = 0; i < 200 && !ok() && !closed; i++) await new Promise((r) => setTimeout(r, 50));
      expect(ok(), `${what}; received:\n${got.slice(0, 500)}`).toBe(true);
    };
    await until('a 413 before the body', () => got.includes('\r\n\r\n') && got.includes('payload_too_large'));
    expect(got).toMatch(/^HTTP\/1\.1 413 /);
    expect(got.toLowerCase()).not.toContain('connection: close');
    sock.write(Buffer.alloc(size, 0x61));
    sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await until('the next request answered on the same connection', () => /HTTP\/1\.1 200 [\s\S]*"status":"ok"/.test(got));
    sock.destroy();
  });

  it('cuts the connection of a client that goes on sending far past the limit', async () => {
    const sock = connect(Number(new URL(app.url).port), '127.0.0.1');
    let closed = false;
    let got = '';
    sock.on('data', (d) => (got += d));
    sock.on('error', () => {});
    sock.on('close', () => (closed = true));
    await new Promise((r) => sock.once('connect', r));
    sock.write(`POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${admin.token}\r\nContent-Type: application/json\r\nContent-Length: ${1024 * 1024 * 1024}\r\n\r\n`);
    const chunk = Buffer.alloc(1024 * 1024, 0x61);
    let sent = 0;
    // 64 MiB are read and dropped; by 256 MiB the connection must be gone.
    while (!closed && sent < 256 * 1024 * 1024) {
      if (!sock.write(chunk)) {
        await new Promise<void>((r) => {
          const done = () => {
            sock.off('drain', done);
            sock.off('close', done);
            r();
          };
          sock.once('drain', done);
          sock.once('close', done);
        });
      }
      sent += chunk.length;
    }
    for (let i = 0; i < 100 && !closed; i++) await new Promise((r) => setTimeout(r, 50));
    expect(closed, `still open after ${sent} bytes`).toBe(true);
    expect(got).toMatch(/^HTTP\/1\.1 413 /);
    sock.destroy();
  });
});

describe('first mistakes with the gateway and the API', () => {
  it('explains a personal token or a provider key sent as the gateway key, without echoing it', async () => {
    const asPat = await post(`${app.url}/v1/chat/completions`, { model: 'gpt-test', messages: [] }, { authorization: `Bearer ${admin.token}` });
    expect(asPat.status).toBe(401);
    const patErr = (await json(asPat)).error;
    expect(patErr).toMatchObject({ code: 'invalid_api_key', type: 'invalid_request_error' });
    expect(patErr.message).toContain('personal token');
    expect(patErr.message).toContain('nx_vk_');
    expect(patErr.message).not.toContain(admin.token);
    const asProviderKey = await post(`${app.url}/v1/chat/completions`, { model: 'gpt-test', messages: [] }, { authorization: 'Bearer sk-proj-abcdef123456' });
    const provErr = (await json(asProviderKey)).error;
    expect(provErr.message).toContain('not a provider key');
    expect(provErr.message).not.toContain('sk-proj-abcdef123456');
  });

  it('answers an SDK whose base URL lacks /v1 with a JSON 404 saying so, not the console page', async () => {
    const client = new OpenAI({ apiKey: vk, baseURL: app.url, maxRetries: 0 });
    const list = await client.models.list().then(() => null, (e: unknown) => e);
    expect(list).toBeInstanceOf(OpenAI.NotFoundError);
    expect(String((list as Error).message)).toContain('under /v1');
    const chat = await client.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'x' }] }).then(() => null, (e: unknown) => e);
    expect(chat).toBeInstanceOf(OpenAI.NotFoundError);
    expect(String((chat as Error).message)).toContain('under /v1');
    // The console's own pages are still the console.
    const page = await fetch(`${app.url}/providers`);
    expect(page.headers.get('content-type')).toContain('text/html');
  });

  it('names the field at fault in param and lists the values an enum takes', async () => {
    const badType = await json(await post(`${app.url}/api/v1/providers`, { name: 'p', type: 'openai_compatible' }, { authorization: `Bearer ${admin.token}` }));
    expect(badType.error).toMatchObject({ code: 'validation_failed', param: 'type' });
    expect(badType.error.message).toContain('openai-compatible');
    const wrongType = await json(await post(`${app.url}/api/v1/tokens`, { name: 5 }, { authorization: `Bearer ${admin.token}` }));
    expect(wrongType.error).toMatchObject({ code: 'validation_failed', param: 'name' });
    const missing = await json(await post(`${app.url}/api/v1/tokens`, {}, { authorization: `Bearer ${admin.token}` }));
    expect(missing.error).toMatchObject({ code: 'validation_failed', param: 'name' });
    const nested = await json(await post(`${app.url}/api/v1/models`, { name: 'm', deployments: [{ provider_id: 5, upstream_model: 'x' }] }, { authorization: `Bearer ${admin.token}` }));
    expect(nested.error).toMatchObject({ code: 'validation_failed', param: 'deployments.0.provider_id' });
  });
});

/** What the API says of a direct service's endpoint on a private, loopback or link-local address. */
const PRIVATE_WARNING = (host: string) =>
  `endpoint_url names a private, loopback or link-local address (${host}): the proxy refuses it until proxy.allowPrivateTargets is set; a host on a private network is reached by routing the service through a node there (nexus service nodes SLUG --node NODE), or allow private targets (NEXUS_PROXY_ALLOW_PRIVATE_TARGETS=true) when the appliance itself should call it`;

describe("a direct service's endpoint, judged when it is written", () => {
  const bearer = () => ({ authorization: `Bearer ${admin.token}` });
  const create = (body: Record<string, unknown>) => post(`${app.url}/api/v1/keys`, { auth_method: 'none', ...body }, bearer());
  const change = (id: string, body: Record<string, unknown>) => fetch(`${app.url}/api/v1/keys/${id}`, authed(admin.token, { method: 'PATCH', body: JSON.stringify(body) }));
  // Every spelling WHATWG URL turns into a metadata address (decimal, hex, octal, short dotted,
  // IPv4-mapped, IPv4-compatible and NAT64 IPv6), and the other clouds' ones.
  const METADATA: [string, string][] = [
    ['http://[::169.254.169.254]', '[::a9fe:a9fe]'],
    ['http://[64:ff9b::169.254.169.254]/latest', '[64:ff9b::a9fe:a9fe]'],
    ['http://169.254.169.254/latest', '169.254.169.254'],
    ['http://[fd00:ec2::254]', '[fd00:ec2::254]'],
    ['http://[FD00:EC2:0:0:0:0:0:254]:80', '[fd00:ec2::254]'],
    ['http://[::ffff:169.254.169.254]', '[::ffff:a9fe:a9fe]'],
    ['http://[0:0:0:0:0:ffff:a9fe:a9fe]', '[::ffff:a9fe:a9fe]'],
    ['http://2852039166/', '169.254.169.254'],
    ['http://0xa9fea9fe', '169.254.169.254'],
    ['http://0251.0376.0251.0376', '169.254.169.254'],
    ['http://169.254.43518', '169.254.169.254'],
    ['https://169.254.170.2/v2/credentials', '169.254.170.2'],
    ['http://100.100.100.200', '100.100.100.200'],
  ];

  it('refuses a cloud metadata address on POST and PATCH with a 400 naming endpoint_url, and stores nothing', async () => {
    const before = (await json(await fetch(`${app.url}/api/v1/keys`, authed(admin.token)))).items.length;
    for (const [endpoint, host] of METADATA) {
      const res = await create({ endpoint_url: endpoint });
      expect(res.status, endpoint).toBe(400);
      expect(await json(res), endpoint).toEqual({ error: { code: 'validation_failed', param: 'endpoint_url',
        message: `endpoint_url names a cloud metadata address (${host}), which the proxy never reaches` } });
    }
    expect((await json(await fetch(`${app.url}/api/v1/keys`, authed(admin.token)))).items.length).toBe(before);
    const svc = await json(await create({ slug: 'meta-patch', endpoint_url: 'https://api.example.test/v1' }));
    for (const [endpoint] of METADATA) {
      const res = await change(svc.id, { endpoint_url: endpoint, label: 'moved' });
      expect(res.status, endpoint).toBe(400);
      expect((await json(res)).error, endpoint).toMatchObject({ code: 'validation_failed', param: 'endpoint_url' });
    }
    expect(await json(await fetch(`${app.url}/api/v1/keys/${svc.id}`, authed(admin.token)))).toMatchObject({ endpoint_url: 'https://api.example.test/v1', label: null });
  });

  it('keeps a private, loopback or link-local address with a warning, and the proxy refuses it as said', async () => {
    const cases: [string, string][] = [
      ['http://10.1.2.3:8080/api', '10.1.2.3'],
      ['http://127.1:3000', '127.0.0.1'],
      ['http://0/', '0.0.0.0'],
      ['http://[::1]:3000', '[::1]'],
      ['http://localhost:3000', 'localhost'],
      ['http://[fe80::1]', '[fe80::1]'],
      ['http://[::ffff:192.168.0.10]', '[::ffff:c0a8:a]'],
      ['http://3232235530', '192.168.0.10'],
      ['http://169.254.1.1', '169.254.1.1'],
    ];
    for (const [endpoint, host] of cases) {
      const res = await create({ endpoint_url: endpoint });
      expect(res.status, endpoint).toBe(201);
      const body = await json(res);
      expect(body.warnings, endpoint).toEqual([PRIVATE_WARNING(host)]);
      expect(body.routed_via).toBe('direct');
    }
    const lan = await json(await create({ slug: 'lan-api', endpoint_url: 'http://10.9.8.7:8080' }));
    const hit = await fetch(`${app.url}/api/v1/proxy/s/lan-api/status`, authed(admin.token));
    expect(hit.status).toBe(403);
    expect((await json(hit)).error.message).toBe('service endpoint refused: private, loopback and link-local addresses need proxy.allowPrivateTargets');
    // PATCH says it when the endpoint changes, not for a label alone.
    const moved = await change(lan.id, { endpoint_url: 'http://[fc00::5]' });
    expect(moved.status).toBe(200);
    expect((await json(moved)).warnings).toEqual([PRIVATE_WARNING('[fc00::5]')]);
    const relabelled = await json(await change(lan.id, { label: 'LAN API' }));
    expect(relabelled).toMatchObject({ label: 'LAN API' });
    expect(relabelled).not.toHaveProperty('warnings');
  });

  // A host name other than localhost (RFC 6761: always loopback, warned of as 127.0.0.1 is).
  it('says nothing of a host name or a public address, which the proxy checks at each request', async () => {
    for (const endpoint of ['https://api.example.test/v1', 'http://metadata.google.internal', 'https://8.8.8.8', 'https://[2001:4860:4860::8888]']) {
      const res = await create({ endpoint_url: endpoint });
      expect(res.status, endpoint).toBe(201);
      expect(await json(res), endpoint).not.toHaveProperty('warnings');
    }
    const svc = await json(await create({ slug: 'named-api', endpoint_url: 'https://api.example.test/v1' }));
    const moved = await change(svc.id, { endpoint_url: 'https://api2.example.test/v1' });
    expect(moved.status).toBe(200);
    expect(await json(moved)).not.toHaveProperty('warnings');
  });

  it('does not judge a service routed through nodes (the agent dials it), until it becomes direct', async () => {
    const node = await json(await post(`${app.url}/api/v1/nodes`, { name: 'metadata-box' }, bearer()));
    const viaNode = await create({ slug: 'node-meta', endpoint_url: 'http://169.254.169.254/latest', nodes: [{ node_id: node.id }] });
    expect(viaNode.status).toBe(201);
    const metaSvc = await json(viaNode);
    expect(metaSvc).not.toHaveProperty('warnings');
    const local = await json(await create({ slug: 'node-local', endpoint_url: 'http://127.0.0.1:3000', nodes: [{ node_id: node.id }] }));
    expect(local).not.toHaveProperty('warnings');
    expect(await json(await change(local.id, { endpoint_url: 'http://127.0.0.1:3001' }))).not.toHaveProperty('warnings');
    // Taking every node away makes the appliance dial it: judged as on create.
    const direct = await change(metaSvc.id, { nodes: [] });
    expect(direct.status).toBe(400);
    expect((await json(direct)).error).toMatchObject({ code: 'validation_failed', param: 'endpoint_url' });
    expect(await json(await fetch(`${app.url}/api/v1/keys/${metaSvc.id}`, authed(admin.token)))).toMatchObject({ routed_via: 'node' });
    const localDirect = await change(local.id, { nodes: [] });
    expect(localDirect.status).toBe(200);
    expect(await json(localDirect)).toMatchObject({ routed_via: 'direct', warnings: [PRIVATE_WARNING('127.0.0.1')] });
  });
});

describe('enrolling an agent', () => {
  it('connects after enrolling with the bare ws://HOST, and names the hub address for an http URL', async () => {
    const home = tempDir('nexus-agent-first-');
    const host = new URL(app.url).host;
    const node = await json(await post(`${app.url}/api/v1/nodes`, { name: 'first' }, { authorization: `Bearer ${admin.token}` }));
    const http = await agentCli(home, ['enroll', '--url', app.url, '--token', node.registration_token]);
    expect(http.code).toBe(2);
    expect(http.stderr).toContain(`ws://${host}/ws, not http://`);
    const bare = await agentCli(home, ['enroll', '--url', `ws://${host}`, '--token', node.registration_token]);
    expect(bare.code, bare.stderr).toBe(0);
    // The node's credentials stay in the agent's state, out of whatever log captured this output.
    expect(bare.stdout).toContain('Enrolled as node');
    expect(`${bare.stdout}${bare.stderr}`).not.toMatch(/nx_nauth_|secret:/);
    // At a terminal (a pseudo-terminal from script(1)) they are shown, once.
    const ttyHome = tempDir('nexus-agent-tty-');
    const other = await json(await post(`${app.url}/api/v1/nodes`, { name: 'first-tty' }, { authorization: `Bearer ${admin.token}` }));
    const cmd = [process.execPath, MAIN, 'agent', 'enroll', '--url', `ws://${host}/ws`, '--token', other.registration_token].map((a) => `'${a}'`).join(' ');
    const tty = spawnSync('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, NEXUS_AGENT_HOME: ttyHome }, encoding: 'utf8', timeout: 60_000 });
    expect(tty.status, tty.stderr).toBe(0);
    expect(tty.stdout.match(/auth token: +nx_nauth_\S+/g)).toHaveLength(1);
    expect(tty.stdout).toMatch(/signing secret: +\S+/);
    const agent = startAgent(home);
    try {
      await agent.waitFor(/Connected to hub/);
      expect(agent.output()).toContain(`"hub":"ws://${host}/ws"`);
    } finally {
      await agent.stop();
    }
  });

  it('refuses a WebSocket handshake on a path that is no WebSocket endpoint with an HTTP 404', async () => {
    const base = app.url.replace('http', 'ws');
    for (const path of ['/', '/wss', '/api/v1/nothing']) expect(await handshake(`${base}${path}`, 'nexus.v1'), path).toBe('http 404');
  });

  it('answers a WebSocket handshake on an HTTP route as a plain request, on a connection that stays usable', async () => {
    const base = app.url.replace('http', 'ws');
    // Each surface in its own words: the gateway and the control plane want a credential, SCIM too.
    for (const [path, status] of [['/v1/models', 401], ['/api/v1/me', 401], ['/scim/v2/Users', 401], ['/healthz', 200]] as const) {
      expect(await handshake(`${base}${path}`), path).toBe(`http ${status}`);
    }
    // The same connection then carries an ordinary request.
    const { port } = new URL(app.url);
    const sock = connect(Number(port), '127.0.0.1');
    const key = Buffer.from('0123456789abcdef').toString('base64');
    sock.write(`GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`);
    let text = '';
    let asked = false;
    const both = await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve(text), 10_000);
      sock.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        const head = /^HTTP\/1\.1 \d+[^]*?\r\ncontent-length: (\d+)\r\n[^]*?\r\n\r\n/i.exec(text);
        if (!asked && head && text.length >= head[0].length + Number(head[1])) {
          asked = true;
          sock.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
        }
        if (text.includes('{"status":"ok"}')) {
          clearTimeout(timer);
          resolve(text);
        }
      });
      sock.on('close', () => (clearTimeout(timer), resolve(text)));
    });
    sock.destroy();
    expect(both).toMatch(/^HTTP\/1\.1 401 [^]*\r\n\r\n\{"error":\{"message":/);
    expect(both).not.toContain('101 Switching Protocols');
    expect(both).toMatch(/HTTP\/1\.1 200 OK[^]*\{"status":"ok"\}/);
  });

  it('exits 2 for a usage error and 1 for a failure, like the operator CLI', async () => {
    const home = tempDir('nexus-agent-first-');
    const noUrl = await agentCli(home, ['credentials', 'add', '--service', 'svc'], {}, 'secret\n');
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr).toContain('--url URL is required');
    const badFormat = await agentCli(home, ['credentials', 'add', '--service', 'svc', '--url', 'http://127.0.0.1:1', '--secret-format', 'weird'], {}, 'secret\n');
    expect(badFormat.code).toBe(2);
    const badToken = await agentCli(home, ['enroll', '--url', 'ws://127.0.0.1:1/ws', '--token', 'garbage']);
    expect(badToken.code).toBe(2);
    for (const bad of [['--log-level', 'loud'], ['--transport', 'pigeon']]) {
      const r = await agentCli(home, ['start', ...bad]);
      expect(r.code, bad.join(' ')).toBe(2);
      expect(r.stderr, bad.join(' ')).toMatch(new RegExp(`^nexus agent start: ${bad[0]} must be one of|^nexus agent start: ${bad[0]} must be`));
      expect(r.stderr).not.toContain('    at ');
    }
    const unknown = await agentCli(home, ['credentials', 'remove', '--service', 'nothing-here']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no credential for nothing-here');
  });
});
