// Changing a service after creation (PATCH /api/v1/keys/{id}) with real processes: the appliance, two
// agents started through the CLI entry point, each holding a different token for the same service,
// and a local service that echoes the Authorization header it got, so a response names the node (or
// the appliance) that injected the credential.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { authed, json, login, post, setupAdmin, type Admin } from '../helpers/api.ts';
import { agentCli, startAgent, type AgentProcess } from '../helpers/agent.ts';

const TOKEN_A = 'token-held-by-node-a';
const TOKEN_B = 'token-held-by-node-b';
const DIRECT_SECRET = 'direct-secret-on-the-appliance-5f1c';

let app: Appliance;
let admin: Admin;
let member: Admin;
let echo: Server;
let echoUrl: string;
const home = tempDir('nexus-agent-routing-');
const agents: AgentProcess[] = [];
let nodeA: string;
let nodeB: string;
let service: { id: string; slug: string };

const call = (who: Admin, path: string, init: RequestInit = {}) => fetch(`${app.url}${path}`, authed(who.token, init));
const patch = (who: Admin, id: string, body: unknown) => call(who, `/api/v1/keys/${id}`, { method: 'PATCH', body: typeof body === 'string' ? body : JSON.stringify(body) });
/** Who injected the credential of the request just proxied. */
const servedBy = async (slug = service.slug) => {
  const res = await fetch(`${app.url}/api/v1/proxy/s/${slug}/who`, { headers: { 'x-api-key': admin.token } });
  expect(res.status).toBe(200);
  return (await json(res)).authorization as string;
};

/** Registers a node, enrolls an agent profile for it with its own token for "routed", starts it. */
async function nodeWithAgent(name: string, profile: string, token: string): Promise<string> {
  const reg = await json(await call(admin, '/api/v1/nodes', { method: 'POST', body: JSON.stringify({ name }) }));
  const p = ['--profile', profile];
  const en = await agentCli(home, ['enroll', ...p, '--url', `${app.url.replace('http', 'ws')}/ws`, '--token', reg.registration_token]);
  expect(en.code, en.stderr).toBe(0);
  const add = await agentCli(home, ['credentials', 'add', ...p, '--service', 'routed', '--url', echoUrl, '--secret-format', 'bearer', '--secret-env', 'T'], { T: token });
  expect(add.code, add.stderr).toBe(0);
  const agent = startAgent(home, p);
  agents.push(agent);
  await agent.waitFor(/Connected to hub/);
  return reg.id;
}

beforeAll(async () => {
  const cfgDir = tempDir('nexus-routing-cfg-');
  const cfg = join(cfgDir, 'nexus.yaml');
  writeFileSync(cfg, 'hub:\n  heartbeatSeconds: 1\n  offlineAfterSeconds: 4\nproxy:\n  allowPrivateTargets: true\n');
  echo = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ authorization: req.headers.authorization ?? null }));
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoUrl = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;
  app = await startAppliance({ args: ['--config', cfg] });
  admin = await setupAdmin(app);
  expect((await post(`${app.url}/api/v1/users`, { username: 'member1', password: 'member-password-1' }, { authorization: `Bearer ${admin.token}` })).status).toBe(201);
  member = await login(app, 'member1', 'member-password-1');
  [nodeA, nodeB] = await Promise.all([nodeWithAgent('node-a', 'a', TOKEN_A), nodeWithAgent('node-b', 'b', TOKEN_B)]);
  const created = await call(admin, '/api/v1/keys', { method: 'POST', body: JSON.stringify({ slug: 'routed', endpoint_url: echoUrl, auth_method: 'bearer', nodes: [{ node_id: nodeA, priority: 0 }] }) });
  expect(created.status).toBe(201);
  service = await json(created);
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await app?.stop();
  await new Promise((r) => echo?.close(r));
});

describe('re-binding a service to nodes', () => {
  it('serves the very next request from the node the PATCH names, and by the new priorities', async () => {
    expect(await servedBy()).toBe(`Bearer ${TOKEN_A}`);

    const moved = await patch(admin, service.id, { nodes: [{ node_id: nodeB, priority: 0 }] });
    expect(moved.status).toBe(200);
    expect(await json(moved)).toMatchObject({ id: service.id, slug: 'routed', routed_via: 'node', has_credential: false, nodes: [{ node_id: nodeB, priority: 0, weight: 1 }] });
    expect(await servedBy()).toBe(`Bearer ${TOKEN_B}`);

    // Both bound; the lower priority number wins, and swapping the priorities swaps the node at once.
    expect((await patch(admin, service.id, { nodes: [{ node_id: nodeA, priority: 0 }, { node_id: nodeB, priority: 1 }] })).status).toBe(200);
    expect(await servedBy()).toBe(`Bearer ${TOKEN_A}`);
    expect((await patch(admin, service.id, { nodes: [{ node_id: nodeA, priority: 1 }, { node_id: nodeB, priority: 0 }] })).status).toBe(200);
    expect(await servedBy()).toBe(`Bearer ${TOKEN_B}`);

    // Equal priority, weights 1:1: the WRR starts afresh for the new binding (ties go to the node
    // listed first, by id) and alternates.
    expect((await patch(admin, service.id, { nodes: [{ node_id: nodeA, priority: 0, weight: 1 }, { node_id: nodeB, priority: 0, weight: 1 }] })).status).toBe(200);
    const [t1, t2] = nodeA < nodeB ? [TOKEN_A, TOKEN_B] : [TOKEN_B, TOKEN_A];
    const spread = [await servedBy(), await servedBy(), await servedBy(), await servedBy()];
    expect(spread).toEqual([`Bearer ${t1}`, `Bearer ${t2}`, `Bearer ${t1}`, `Bearer ${t2}`]);

    const got = await json(await call(admin, `/api/v1/keys/${service.id}`));
    expect(got.nodes).toEqual([nodeA, nodeB].sort().map((node_id) => ({ node_id, priority: 0, weight: 1 })));
    const audit = await json(await call(admin, '/api/v1/audit?action=service.update'));
    expect(audit.items[0]).toMatchObject({ target_id: service.id, outcome: 'success', details: { slug: 'routed', fields: ['nodes'], nodes: [nodeA, nodeB].sort() } });
  });

  it('switches between direct and through-nodes, dropping the stored credential and never echoing it', async () => {
    // Taking every node away needs a credential for the appliance to inject.
    const bare = await patch(admin, service.id, { nodes: [] });
    expect(bare.status).toBe(400);
    expect((await json(bare)).error.message).toMatch(/needs credential/);
    const direct = await patch(admin, service.id, { nodes: [], credential: DIRECT_SECRET });
    expect(direct.status).toBe(200);
    const view = await json(direct);
    expect(view).toMatchObject({ routed_via: 'direct', has_credential: true, nodes: [] });
    expect(JSON.stringify(view)).not.toContain(DIRECT_SECRET);
    expect(await servedBy()).toBe(`Bearer ${DIRECT_SECRET}`);

    // The credential does not follow the endpoint to another origin unless it is sent again.
    const elsewhere = echoUrl.replace('127.0.0.1', 'localhost');
    const moved = await patch(admin, service.id, { endpoint_url: elsewhere });
    expect(moved.status).toBe(400);
    expect((await json(moved)).error.message).toMatch(/another origin/);
    expect((await patch(admin, service.id, { endpoint_url: `${echoUrl}/` })).status).toBe(200); // same origin: kept
    expect(await servedBy()).toBe(`Bearer ${DIRECT_SECRET}`);
    // A direct service cannot take a credential and nodes together.
    expect((await patch(admin, service.id, { nodes: [{ node_id: nodeA }], credential: 'x' })).status).toBe(400);

    // Back through a node: the stored credential is dropped, the node's token is used.
    const back = await json(await patch(admin, service.id, { nodes: [{ node_id: nodeA }], label: 'Routed echo' }));
    expect(back).toMatchObject({ routed_via: 'node', has_credential: false, label: 'Routed echo', endpoint_url: echoUrl });
    expect(await servedBy()).toBe(`Bearer ${TOKEN_A}`);
    // Going direct again needs the credential again: the old one is gone for good.
    expect((await patch(admin, service.id, { nodes: [] })).status).toBe(400);

    const audit = await json(await call(admin, '/api/v1/audit?action=service.update'));
    expect(audit.items[0].details).toMatchObject({ fields: ['nodes', 'label'], sealed: 'dropped' });
    expect(JSON.stringify(audit)).not.toContain(DIRECT_SECRET);
    for (const f of readdirSync(app.dataDir).filter((n) => n.startsWith('nexus.db'))) {
      expect(readFileSync(join(app.dataDir, f)).includes(DIRECT_SECRET), f).toBe(false);
    }
    expect(app.output()).not.toContain(DIRECT_SECRET);
  });
});

describe('hostile updates', () => {
  it('hides unknown and other users’ services and nodes behind 404, like the rest of the hub', async () => {
    expect((await patch(admin, 'no-such-service', { label: 'x' })).status).toBe(404);
    const theirs = await patch(member, service.id, { label: 'mine now' });
    expect(theirs.status).toBe(404);
    expect(await json(theirs)).toEqual({ error: { code: 'not_found', message: 'service not found' } });
    expect((await call(member, `/api/v1/keys/${service.id}`)).status).toBe(404);
    expect((await fetch(`${app.url}/api/v1/keys/${service.id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: '{"label":"x"}' })).status).toBe(401);

    // The member's own service may not be bound to the admin's node, nor to a node that does not exist.
    const own = await json(await call(member, '/api/v1/keys', { method: 'POST', body: JSON.stringify({ slug: 'own', endpoint_url: echoUrl, auth_method: 'none' }) }));
    for (const nodeId of [nodeA, 'no-such-node']) {
      const res = await patch(member, own.id, { nodes: [{ node_id: nodeId }] });
      expect(res.status).toBe(404);
      expect((await json(res)).error.message).toBe('node not found');
    }
    expect((await json(await call(member, `/api/v1/keys/${own.id}`))).nodes).toEqual([]);
    // A node an admin bound to the member's service stays usable for the member's own edits.
    expect((await patch(admin, own.id, { nodes: [{ node_id: nodeA }] })).status).toBe(200);
    const kept = await patch(member, own.id, { nodes: [{ node_id: nodeA, priority: 5 }] });
    expect(await json(kept)).toMatchObject({ nodes: [{ node_id: nodeA, priority: 5, weight: 1 }] });
    expect((await patch(member, own.id, { nodes: [{ node_id: nodeA }, { node_id: nodeB }] })).status).toBe(404);
  });

  it('refuses malformed, mistyped, out-of-range, duplicate and oversized bodies in the hub’s error shape', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{}, /fewer than 1|must NOT have fewer/],
      [{ slug: 'renamed' }, /unknown field "slug"/],
      [{ nodes: [{ node_id: nodeA, extra: 1 }] }, /unknown field "extra"/],
      [{ nodes: [{ node_id: nodeA }, { node_id: nodeA, priority: 1 }] }, /listed twice/],
      [{ nodes: [{ node_id: nodeA, priority: '1' }] }, /integer/],
      [{ nodes: [{ node_id: nodeA, priority: -1 }] }, />= 0/],
      [{ nodes: [{ node_id: nodeA, priority: 1001 }] }, /<= 1000/],
      [{ nodes: [{ node_id: nodeA, weight: 0 }] }, />= 1/],
      [{ nodes: [{ node_id: nodeA, weight: 1.5 }] }, /integer/],
      [{ nodes: [{ priority: 1 }] }, /node_id/],
      [{ nodes: { node_id: nodeA } }, /array/],
      [{ nodes: Array.from({ length: 33 }, (_, i) => ({ node_id: `n${i}` })) }, /more than 32/],
      [{ auth_method: 'magic' }, /allowed values|equal to one of/],
      [{ auth_method: 'header', auth_key_name: null }, /needs auth_key_name/],
      [{ endpoint_url: 'ftp://x' }, /http or https/],
      [{ endpoint_url: 'http://u:p@x' }, /must not carry credentials/],
      [{ label: 5 }, /body.label must be string,null/],
      ['{"label":', /not valid JSON/],
      ['[]', /object/],
    ];
    for (const [body, message] of cases) {
      const res = await patch(admin, service.id, body);
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      expect(res.status, text).toBe(400);
      const err = (await json(res)).error;
      expect(err.code, text).toMatch(/^(validation_failed|invalid_json)$/);
      expect(err.message, text).toMatch(message);
    }
    const big = await patch(admin, service.id, { label: 'x', credential: 'y'.repeat(100 * 1024) });
    expect(big.status).toBe(413);
    expect((await json(big)).error.code).toBe('payload_too_large');
    // Nothing above changed the service.
    expect((await json(await call(admin, `/api/v1/keys/${service.id}`))).nodes).toEqual([{ node_id: nodeA, priority: 0, weight: 1 }]);
  });

  it('applies concurrent updates one after the other, never a mix of two', async () => {
    const choices = [
      [{ node_id: nodeA, priority: 0, weight: 1 }],
      [{ node_id: nodeB, priority: 0, weight: 1 }],
      [{ node_id: nodeA, priority: 0, weight: 2 }, { node_id: nodeB, priority: 1, weight: 1 }],
    ];
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => patch(admin, service.id, { nodes: choices[i % 3] })));
    expect(results.map((r) => r.status)).toEqual(Array(12).fill(200));
    const final = (await json(await call(admin, `/api/v1/keys/${service.id}`))).nodes;
    expect(choices).toContainEqual(final);
    // The proxy serves from that final binding at once (its lowest priority comes first).
    expect(await servedBy()).toBe(`Bearer ${final[0].node_id === nodeA ? TOKEN_A : TOKEN_B}`);
  });
});

describe('slugs of new services', () => {
  it('numbers a taken slug within the 64 characters the proxy and the agent CLI take', async () => {
    const create = async (slug: string) => {
      const res = await call(admin, '/api/v1/keys', { method: 'POST', body: JSON.stringify({ slug, endpoint_url: echoUrl, auth_method: 'none' }) });
      expect(res.status).toBe(201);
      return (await json(res)).slug as string;
    };
    const long = 'a'.repeat(64);
    // 61 letters, then a dash where the shortened base would end: it is dropped, not doubled.
    const dashed = `${'b'.repeat(61)}-cd`;
    const slugs = [await create(long), await create(long), await create(long), await create(dashed), await create(dashed)];
    expect(slugs).toEqual([long, `${'a'.repeat(62)}-2`, `${'a'.repeat(62)}-3`, dashed, `${'b'.repeat(61)}-2`]);
    // A 64-character base whose shortened form is itself taken moves on to the next number.
    const taken = `${'c'.repeat(62)}-2`;
    expect(await create(taken)).toBe(taken);
    expect([await create('c'.repeat(64)), await create('c'.repeat(64))]).toEqual(['c'.repeat(64), `${'c'.repeat(62)}-3`]);
    for (const slug of slugs.slice(1)) {
      const proxied = await fetch(`${app.url}/api/v1/proxy/s/${slug}/who`, { headers: { 'x-api-key': admin.token } });
      expect(proxied.status, slug).toBe(200);
    }
    // A node holding the credential for such a service can store it under that slug.
    const add = await agentCli(tempDir('nexus-agent-slug-'), ['credentials', 'add', '--service', slugs[1]!, '--url', echoUrl, '--secret-format', 'bearer', '--secret-env', 'T'], { T: 'x' });
    expect(add.code, add.stderr).toBe(0);
  });
});
