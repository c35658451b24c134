// IMDSv2 discovery against real local HTTP servers that misbehave in the ways a network service can.
import { createServer, type RequestListener, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { discoverHostAddresses, readImds } from './host-addresses.ts';

const servers: Server[] = [];
function serve(handler: RequestListener): Promise<string> {
  const s = createServer(handler);
  servers.push(s);
  return new Promise((res) => s.listen(0, '127.0.0.1', () => res(`http://127.0.0.1:${(s.address() as { port: number }).port}`)));
}
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

describe('readImds', () => {
  it('ignores values that are not an IP or a host name, and oversized ones', async () => {
    const url = await serve((req, res) => {
      if (req.method === 'PUT') return res.end('token');
      const values: Record<string, string> = {
        '/latest/meta-data/public-ipv4': '<html>captive portal</html>',
        '/latest/meta-data/public-hostname': 'a'.repeat(100_000),
        '/latest/meta-data/local-ipv4': '10.1.2.3',
        '/latest/meta-data/local-hostname': 'bad name; rm -rf',
      };
      res.end(values[req.url!] ?? '');
    });
    expect(await readImds(url)).toEqual({ publicIp: null, publicHostname: null, localIp: '10.1.2.3', localHostname: null });
  });

  it('never falls back to IMDSv1 when the token is refused', async () => {
    const seen: string[] = [];
    const url = await serve((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.method === 'PUT') return res.writeHead(403).end();
      res.end('198.51.100.1');
    });
    expect(await readImds(url)).toBeNull();
    expect(seen).toEqual(['PUT /latest/api/token']);
    const d = await discoverHostAddresses({ metadataUrl: url });
    expect(d.source).toBe('local');
    expect(d.names).not.toContain('198.51.100.1');
    expect(d.names).toEqual(expect.arrayContaining(['localhost', '127.0.0.1']));
  });

  it('gives up within its timeout when the service never answers, and refuses redirects', async () => {
    const silent = await serve(() => { /* never answers */ });
    expect(await readImds(silent, 200)).toBeNull();
    const redirecting = await serve((_req, res) => res.writeHead(307, { location: 'http://example.com/' }).end());
    expect(await readImds(redirecting, 500)).toBeNull();
    const badToken = await serve((req, res) => res.end(req.method === 'PUT' ? 'tok\r\nX-Evil: 1' : '1.2.3.4'));
    expect(await readImds(badToken, 500)).toBeNull();
  });

  it('prefers the public IP, then the public name, and keeps loopback names', async () => {
    const url = await serve((req, res) => {
      if (req.method === 'PUT') return res.end('t');
      if (req.headers['x-aws-ec2-metadata-token'] !== 't') return res.writeHead(401).end();
      const v: Record<string, string> = { '/latest/meta-data/public-ipv4': '203.0.113.5', '/latest/meta-data/public-hostname': 'host.example.com' };
      if (!v[req.url!]) return res.writeHead(404).end();
      res.end(v[req.url!]);
    });
    const d = await discoverHostAddresses({ metadataUrl: url });
    expect(d.source).toBe('imds');
    expect(d.names.slice(0, 2)).toEqual(['203.0.113.5', 'host.example.com']);
    expect(d.names).toEqual(expect.arrayContaining(['localhost', '127.0.0.1', '::1']));
  });
});
