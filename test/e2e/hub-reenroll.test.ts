// Enrolling a node again: after its credentials were rotated (the agent stops, exit 3), or to move it
// to another host. A new single-use token for the same node gives it new credentials under the same
// id, so the services bound to it keep working; an agent still on the old credentials is cut off.
// Real processes: the appliance, agents started through the CLI entry point, a local service.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { authed, json, post, setupAdmin, login, type Admin } from '../helpers/api.ts';
import { agentCli, startAgent, type AgentProcess } from '../helpers/agent.ts';

let app: Appliance;
let admin: Admin;
let service: Server;
let serviceUrl: string;
const agents: AgentProcess[] = [];

beforeAll(async () => {
  app = await startAppliance();
  admin = await setupAdmin(app);
  service = createServer((req, res) => res.end(`served ${req.url}`));
  await new Promise<void>((r) => service.listen(0, '127.0.0.1', r));
  serviceUrl = `http://127.0.0.1:${(service.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  service?.close();
  await app?.stop();
});

const hub = () => `${app.url.replace('http', 'ws')}/ws`;
const as = (token: string) => ({ authorization: `Bearer ${token}` });
const proxied = async (slug: string, path: string) => {
  const res = await fetch(`${app.url}/api/v1/proxy/s/${slug}${path}`, { headers: { 'x-api-key': admin.token } });
  return { status: res.status, text: await res.text() };
};
const agent = (home: string) => {
  const a = startAgent(home);
  agents.push(a);
  return a;
};

describe('enrolling a node again', () => {
  it('after a rotation: a new token, enroll --force, and the same node serves its services again', async () => {
    const node = await json(await post(`${app.url}/api/v1/nodes`, { name: 'moving' }, as(admin.token)));
    const home = tempDir('nexus-reenroll-');
    expect((await agentCli(home, ['enroll', '--url', hub(), '--token', node.registration_token])).code).toBe(0);
    const svc = await json(await post(`${app.url}/api/v1/keys`, { slug: 'behind-moving', endpoint_url: serviceUrl, auth_method: 'none', nodes: [{ node_id: node.id }] }, as(admin.token)));
    expect(svc.slug).toBe('behind-moving');
    const first = agent(home);
    await first.waitFor(/Connected to hub/);
    expect(await proxied('behind-moving', '/one')).toEqual({ status: 200, text: 'served /one' });

    // Rotation cuts the agent off for good: it stops with what to do.
    const rotated = await fetch(`${app.url}/api/v1/nodes/${node.id}/rotate`, authed(admin.token, { method: 'POST' }));
    expect(rotated.status).toBe(200);
    expect(await first.exited()).toBe(3);
    expect(first.output()).toContain('registration-token');

    // A new token for the same node; without --force the enrolled home refuses, saying how.
    const issued = await fetch(`${app.url}/api/v1/nodes/${node.id}/registration-token`, authed(admin.token, { method: 'POST' }));
    expect(issued.status).toBe(201);
    const again = await json(issued);
    expect(again).toMatchObject({ id: node.id, name: 'moving', registration_token: expect.stringMatching(/^nx_nreg_/), expires_at: expect.any(String) });
    const refused = await agentCli(home, ['enroll', '--url', hub(), '--token', again.registration_token]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('--force replaces it');
    const enrolled = await agentCli(home, ['enroll', '--url', hub(), '--token', again.registration_token, '--force']);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    expect(enrolled.stdout).toContain(`Enrolled as node ${node.id}`);
    const second = agent(home);
    await second.waitFor(/Connected to hub/);
    expect(await proxied('behind-moving', '/two')).toEqual({ status: 200, text: 'served /two' });
    const view = await json(await fetch(`${app.url}/api/v1/nodes/${node.id}`, authed(admin.token)));
    expect(view).toMatchObject({ id: node.id, status: 'online', registration_expires_at: null });

    // Single use, as every registration token.
    const reused = await json(await post(`${app.url}/api/internal/things/enroll`, { registration_token: again.registration_token }));
    expect(reused.error.code).toBe(8003);
  });

  it('to another host: the agent on the old credentials is cut off, the new one serves', async () => {
    const node = await json(await post(`${app.url}/api/v1/nodes`, { name: 'old-host' }, as(admin.token)));
    const oldHome = tempDir('nexus-reenroll-');
    expect((await agentCli(oldHome, ['enroll', '--url', hub(), '--token', node.registration_token])).code).toBe(0);
    await json(await post(`${app.url}/api/v1/keys`, { slug: 'behind-old-host', endpoint_url: serviceUrl, auth_method: 'none', nodes: [{ node_id: node.id }] }, as(admin.token)));
    const old = agent(oldHome);
    await old.waitFor(/Connected to hub/);

    // Two tokens issued: only the latest enrolls, and issuing one does not disturb the live agent.
    const t1 = await json(await post(`${app.url}/api/v1/nodes/${node.id}/registration-token`, {}, as(admin.token)));
    const t2 = await json(await post(`${app.url}/api/v1/nodes/${node.id}/registration-token`, { ttl_seconds: 600 }, as(admin.token)));
    expect(new Date(t2.expires_at).getTime() - Date.now()).toBeLessThanOrEqual(600_000);
    expect(await proxied('behind-old-host', '/still')).toEqual({ status: 200, text: 'served /still' });
    const newHome = tempDir('nexus-reenroll-');
    const stale = await agentCli(newHome, ['enroll', '--url', hub(), '--token', t1.registration_token]);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('8003');
    expect((await agentCli(newHome, ['enroll', '--url', hub(), '--token', t2.registration_token])).code).toBe(0);

    expect(await old.exited()).toBe(3); // its credentials were replaced: cut off at once, then refused
    const fresh = agent(newHome);
    await fresh.waitFor(/Connected to hub/);
    expect(await proxied('behind-old-host', '/moved')).toEqual({ status: 200, text: 'served /moved' });
  });

  it('is for the node\'s owner or an admin; bad input is refused in the control plane\'s shape', async () => {
    const node = await json(await post(`${app.url}/api/v1/nodes`, { name: 'owned' }, as(admin.token)));
    await post(`${app.url}/api/v1/users`, { username: 'member', password: 'member-password-1' }, as(admin.token));
    const member = await login(app, 'member', 'member-password-1');
    const foreign = await fetch(`${app.url}/api/v1/nodes/${node.id}/registration-token`, authed(member.token, { method: 'POST' }));
    expect(foreign.status).toBe(404);
    const missing = await fetch(`${app.url}/api/v1/nodes/no-such-node/registration-token`, authed(admin.token, { method: 'POST' }));
    expect(missing.status).toBe(404);
    const anonymous = await fetch(`${app.url}/api/v1/nodes/${node.id}/registration-token`, { method: 'POST' });
    expect(anonymous.status).toBe(401);
    for (const body of [{ ttl_seconds: 0 }, { ttl_seconds: 'soon' }, { extra: true }, [1]]) {
      const res = await post(`${app.url}/api/v1/nodes/${node.id}/registration-token`, body, as(admin.token));
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((await json(res)).error.code).toBe('validation_failed');
    }
    const garbled = await fetch(`${app.url}/api/v1/nodes/${node.id}/registration-token`, authed(admin.token, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"ttl_seconds":' }));
    expect(garbled.status).toBe(400);
    // Concurrent issues: each answer is a token, exactly one of them (the last written) enrolls.
    const tokens = await Promise.all(Array.from({ length: 8 }, async () => (await json(await post(`${app.url}/api/v1/nodes/${node.id}/registration-token`, {}, as(admin.token)))).registration_token as string));
    const outcomes = await Promise.all(tokens.map(async (t) => (await post(`${app.url}/api/internal/things/enroll`, { registration_token: t })).status));
    expect(outcomes.filter((s) => s === 200)).toHaveLength(1);
    expect(outcomes.filter((s) => s === 401)).toHaveLength(7);
  });
});
