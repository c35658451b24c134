// Retries on another node, with real processes: the appliance, two agents started through the CLI
// entry point (node A at priority 0, node B at 1), each injecting its own token, and one local service
// that tells the two apart by that token. Its listener sits behind a TCP server of its own, so the
// test can make new connections be refused (ECONNREFUSED) while a connection an agent already holds
// stays usable: that is how node A's service "refuses" while node B's answers.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { startAppliance, scrapeMetrics, tempDir, type Appliance } from '../helpers/appliance.ts';
import { authed, json, setupAdmin, type Admin } from '../helpers/api.ts';
import { agentCli, startAgent, type AgentProcess } from '../helpers/agent.ts';
import { until } from '../helpers/until.ts';
import { authProof } from '../../src/protocol/signing.ts';

const TOKENS = { a: 'token-held-by-node-a', b: 'token-held-by-node-b' };
const KIB = 1024;

let app: Appliance;
let admin: Admin;
const home = tempDir('nexus-agent-retry-');
const agents: Record<'a' | 'b', AgentProcess | null> = { a: null, b: null };
const nodes = { a: '', b: '' };

// ---- the local service ----
interface Seen { node: 'a' | 'b' | '?'; method: string; path: string; bytes: number; sha: string }
const seen: Seen[] = [];
const sockets = new Map<Socket, 'a' | 'b' | '?'>();
const wsCloses: Array<{ code: number; reason: string }> = [];
let front: TcpServer;
let port = 0;
const held: Array<() => void> = [];
const nodeOf = (req: IncomingMessage) => (req.headers.authorization === `Bearer ${TOKENS.a}` ? 'a' : req.headers.authorization === `Bearer ${TOKENS.b}` ? 'b' : '?');

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function handle(req: IncomingMessage, res: ServerResponse) {
  const node = nodeOf(req);
  sockets.set(req.socket, node);
  const path = req.url!;
  // Node A: fails after the request reached it, without answering.
  if (node === 'a' && path.startsWith('/eat')) {
    await readAll(req);
    seen.push({ node, method: req.method!, path, bytes: 0, sha: '' });
    return req.socket.destroy();
  }
  // Node A: keeps the request without answering (the test kills its agent meanwhile).
  if (node === 'a' && path.startsWith('/hang')) {
    seen.push({ node, method: req.method!, path, bytes: 0, sha: '' });
    held.push(() => req.socket.destroy());
    return;
  }
  // Node A: starts the answer, then fails.
  if (node === 'a' && path.startsWith('/cut')) {
    seen.push({ node, method: req.method!, path, bytes: 0, sha: '' });
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.write(Buffer.alloc(1000, 7));
    setTimeout(() => req.socket.destroy(), 100);
    return;
  }
  const body = await readAll(req);
  const sha = createHash('sha256').update(body).digest('hex');
  seen.push({ node, method: req.method!, path, bytes: body.length, sha });
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ node, bytes: body.length, sha }));
}

const service = createServer((req, res) => void handle(req, res));
service.keepAliveTimeout = 120_000;
const wss = new WebSocketServer({ noServer: true });
service.on('upgrade', (req, socket, head) => {
  sockets.set(req.socket, nodeOf(req));
  seen.push({ node: nodeOf(req), method: 'UPGRADE', path: req.url!, bytes: 0, sha: '' });
  // Node A: the handshake is never answered (the test kills its agent meanwhile).
  if (nodeOf(req) === 'a' && req.url === '/ws-hang') return void held.push(() => socket.destroy());
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on('close', (code, reason) => wsCloses.push({ code, reason: reason.toString() }));
    if (req.url === '/ws-bye' || req.url === '/ws-hang') {
      ws.send(`hi from ${nodeOf(req)}`);
      setTimeout(() => ws.close(4001, 'bye'), 50);
    }
  });
});

/** Accepts connections on `port` (the same one each time) and hands them to the HTTP service. */
async function listen(): Promise<void> {
  front = createTcpServer((sock) => {
    sockets.set(sock, '?');
    sock.once('close', () => sockets.delete(sock));
    service.emit('connection', sock);
  });
  await new Promise<void>((r) => front.listen(port, '127.0.0.1', r));
  port = (front.address() as AddressInfo).port;
}

/** New connections are refused from now on; those of `keep` stay open. */
async function refuse(keep: Array<'a' | 'b'>) {
  front.close();
  for (const [s, node] of sockets) if (!keep.includes(node as 'a' | 'b')) s.destroy();
  await until('connections dropped', async () => [...sockets.values()].every((n) => keep.includes(n as 'a' | 'b')), 5_000, 20);
  // The agents see their pooled connections close a moment later.
  await new Promise((r) => setTimeout(r, 200));
}

// ---- helpers ----
const api = (path: string, init: RequestInit = {}) => fetch(`${app.url}${path}`, authed(admin.token, init));
const proxy = (slug: string, path: string, init: RequestInit = {}) =>
  fetch(`${app.url}/api/v1/proxy/s/${slug}${path}`, { ...init, headers: { 'x-api-key': admin.token, ...(init.headers as Record<string, string> | undefined) } });
const auditRow = (path: string, status: number) =>
  until(`audit row of ${path}`, async () => (await json(await api('/api/v1/audit?action=proxy.request&limit=1000'))).items.find(
    (i: { status: number; details: { path: string } }) => i.status === status && i.details.path === path,
  ), 5_000);
const retries = async (reason: string) => (await scrapeMetrics(app)).get(`nexus_hub_proxy_retries_total{reason="${reason}"}`) ?? 0;
const seenAt = (path: string) => seen.filter((s) => s.path === path);

async function startNode(name: 'a' | 'b'): Promise<void> {
  const agent = startAgent(home, ['--profile', name]);
  agents[name] = agent;
  await agent.waitFor(/Connected to hub/);
  await until(`node ${name} online`, async () => (await json(await api(`/api/v1/nodes/${nodes[name]}`))).status === 'online', 10_000);
}

async function enrollNode(name: 'a' | 'b'): Promise<void> {
  const reg = await json(await api('/api/v1/nodes', { method: 'POST', body: JSON.stringify({ name: `node-${name}` }) }));
  nodes[name] = reg.id;
  const p = ['--profile', name];
  const en = await agentCli(home, ['enroll', ...p, '--url', `${app.url.replace('http', 'ws')}/ws`, '--token', reg.registration_token]);
  expect(en.code, en.stderr).toBe(0);
  for (const slug of ['dual', 'warm']) {
    const add = await agentCli(home, ['credentials', 'add', ...p, '--service', slug, '--url', `http://127.0.0.1:${port}`, '--secret-format', 'bearer', '--secret-env', 'T'], { T: TOKENS[name] });
    expect(add.code, add.stderr).toBe(0);
  }
  await startNode(name);
}

beforeAll(async () => {
  await listen();
  const cfg = join(tempDir('nexus-retry-cfg-'), 'nexus.yaml');
  writeFileSync(cfg, 'hub:\n  heartbeatSeconds: 1\n  offlineAfterSeconds: 4\nproxy:\n  allowPrivateTargets: true\n');
  app = await startAppliance({ args: ['--config', cfg] });
  admin = await setupAdmin(app);
  await Promise.all([enrollNode('a'), enrollNode('b')]);
  const endpoint = `http://127.0.0.1:${port}`;
  const dual = await api('/api/v1/keys', { method: 'POST', body: JSON.stringify({ slug: 'dual', endpoint_url: endpoint, auth_method: 'bearer', nodes: [{ node_id: nodes.a, priority: 0 }, { node_id: nodes.b, priority: 1 }] }) });
  expect(dual.status).toBe(201);
  // The same service through node B alone: a request here leaves B holding a connection to it.
  const warm = await api('/api/v1/keys', { method: 'POST', body: JSON.stringify({ slug: 'warm', endpoint_url: endpoint, auth_method: 'bearer', nodes: [{ node_id: nodes.b, priority: 0 }] }) });
  expect(warm.status).toBe(201);
});

afterAll(async () => {
  for (const release of held) release();
  await Promise.all(Object.values(agents).map((a) => a?.stop()));
  await app?.stop();
  for (const s of sockets.keys()) s.destroy();
  front?.close();
  service.close();
});

describe('a node that fails before answering', () => {
  it('kill -9 of node A while a GET and a WebSocket handshake wait for its answer: both are served by node B', async () => {
    const before = await retries('node_disconnected');
    const pending = proxy('dual', '/hang-get');
    const ws = new WebSocket(`${app.url.replace('http', 'ws')}/api/v1/proxy/s/dual/ws-hang`, { headers: { 'x-api-key': admin.token } });
    const first = new Promise<string>((res, rej) => { ws.once('message', (d) => res(String(d))); ws.once('error', rej); });
    await until('node A has both', async () => seenAt('/hang-get').length === 1 && seenAt('/ws-hang').length === 1, 10_000, 20);
    agents.a!.proc.kill('SIGKILL');
    expect(await first).toBe('hi from b');
    expect(seenAt('/ws-hang').map((s) => s.node)).toEqual(['a', 'b']);
    const res = await pending;
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ node: 'b' });
    expect(seenAt('/hang-get').map((s) => s.node)).toEqual(['a', 'b']);
    const row = await auditRow('/hang-get', 200);
    expect(row).toMatchObject({ routed_via: 'node', node_id: nodes.b, outcome: 'success', details: { tries: [{ node_id: nodes.a, error: 'node_disconnected' }, { node_id: nodes.b }] } });
    await new Promise((r) => ws.once('close', r));
    expect((await auditRow('/ws-hang', 101)).details.tries).toEqual([{ node_id: nodes.a, error: 'node_disconnected' }, { node_id: nodes.b }]);
    expect(await retries('node_disconnected')).toBe(before + 2);
    for (const release of held.splice(0)) release();
    await startNode('a');
  });

  it('a GET whose answer had started is not retried: the caller sees the stream cut', async () => {
    const res = await proxy('dual', '/cut-get');
    expect(res.status).toBe(200);
    await expect(res.arrayBuffer()).rejects.toThrow();
    expect(seenAt('/cut-get').map((s) => s.node)).toEqual(['a']);
    const row = await auditRow('/cut-get', 200);
    expect(row).toMatchObject({ node_id: nodes.a, outcome: 'failure', details: { aborted: true } });
    expect(row.details.tries).toBeUndefined();
  });

  it('a 1 MiB POST that node A took and then failed on is not retried: a clean 502 bad_gateway', async () => {
    const body = Buffer.alloc(1024 * KIB, 3);
    const res = await proxy('dual', '/eat-big', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
    expect(res.status).toBe(502);
    expect((await json(res)).error).toMatchObject({ code: 'bad_gateway', message: 'the node could not reach the service' });
    expect(seenAt('/eat-big').map((s) => s.node)).toEqual(['a']);
    expect(await auditRow('/eat-big', 502)).toMatchObject({ node_id: nodes.a, outcome: 'failure' });
  });

  it('a small POST node A may have received is not retried either; a small PUT (idempotent) is', async () => {
    const body = Buffer.alloc(4 * KIB, 5);
    const post = await proxy('dual', '/eat-post', { method: 'POST', body });
    expect(post.status).toBe(502);
    expect(seenAt('/eat-post').map((s) => s.node)).toEqual(['a']);

    const put = await proxy('dual', '/eat-put', { method: 'PUT', body });
    expect(put.status).toBe(200);
    expect(await json(put)).toMatchObject({ node: 'b', bytes: body.length, sha: createHash('sha256').update(body).digest('hex') });
    expect(seenAt('/eat-put').map((s) => s.node)).toEqual(['a', 'b']);
    expect((await auditRow('/eat-put', 200)).details.tries).toEqual([{ node_id: nodes.a, error: 'service_failed' }, { node_id: nodes.b }]);
  });
});

describe("node A's service refuses connections, node B's answers", () => {
  beforeAll(async () => {
    // Node B holds a connection to the service; then the listener closes.
    expect((await proxy('warm', '/warm')).status).toBe(200);
    await refuse(['b']);
  });

  it('retries a GET, a small POST and a small chunked POST on node B, bodies intact', async () => {
    const before = await retries('connect_failed');
    const get = await proxy('dual', '/refused-get');
    expect(get.status).toBe(200);
    expect(await json(get)).toMatchObject({ node: 'b' });

    // Within the replay bound: kept while it streamed to node A, sent again to node B.
    const body = Buffer.alloc(600 * KIB);
    for (let i = 0; i < body.length; i++) body[i] = i % 251;
    const sha = createHash('sha256').update(body).digest('hex');
    const post = await proxy('dual', '/refused-post', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
    expect(post.status).toBe(200);
    expect(await json(post)).toMatchObject({ node: 'b', bytes: body.length, sha });

    // No length declared: kept as it arrives while it stays within the bound.
    const chunked = await proxy('dual', '/refused-chunked', {
      method: 'POST',
      body: new ReadableStream({ start(c) { c.enqueue(body.subarray(0, 1000)); c.enqueue(body.subarray(1000)); c.close(); } }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(200);
    expect(await json(chunked)).toMatchObject({ node: 'b', bytes: body.length, sha });

    for (const path of ['/refused-get', '/refused-post', '/refused-chunked']) {
      expect(seenAt(path).map((s) => s.node), path).toEqual(['b']);
      expect((await auditRow(path, 200)).details.tries, path).toEqual([{ node_id: nodes.a, error: 'connect_failed' }, { node_id: nodes.b }]);
    }
    expect(await retries('connect_failed')).toBe(before + 3);
  });

  it('a POST larger than the replay bound (hub.retryBodyMaxBytes, 1 MiB) is not retried: 502 even though node A never reached the service', async () => {
    const res = await proxy('dual', '/refused-big', { method: 'POST', body: Buffer.alloc(1024 * KIB + 1, 1) });
    expect(res.status).toBe(502);
    expect((await json(res)).error.code).toBe('bad_gateway');
    expect(seenAt('/refused-big')).toEqual([]);
  });

  it('all nodes failing: one clean 502 per request, at once, with at most one retry each even in a burst', async () => {
    await refuse([]);
    const before = await retries('connect_failed');
    const refusedBefore = (await scrapeMetrics(app)).get('nexus_hub_proxy_retries_refused_total{reason="budget"}') ?? 0;
    const t0 = Date.now();
    const res = await proxy('dual', '/all-down');
    expect(res.status).toBe(502);
    expect((await json(res)).error).toMatchObject({ code: 'bad_gateway' });
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect((await auditRow('/all-down', 502))).toMatchObject({ node_id: nodes.b, details: { tries: [{ node_id: nodes.a, error: 'connect_failed' }, { node_id: nodes.b, error: 'connect_failed' }] } });

    const burst = await Promise.all(Array.from({ length: 40 }, () => proxy('dual', '/all-down-burst', { method: 'POST', body: 'x' })));
    expect(burst.map((r) => r.status)).toEqual(Array(40).fill(502));
    expect(Date.now() - t0).toBeLessThan(10_000);
    // Each request of the burst either retried once or was refused its retry by the hub-wide budget
    // (hub-retry-budget.test.ts), which never lets fewer than 3 run at once.
    const retried = (await retries('connect_failed')) - before - 1;
    const refused = ((await scrapeMetrics(app)).get('nexus_hub_proxy_retries_refused_total{reason="budget"}') ?? 0) - refusedBefore;
    expect(retried).toBeGreaterThanOrEqual(3);
    expect(retried + refused).toBe(40);
    expect(seenAt('/all-down')).toEqual([]);
    expect(seenAt('/all-down-burst')).toEqual([]);
    await listen();
  });
});

describe('WebSocket close codes through a node', () => {
  it("gives the caller the service's close code and reason, and the service the caller's", async () => {
    const url = `${app.url.replace('http', 'ws')}/api/v1/proxy/s/dual/ws-bye`;
    const ws = new WebSocket(url, { headers: { 'x-api-key': admin.token } });
    const messages: string[] = [];
    ws.on('message', (d) => messages.push(String(d)));
    const closed = await new Promise<{ code: number; reason: string }>((res, rej) => {
      ws.once('close', (code, reason) => res({ code, reason: reason.toString() }));
      ws.once('error', rej);
    });
    expect(messages).toEqual(['hi from a']);
    expect(closed).toEqual({ code: 4001, reason: 'bye' });

    const caller = new WebSocket(`${app.url.replace('http', 'ws')}/api/v1/proxy/s/dual/ws-quiet`, { headers: { 'x-api-key': admin.token } });
    await new Promise((res, rej) => { caller.once('open', res); caller.once('error', rej); });
    const n = wsCloses.length;
    caller.close(4002, 'caller leaves');
    await until('the service saw the close', async () => wsCloses.length > n, 5_000, 20);
    expect(wsCloses.at(-1)).toEqual({ code: 4002, reason: 'caller leaves' });
  });
});

describe('an agent of an older build (no features announced)', () => {
  it('still relays WebSockets: an ended stream closes with 1000, and it is sent no close record', async () => {
    // A hand-written nexus.v1 agent that announces nothing, as agents before `ws_close` did.
    const reg = await json(await api('/api/v1/nodes', { method: 'POST', body: JSON.stringify({ name: 'old-agent' }) }));
    const creds = await json(await fetch(`${app.url}/api/internal/things/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ registration_token: reg.registration_token }) }));
    const old = new WebSocket(`${app.url.replace('http', 'ws')}/ws`, 'nexus.v1');
    const received: Buffer[] = [];
    const hello: { authOk?: { features?: unknown } } = {};
    let sid = '';
    const frame = (type: number, payload = Buffer.alloc(0)) => Buffer.concat([Buffer.from([type]), Buffer.from(sid, 'hex'), payload]);
    old.on('message', (data: Buffer, isBinary) => {
      if (isBinary) return void received.push(data);
      const m = JSON.parse(String(data));
      if (m.t === 'challenge') old.send(JSON.stringify({ t: 'auth', node_id: creds.node_id, auth_token: creds.auth_token, nonce: m.nonce, proof: authProof(creds.signing_secret, creds.node_id, m.nonce) }));
      if (m.t === 'auth_ok') hello.authOk = m;
      if (m.t === 'open' && m.upgrade) {
        sid = m.sid;
        old.send(JSON.stringify({ t: 'response', sid, status: 101, headers: {} }));
        const msg = Buffer.from('from the old agent');
        const record = Buffer.concat([Buffer.from([0]), Buffer.alloc(4), msg]);
        record.writeUInt32BE(msg.length, 1);
        old.send(frame(1, record));
      }
    });
    try {
      await until('old agent authenticated', async () => hello.authOk, 5_000, 20);
      expect(hello.authOk!.features).toEqual(['ws_close']);
      const svc = await api('/api/v1/keys', { method: 'POST', body: JSON.stringify({ slug: 'old', endpoint_url: `http://127.0.0.1:${port}`, auth_method: 'none', nodes: [{ node_id: creds.node_id }] }) });
      expect(svc.status).toBe(201);

      // The caller closes with a code of its own: the old agent gets END, nothing it cannot read.
      const caller = new WebSocket(`${app.url.replace('http', 'ws')}/api/v1/proxy/s/old/x`, { headers: { 'x-api-key': admin.token } });
      const first = await new Promise<string>((res, rej) => { caller.once('message', (d) => res(String(d))); caller.once('error', rej); });
      expect(first).toBe('from the old agent');
      caller.close(4002, 'caller leaves');
      await until('END from the hub', async () => received.some((f) => f[0] === 2), 5_000, 20);
      expect(received.filter((f) => f[0] === 1)).toEqual([]);

      // The old agent ends a second stream: the caller sees 1000, as before.
      const second = new WebSocket(`${app.url.replace('http', 'ws')}/api/v1/proxy/s/old/y`, { headers: { 'x-api-key': admin.token } });
      await new Promise((res, rej) => { second.once('message', res); second.once('error', rej); });
      const closed = new Promise<number>((res) => second.once('close', (code) => res(code)));
      old.send(frame(2));
      expect(await closed).toBe(1000);
    } finally {
      old.terminate();
    }
  });
});
