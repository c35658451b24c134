// The appliance's nginx site (nginx/nexus.conf.template), rendered for test ports with a test
// certificate and run by Debian's real nginx in front of a real `nexus serve`, checked through TLS.
// A second nginx from the same template fronts a small local upstream that streams, so buffering,
// WebSocket upgrade and large uploads are proven independently of which surfaces have landed.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, fetch } from 'undici';
import { WebSocket, WebSocketServer } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSelfSignedCertificate } from '../../src/first-boot/certificate.ts';
import { localAddresses } from '../../src/first-boot/host-addresses.ts';
import { renderNginxSite } from '../../src/first-boot/nginx-site.ts';
import { REPO, startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { freePorts, nginxBinary, nginxConfigTest, nginxPrefix, startNginx, type RunningNginx } from '../helpers/nginx.ts';

const HAVE_NGINX = nginxBinary() !== null;
if (!HAVE_NGINX) console.warn('appliance-nginx: SKIPPED — nginx is not installed (apt-get install nginx; .ci/run installs it)');

// dist/nexus when the single executable has been built, else the source entry point.
const DIST = join(REPO, 'dist/nexus');
const BIN = existsSync(DIST) ? DIST : undefined;

// A non-loopback address of this host, if it has one: a client there is "outside" for the app's
// trust-proxy rule (only loopback hops are trusted), which lets the test prove spoofing fails.
const OUTSIDE_IP = localAddresses().find((a) => !a.includes(':')) ?? null;

const cert = createSelfSignedCertificate(['localhost', '127.0.0.1', ...(OUTSIDE_IP ? [OUTSIDE_IP] : [])]);

interface Edge {
  nginx: RunningNginx;
  httpsPort: number;
  httpPort: number;
  base: string;
}

async function startEdge(upstream: string, extra = ''): Promise<Edge> {
  const dir = tempDir('nexus-edge-');
  const certPath = join(dir, 'test.crt');
  const keyPath = join(dir, 'test.key');
  writeFileSync(certPath, cert.certPem);
  writeFileSync(keyPath, cert.keyPem, { mode: 0o600 });
  const [httpsPort, httpPort] = (await freePorts(2)) as [number, number];
  const site = renderNginxSite({
    addresses: ['127.0.0.1', ...(OUTSIDE_IP ? [OUTSIDE_IP] : [])],
    httpsPort,
    httpPort,
    serverNames: ['localhost'],
    certPath,
    keyPath,
    upstream,
    hsts: false,
    extra,
  });
  const siteFile = join(dir, 'nexus.conf');
  writeFileSync(siteFile, site);
  const prefix = nginxPrefix(siteFile);
  const t = nginxConfigTest(prefix);
  if (t.code !== 0) throw new Error(`nginx -t failed:\n${t.output}`);
  const nginx = await startNginx(prefix, httpsPort);
  return { nginx, httpsPort, httpPort, base: `https://127.0.0.1:${httpsPort}` };
}

// TLS with the test certificate as the only trust anchor: verification stays on.
const tls = new Agent({ connect: { ca: cert.certPem }, keepAliveTimeout: 1000 });
const get = (url: string, init: Parameters<typeof fetch>[1] = {}) => fetch(url, { ...init, dispatcher: tls });

async function errorOf(res: { json(): Promise<unknown> }): Promise<{ code: string; message: string }> {
  return ((await res.json()) as { error: { code: string; message: string } }).error;
}

function isHtml(contentType: string | null, body: string): boolean {
  return /text\/html/i.test(contentType ?? '') || /^\s*<(!doctype|html)/i.test(body);
}

/** Polls (bounded) until `predicate` holds for the appliance output. */
async function waitForOutput(app: Appliance, predicate: (out: string) => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate(app.output())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} in the app log`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface LoggedRequest {
  id: string;
  method: string;
  url: string;
  remote: string;
}
function loggedRequests(app: Appliance): LoggedRequest[] {
  const out: LoggedRequest[] = [];
  for (const line of app.output().split('\n')) {
    if (!line.includes('"msg":"request"')) continue;
    try {
      const rec = JSON.parse(line) as { reqId: string; req: Omit<LoggedRequest, 'id'> };
      out.push({ id: rec.reqId, ...rec.req });
    } catch {
      /* partial line */
    }
  }
  return out;
}

describe.skipIf(!HAVE_NGINX)('nginx in front of nexus serve', () => {
  let app: Appliance;
  let edge: Edge;

  beforeAll(async () => {
    app = await startAppliance(BIN ? { bin: BIN } : {});
    edge = await startEdge(app.url.replace('http://', ''));
  });
  afterAll(async () => {
    await edge?.nginx.stop();
    await app?.stop();
  });

  it('speaks TLS 1.2+ with HTTP/2 on the HTTPS port and redirects plain HTTP there', async () => {
    const alpn = await new Promise<{ protocol: string | false | null; version: string | null }>((res, rej) => {
      const s = tlsConnect({ host: '127.0.0.1', port: edge.httpsPort, ca: cert.certPem, servername: 'localhost', ALPNProtocols: ['h2', 'http/1.1'] }, () => {
        res({ protocol: s.alpnProtocol, version: s.getProtocol() });
        s.end();
      });
      s.once('error', rej);
    });
    expect(alpn.protocol).toBe('h2');
    expect(['TLSv1.2', 'TLSv1.3']).toContain(alpn.version);
    const old = await new Promise<string>((res) => {
      const s = tlsConnect({ host: '127.0.0.1', port: edge.httpsPort, ca: cert.certPem, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }, () => res('connected'));
      s.once('error', (e) => res((e as NodeJS.ErrnoException).code ?? 'error'));
    });
    expect(old).not.toBe('connected');

    const redirect = await fetch(`http://127.0.0.1:${edge.httpPort}/v1/models?x=1`, { redirect: 'manual' });
    expect(redirect.status).toBe(301);
    expect(redirect.headers.get('location')).toBe(`https://127.0.0.1:${edge.httpsPort}/v1/models?x=1`);
    // A self-signed certificate is not a reason for browsers to pin HTTPS: no HSTS yet.
    expect((await get(`${edge.base}/healthz`)).headers.get('strict-transport-security')).toBeNull();
  });

  // Every public row of the route map (DESIGN.md §2): through nginx, the request reaches the app on the
  // same path (seen in the app's own request log under the id we sent) and gets the same answer as
  // asking the app directly. API paths never answer HTML.
  const ROWS: { method: string; path: string; api: boolean; body?: unknown }[] = [
    { method: 'GET', path: '/healthz', api: true },
    { method: 'GET', path: '/ready', api: true },
    { method: 'GET', path: '/v1/models', api: true },
    { method: 'POST', path: '/v1/chat/completions', api: true, body: { model: 'm', messages: [] } },
    { method: 'GET', path: '/v1beta/models', api: true },
    { method: 'POST', path: '/openai/deployments/d1/chat/completions?api-version=2024-10-21', api: true, body: {} },
    { method: 'GET', path: '/openai/v1/models', api: true },
    { method: 'POST', path: '/api/paas/v4/chat/completions', api: true, body: {} },
    { method: 'GET', path: '/api/v1/setup/status', api: true },
    { method: 'POST', path: '/api/internal/things/enroll', api: true, body: {} },
    { method: 'GET', path: '/ws', api: true },
    { method: 'GET', path: '/api/v1/proxy/s/no-such-service/anything', api: true },
    { method: 'GET', path: '/scim/v2/Users', api: true },
    { method: 'GET', path: '/.well-known/openid-configuration', api: true },
    { method: 'GET', path: '/setup', api: false },
    { method: 'GET', path: '/', api: false },
  ];

  it('routes every row of the route map to the app with the path preserved', async () => {
    const run = Math.random().toString(36).slice(2, 8);
    for (const [i, row] of ROWS.entries()) {
      const id = `rm-${run}-${i}`;
      const init = {
        method: row.method,
        headers: { 'x-request-id': id, ...(row.body ? { 'content-type': 'application/json' } : {}) },
        ...(row.body ? { body: JSON.stringify(row.body) } : {}),
      };
      const viaEdge = await get(`${edge.base}${row.path}`, init);
      const edgeBody = await viaEdge.text();
      const direct = await fetch(`${app.url}${row.path}`, { ...init, headers: { ...init.headers, 'x-request-id': `${id}-direct` } });
      const directBody = await direct.text();
      expect({ path: row.path, status: viaEdge.status }).toEqual({ path: row.path, status: direct.status });
      expect(viaEdge.headers.get('content-type'), row.path).toBe(direct.headers.get('content-type'));
      if (row.api) {
        expect(isHtml(viaEdge.headers.get('content-type'), edgeBody), `${row.path} answered HTML`).toBe(false);
        expect(viaEdge.headers.get('content-type'), row.path).toMatch(/^application\/(scim\+)?json/);
        JSON.parse(edgeBody);
      }
      if (viaEdge.status === 200 && row.api) expect(edgeBody).toBe(directBody);
      await waitForOutput(app, () => loggedRequests(app).some((r) => r.id === id), `request ${id} (${row.path})`);
      const logged = loggedRequests(app).find((r) => r.id === id)!;
      expect(logged).toMatchObject({ method: row.method, url: row.path });
    }
    const health = await get(`${edge.base}/healthz`);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await get(`${edge.base}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
  });

  it('GET /v1/models never answers HTML, whatever the Accept header asks for', async () => {
    for (const accept of ['text/html', '*/*', 'application/json']) {
      const res = await get(`${edge.base}/v1/models`, { headers: { accept } });
      const body = await res.text();
      expect(isHtml(res.headers.get('content-type'), body)).toBe(false);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    }
  });

  it('refuses the admin paths at the edge; they answer only on the loopback admin listener', async () => {
    const run = Math.random().toString(36).slice(2, 8);
    const refused = ['/api/hub/agents', '/api/hub/nodes', '/api/hub', '/api/hub/', '/metrics', '/metrics/', '/v1/../metrics', '/api/v1/../hub/nodes', '/%6detrics'];
    for (const [i, path] of refused.entries()) {
      const res = await get(`${edge.base}${path}`, { headers: { 'x-request-id': `adm-${run}-${i}` } });
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      const body = await res.text();
      expect(body).not.toMatch(/# HELP|# TYPE/);
      expect(JSON.parse(body).error.code).toBe('not_found');
    }
    // A request sent after the refused ones reaches the app; none of the refused ones did.
    await get(`${edge.base}/healthz`, { headers: { 'x-request-id': `adm-${run}-sentinel` } });
    await waitForOutput(app, () => loggedRequests(app).some((r) => r.id === `adm-${run}-sentinel`), 'the sentinel request');
    expect(loggedRequests(app).filter((r) => r.id.startsWith(`adm-${run}-`)).map((r) => r.id)).toEqual([`adm-${run}-sentinel`]);

    const metrics = await fetch(`${app.adminUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('# TYPE');
    const agents = await fetch(`${app.adminUrl}/api/hub/agents`);
    expect(agents.status).toBe(200);
    expect(agents.headers.get('content-type')).toMatch(/^application\/json/);
    // The public listener does not serve them either: the edge rule is defence in depth.
    expect((await fetch(`${app.url}/metrics`)).status).toBe(404);
    expect((await fetch(`${app.url}/api/hub/agents`)).status).toBe(404);
  });

  it('forwards scheme, host and client address, which the app trusts only from loopback', async () => {
    if (!app.setupToken) throw new Error('expected a fresh appliance with a setup token');
    const setup = await get(`${edge.base}/api/v1/setup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ setup_token: app.setupToken, username: 'admin', password: 'correct-horse-battery' }),
    });
    expect(setup.status).toBe(201);
    const login = (base: string, dispatcher?: Agent) =>
      fetch(`${base}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'admin', password: 'correct-horse-battery' }),
        ...(dispatcher ? { dispatcher } : {}),
      });
    // The session cookie is Secure because the app learnt from nginx that the caller used HTTPS...
    const viaEdge = await login(edge.base, tls);
    expect(viaEdge.status).toBe(200);
    expect(viaEdge.headers.getSetCookie().join('\n')).toMatch(/;\s*Secure/i);
    // ...and not when the same app is asked over plain HTTP directly.
    const direct = await login(app.url);
    expect(direct.status).toBe(200);
    expect(direct.headers.getSetCookie().join('\n')).not.toMatch(/;\s*Secure/i);

    if (!OUTSIDE_IP) {
      console.warn('appliance-nginx: no non-loopback address on this host; X-Forwarded-For spoofing check skipped');
      return;
    }
    // A client that is not on loopback cannot choose its address with a forged X-Forwarded-For:
    // nginx appends the real peer and the app stops at the first untrusted hop.
    const outside = new Agent({ connect: { ca: cert.certPem, servername: 'localhost' } });
    const id = `xff-${Math.random().toString(36).slice(2, 8)}`;
    const res = await fetch(`https://${OUTSIDE_IP}:${edge.httpsPort}/healthz`, {
      headers: { 'x-forwarded-for': '203.0.113.9', 'x-request-id': id },
      dispatcher: outside,
    });
    expect(res.status).toBe(200);
    await waitForOutput(app, () => loggedRequests(app).some((r) => r.id === id), 'the forwarded request');
    expect(loggedRequests(app).find((r) => r.id === id)!.remote).toBe(OUTSIDE_IP);
    await outside.close();
  });

  it('refuses an oversized body at the edge with a JSON 413, and the app with its own JSON 413', async () => {
    const status = await new Promise<{ status: number; type: string; body: string }>((res, rej) => {
      const req = httpsRequest(`${edge.base}/api/v1/tokens`, {
        method: 'POST',
        ca: cert.certPem,
        headers: { 'content-type': 'application/json', 'content-length': String(200 * 1024 * 1024) },
      });
      req.on('response', (r) => {
        let body = '';
        r.on('data', (d) => (body += d));
        r.on('end', () => res({ status: r.statusCode!, type: String(r.headers['content-type']), body }));
      });
      req.on('error', rej);
      req.flushHeaders();
    });
    expect(status.status).toBe(413);
    expect(status.type).toMatch(/^application\/json/);
    expect(JSON.parse(status.body).error.code).toBe('payload_too_large');
    // Just above the app's limit: refused at the edge in the app's own shape (the app would hang up).
    const big = await get(`${edge.base}/api/v1/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x'.repeat(10 * 1024 * 1024) }),
    });
    expect(big.status).toBe(413);
    expect((await errorOf(big)).code).toBe('payload_too_large');
    // Below it: the body reaches the app, which judges it (a 5 MB token name is not valid input).
    const id = `body-${Math.random().toString(36).slice(2, 8)}`;
    const large = await get(`${edge.base}/api/v1/setup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': id },
      body: JSON.stringify({ setup_token: 'x'.repeat(5 * 1024 * 1024), username: 'a', password: 'b' }),
    });
    expect([400, 401, 409]).toContain(large.status);
    expect(large.headers.get('content-type')).toMatch(/^application\/json/);
    await waitForOutput(app, () => loggedRequests(app).some((r) => r.id === id), 'the large request');
  });
});

// ---- A streaming upstream behind the same template: buffering, upgrade, uploads, upstream down ----

interface Streamer {
  server: Server;
  address: string;
  /** Resolvers the client calls after it has seen event n, so the upstream sends n+1 only then. */
  seen: Map<string, (n: number) => void>;
  /** Bytes received so far per upload id, and waiters for thresholds. */
  uploads: Map<string, { bytes: number; waiters: { at: number; resolve: () => void }[] }>;
  headers: Map<string, IncomingMessage['headers']>;
}

function startStreamer(): Promise<Streamer> {
  const s: Streamer = { server: undefined as unknown as Server, address: '', seen: new Map(), uploads: new Map(), headers: new Map() };
  s.server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://upstream');
    const id = req.headers['x-test-id'] as string;
    s.headers.set(id, req.headers);
    if (url.searchParams.has('sse')) {
      // Sends event n+1 only after the client reports it has event n: if anything between buffered,
      // the client would never see event 1 and the bounded wait fails.
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      let n = 0;
      const next = () => {
        n += 1;
        if (n > 3) {
          res.end('data: [DONE]\n\n');
          return;
        }
        res.write(`data: {"n":${n}}\n\n`);
      };
      s.seen.set(id, (k) => {
        if (k === n) next();
      });
      next();
      return;
    }
    if (url.searchParams.has('upload')) {
      const hash = createHash('sha256');
      const entry = { bytes: 0, waiters: [] as { at: number; resolve: () => void }[] };
      s.uploads.set(id, entry);
      req.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        entry.bytes += chunk.length;
        entry.waiters = entry.waiters.filter((w) => (entry.bytes >= w.at ? (w.resolve(), false) : true));
      });
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ bytes: entry.bytes, sha256: hash.digest('hex') }));
      });
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ path: req.url }));
  });
  const wss = new WebSocketServer({ noServer: true });
  s.server.on('upgrade', (req, socket, head) => {
    const path = new URL(req.url!, 'http://upstream').pathname;
    if (path !== '/ws' && !path.startsWith('/api/v1/proxy/')) return socket.destroy();
    s.headers.set(path === '/ws' ? 'ws' : 'ws-proxy', req.headers);
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (m, binary) => ws.send(m, { binary })));
  });
  return new Promise((res) => s.server.listen(0, '127.0.0.1', () => {
    s.address = `127.0.0.1:${(s.server.address() as { port: number }).port}`;
    res(s);
  }));
}

async function readEventByEvent(s: Streamer, res: Awaited<ReturnType<typeof fetch>>, id: string): Promise<string[]> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const events: string[] = [];
  let buf = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const event = buf.slice(0, i);
      buf = buf.slice(i + 2);
      events.push(event);
      s.seen.get(id)!(events.length); // only now may the upstream send the next one
    }
  }
  return events;
}

describe.skipIf(!HAVE_NGINX)('nginx streaming behaviour (local streaming upstream)', () => {
  let s: Streamer;
  let edge: Edge;

  beforeAll(async () => {
    s = await startStreamer();
    edge = await startEdge(s.address);
  });
  afterAll(async () => {
    await edge?.nginx.stop();
    s?.server.closeAllConnections();
    await new Promise((r) => s?.server.close(r));
  });

  // Each SSE event must reach the client before the upstream sends the next one; bounded by the
  // test timeout. Accept-Encoding: gzip would make a compressing proxy hold events back.
  for (const path of ['/v1/chat/completions', '/v1beta/models/m:streamGenerateContent', '/openai/deployments/d/chat/completions', '/api/paas/v4/chat/completions', '/api/v1/audit/export']) {
    it(`streams SSE event by event on ${path}`, async () => {
      const id = `sse-${path}`;
      const res = await get(`${edge.base}${path}?sse=1`, { method: 'POST', headers: { 'x-test-id': id, 'accept-encoding': 'gzip', 'content-type': 'application/json' }, body: '{}' });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/event-stream');
      expect(res.headers.get('content-encoding')).toBeNull();
      const events = await readEventByEvent(s, res, id);
      expect(events).toEqual(['data: {"n":1}', 'data: {"n":2}', 'data: {"n":3}', 'data: [DONE]']);
      expect(s.headers.get(id)!['connection']).not.toBe('close'); // HTTP/1.1 keep-alive upstream
    }, 30_000);
  }

  it('streams SSE event by event over HTTP/2 too (browsers and h2 clients)', async () => {
    const id = 'sse-h2';
    const session = http2Connect(edge.base, { ca: cert.certPem });
    try {
      const req = session.request({ ':method': 'POST', ':path': '/v1/chat/completions?sse=1', 'x-test-id': id, 'accept-encoding': 'gzip', 'content-type': 'application/json' });
      req.end('{}');
      const headers = await new Promise<Record<string, unknown>>((res, rej) => {
        req.once('response', res);
        req.once('error', rej);
      });
      expect(headers[':status']).toBe(200);
      expect(headers['content-encoding']).toBeUndefined();
      const events: string[] = [];
      let buf = '';
      await new Promise<void>((res, rej) => {
        req.setEncoding('utf8');
        req.on('data', (chunk: string) => {
          buf += chunk;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            events.push(buf.slice(0, i));
            buf = buf.slice(i + 2);
            s.seen.get(id)!(events.length);
          }
        });
        req.once('end', res);
        req.once('error', rej);
      });
      expect(events).toEqual(['data: {"n":1}', 'data: {"n":2}', 'data: {"n":3}', 'data: [DONE]']);
    } finally {
      session.close();
    }
  }, 30_000);

  // The gateway and the service proxy pass request bodies through as they arrive (no spooling):
  // the client sends the second half only after the upstream has received the first half.
  for (const path of ['/api/v1/proxy/s/svc/upload', '/v1/files', '/api/paas/v4/files']) {
    it(`streams the request body on ${path}`, async () => {
      const id = `stream-up-${path}`;
      const half = Buffer.alloc(256 * 1024, 7);
      async function* body() {
        yield half;
        const upload = await waitFor(() => s.uploads.get(id), 'the upload to start');
        await new Promise<void>((resolve) => {
          if (upload.bytes >= half.length) return resolve();
          upload.waiters.push({ at: half.length, resolve });
        });
        yield half; // only once the upstream holds the first half
      }
      const res = await get(`${edge.base}${path}?upload=1`, { method: 'POST', headers: { 'x-test-id': id, 'content-type': 'application/octet-stream' }, body: body(), duplex: 'half' });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { bytes: number }).bytes).toBe(2 * half.length);
    }, 30_000);
  }

  it('lets a large upload (above the general 64 MB limit) through the service proxy intact', async () => {
    const id = 'big-upload';
    const chunk = Buffer.alloc(1024 * 1024);
    const total = 96;
    const hash = createHash('sha256');
    async function* body() {
      for (let i = 0; i < total; i++) {
        const copy = Buffer.from(chunk);
        copy.writeUInt32BE(i, 0);
        hash.update(copy);
        yield copy;
      }
    }
    const res = await get(`${edge.base}/api/v1/proxy/s/files/upload?upload=1`, { method: 'POST', headers: { 'x-test-id': id, 'content-type': 'application/octet-stream' }, body: body(), duplex: 'half' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ bytes: total * chunk.length, sha256: hash.digest('hex') });
    // The same body anywhere else is refused at the edge, in JSON.
    const elsewhere = await get(`${edge.base}/api/v1/other?upload=1`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'x-test-id': 'big-elsewhere' }, body: Buffer.alloc(65 * 1024 * 1024) });
    expect(elsewhere.status).toBe(413);
    expect((await errorOf(elsewhere)).code).toBe('payload_too_large');
  }, 60_000);

  it('upgrades /ws to a WebSocket with forwarded headers, and only /ws', async () => {
    const ws = new WebSocket(`wss://127.0.0.1:${edge.httpsPort}/ws`, { ca: cert.certPem });
    await new Promise<void>((res, rej) => {
      ws.once('open', () => res());
      ws.once('error', rej);
    });
    const echoed = new Promise<string>((res) => ws.once('message', (m) => res(String(m))));
    ws.send('hello over nginx');
    expect(await echoed).toBe('hello over nginx');
    ws.close();
    const h = s.headers.get('ws')!;
    expect(h['x-forwarded-proto']).toBe('https');
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h['upgrade']).toBe('websocket');
    expect(h['x-request-id']).toMatch(/^[A-Za-z0-9._-]+$/);

    // Services behind the service proxy may speak WebSocket too.
    const svc = new WebSocket(`wss://127.0.0.1:${edge.httpsPort}/api/v1/proxy/s/chat/socket`, { ca: cert.certPem });
    await new Promise<void>((res, rej) => {
      svc.once('open', () => res());
      svc.once('error', rej);
    });
    const echoedSvc = new Promise<string>((res) => svc.once('message', (m) => res(String(m))));
    svc.send('hello service');
    expect(await echoedSvc).toBe('hello service');
    svc.close();
    expect(s.headers.get('ws-proxy')!['x-forwarded-proto']).toBe('https');

    // Elsewhere, nginx never passes the upgrade on (the app sees a plain request).
    const other = new WebSocket(`wss://127.0.0.1:${edge.httpsPort}/api/v1/ws`, { ca: cert.certPem });
    const outcome = await new Promise<string>((res) => {
      other.once('open', () => res('open'));
      other.once('unexpected-response', (_req, r) => res(`status ${r.statusCode}`));
      other.once('error', (e) => res(`error ${e.message}`));
    });
    other.terminate();
    expect(outcome).toBe('status 200');
  });

  it('answers JSON, not an HTML error page, when the app is down', async () => {
    s.server.closeAllConnections();
    await new Promise((r) => s.server.close(r));
    for (const path of ['/v1/models', '/api/v1/me', '/']) {
      const res = await get(`${edge.base}${path}`);
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect((await errorOf(res)).code).toBe('unavailable');
    }
  });
});

async function waitFor<T>(fn: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
