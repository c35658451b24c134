// The hub and the service proxy through the appliance's nginx site (TLS on a test port, test
// certificate): a remote agent enrolls and holds its session over wss://…/ws, and the service proxy
// relays a request and a large upload through that agent to a private service.
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSelfSignedCertificate } from '../../src/first-boot/certificate.ts';
import { agentCli, startAgent, type AgentProcess } from '../helpers/agent.ts';
import { json, setupAdmin, type Admin } from '../helpers/api.ts';
import { startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { nginxBinary, startSiteInFront, type RunningNginx } from '../helpers/nginx.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const HAVE_NGINX = nginxBinary() !== null;
const UPSTREAM_TOKEN = `svc-secret-${randomBytes(12).toString('hex')}`;
const dir = tempDir('nexus-surfaces-');
const cert = createSelfSignedCertificate(['localhost', '127.0.0.1']);
writeFileSync(join(dir, 'test.crt'), cert.certPem);
writeFileSync(join(dir, 'test.key'), cert.keyPem, { mode: 0o600 });
// The agent is a separate process: it trusts the test certificate the way an operator would make a
// private CA known to Node.
process.env.NODE_EXTRA_CA_CERTS = join(dir, 'test.crt');

let app: Appliance;
let admin: Admin;
let nginx: RunningNginx;
let base: string;
let upstream: Upstream;
let agent: AgentProcess | undefined;
const tls = new Agent({ connect: { ca: cert.certPem } });

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}


describe.skipIf(!HAVE_NGINX)('hub and service proxy through nginx', () => {
  beforeAll(async () => {
    const cfg = join(dir, 'nexus.yaml');
    writeFileSync(cfg, 'proxy:\n  allowPrivateTargets: true\nhub:\n  heartbeatSeconds: 1\n');
    [app, upstream] = await Promise.all([startAppliance({ args: ['--config', cfg] }), startUpstream(UPSTREAM_TOKEN)]);
    admin = await setupAdmin(app);
    ({ nginx, base } = await startSiteInFront(dir, app.url));
  });
  afterAll(async () => {
    await agent?.stop();
    await nginx?.stop();
    await app?.stop();
    await upstream?.close();
  });

  const api = (path: string, init: Parameters<typeof fetch>[1] = {}) =>
    fetch(`${base}${path}`, { ...init, dispatcher: tls, headers: { 'content-type': 'application/json', authorization: `Bearer ${admin.token}`, ...(init.headers as Record<string, string>) } });

  it('enrolls a remote agent over wss://…/ws and keeps its session online through nginx', async () => {
    const reg = await api('/api/v1/nodes', { method: 'POST', body: JSON.stringify({ name: 'behind-nginx' }) });
    expect(reg.status).toBe(201);
    const node = (await json(reg as unknown as Response)) as { id: string; registration_token: string };
    const home = tempDir('nexus-agent-');
    const enroll = await agentCli(home, ['enroll', '--url', `wss://127.0.0.1:${new URL(base).port}/ws`, '--token', node.registration_token]);
    expect(enroll.code, enroll.stderr).toBe(0);
    const add = await agentCli(home, ['credentials', 'add', '--service', 'private-api', '--url', upstream.url, '--header', 'Authorization', '--secret-format', 'bearer', '--secret-env', 'SVC_TOKEN'], { SVC_TOKEN: UPSTREAM_TOKEN });
    expect(add.code, add.stderr).toBe(0);
    agent = startAgent(home);
    await until('node online', async () => ((await json((await api(`/api/v1/nodes/${node.id}`)) as unknown as Response)) as { status: string }).status === 'online');
    const svc = await api('/api/v1/keys', { method: 'POST', body: JSON.stringify({ slug: 'private-api', endpoint_url: upstream.url, auth_method: 'bearer', nodes: [{ node_id: node.id, priority: 0 }] }) });
    expect(svc.status, await svc.clone().text()).toBe(201);

    // A request through nginx → service proxy → hub → agent (which adds the credential) → service.
    const echo = await fetch(`${base}/api/v1/proxy/s/private-api/echo`, { dispatcher: tls, headers: { 'x-api-key': admin.token } });
    expect(echo.status).toBe(200);
    expect(echo.headers.get('x-upstream')).toBe('yes');
    expect(upstream.seen.at(-1)!.headers.authorization).toBe(`Bearer ${UPSTREAM_TOKEN}`);
  }, 90_000);

  it('relays a large upload from nginx through the service proxy and the agent intact', async () => {
    const total = 96;
    const hash = createHash('sha256');
    async function* body() {
      for (let i = 0; i < total; i++) {
        const chunk = Buffer.alloc(1024 * 1024, i & 0xff);
        hash.update(chunk);
        yield chunk;
      }
    }
    const res = await fetch(`${base}/api/v1/proxy/s/private-api/upload`, {
      method: 'POST',
      dispatcher: tls,
      headers: { 'x-api-key': admin.token, 'content-type': 'application/octet-stream' },
      body: body(),
      duplex: 'half',
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toEqual({ bytes: total * 1024 * 1024, sha256: hash.digest('hex') });
  }, 120_000);
});
