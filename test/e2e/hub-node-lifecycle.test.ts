// A node's life and what routes through it, end to end: deleting a node never makes its services or
// providers direct (the appliance would call their private endpoints itself, without a credential);
// a provider's node must exist; node names are unique per owner; rotated credentials reach the agent
// through `nexus agent rotate`. Real appliance, agents and CLI processes, and a local service that
// records every request it gets.
import { copyFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentCli, startAgent, type AgentProcess } from '../helpers/agent.ts';
import { nexus, startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { authed, json, login, setupAdmin, type Admin } from '../helpers/api.ts';
import { createKey, createModel } from '../helpers/gateway.ts';
import { until } from '../helpers/until.ts';

const SECRET = 'private-service-token';
let app: Appliance;
let admin: Admin;
let server: Server;
let port: number;
/** Requests the private service got: with the bearer the agent holds, or without. */
const seen: Array<{ path: string; authorization: string | undefined }> = [];
const agents: AgentProcess[] = [];

const api = (path: string, init: RequestInit = {}) => fetch(`${app.url}${path}`, authed(admin.token, init));
const send = (method: string, path: string, body?: unknown) => api(path, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
const proxy = (slug: string, path = '/hello') => fetch(`${app.url}/api/v1/proxy/s/${slug}${path}`, { headers: { 'x-api-key': admin.token } });
const cli = (args: string[], input?: string) => nexus(args, { env: { XDG_CONFIG_HOME: tempDir('nexus-node-cfg-'), NEXUS_URL: app.url, NEXUS_TOKEN: admin.token }, ...(input !== undefined ? { input } : {}) });
const wsUrl = () => `${app.url.replace('http', 'ws')}/ws`;

async function register(name: string): Promise<{ id: string; registration_token: string }> {
  const res = await send('POST', '/api/v1/nodes', { name });
  expect(res.status).toBe(201);
  return json(res);
}

/** Registers, enrolls and starts an agent holding the private service's token for `slugs`. */
async function liveNode(name: string, slugs: string[]): Promise<{ id: string; home: string; agent: AgentProcess }> {
  const node = await register(name);
  const home = tempDir('nexus-node-agent-');
  const en = await agentCli(home, ['enroll', '--url', wsUrl(), '--token', node.registration_token]);
  expect(en.code, en.stderr).toBe(0);
  for (const slug of slugs) {
    const add = await agentCli(home, ['credentials', 'add', '--service', slug, '--url', `http://127.0.0.1:${port}`, '--secret-format', 'bearer', '--secret-env', 'T'], { T: SECRET });
    expect(add.code, add.stderr).toBe(0);
  }
  const agent = startAgent(home);
  agents.push(agent);
  await agent.waitFor(/Connected to hub/);
  await until(`${name} online`, async () => (await json(await api(`/api/v1/nodes/${node.id}`))).status === 'online', 10_000);
  return { id: node.id, home, agent };
}

const service = async (slug: string) => (await json(await api('/api/v1/keys'))).items.find((s: { slug: string }) => s.slug === slug);

const nodeDeletes = async (nodeId: string) =>
  (await json(await api(`/api/v1/audit?action=node.delete&limit=100`))).items.filter((e: { target_id: string }) => e.target_id === nodeId);

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ path: req.url ?? '', authorization: req.headers.authorization });
    res.writeHead(req.headers.authorization === `Bearer ${SECRET}` ? 200 : 401, { 'content-type': 'text/plain' }).end('private answer');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  const cfg = join(tempDir('nexus-node-cfg-'), 'nexus.yaml');
  // Private targets allowed: a service that became direct would be called by the appliance itself.
  writeFileSync(cfg, 'hub:\n  heartbeatSeconds: 1\n  offlineAfterSeconds: 4\nproxy:\n  allowPrivateTargets: true\n');
  app = await startAppliance({ args: ['--config', cfg] });
  admin = await setupAdmin(app);
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await app?.stop();
  await new Promise((r) => server?.close(r));
});

describe('deleting a node', () => {
  it('never makes its services direct: they stay node-routed with no node and answer 503 8002', async () => {
    const node = await liveNode('edge-del', ['s', 'shared']);
    const add = await cli(['service', 'add', '--custom', '--slug', 's', '--endpoint-url', `http://127.0.0.1:${port}`, '--auth-method', 'bearer', '--via-node', 'edge-del', '--json']);
    expect(add.code, add.stderr).toBe(0);
    expect((await proxy('s')).status).toBe(200);
    const before = seen.length;

    // The last node of a service: refused, naming it, unless forced.
    const refused = await send('DELETE', `/api/v1/nodes/${node.id}`);
    expect(refused.status).toBe(409);
    const err = (await json(refused)).error;
    expect(err).toMatchObject({ code: 'conflict', services: ['s'], providers: [] });
    expect(err.message).toContain('"s"');
    const byCli = await cli(['node', 'delete', 'edge-del']);
    expect([byCli.code, byCli.stderr]).toEqual([1, expect.stringContaining('service "s" (no other node)')]);
    expect(byCli.stderr).toContain('--force');
    expect(await service('s')).toMatchObject({ routed_via: 'node', nodes: [{ node_id: node.id }] });

    const forced = await cli(['node', 'delete', 'edge-del', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toContain('Now without a node: service "s"');
    expect((await send('GET', `/api/v1/nodes/${node.id}`)).status).toBe(404);
    expect(await service('s')).toMatchObject({ routed_via: 'node', has_credential: false, nodes: [] });

    const res = await proxy('s');
    expect(res.status).toBe(503);
    expect((await json(res)).error).toMatchObject({ code: 8002, message: expect.stringContaining('no node bound to "s"') });
    // The appliance did not call the private endpoint itself.
    expect(seen.length).toBe(before);

    const [entry] = await until('node.delete audited', async () => (await nodeDeletes(node.id)).length && nodeDeletes(node.id));
    expect(entry.details).toMatchObject({ name: 'edge-del', force: true, services: [{ slug: 's', last_node: true }], providers: [] });
  });

  it('keeps a node-routed service with no node node-routed until nodes: [] makes it direct, with a credential', async () => {
    const node = await register('edge-short');
    const created = await json(await send('POST', '/api/v1/keys', { slug: 'orphan', endpoint_url: `http://127.0.0.1:${port}`, auth_method: 'bearer', nodes: [{ node_id: node.id }] }));
    expect((await send('DELETE', `/api/v1/nodes/${node.id}?force=true`)).status).toBe(204);
    // Other changes leave the mode alone; a credential is refused while node-routed.
    const relabel = await send('PATCH', `/api/v1/keys/${created.id}`, { label: 'Orphan' });
    expect(relabel.status).toBe(200);
    expect(await json(relabel)).toMatchObject({ routed_via: 'node', nodes: [], label: 'Orphan' });
    expect((await send('PATCH', `/api/v1/keys/${created.id}`, { credential: SECRET })).status).toBe(400);
    expect((await send('PATCH', `/api/v1/keys/${created.id}`, { nodes: [] })).status).toBe(400); // direct needs a credential
    const direct = await send('PATCH', `/api/v1/keys/${created.id}`, { nodes: [], credential: SECRET });
    expect(direct.status).toBe(200);
    expect(await json(direct)).toMatchObject({ routed_via: 'direct', has_credential: true });
    expect((await proxy('orphan')).status).toBe(200);
    expect(seen.at(-1)).toMatchObject({ authorization: `Bearer ${SECRET}` });
  });

  it('deletes a node other nodes back up without asking, and audits the services it served', async () => {
    const a = await register('edge-a');
    const b = await register('edge-b');
    await json(await send('POST', '/api/v1/keys', { slug: 'pair', endpoint_url: 'http://10.0.0.5', auth_method: 'none', nodes: [{ node_id: a.id }, { node_id: b.id }] }));
    const used = await json(await api(`/api/v1/nodes/${a.id}`));
    expect(used.used_by).toEqual({ services: [{ id: expect.any(String), slug: 'pair', last_node: false }], other_services: 0, providers: [], other_providers: 0 });
    expect((await send('DELETE', `/api/v1/nodes/${a.id}`)).status).toBe(204);
    expect(await service('pair')).toMatchObject({ routed_via: 'node', nodes: [{ node_id: b.id }] });
    const [entry] = await until('node.delete audited', async () => (await nodeDeletes(a.id)).length && nodeDeletes(a.id));
    expect(entry.details).toEqual({ name: 'edge-a', services: [{ id: expect.any(String), slug: 'pair', last_node: false }], providers: [] });
    // The last one is asked about, auth_method none or not.
    expect((await send('DELETE', `/api/v1/nodes/${b.id}`)).status).toBe(409);
    expect((await send('DELETE', `/api/v1/nodes/${b.id}?force=yes`)).status).toBe(400);
  });
});

describe('a provider through a node', () => {
  it('refuses an unknown node_id (400, param node_id), resolves --node by name, and never goes direct once its node is gone', async () => {
    for (const node_id of ['does-not-exist', 'x'.repeat(64)]) {
      const res = await send('POST', '/api/v1/providers', { name: 'ghost', type: 'openai-compatible', base_url: `http://127.0.0.1:${port}/v1`, node_id });
      expect(res.status).toBe(400);
      expect((await json(res)).error).toMatchObject({ code: 'validation_failed', param: 'node_id' });
    }
    expect((await send('POST', '/api/v1/providers', { name: 'ghost', type: 'openai-compatible', base_url: 'http://x/v1', node_id: 42 })).status).toBe(400);
    expect((await send('GET', '/api/v1/providers')).status).toBe(200);
    expect((await json(await api('/api/v1/providers'))).items.some((p: { name: string }) => p.name === 'ghost')).toBe(false);

    const node = await register('gpu-1-node');
    const unknown = await cli(['provider', 'add', 'gpu-llm', '--type', 'openai-compatible', '--base-url', `http://127.0.0.1:${port}/v1`, '--node', 'no-such-node', '--no-api-key']);
    expect([unknown.code, unknown.stderr]).toEqual([1, 'nexus provider add: no node named "no-such-node" or with that id (nexus node list)\n']);
    const added = await cli(['provider', 'add', 'gpu-llm', '--type', 'openai-compatible', '--base-url', `http://127.0.0.1:${port}/v1`, '--node', 'gpu-1-node', '--no-api-key', '--json']);
    expect(added.code, added.stderr).toBe(0);
    const provider = JSON.parse(added.stdout);
    expect(provider.node_id).toBe(node.id);
    const badPatch = await send('PATCH', `/api/v1/providers/${provider.id}`, { node_id: 'does-not-exist' });
    expect(badPatch.status).toBe(400);
    expect((await json(badPatch)).error).toMatchObject({ param: 'node_id' });
    const byId = await cli(['provider', 'update', 'gpu-llm', '--node', node.id]);
    expect(byId.code, byId.stderr).toBe(0);

    await createModel(app, admin, { name: 'gpu-model', deployments: [{ provider_id: provider.id, upstream_model: 'llama' }] });
    const { key } = await createKey(app, admin.token);
    const refused = await send('DELETE', `/api/v1/nodes/${node.id}`);
    expect(refused.status).toBe(409);
    expect((await json(refused)).error).toMatchObject({ providers: ['gpu-llm'], services: [] });
    expect((await send('DELETE', `/api/v1/nodes/${node.id}?force=true`)).status).toBe(204);
    const [entry] = await until('node.delete audited', async () => (await nodeDeletes(node.id)).length && nodeDeletes(node.id));
    expect(entry.details).toMatchObject({ providers: [{ id: provider.id, name: 'gpu-llm' }] });

    const before = seen.length;
    const call = await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpu-model', messages: [{ role: 'user', content: 'x' }] }) });
    expect(call.status).toBe(503);
    // Said as a service with no node says it (503 8002 "no node bound"), not as a node that is offline,
    // in the OpenAI format the caller speaks.
    const body = await json(call);
    expect(body.error.message).toMatch(new RegExp(`^no node bound: node ${node.id} was deleted; .*nexus provider update NAME --node NODE`));
    expect(body.error.message).not.toMatch(/offline/);
    expect(body.error).toMatchObject({ type: 'server_error', code: '8002' });
    const openai = new OpenAI({ apiKey: key, baseURL: `${app.url}/v1`, maxRetries: 0 });
    const err = await openai.chat.completions.create({ model: 'gpu-model', messages: [{ role: 'user', content: 'x' }] }).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    expect((err as InstanceType<typeof OpenAI.APIError>).message).toMatch(/no node bound: node .* was deleted/);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('8002');
    const stream = await openai.chat.completions.create({ model: 'gpu-model', stream: true, messages: [{ role: 'user', content: 'x' }] }).then(() => null, (e: unknown) => e);
    expect((stream as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    expect(seen.length).toBe(before);
    expect((await json(await api(`/api/v1/providers/${provider.id}`))).node_id).toBe(node.id);
  });
});

describe('what a member sees of a node\'s use', () => {
  it('names only the member\'s own services; other users\' services and every provider are counted, never named', async () => {
    expect((await send('POST', '/api/v1/users', { username: 'node-member', password: 'node-member-password-1' })).status).toBe(201);
    const member = await login(app, 'node-member', 'node-member-password-1');
    const as = (path: string, init: RequestInit = {}) => fetch(`${app.url}${path}`, authed(member.token, init));
    const reg = await as('/api/v1/nodes', { method: 'POST', body: JSON.stringify({ name: 'member-box' }) });
    expect(reg.status).toBe(201);
    const node = await json(reg);
    const own = await as('/api/v1/keys', { method: 'POST', body: JSON.stringify({ slug: 'member-own', endpoint_url: 'http://10.0.0.7', auth_method: 'none', nodes: [{ node_id: node.id }] }) });
    expect(own.status, await own.clone().text()).toBe(201);
    // An admin binds a service of theirs and a provider to the member's node.
    const theirs = await send('POST', '/api/v1/keys', { slug: 'admin-secret-slug', endpoint_url: 'http://10.0.0.8', auth_method: 'none', nodes: [{ node_id: node.id }] });
    expect(theirs.status, await theirs.clone().text()).toBe(201);
    const provider = await send('POST', '/api/v1/providers', { name: 'admin-secret-provider', type: 'openai-compatible', base_url: 'http://10.0.0.9/v1', node_id: node.id });
    expect(provider.status, await provider.clone().text()).toBe(201);

    const seenByMember = await as(`/api/v1/nodes/${node.id}`);
    expect(seenByMember.status).toBe(200);
    const text = await seenByMember.text();
    expect(JSON.parse(text).used_by).toEqual({ services: [{ id: (await json(own)).id, slug: 'member-own', last_node: true }], other_services: 1, providers: [], other_providers: 1 });
    expect(text).not.toMatch(/admin-secret-slug|admin-secret-provider|10\.0\.0\.[89]/);
    // The admin sees all of it by name.
    expect((await json(await api(`/api/v1/nodes/${node.id}`))).used_by).toMatchObject({
      services: [{ slug: 'admin-secret-slug', last_node: true }, { slug: 'member-own', last_node: true }], other_services: 0, providers: [{ name: 'admin-secret-provider' }], other_providers: 0,
    });
    // Deleting it, the member is told what is in the way without the names either.
    const refused = await as(`/api/v1/nodes/${node.id}`, { method: 'DELETE' });
    expect(refused.status).toBe(409);
    const why = await refused.text();
    expect(JSON.parse(why).error).toMatchObject({ services: ['member-own'], providers: [] });
    expect(JSON.parse(why).error.message).toMatch(/"member-own" and the only node of 1 service of other users and the node of 1 AI gateway provider/);
    expect(why).not.toMatch(/admin-secret-slug|admin-secret-provider/);
    // Nor does a member see another user's node at all, or list it.
    const adminNode = await register('admin-only-box');
    expect((await as(`/api/v1/nodes/${adminNode.id}`)).status).toBe(404);
    expect((await json(await as('/api/v1/nodes'))).map((n: { id: string }) => n.id)).toEqual([node.id]);
    for (const bad of ['x'.repeat(65), '%00']) expect((await as(`/api/v1/nodes/${bad}`)).status).toBe(bad.length > 64 ? 400 : 404);
  });
});

describe('node names and tokens', () => {
  it('refuses a second node of the same name and points to a new token for the first', async () => {
    const first = await cli(['node', 'register', 'edge-1']);
    expect(first.code, first.stderr).toBe(0);
    const again = await cli(['node', 'register', 'edge-1']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('a node named "edge-1" exists already');
    expect(again.stderr).toContain('nexus node token edge-1');
    const nodes = (await json(await api('/api/v1/nodes'))).filter((n: { name: string }) => n.name === 'edge-1');
    expect(nodes).toHaveLength(1);
    const api409 = await send('POST', '/api/v1/nodes', { name: 'edge-1' });
    expect(api409.status).toBe(409);
    expect((await json(api409)).error).toMatchObject({ code: 'conflict', param: 'name', node_id: nodes[0].id });
    // Racing registrations of one name: one wins.
    const race = await Promise.all([1, 2, 3, 4].map(() => send('POST', '/api/v1/nodes', { name: 'edge-race' })));
    expect(race.map((r) => r.status).sort()).toEqual([201, 409, 409, 409]);

    // A new single-use token for the existing node, by name; enrolling with it keeps the id.
    const token = await cli(['node', 'token', 'edge-1']);
    expect(token.code, token.stderr).toBe(0);
    const reg = /--token (nx_nreg_\S+) --force/.exec(token.stdout)?.[1];
    expect(reg).toBeTruthy();
    const home = tempDir('nexus-node-tok-');
    const en = await agentCli(home, ['enroll', '--url', wsUrl(), '--token', reg!]);
    expect(en.code, en.stderr).toBe(0);
    expect(en.stdout).toContain(`Enrolled as node ${nodes[0].id}`);
    const missing = await cli(['node', 'token', 'nope']);
    expect([missing.code, missing.stderr]).toEqual([1, 'nexus node token: no node named "nope" or with that id (nexus node list)\n']);
    for (const args of [['node', 'delete'], ['node', 'token', 'a', 'b'], ['node', 'token', 'edge-1', '--force']]) {
      expect((await cli(args)).code, args.join(' ')).toBe(2);
    }
    const del = await cli(['node', 'delete', nodes[0].id]);
    expect([del.code, del.stdout]).toEqual([0, `Node "edge-1" deleted (id ${nodes[0].id}); its agent was disconnected.\n`]);
  });
});

describe('rotating a node\'s credentials', () => {
  it('hands them to the agent with nexus agent rotate: it reconnects, the old pair is refused', async () => {
    const node = await liveNode('edge-rot', ['rot']);
    expect((await send('POST', '/api/v1/keys', { slug: 'rot', endpoint_url: `http://127.0.0.1:${port}`, auth_method: 'bearer', nodes: [{ node_id: node.id }] })).status).toBe(201);
    expect((await proxy('rot')).status).toBe(200);
    // The old identity, kept aside to prove it stops working.
    const oldHome = tempDir('nexus-node-old-');
    for (const f of readdirSync(node.home)) if (statSync(join(node.home, f)).isFile()) copyFileSync(join(node.home, f), join(oldHome, f));

    const rotated = await cli(['node', 'rotate', 'edge-rot']);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stderr).toContain('nexus agent rotate');
    const pair = JSON.parse(rotated.stdout);
    expect(pair).toMatchObject({ node_id: node.id, auth_token: expect.stringMatching(/^nx_nauth_/), signing_secret: expect.any(String) });
    expect(await node.agent.exited(15_000)).not.toBe(0);

    // Hostile input is refused and leaves the stored identity alone.
    const bad = [
      ['not json', 2], [JSON.stringify([pair]), 2], [JSON.stringify({ ...pair, auth_token: 'nx_pat_x' }), 2],
      [JSON.stringify({ ...pair, signing_secret: '' }), 2], [JSON.stringify({ ...pair, node_id: 'another-node' }), 1],
      ['x'.repeat(70 * 1024), 2],
    ] as const;
    for (const [input, code] of bad) {
      const r = await agentCli(node.home, ['rotate'], {}, input);
      expect(r.code, `${input.slice(0, 40)}: ${r.stderr}`).toBe(code);
      expect(r.stderr).not.toContain(pair.signing_secret);
    }
    const notEnrolled = await agentCli(tempDir('nexus-node-none-'), ['rotate'], {}, JSON.stringify(pair));
    expect(notEnrolled.code).toBe(1);
    expect(notEnrolled.stderr).toContain('not enrolled yet');

    const installed = await agentCli(node.home, ['rotate'], {}, JSON.stringify(pair));
    expect(installed.code, installed.stderr).toBe(0);
    expect(installed.stdout).toContain('nexus agent start');
    expect(installed.stdout + installed.stderr).not.toContain(pair.signing_secret);
    const agent = startAgent(node.home);
    agents.push(agent);
    await agent.waitFor(/Connected to hub/);
    await until('edge-rot online', async () => (await json(await api(`/api/v1/nodes/${node.id}`))).status === 'online', 10_000);
    const res = await proxy('rot');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('private answer');

    const old = startAgent(oldHome);
    agents.push(old);
    await old.waitFor(/does not accept this node's credentials/, 15_000);
    expect(await old.exited(15_000)).not.toBe(0);

    // From the environment too (a second rotation).
    const again = JSON.parse((await cli(['node', 'rotate', node.id])).stdout);
    await agent.exited(15_000);
    const fromEnv = await agentCli(node.home, ['rotate'], { NEXUS_NODE_AUTH_TOKEN: again.auth_token, NEXUS_NODE_SIGNING_SECRET: again.signing_secret });
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    const third = startAgent(node.home);
    agents.push(third);
    await third.waitFor(/Connected to hub/);
  });
});
