// Every auth method through the real service proxy (/api/v1/proxy/s/<slug>/…), twice: for a direct
// service the appliance injects the credential; for a node-routed one the agent (started through the
// CLI, its credential stored with `nexus agent credentials add` as the CLI and console print it) does.
// The local service echoes the request it got, so each case asserts exactly where the secret landed
// and that the caller's own token did not get through.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentCredentialLine } from '../../src/core/services/auth-methods.ts';
import { MAIN, startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { authed, json, setupAdmin, type Admin } from '../helpers/api.ts';
import { agentCli, startAgent, type AgentProcess } from '../helpers/agent.ts';

const tag = randomBytes(6).toString('hex');
/** 10 MiB, the appliance's default bodyLimitBytes and the agent's limit for the `body` method. */
const BODY_LIMIT = 10 * 1024 * 1024;

interface Echo { method: string; url: string; headers: IncomingHttpHeaders; body: string }

type Method = 'bearer' | 'bot_bearer' | 'header' | 'query' | 'path' | 'basic' | 'body' | 'none';
interface Case {
  method: Method;
  keyName: string | null;
  secret: string | null;
  /** What the service must see: path and query, the header the secret went in, the body. */
  expect: (secret: string) => { url: string; header?: [string, string]; body: string };
}

// Each request: POST /v1/echo?a=1 with the JSON body {"a":1}, under the endpoint's base path /api.
const CASES: Case[] = [
  { method: 'bearer', keyName: null, secret: `bearer-${tag}`, expect: (s) => ({ url: '/api/v1/echo?a=1', header: ['authorization', `Bearer ${s}`], body: '{"a":1}' }) },
  { method: 'bot_bearer', keyName: 'authorization', secret: `bot-${tag}`, expect: (s) => ({ url: '/api/v1/echo?a=1', header: ['authorization', `Bot ${s}`], body: '{"a":1}' }) },
  { method: 'header', keyName: 'X-Service-Key', secret: `header-${tag}`, expect: (s) => ({ url: '/api/v1/echo?a=1', header: ['x-service-key', s], body: '{"a":1}' }) },
  { method: 'query', keyName: 'api_key', secret: `query-${tag}`, expect: (s) => ({ url: `/api/v1/echo?a=1&api_key=${s}`, body: '{"a":1}' }) },
  // Telegram-style: "/bot<token>" ahead of the path, the token percent-encoded as one segment.
  { method: 'path', keyName: 'bot', secret: `123456:path-${tag}`, expect: (s) => ({ url: `/bot${encodeURIComponent(s)}/api/v1/echo?a=1`, body: '{"a":1}' }) },
  { method: 'basic', keyName: null, secret: `user:basic-${tag}`, expect: (s) => ({ url: '/api/v1/echo?a=1', header: ['authorization', `Basic ${Buffer.from(s).toString('base64')}`], body: '{"a":1}' }) },
  { method: 'body', keyName: 'app_secret', secret: `body-${tag}`, expect: (s) => ({ url: '/api/v1/echo?a=1', body: JSON.stringify({ a: 1, app_secret: s }) }) },
  { method: 'none', keyName: null, secret: null, expect: () => ({ url: '/api/v1/echo?a=1', body: '{"a":1}' }) },
];
const MODES = ['direct', 'node'] as const;

let app: Appliance;
let admin: Admin;
let echo: Server;
let endpoint: string;
const hits: Echo[] = [];
const home = tempDir('nexus-agent-methods-');
let agent: AgentProcess | undefined;
let nodeId: string;

const slugOf = (mode: string, method: string) => `${mode}-${method.replace('_', '-')}`;
const api = (path: string, init: RequestInit = {}) => fetch(`${app.url}${path}`, authed(admin.token, init));
/** A proxied request carrying the caller's token in Authorization, where several methods put theirs. */
const proxy = (slug: string, path: string, init: RequestInit = {}) =>
  fetch(`${app.url}/api/v1/proxy/s/${slug}${path}`, { ...init, headers: { authorization: `Bearer ${admin.token}`, ...(init.headers as Record<string, string>) } });

/** A request whose path goes out byte for byte (fetch would resolve `..` and `%2e%2e` first). */
function rawGet(path: string): Promise<{ status: number; body: string }> {
  const u = new URL(app.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, headers: { authorization: `Bearer ${admin.token}` } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer for ${path}`)));
    req.on('error', reject);
    req.end();
  });
}

/** Stores a node-held credential with the very command the CLI and console print for the service. */
async function storeOnAgent(slug: string, c: Case): Promise<void> {
  const line = agentCredentialLine(slug, endpoint, c.method, c.keyName);
  if (line === null) return void expect(c.method).toBe('none');
  const args = line.split(' ');
  expect(args.slice(0, 3)).toEqual(['nexus', 'agent', 'credentials']);
  const r = await agentCli(home, [...args.slice(2), '--secret-env', 'SVC_SECRET'], { SVC_SECRET: c.secret! });
  expect(r.code, `${line}\n${r.stderr}`).toBe(0);
}

beforeAll(async () => {
  echo = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const seen: Echo = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      hits.push(seen);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(seen));
    });
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(echo.address() as AddressInfo).port}/api`;
  const cfg = join(tempDir('nexus-methods-cfg-'), 'nexus.yaml');
  // The local service is on loopback: the appliance may call it directly only with this set.
  writeFileSync(cfg, 'proxy:\n  allowPrivateTargets: true\n');
  app = await startAppliance({ args: ['--config', cfg] });
  admin = await setupAdmin(app);

  const reg = await json(await api('/api/v1/nodes', { method: 'POST', body: JSON.stringify({ name: 'methods' }) }));
  nodeId = reg.id;
  const en = await agentCli(home, ['enroll', '--url', `${app.url.replace('http', 'ws')}/ws`, '--token', reg.registration_token]);
  expect(en.code, en.stderr).toBe(0);
  for (const mode of MODES) {
    for (const c of CASES) {
      const slug = slugOf(mode, c.method);
      const res = await api('/api/v1/keys', { method: 'POST', body: JSON.stringify({
        slug,
        endpoint_url: endpoint,
        auth_method: c.method,
        ...(c.keyName ? { auth_key_name: c.keyName } : {}),
        ...(mode === 'direct' ? (c.secret ? { credential: c.secret } : {}) : { nodes: [{ node_id: nodeId }] }),
      }) });
      expect(res.status, await res.clone().text()).toBe(201);
      expect((await json(res)).slug).toBe(slug);
      if (mode === 'node') await storeOnAgent(slug, c);
    }
  }
  agent = startAgent(home);
  await agent.waitFor(/Connected to hub/);
}, 120_000);

afterAll(async () => {
  await agent?.stop();
  await app?.stop();
  await new Promise((r) => echo?.close(r));
});

describe.each(MODES)('%s services', (mode) => {
  it.each(CASES.map((c) => [c.method, c] as const))('%s: the secret lands exactly where the method puts it, the caller\'s token nowhere', async (_m, c) => {
    const before = hits.length;
    const res = await proxy(slugOf(mode, c.method), '/v1/echo?a=1', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    expect(res.status).toBe(200);
    const seen = (await json(res)) as Echo;
    expect(hits.length).toBe(before + 1);
    const want = c.expect(c.secret ?? '');
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe(want.url);
    expect(seen.body).toBe(want.body);
    if (want.header) expect(seen.headers[want.header[0]]).toBe(want.header[1]);
    // Where the method does not use Authorization, the caller's Authorization is gone, not passed on.
    if (want.header?.[0] !== 'authorization') expect(seen.headers.authorization).toBeUndefined();
    expect(seen.headers['content-length']).toBe(String(Buffer.byteLength(want.body)));
    const all = JSON.stringify(seen);
    expect(all).not.toContain(admin.token);
    expect(all).not.toContain('nx_pat_');
    // The secret (or its encoding) appears once, in that place, and nowhere else.
    if (c.secret) {
      const shown = c.method === 'basic' ? Buffer.from(c.secret).toString('base64') : c.method === 'path' ? encodeURIComponent(c.secret) : c.secret;
      expect(all.split(shown).length - 1, all).toBe(1);
    }
  });

  it('body: a body that is not a JSON object is refused before the service sees it, as the caller\'s error', async () => {
    const slug = slugOf(mode, 'body');
    const before = hits.length;
    for (const [body, status, code] of [
      ['name=value&x=1', 400, 'invalid_json'],
      ['{"a":', 400, 'invalid_json'],
      ['[1,2,3]', 400, 'validation_failed'],
      ['"a string"', 400, 'validation_failed'],
    ] as const) {
      const res = await proxy(slug, '/v1/echo', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
      expect(res.status, body).toBe(status);
      const err = (await json(res)).error;
      expect(err.code, body).toBe(code);
      expect(err.message).toMatch(/JSON/);
      expect(JSON.stringify(err)).not.toContain(`body-${tag}`);
    }
    expect(hits.length).toBe(before);
    // No body at all is an empty object with the field (a GET to a method that wants it still gets it).
    const bare = (await json(await proxy(slug, '/v1/echo'))) as Echo;
    expect(JSON.parse(bare.body)).toEqual({ app_secret: `body-${tag}` });
  });

  it('body: a body over 10 MiB is refused with 413 before the service sees it; one at the limit goes through', async () => {
    const slug = slugOf(mode, 'body');
    const before = hits.length;
    // Valid JSON of exactly the limit, then one byte more.
    const atLimit = `{"pad":"${'x'.repeat(BODY_LIMIT - 10)}"}`;
    expect(Buffer.byteLength(atLimit)).toBe(BODY_LIMIT);
    const over = `{"pad":"${'x'.repeat(BODY_LIMIT - 9)}"}`;
    const big = await proxy(slug, '/v1/echo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: over });
    expect(big.status).toBe(413);
    expect((await json(big)).error.code).toBe('payload_too_large');
    expect(hits.length).toBe(before);
    const ok = await proxy(slug, '/v1/echo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: atLimit });
    expect(ok.status).toBe(200);
    const seen = (await json(ok)) as Echo;
    expect(seen.body.length).toBe(BODY_LIMIT + `,"app_secret":"body-${tag}"`.length);
    expect(seen.body.endsWith(`"app_secret":"body-${tag}"}`)).toBe(true);
  }, 60_000);

  it('path: a path that tries to climb out is refused; encoded slashes stay in the caller\'s segments, after the secret', async () => {
    const slug = slugOf(mode, 'path');
    const base = `/api/v1/proxy/s/${slug}`;
    const prefix = `/bot${encodeURIComponent(`123456:path-${tag}`)}`;
    const before = hits.length;
    for (const climb of ['/../../admin', '/v1/../../x', '/%2e%2e/admin', '/%2E%2E/%2e%2e/x', '/.%2e/admin']) {
      const r = await rawGet(`${base}${climb}`);
      expect(r.status, climb).toBe(400);
      expect(JSON.parse(r.body).error.message, climb).toContain('may not climb above the service endpoint');
    }
    expect(hits.length).toBe(before);
    // Percent-encoded slashes and dots are data within one segment: the service gets them as sent,
    // below its base path, with the secret still the first segment.
    for (const [sent, arrives] of [
      ['/..%2F..%2Fadmin', '/api/..%2F..%2Fadmin'],
      ['/v1/%2F%2Fevil.example%2Fx', '/api/v1/%2F%2Fevil.example%2Fx'],
      ['//evil.example/x', '/api/evil.example/x'],
      ['/a%2f..%2f..%2fb?q=%2F..', '/api/a%2f..%2f..%2fb?q=%2F..'],
    ] as const) {
      const r = await rawGet(`${base}${sent}`);
      expect(r.status, `${sent}: ${r.body}`).toBe(200);
      const seen = JSON.parse(r.body) as Echo;
      expect(seen.url, sent).toBe(`${prefix}${arrives}`);
      expect(seen.headers.host).toBe(new URL(endpoint).host);
    }
  });
});

describe('node-held credentials the agent cannot use', () => {
  it('refuses --secret-format body without the field, and names every format it knows', async () => {
    const noField = await agentCli(home, ['credentials', 'add', '--service', 'x', '--url', endpoint, '--secret-format', 'body', '--secret-env', 'S'], { S: 'x' });
    expect([noField.code, noField.stderr]).toEqual([2, 'nexus agent credentials: --secret-format body needs --header FIELD (the JSON field the secret goes in)\n']);
    const unknown = await agentCli(home, ['credentials', 'add', '--service', 'x', '--url', endpoint, '--secret-format', 'bot_bearer', '--secret-env', 'S'], { S: 'x' });
    expect([unknown.code, unknown.stderr]).toEqual([2, 'nexus agent credentials: --secret-format must be one of bearer, bot, raw, basic, query, path, body\n']);
  });

  it('refuses a request whose stored credential has a format it does not know, instead of sending it without', async () => {
    const slug = slugOf('node', 'header');
    const file = join(home, 'credentials.json');
    const original = readFileSync(file, 'utf8');
    // As a newer version would write it: same sealed secret, a format this one has never heard of.
    const data = JSON.parse(original);
    data.services[slug].format = 'hmac-v9';
    writeFileSync(file, JSON.stringify(data, null, 2));
    try {
      const before = hits.length;
      const from = agent!.output().length;
      const res = await proxy(slug, '/v1/echo', { method: 'POST', body: '{}' });
      expect(res.status).toBe(502);
      expect((await json(res)).error.message).toContain('format it does not know');
      expect(hits.length).toBe(before);
      await agent!.waitFor(new RegExp(`credential for \\\\"${slug}\\\\" has a format this agent does not know`), 10_000, from);
      expect(agent!.output().slice(from)).not.toContain(`header-${tag}`);
    } finally {
      writeFileSync(file, original);
    }
    // Stored again (as the original), the next request is served.
    expect((await proxy(slug, '/v1/echo', { method: 'POST', body: '{}' })).status).toBe(200);
  });
});

describe('typing a node-held secret at a terminal', () => {
  it('reads it without echo through a pseudo-terminal, stores it, and the agent injects it', async () => {
    const slug = 'typed-at-tty';
    const secret = `typed-${randomBytes(8).toString('hex')}`;
    const created = await api('/api/v1/keys', { method: 'POST', body: JSON.stringify({ slug, endpoint_url: endpoint, auth_method: 'bearer', nodes: [{ node_id: nodeId }] }) });
    expect(created.status).toBe(201);
    // script(1) runs the command on a pseudo-terminal: its stdin is a TTY, and what the terminal
    // would show (prompt, any echo) comes back on script's stdout.
    const cmd = [process.execPath, MAIN, 'agent', 'credentials', 'add', '--service', slug, '--url', endpoint].map((a) => `'${a}'`).join(' ');
    const tty = spawn('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, NEXUS_AGENT_HOME: home }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    tty.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    tty.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => tty.once('exit', (code) => resolve(code)));
    const until = async (what: () => boolean, label: string) => {
      const end = Date.now() + 30_000;
      while (!what()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${label}:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      // Typed only once the prompt is up (echo is off by then): a line typed earlier would be echoed
      // by the terminal itself, as for any program.
      await until(() => out.includes(`Secret for ${slug} (input hidden): `), 'the prompt');
      tty.stdin.write(`${secret}X`);
      tty.stdin.write('\u007f'); // backspace takes the X back
      tty.stdin.write('\r');
      await until(() => out.includes('Stored the credential'), 'the stored message');
      expect(await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running'), 10_000))])).toBe(0);
    } finally {
      tty.stdin.end();
      tty.kill();
    }
    expect(out).not.toContain(secret);
    // What the agent now sends is exactly what was typed, backspace applied.
    const res = await proxy(slug, '/v1/echo');
    expect(res.status).toBe(200);
    expect(((await json(res)) as Echo).headers.authorization).toBe(`Bearer ${secret}`);
  });
});
