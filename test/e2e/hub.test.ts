// Hub end to end with three kinds of real processes: the appliance, agents started through the CLI
// entry point, and a local HTTP service demanding a bearer token that only the agent holds.
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { authed, json, post, setupAdmin, type Admin } from '../helpers/api.ts';
import { agentCli, startAgent, type AgentProcess } from '../helpers/agent.ts';
import { PATTERN, startUpstream, type Upstream } from '../helpers/upstream.ts';

const UPSTREAM_TOKEN = `upstream-secret-${randomBytes(12).toString('hex')}`;
const MB = 1024 * 1024;
const BIG = 256 * MB;

let app: Appliance;
let admin: Admin;
let upstream: Upstream;
const homeA = tempDir('nexus-agent-a-');
const homeB = tempDir('nexus-agent-b-');
let agentA: AgentProcess | undefined;
let agentB: AgentProcess | undefined;
let nodeA: string;
let nodeB: string;
let expiringToken: string;
let expiringCreatedAt = 0;
const TTL_SECONDS = 4;

const api = (path: string, init: RequestInit = {}) => fetch(`${app.url}${path}`, authed(admin.token, init));
const proxy = (slug: string, path: string, init: RequestInit = {}) =>
  fetch(`${app.url}/api/v1/proxy/s/${slug}${path}`, { ...init, headers: { 'x-api-key': admin.token, ...(init.headers as Record<string, string>) } });

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function registerNode(name: string): Promise<{ id: string; registration_token: string; expires_at: string }> {
  const res = await api('/api/v1/nodes', { method: 'POST', body: JSON.stringify({ name }) });
  expect(res.status).toBe(201);
  return json(res);
}

const nodeStatus = async (id: string) => (await json(await api(`/api/v1/nodes/${id}`))).status as string;

beforeAll(async () => {
  const cfgDir = tempDir('nexus-hub-cfg-');
  const cfg = join(cfgDir, 'nexus.yaml');
  writeFileSync(cfg, [
    'hub:',
    `  registrationTtlSeconds: ${TTL_SECONDS}`,
    '  heartbeatSeconds: 1',
    '  offlineAfterSeconds: 4',
    '  authTimeoutSeconds: 1',
    '  reauthSeconds: 1',
    'proxy:',
    '  allowPrivateTargets: true',
    '',
  ].join('\n'));
  [app, upstream] = await Promise.all([startAppliance({ args: ['--config', cfg] }), startUpstream(UPSTREAM_TOKEN)]);
  admin = await setupAdmin(app);
  const expiring = await registerNode('expiring');
  expiringToken = expiring.registration_token;
  expiringCreatedAt = Date.now();
});

afterAll(async () => {
  await Promise.all([agentA?.stop(), agentB?.stop()]);
  await app?.stop();
  await upstream?.close();
});

describe('enrollment', () => {
  it('registers a node with a single-use token that exactly one of two racing enrolls wins', async () => {
    const node = await registerNode('home-server');
    expect(node.registration_token).toMatch(/^nx_nreg_/);
    nodeA = node.id;
    expect(await nodeStatus(nodeA)).toBe('pending');
    const race = await Promise.all([
      post(`${app.url}/api/internal/things/enroll`, { registration_token: node.registration_token }),
      agentCli(homeA, ['enroll', '--url', `${app.url.replace('http', 'ws')}/ws`, '--token', node.registration_token]),
    ]);
    const [http, cli] = race;
    // Exactly one of the two wins; make the CLI the winner's owner of node A state or retry with a fresh token.
    const httpWon = http.status === 200;
    const cliWon = cli.code === 0;
    expect(httpWon !== cliWon).toBe(true);
    if (httpWon) {
      expect(cli.stderr).toContain('8003');
      const again = await registerNode('home-server-2');
      nodeA = again.id;
      const r = await agentCli(homeA, ['enroll', '--url', `${app.url.replace('http', 'ws')}/ws`, '--token', again.registration_token]);
      expect(r.code, r.stderr).toBe(0);
    } else {
      const body = await json(http);
      expect(http.status).toBe(401);
      expect(body.error.code).toBe(8003);
    }
    // Reuse of a consumed token: 8003.
    const reuse = await post(`${app.url}/api/internal/things/enroll`, { registration_token: node.registration_token });
    expect((await json(reuse)).error.code).toBe(8003);
    // State: 0600 files, 0700 dir, secrets not in clear.
    const nodeJson = readFileSync(join(homeA, 'node.json'), 'utf8');
    expect(statSync(join(homeA, 'node.json')).mode & 0o777).toBe(0o600);
    expect(statSync(join(homeA, 'agent.key')).mode & 0o777).toBe(0o600);
    expect(statSync(homeA).mode & 0o777).toBe(0o700);
    expect(nodeJson).not.toMatch(/nx_nauth_/);
    expect(JSON.parse(nodeJson).node_id).toBe(nodeA);
  });

  it('refuses malformed enrollment bodies', async () => {
    for (const body of ['{', '{"registration_token":5}', '{"registration_token":"nx_nreg_x","extra":1}', `{"registration_token":"${'a'.repeat(500)}"}`]) {
      const res = await fetch(`${app.url}/api/internal/things/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(res.status).toBe(400);
    }
  });
});

describe('agent and proxy', () => {
  it('starts the agent through the CLI, which connects and shows the node online', async () => {
    agentA = startAgent(homeA);
    await agentA.waitFor(/Connected to hub/);
    await until('node online', async () => (await nodeStatus(nodeA)) === 'online');
    const list = await json(await api('/api/v1/nodes'));
    expect(list.find((n: { id: string }) => n.id === nodeA)).toMatchObject({ status: 'online', name: expect.any(String) });
  });

  it('creates a service through the node and proxies with the agent injecting the token', async () => {
    const res = await api('/api/v1/keys', { method: 'POST', body: JSON.stringify({ slug: 'grafana', endpoint_url: upstream.url, auth_method: 'bearer', nodes: [{ node_id: nodeA, priority: 0 }] }) });
    expect(res.status).toBe(201);
    const svc = await json(res);
    expect(svc).toMatchObject({ slug: 'grafana', routed_via: 'node', has_credential: false });
    // A second service asking for the same slug lands on grafana-2.
    const dup = await json(await api('/api/v1/keys', { method: 'POST', body: JSON.stringify({ slug: 'grafana', endpoint_url: upstream.url, auth_method: 'bearer', nodes: [{ node_id: nodeA }] }) }));
    expect(dup.slug).toBe('grafana-2');

    // No credential on the agent yet: the upstream refuses.
    expect((await proxy('grafana', '/echo')).status).toBe(401);

    const add = await agentCli(homeA, ['credentials', 'add', '--service', 'grafana', '--url', upstream.url, '--header', 'Authorization', '--secret-format', 'bearer', '--secret-env', 'GRAFANA_TOKEN'], { GRAFANA_TOKEN: UPSTREAM_TOKEN });
    expect(add.code, add.stderr).toBe(0);
    expect(readFileSync(join(homeA, 'credentials.json'), 'utf8')).not.toContain(UPSTREAM_TOKEN);
    const listed = await agentCli(homeA, ['credentials', 'list']);
    expect(listed.stdout).toContain('grafana');
    expect(listed.stdout).not.toContain(UPSTREAM_TOKEN);

    const ok = await proxy('grafana', '/echo?x=1&y=a%20b', { headers: { 'x-custom': 'kept', connection: 'keep-alive' } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-upstream')).toBe('yes');
    const echo = await json(ok);
    expect(echo).toMatchObject({ method: 'GET', path: '/echo', query: '?x=1&y=a%20b' });
    expect(echo.headers['x-custom']).toBe('kept');
    expect(JSON.stringify(echo.headers)).not.toContain(admin.token);
    expect(echo.headers['x-api-key']).toBeUndefined();

    // Bearer auth works too, and that Authorization header is replaced, never forwarded.
    const viaBearer = await fetch(`${app.url}/api/v1/proxy/s/grafana/echo`, { method: 'POST', headers: { authorization: `Bearer ${admin.token}` }, body: 'hello' });
    expect(viaBearer.status).toBe(200);
    expect((await json(viaBearer)).body_bytes).toBe(5);
  });

  it('refuses callers without a valid personal token and unknown slugs', async () => {
    expect((await fetch(`${app.url}/api/v1/proxy/s/grafana/echo`)).status).toBe(401);
    expect((await fetch(`${app.url}/api/v1/proxy/s/grafana/echo`, { headers: { 'x-api-key': 'nx_pat_forged' } })).status).toBe(401);
    const unknown = await proxy('nope', '/echo');
    expect(unknown.status).toBe(404);
    expect((await json(unknown)).error.code).toBe('not_found');
    const climb = await proxy('grafana', '/%2e%2e/%2e%2e/etc');
    expect([400, 404]).toContain(climb.status);
  });

  it('audits proxied requests with routed_via, node_id, status, bytes and latency', async () => {
    const page = await json(await api(`/api/v1/audit?action=proxy.request&routed_via=node&node_id=${nodeA}`));
    const ok = page.items.find((i: { status: number }) => i.status === 200);
    expect(ok).toMatchObject({ routed_via: 'node', node_id: nodeA, status: 200, actor_name: admin.username });
    expect(ok.details.bytes_out).toBeGreaterThan(0);
    expect(typeof ok.details.latency_ms).toBe('number');
  });
});
