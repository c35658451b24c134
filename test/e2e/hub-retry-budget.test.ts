// The per-service retry budgets and relay failures during an upload, with real processes: the
// appliance, three agents started through the CLI entry point (node A at priority 0, B and C at 1),
// each injecting its own token into requests for two services (`trio` and `duo`, the same local
// server), which tells the nodes apart by it. Node A's requests fail at the service (the connection
// is dropped unanswered, so GETs may be retried); B's and C's to /held… are held until the test lets
// them go, so that the retries stay in flight.
// Uploads: a service bound to node B whose endpoint refuses connections, driven by curl and undici.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAppliance, scrapeMetrics, tempDir, type Appliance } from '../helpers/appliance.ts';
import { authed, json, setupAdmin, type Admin } from '../helpers/api.ts';
import { agentCli, startAgent, type AgentProcess } from '../helpers/agent.ts';
import { until } from '../helpers/until.ts';

const NAMES = ['a', 'b', 'c'] as const;
type Name = (typeof NAMES)[number];
const tokenOf = (n: Name) => `token-held-by-node-${n}`;
const MIB = 1024 * 1024;

let app: Appliance;
let admin: Admin;
const home = tempDir('nexus-agent-budget-');
const agents: AgentProcess[] = [];
const nodes = {} as Record<Name, string>;

// ---- the local service ----
const held: Array<{ node: Name | '?'; release: () => void }> = [];
const seen: Array<{ node: Name | '?'; path: string }> = [];
const service = createServer((req: IncomingMessage, res: ServerResponse) => {
  const node = NAMES.find((n) => req.headers.authorization === `Bearer ${tokenOf(n)}`) ?? '?';
  seen.push({ node, path: req.url! });
  if (node === 'a') return void req.socket.destroy();
  req.resume();
  const answer = () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ node }));
  if (req.url!.startsWith('/held')) held.push({ node, release: answer });
  else answer();
});
service.keepAliveTimeout = 60_000;
let servicePort = 0;
/** A port with nothing listening: connections to it are refused. */
let closedPort = 0;

const api = (path: string, init: RequestInit = {}) => fetch(`${app.url}${path}`, authed(admin.token, init));
const proxyUrl = (slug: string, path: string) => `${app.url}/api/v1/proxy/s/${slug}${path}`;
const metric = async (name: string) => (await scrapeMetrics(app)).get(name) ?? 0;
const auditRows = async (path: string) =>
  (await json(await api('/api/v1/audit?action=proxy.request&limit=1000'))).items.filter((i: { details: { path: string } }) => i.details.path === path);

beforeAll(async () => {
  await new Promise<void>((r) => service.listen(0, '127.0.0.1', r));
  servicePort = (service.address() as AddressInfo).port;
  const probe = createTcpServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  closedPort = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));

  const cfg = join(tempDir('nexus-budget-cfg-'), 'nexus.yaml');
  writeFileSync(cfg, 'hub:\n  heartbeatSeconds: 1\n  retryBudgetPercent: 20\n  retryBudgetMinConcurrent: 3\nproxy:\n  allowPrivateTargets: true\n');
  app = await startAppliance({ args: ['--config', cfg] });
  admin = await setupAdmin(app);
  await Promise.all(NAMES.map(async (name) => {
    const reg = await json(await api('/api/v1/nodes', { method: 'POST', body: JSON.stringify({ name: `node-${name}` }) }));
    nodes[name] = reg.id;
    const p = ['--profile', name];
    const en = await agentCli(home, ['enroll', ...p, '--url', `${app.url.replace('http', 'ws')}/ws`, '--token', reg.registration_token]);
    expect(en.code, en.stderr).toBe(0);
    for (const slug of ['trio', 'duo']) {
      const add = await agentCli(home, ['credentials', 'add', ...p, '--service', slug, '--url', `http://127.0.0.1:${servicePort}`, '--secret-format', 'bearer', '--secret-env', 'T'], { T: tokenOf(name) });
      expect(add.code, add.stderr).toBe(0);
    }
    const agent = startAgent(home, p);
    agents.push(agent);
    await agent.waitFor(/Connected to hub/);
  }));
  await until('nodes online', async () => (await json(await api('/api/v1/nodes'))).every((n: { status: string }) => n.status === 'online'), 10_000);
  const trio = await api('/api/v1/keys', { method: 'POST', body: JSON.stringify({ slug: 'trio', endpoint_url: `http://127.0.0.1:${servicePort}`, auth_method: 'bearer', nodes: [{ node_id: nodes.a, priority: 0 }, { node_id: nodes.b, priority: 1 }, { node_id: nodes.c, priority: 1 }] }) });
  expect(trio.status).toBe(201);
  const duo = await api('/api/v1/keys', { method: 'POST', body: JSON.stringify({ slug: 'duo', endpoint_url: `http://127.0.0.1:${servicePort}`, auth_method: 'bearer', nodes: [{ node_id: nodes.a, priority: 0 }, { node_id: nodes.b, priority: 1 }, { node_id: nodes.c, priority: 1 }] }) });
  expect(duo.status).toBe(201);
  const gone = await api('/api/v1/keys', { method: 'POST', body: JSON.stringify({ slug: 'gone', endpoint_url: `http://127.0.0.1:${closedPort}`, auth_method: 'none', nodes: [{ node_id: nodes.b }] }) });
  expect(gone.status).toBe(201);
});

afterAll(async () => {
  for (const h of held.splice(0)) h.release();
  await Promise.all(agents.map((a) => a.stop()));
  await app?.stop();
  service.closeAllConnections();
  service.close();
});

describe('the retry budget of each service', () => {
  it('a burst of 40 GETs meeting a failing node: at most 20 % retry at once, the rest get the failure at once, all answered cleanly', async () => {
    const retriedBefore = await metric('nexus_hub_proxy_retries_total{reason="service_failed"}');
    const refusedBefore = await metric('nexus_hub_proxy_retries_refused_total{reason="budget"}');
    const N = 40;
    const answers: Array<{ status: number; body: { error?: { code: string; message: string }; node?: string } } | Error> = [];
    const pending = Array.from({ length: N }, () =>
      fetch(proxyUrl('trio', '/held'), { headers: { 'x-api-key': admin.token } }).then(
        async (res) => void answers.push({ status: res.status, body: await res.json() }),
        (err: Error) => void answers.push(err),
      ));
    // Every request went to node A first; those refused a retry are answered while the retries wait.
    await until('refused answered and retries held', async () => answers.length + held.length === N, 15_000, 20);
    const retried = held.length;
    // 20 % of at most 40 requests in flight, and never fewer than the minimum of 3.
    expect(retried).toBeGreaterThanOrEqual(3);
    expect(retried).toBeLessThanOrEqual(8);
    expect(held.every((h) => h.node === 'b' || h.node === 'c')).toBe(true);
    expect(seen.filter((s) => s.path === '/held' && s.node === 'a')).toHaveLength(N);
    expect(await metric('nexus_hub_proxy_requests_in_flight')).toBe(retried);
    expect(await metric('nexus_hub_proxy_retries_in_flight')).toBe(retried);
    expect(answers).toHaveLength(N - retried);
    for (const a of answers) {
      expect(a).not.toBeInstanceOf(Error);
      expect(a).toMatchObject({ status: 502, body: { error: { code: 'bad_gateway' } } });
    }

    for (const h of held.splice(0)) h.release();
    await Promise.all(pending);
    expect(answers.filter((a) => !(a instanceof Error) && a.status === 200)).toHaveLength(retried);
    expect(await metric('nexus_hub_proxy_retries_total{reason="service_failed"}')).toBe(retriedBefore + retried);
    expect(await metric('nexus_hub_proxy_retries_refused_total{reason="budget"}')).toBe(refusedBefore + N - retried);
    expect(await metric('nexus_hub_proxy_requests_in_flight')).toBe(0);
    expect(await metric('nexus_hub_proxy_retries_in_flight')).toBe(0);

    const rows = await until('audit rows', async () => {
      const r = await auditRows('/held');
      return r.length === N ? r : null;
    }, 5_000);
    const refusedRows = rows.filter((r: { status: number }) => r.status === 502);
    expect(refusedRows).toHaveLength(N - retried);
    for (const r of refusedRows) {
      expect(r).toMatchObject({ node_id: nodes.a, outcome: 'failure', details: { tries: [{ node_id: nodes.a, error: 'service_failed', retry_refused: 'budget' }] } });
    }
    for (const r of rows.filter((x: { status: number }) => x.status === 200)) expect(r.details.tries).toEqual([{ node_id: nodes.a, error: 'service_failed' }, { node_id: r.node_id }]);
  });

  it("a burst of failures on one service spends that service's budget; another service's retries still go through", async () => {
    const N = 40;
    const answers: Array<{ status: number } | Error> = [];
    const pending = Array.from({ length: N }, () =>
      fetch(proxyUrl('trio', '/held-burst'), { headers: { 'x-api-key': admin.token } }).then((res) => res.json().then(() => void answers.push({ status: res.status })), (err: Error) => void answers.push(err)));
    await until('refused answered and retries held', async () => answers.length + held.length === N, 15_000, 20);
    const retried = held.length;
    expect(retried).toBeLessThanOrEqual(8);
    expect(answers.every((a) => !(a instanceof Error) && a.status === 502)).toBe(true);
    expect(await metric('nexus_hub_proxy_retry_budgets')).toBe(1);

    // duo's requests meet the same failing node. trio holds `retried` ≥ 3 retries of as many requests:
    // a budget for the whole hub would refuse these (max(3, 20 % of the requests in flight) is spent).
    const duo = Array.from({ length: 3 }, (_, i) => fetch(proxyUrl('duo', `/held-duo-${i}`), { headers: { 'x-api-key': admin.token } }));
    await until('duo\'s retries held', async () => held.length === retried + 3, 10_000, 20);
    expect(held.slice(retried).every((h) => h.node === 'b' || h.node === 'c')).toBe(true);
    expect(await metric('nexus_hub_proxy_retry_budgets')).toBe(2);
    expect(await metric('nexus_hub_proxy_requests_in_flight')).toBe(retried + 3);
    expect(await metric('nexus_hub_proxy_retries_in_flight')).toBe(retried + 3);

    for (const h of held.splice(0)) h.release();
    expect((await Promise.all(duo)).map((r) => r.status)).toEqual([200, 200, 200]);
    await Promise.all(pending);
    for (let i = 0; i < 3; i++) {
      expect((await until('duo audit row', async () => (await auditRows(`/held-duo-${i}`))[0], 5_000)).details.tries).toEqual([{ node_id: nodes.a, error: 'service_failed' }, { node_id: expect.any(String) }]);
    }
    expect(await metric('nexus_hub_proxy_retry_budgets')).toBe(0);
  });

  it('hundreds of requests at once over both services: each answered, every count exact and back to 0', async () => {
    const retriedBefore = await metric('nexus_hub_proxy_retries_total{reason="service_failed"}');
    const refusedBefore = await metric('nexus_hub_proxy_retries_refused_total{reason="budget"}');
    const N = 300;
    const statuses = await Promise.all(Array.from({ length: N }, (_, i) =>
      fetch(proxyUrl(i % 2 ? 'trio' : 'duo', `/many-${i}`), { headers: { 'x-api-key': admin.token } }).then(async (res) => {
        await res.arrayBuffer();
        return res.status;
      })));
    const ok = statuses.filter((s) => s === 200).length;
    expect(ok + statuses.filter((s) => s === 502).length).toBe(N);
    // Every request met node A first: it was either retried (and answered by B or C) or refused its retry.
    expect(await metric('nexus_hub_proxy_retries_total{reason="service_failed"}')).toBe(retriedBefore + ok);
    expect(await metric('nexus_hub_proxy_retries_refused_total{reason="budget"}')).toBe(refusedBefore + N - ok);
    expect(ok).toBeGreaterThanOrEqual(6); // at least the minimum of each service's budget
    expect(await metric('nexus_hub_proxy_requests_in_flight')).toBe(0);
    expect(await metric('nexus_hub_proxy_retries_in_flight')).toBe(0);
    expect(await metric('nexus_hub_proxy_retry_budgets')).toBe(0);
  });

  it('a lone failing request still retries (the minimum of 3)', async () => {
    const res = await fetch(proxyUrl('trio', '/lone'), { headers: { 'x-api-key': admin.token } });
    expect(res.status).toBe(200);
    expect(['b', 'c']).toContain((await res.json()).node);
  });
});

/** Sends `total` bytes in 1 MiB chunks, one every few ms, and stops early once `stop()` says so. */
function slowBody(total: number, stop: () => boolean): ReadableStream<Uint8Array> & { sent(): number } {
  let sent = 0;
  const chunk = new Uint8Array(MIB).fill(7);
  const stream = new ReadableStream<Uint8Array>({
    async pull(c) {
      if (sent >= total || stop()) return c.close();
      await new Promise((r) => setTimeout(r, 5));
      sent += chunk.length;
      c.enqueue(chunk);
    },
  });
  return Object.assign(stream, { sent: () => sent });
}

describe('a relay failure while the caller is still uploading a large body', () => {
  const expected502 = { error: { code: 'bad_gateway', message: 'the node could not reach the service' } };

  it('undici (fetch) gets a clean 502 in the proxy\'s JSON shape, streamed and with a length', async () => {
    let answered = false;
    const body = slowBody(256 * MIB, () => answered);
    const res = await fetch(proxyUrl('gone', '/upload-undici'), { method: 'POST', headers: { 'x-api-key': admin.token, 'content-type': 'application/octet-stream' }, body, duplex: 'half' } as RequestInit);
    answered = true;
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual(expected502);
    expect(body.sent()).toBeLessThan(256 * MIB);

    const sized = await fetch(proxyUrl('gone', '/upload-undici-sized'), { method: 'PUT', headers: { 'x-api-key': admin.token }, body: Buffer.alloc(48 * MIB, 1) });
    expect(sized.status).toBe(502);
    expect(await sized.json()).toEqual(expected502);
    // The connection the answer came on (or a new one) still serves.
    expect((await fetch(proxyUrl('trio', '/after-upload'), { headers: { 'x-api-key': admin.token } })).status).toBe(200);
  });

  it('curl gets a clean 502 with its JSON body, from a pipe (chunked) and from a file (Content-Length)', async () => {
    const curl = (args: string[], feed?: (stdin: NodeJS.WritableStream, done: () => boolean) => void) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const p = spawn('curl', ['-sS', '--max-time', '30', '-H', `x-api-key: ${admin.token}`, '-w', '\n%{http_code}', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        let exited = false;
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => (err += d));
        p.stdin.on('error', () => {}); // curl stops reading once answered
        p.once('exit', (code) => {
          exited = true;
          resolve({ code, out, err });
        });
        if (feed) feed(p.stdin, () => exited);
        else p.stdin.end();
      });

    const piped = await curl(['-X', 'POST', '-T', '-', proxyUrl('gone', '/upload-curl')], (stdin, done) => {
      let sent = 0;
      const chunk = Buffer.alloc(MIB, 9);
      const timer = setInterval(() => {
        if (done() || sent >= 256 * MIB) {
          clearInterval(timer);
          return void stdin.end();
        }
        sent += MIB;
        stdin.write(chunk);
      }, 5);
    });
    expect(piped.err).toBe('');
    expect(piped.code).toBe(0);
    const [pipedBody, pipedStatus] = piped.out.split('\n');
    expect(pipedStatus).toBe('502');
    expect(JSON.parse(pipedBody!)).toEqual(expected502);

    const file = join(tempDir('nexus-upload-'), 'big.bin');
    writeFileSync(file, Buffer.alloc(48 * MIB, 2));
    const sized = await curl(['--data-binary', `@${file}`, '-H', 'content-type: application/octet-stream', proxyUrl('gone', '/upload-curl-sized')]);
    expect(sized.err).toBe('');
    expect(sized.code).toBe(0);
    const [sizedBody, sizedStatus] = sized.out.split('\n');
    expect(sizedStatus).toBe('502');
    expect(JSON.parse(sizedBody!)).toEqual(expected502);

    const rows = await until('audit rows', async () => {
      const r = [...(await auditRows('/upload-curl')), ...(await auditRows('/upload-curl-sized'))];
      return r.length === 2 ? r : null;
    }, 5_000);
    for (const r of rows) expect(r).toMatchObject({ status: 502, node_id: nodes.b, outcome: 'failure' });
  });

  it('a caller that keeps sending without reading gets the 502 first, then its connection closed past the drain bound', async () => {
    const url = new URL(proxyUrl('gone', '/upload-raw'));
    const sock = await new Promise<Socket>((resolve, reject) => {
      const s = connect(Number(url.port), url.hostname, () => resolve(s));
      s.once('error', reject);
    });
    let received = '';
    sock.on('data', (d) => (received += d));
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.on('error', () => {});
    sock.write(`POST ${url.pathname} HTTP/1.1\r\nhost: ${url.host}\r\nx-api-key: ${admin.token}\r\ncontent-length: ${1024 * MIB}\r\n\r\n`);
    const chunk = Buffer.alloc(MIB, 3);
    let sent = 0;
    // Keeps writing whatever the socket takes, as a client that never looks at the answer would.
    const writer = setInterval(() => {
      if (sock.destroyed || sent >= 1024 * MIB) return clearInterval(writer);
      if (sock.writableLength < 4 * MIB) {
        sock.write(chunk);
        sent += MIB;
      }
    }, 1);
    await Promise.race([closed, new Promise((_, rej) => setTimeout(() => rej(new Error('connection not closed within 20 s')), 20_000))]);
    clearInterval(writer);
    expect(received).toMatch(/^HTTP\/1\.1 502 /);
    expect(received).toContain('"bad_gateway"');
    // Closed long before the declared GiB: within the relay's window and the drain bound.
    expect(sent).toBeLessThan(200 * MIB);
  });
});
