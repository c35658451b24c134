// An agent against an appliance whose certificate is self-signed, as every fresh appliance's is: the
// real CLI refuses to enroll with a sentence naming --ca, enrolls with --ca, and `agent start` (its
// WebSocket and its long-poll fallback) trusts the same certificate with nothing else set. TLS is
// ended by a small TLS-to-TCP forwarder in front of the appliance, the way nginx stands in front of it.
// Then the same through an HTTP proxy that only tunnels (CONNECT) and wants credentials, as a
// corporate network's egress proxy does.
import { createServer as createHttpServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSelfSignedCertificate } from '../../src/first-boot/certificate.ts';
import { startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { json, post, setupAdmin, type Admin } from '../helpers/api.ts';
import { agentCli, startAgent } from '../helpers/agent.ts';

let app: Appliance;
let admin: Admin;
let front: TlsServer;
let service: Server;
let hubUrl: string;
let caFile: string;
let serviceUrl: string;

beforeAll(async () => {
  delete process.env.NODE_EXTRA_CA_CERTS; // the agents here must trust only what they are given
  app = await startAppliance();
  admin = await setupAdmin(app);
  const cert = createSelfSignedCertificate(['127.0.0.1']);
  caFile = join(tempDir('nexus-agent-ca-'), 'appliance.pem');
  writeFileSync(caFile, cert.certPem);
  const appPort = Number(new URL(app.url).port);
  front = createTlsServer({ cert: cert.certPem, key: cert.keyPem }, (tlsSocket) => {
    const plain = connect(appPort, '127.0.0.1');
    tlsSocket.pipe(plain).pipe(tlsSocket);
    tlsSocket.on('error', () => plain.destroy());
    plain.on('error', () => tlsSocket.destroy());
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  hubUrl = `wss://127.0.0.1:${(front.address() as AddressInfo).port}/ws`;
  service = createHttpServer((req, res) => res.end(`private answer to ${req.url}`));
  await new Promise<void>((r) => service.listen(0, '127.0.0.1', r));
  serviceUrl = `http://127.0.0.1:${(service.address() as AddressInfo).port}`;
});
afterAll(async () => {
  front?.close();
  service?.close();
  await app?.stop();
});

/** A CONNECT-only proxy that wants `user:pa:ss` and records every tunnel it opens. */
async function startConnectProxy() {
  const tunnels: string[] = [];
  const expected = `Basic ${Buffer.from('user:pa:ss').toString('base64')}`;
  const server = createHttpServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req, client: Socket, head: Buffer) => {
    client.on('error', () => {});
    if (req.headers['proxy-authorization'] !== expected) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="egress"\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    tunnels.push(req.url ?? '');
    const [host, port] = [req.url!.slice(0, req.url!.lastIndexOf(':')), Number(req.url!.slice(req.url!.lastIndexOf(':') + 1))];
    const upstream = connect(port, host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client).pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, tunnels, port: (server.address() as AddressInfo).port };
}

const register = async (name: string) => json(await post(`${app.url}/api/v1/nodes`, { name }, { authorization: `Bearer ${admin.token}` }));

describe('an agent and a self-signed appliance certificate', () => {
  it('is refused with what to do, then enrolls with --ca and serves through both transports', async () => {
    const node = await register('behind-self-signed');
    const home = tempDir('nexus-agent-tls-');
    const refused = await agentCli(home, ['enroll', '--url', hubUrl, '--token', node.registration_token]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('TLS certificate is not trusted here');
    expect(refused.stderr).toContain('--ca FILE');
    expect(refused.stderr).toContain('/var/lib/nexus/tls/cert.pem');

    const notPem = join(tempDir('nexus-agent-ca-'), 'key.txt');
    writeFileSync(notPem, 'not a certificate\n');
    const bad = await agentCli(home, ['enroll', '--url', hubUrl, '--token', node.registration_token, '--ca', notPem]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('no PEM certificate');

    // The refused attempts never reached the appliance: the token is still good.
    const enrolled = await agentCli(home, ['enroll', '--url', hubUrl, '--token', node.registration_token, '--ca', caFile]);
    expect(enrolled.code, enrolled.stderr).toBe(0);
    expect(enrolled.stdout).toContain(`Enrolled as node ${node.id}`);

    const svc = await json(await post(`${app.url}/api/v1/keys`, { slug: 'tls-private', endpoint_url: serviceUrl, auth_method: 'none', nodes: [{ node_id: node.id }] }, { authorization: `Bearer ${admin.token}` }));
    expect(svc.slug).toBe('tls-private');
    for (const transport of ['ws', 'http']) {
      const agent = startAgent(home, ['--transport', transport]);
      try {
        await agent.waitFor(/Connected to hub/);
        const res = await fetch(`${app.url}/api/v1/proxy/s/tls-private/hello?via=${transport}`, { headers: { 'x-api-key': admin.token } });
        expect(res.status).toBe(200);
        expect(await res.text()).toBe(`private answer to /hello?via=${transport}`);
      } finally {
        await agent.stop();
      }
    }
  });

  it('an agent that no longer trusts the hub says why in its reconnect lines', async () => {
    const node = await register('trusts-another');
    const home = tempDir('nexus-agent-tls-');
    expect((await agentCli(home, ['enroll', '--url', hubUrl, '--token', node.registration_token, '--ca', caFile])).code).toBe(0);
    // The node keeps the certificate it was given; the hub now serves another one (a new
    // certificate uploaded on the appliance, say), so the stored anchor no longer matches.
    const nodeFile = join(home, 'node.json');
    const stored = JSON.parse(readFileSync(nodeFile, 'utf8')) as { ca: string };
    expect(stored.ca).toContain('BEGIN CERTIFICATE');
    writeFileSync(nodeFile, JSON.stringify({ ...stored, ca: createSelfSignedCertificate(['127.0.0.1']).certPem }));
    const agent = startAgent(home, ['--transport', 'ws']);
    try {
      const line = await agent.waitFor(/.*disconnected from hub; reconnecting.*/);
      expect(line).toContain('TLS certificate is not trusted here');
      expect(agent.output()).not.toContain('Connected to hub');
    } finally {
      await agent.stop();
    }
  });

  it('reaches the hub through an HTTP proxy (HTTPS_PROXY with credentials), WebSocket and long-poll alike', async () => {
    const proxy = await startConnectProxy();
    const front = new URL(hubUrl).host;
    const viaProxy = `http://user:${encodeURIComponent('pa:ss')}@127.0.0.1:${proxy.port}`;
    try {
      const node = await register('behind-a-proxy');
      const home = tempDir('nexus-agent-proxy-');
      const wrong = await agentCli(home, ['enroll', '--url', hubUrl, '--token', node.registration_token, '--ca', caFile], { HTTPS_PROXY: `http://user:wrong@127.0.0.1:${proxy.port}` });
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toContain('cannot reach');
      expect(proxy.tunnels).toEqual([]);
      const enrolled = await agentCli(home, ['enroll', '--url', hubUrl, '--token', node.registration_token, '--ca', caFile], { HTTPS_PROXY: viaProxy });
      expect(enrolled.code, enrolled.stderr).toBe(0);
      expect(proxy.tunnels).toEqual([front]);
      await post(`${app.url}/api/v1/keys`, { slug: 'proxied-private', endpoint_url: serviceUrl, auth_method: 'none', nodes: [{ node_id: node.id }] }, { authorization: `Bearer ${admin.token}` });
      process.env.HTTPS_PROXY = viaProxy; // inherited by the agents started below
      for (const transport of ['ws', 'http']) {
        const before = proxy.tunnels.length;
        const agent = startAgent(home, ['--transport', transport]);
        try {
          await agent.waitFor(/Connected to hub/);
          expect(proxy.tunnels.length, transport).toBeGreaterThan(before);
          const res = await fetch(`${app.url}/api/v1/proxy/s/proxied-private/x?via=${transport}`, { headers: { 'x-api-key': admin.token } });
          expect(await res.text()).toBe(`private answer to /x?via=${transport}`);
        } finally {
          await agent.stop();
        }
      }
      // Wrong proxy credentials for a running agent: its reconnect lines say so.
      process.env.HTTPS_PROXY = `http://user:wrong@127.0.0.1:${proxy.port}`;
      const refused = startAgent(home, ['--transport', 'ws']);
      try {
        const line = await refused.waitFor(/.*disconnected from hub; reconnecting.*/);
        expect(line).toContain('refused to tunnel');
        expect(line).toContain('HTTP 407');
      } finally {
        await refused.stop();
      }
      // A proxy setting that is not one: said once, at start and at enrollment, not retried forever.
      process.env.HTTPS_PROXY = 'socks5://127.0.0.1:1080';
      for (const transport of ['ws', 'http']) {
        const misconfigured = startAgent(home, ['--transport', transport]);
        expect(await misconfigured.exited(), transport).toBe(3);
        expect(misconfigured.output(), transport).toContain('HTTPS_PROXY: only http:// proxies are supported, got socks5://');
      }
      const badEnroll = await agentCli(tempDir('nexus-agent-proxy-'), ['enroll', '--url', hubUrl, '--token', node.registration_token, '--ca', caFile], { HTTPS_PROXY: 'http://[bad' });
      expect(badEnroll.code).toBe(1);
      expect(badEnroll.stderr).toBe('nexus agent enroll: HTTPS_PROXY "http://[bad" is not a URL (expected http://HOST:PORT)\n');
      process.env.HTTPS_PROXY = viaProxy;
      // NO_PROXY exempts the hub's host: no tunnel.
      const direct = await register('no-proxy-here');
      const before = proxy.tunnels.length;
      const plain = await agentCli(tempDir('nexus-agent-proxy-'), ['enroll', '--url', hubUrl, '--token', direct.registration_token, '--ca', caFile], { HTTPS_PROXY: viaProxy, NO_PROXY: 'localhost, 127.0.0.1' });
      expect(plain.code, plain.stderr).toBe(0);
      expect(proxy.tunnels.length).toBe(before);
    } finally {
      delete process.env.HTTPS_PROXY;
      proxy.server.close();
    }
  });
});
