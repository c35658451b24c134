// Request bodies kept for a retry on another node (hub.retryBodyMaxBytes, hub.retryBodyTotalBytes),
// with real processes: the appliance, two agents started through the CLI entry point (node A at
// priority 0, B at 1), each injecting its own token, and one local service that tells them apart by
// it. Node A's requests are held by the service (their bodies read as they come) until the test kills
// A's agent or drops the connections; B's are read whole and answered with their length and sha256.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAIN, REPO, startAppliance, scrapeMetrics, tempDir, type Appliance } from '../helpers/appliance.ts';
import { authed, json, setupAdmin, type Admin } from '../helpers/api.ts';
import { agentCli, startAgent, type AgentProcess } from '../helpers/agent.ts';
import { until } from '../helpers/until.ts';

const KIB = 1024;
const MIB = 1024 * KIB;
const TOKENS = { a: 'token-held-by-node-a', b: 'token-held-by-node-b' };
/** hub.retryBodyTotalBytes of this appliance: three bodies of 512 KiB. */
const TOTAL = 3 * 512 * KIB;

let app: Appliance;
let admin: Admin;
const home = tempDir('nexus-agent-retry-body-');
const agents: Record<'a' | 'b', AgentProcess | null> = { a: null, b: null };
const nodes = { a: '', b: '' };

// ---- the local service ----
/** Bytes of each path's body node A's service has read so far, and whether all of it came. */
const atA = new Map<string, { bytes: number; complete: boolean; drop: () => void }>();
const atB = new Map<string, { bytes: number; sha: string }>();
const service = createServer((req: IncomingMessage, res) => {
  const path = req.url!;
  if (req.headers.authorization === `Bearer ${TOKENS.a}`) {
    const seen = { bytes: 0, complete: false, drop: () => req.socket.destroy() };
    atA.set(path, seen);
    req.on('data', (c: Buffer) => (seen.bytes += c.length));
    req.once('end', () => (seen.complete = true));
    return; // never answered
  }
  const hash = createHash('sha256');
  let bytes = 0;
  req.on('data', (c: Buffer) => {
    hash.update(c);
    bytes += c.length;
  });
  req.once('end', () => {
    const sha = hash.digest('hex');
    atB.set(path, { bytes, sha });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ node: 'b', bytes, sha }));
  });
});
service.keepAliveTimeout = 120_000;

// ---- helpers ----
const api = (path: string, init: RequestInit = {}) => fetch(`${app.url}${path}`, authed(admin.token, init));
const metric = async (name: string) => (await scrapeMetrics(app)).get(name) ?? 0;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const auditRow = (path: string) =>
  until(`audit row of ${path}`, async () => (await json(await api('/api/v1/audit?action=proxy.request&limit=1000'))).items.find(
    (i: { details: { path: string } }) => i.details.path === path,
  ), 5_000);

/** Bytes that differ at every offset, so that a chunk lost, doubled or moved changes the sha256. */
function bodyOf(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed + (i >> 8)) & 0xff;
  return b;
}

interface Upload {
  /** Sends what is left of the body and ends it. */
  finish(): void;
  response: Promise<{ status: number; body: { node?: string; bytes?: number; sha?: string; error?: { code: string; message: string } } }>;
}

/** A PUT that sends its first `first` bytes now and the rest on `finish()`; with a Content-Length or chunked. */
function upload(path: string, body: Buffer, first: number, sized: boolean): Upload {
  const url = new URL(`${app.url}/api/v1/proxy/s/pair${path}`);
  const req = httpRequest(url, {
    method: 'PUT',
    headers: { 'x-api-key': admin.token, 'content-type': 'application/octet-stream', ...(sized ? { 'content-length': String(body.length) } : {}) },
  });
  const response = new Promise<Awaited<Upload['response']>>((resolve, reject) => {
    req.once('response', async (res) => {
      const parts: Buffer[] = [];
      for await (const c of res) parts.push(c as Buffer);
      resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(parts).toString()) });
    });
    req.once('error', reject);
  });
  req.write(body.subarray(0, first));
  return { finish: () => void req.end(body.subarray(first)), response };
}

async function startNode(name: 'a' | 'b'): Promise<void> {
  const agent = startAgent(home, ['--profile', name]);
  agents[name] = agent;
  await agent.waitFor(/Connected to hub/);
  await until(`node ${name} online`, async () => (await json(await api(`/api/v1/nodes/${nodes[name]}`))).status === 'online', 10_000);
}

async function killA(): Promise<void> {
  const a = agents.a!;
  a.proc.kill('SIGKILL');
  await a.exited();
  await until('node A offline', async () => (await json(await api(`/api/v1/nodes/${nodes.a}`))).status === 'offline', 10_000, 20);
}

beforeAll(async () => {
  await new Promise<void>((r) => service.listen(0, '127.0.0.1', r));
  const port = (service.address() as AddressInfo).port;
  const cfg = join(tempDir('nexus-retry-body-cfg-'), 'nexus.yaml');
  writeFileSync(cfg, `hub:\n  heartbeatSeconds: 1\n  retryBodyTotalBytes: ${TOTAL}\nproxy:\n  allowPrivateTargets: true\n`);
  app = await startAppliance({ args: ['--config', cfg] });
  admin = await setupAdmin(app);
  await Promise.all((['a', 'b'] as const).map(async (name) => {
    const reg = await json(await api('/api/v1/nodes', { method: 'POST', body: JSON.stringify({ name: `node-${name}` }) }));
    nodes[name] = reg.id;
    const p = ['--profile', name];
    const en = await agentCli(home, ['enroll', ...p, '--url', `${app.url.replace('http', 'ws')}/ws`, '--token', reg.registration_token]);
    expect(en.code, en.stderr).toBe(0);
    const add = await agentCli(home, ['credentials', 'add', ...p, '--service', 'pair', '--url', `http://127.0.0.1:${port}`, '--secret-format', 'bearer', '--secret-env', 'T'], { T: TOKENS[name] });
    expect(add.code, add.stderr).toBe(0);
    await startNode(name);
  }));
  const pair = await api('/api/v1/keys', { method: 'POST', body: JSON.stringify({ slug: 'pair', endpoint_url: `http://127.0.0.1:${port}`, auth_method: 'bearer', nodes: [{ node_id: nodes.a, priority: 0 }, { node_id: nodes.b, priority: 1 }] }) });
  expect(pair.status).toBe(201);
});

afterAll(async () => {
  for (const a of atA.values()) a.drop();
  await Promise.all(Object.values(agents).map((a) => a?.stop()));
  await app?.stop();
  service.closeAllConnections();
  service.close();
});

describe('a request body kept for a retry on another node', () => {
  it('a 512 KiB PUT whose first node dies mid-upload is sent again to the second, byte-exact (with a Content-Length and chunked)', async () => {
    const sized = bodyOf(512 * KIB, 1);
    const chunked = bodyOf(512 * KIB, 2);
    const first = 128 * KIB;
    const ups = [upload('/die-sized', sized, first, true), upload('/die-chunked', chunked, first, false)];
    await until('node A is reading both bodies', async () => (atA.get('/die-sized')?.bytes ?? 0) >= first && (atA.get('/die-chunked')?.bytes ?? 0) >= first, 10_000, 20);
    expect(atA.get('/die-sized')!.complete).toBe(false);
    expect(await metric('nexus_hub_proxy_retry_body_bytes')).toBe(512 * KIB + first); // declared length + what came of the other
    await killA();
    for (const u of ups) u.finish();
    const [a, b] = await Promise.all(ups.map((u) => u.response));
    expect(a).toEqual({ status: 200, body: { node: 'b', bytes: sized.length, sha: sha256(sized) } });
    expect(b).toEqual({ status: 200, body: { node: 'b', bytes: chunked.length, sha: sha256(chunked) } });
    for (const path of ['/die-sized', '/die-chunked']) {
      expect((await auditRow(path)).details.tries, path).toEqual([{ node_id: nodes.a, error: 'node_disconnected' }, { node_id: nodes.b }]);
    }
    expect(await metric('nexus_hub_proxy_retry_body_bytes')).toBe(0);
    await startNode('a');
  });

  it('a body over hub.retryBodyMaxBytes is not kept: the failure mid-upload is the 502 it was, and counted', async () => {
    const notKeptBefore = await metric('nexus_hub_proxy_retry_bodies_not_kept_total{reason="size"}');
    const big = bodyOf(MIB + 2 * KIB, 3);
    // Declared over the limit: never kept. Chunked: kept until its first MiB had come, then dropped.
    const ups = [upload('/big-sized', big, 64 * KIB, true), upload('/big-chunked', big, MIB + KIB, false)];
    await until('node A is reading both bodies', async () => (atA.get('/big-sized')?.bytes ?? 0) >= 64 * KIB && (atA.get('/big-chunked')?.bytes ?? 0) >= MIB + KIB, 10_000, 20);
    expect(await metric('nexus_hub_proxy_retry_body_bytes')).toBe(0);
    await killA();
    const answers = await Promise.all(ups.map((u) => u.response));
    for (const u of ups) u.finish();
    for (const a of answers) expect(a).toEqual({ status: 502, body: { error: { code: 'bad_gateway', message: 'the node disconnected' } } });
    expect(atB.has('/big-sized') || atB.has('/big-chunked')).toBe(false);
    expect(await metric('nexus_hub_proxy_retry_bodies_not_kept_total{reason="size"}')).toBe(notKeptBefore + 2);
    for (const path of ['/big-sized', '/big-chunked']) expect(await auditRow(path), path).toMatchObject({ status: 502, node_id: nodes.a });
    await startNode('a');
  });

  it('five 512 KiB uploads at once: the three that fit in hub.retryBodyTotalBytes are kept and retried, the other two get the 502', async () => {
    const notKeptBefore = await metric('nexus_hub_proxy_retry_bodies_not_kept_total{reason="total"}');
    const bodies = Array.from({ length: 5 }, (_, i) => bodyOf(512 * KIB, 10 + i));
    const ups = bodies.map((b, i) => upload(`/five-${i}`, b, b.length, true));
    await until('node A has read all five bodies', async () => bodies.every((_, i) => atA.get(`/five-${i}`)?.complete), 15_000, 20);
    expect(await metric('nexus_hub_proxy_retry_body_bytes')).toBe(TOTAL);
    expect(await metric('nexus_hub_proxy_retry_bodies_not_kept_total{reason="total"}')).toBe(notKeptBefore + 2);
    // Node A's service drops them all: each failed after the service had it, and a PUT may go again.
    for (let i = 0; i < 5; i++) atA.get(`/five-${i}`)!.drop();
    for (const u of ups) u.finish();
    const answers = await Promise.all(ups.map((u) => u.response));
    const ok = answers.flatMap((a, i) => (a.status === 200 ? [i] : []));
    expect(ok).toHaveLength(3);
    for (const i of ok) expect(answers[i]!.body).toEqual({ node: 'b', bytes: 512 * KIB, sha: sha256(bodies[i]!) });
    for (const [i, a] of answers.entries()) if (!ok.includes(i)) expect(a).toEqual({ status: 502, body: { error: { code: 'bad_gateway', message: 'the node could not reach the service' } } });
    expect(await metric('nexus_hub_proxy_retry_body_bytes')).toBe(0);
    expect(await metric('nexus_hub_proxy_requests_in_flight')).toBe(0);
    // The freed allowance serves the next upload.
    const after = bodyOf(512 * KIB, 20);
    const next = upload('/after-five', after, after.length, true);
    await until('node A has read it', async () => atA.get('/after-five')?.complete, 10_000, 20);
    expect(await metric('nexus_hub_proxy_retry_body_bytes')).toBe(512 * KIB);
    atA.get('/after-five')!.drop();
    next.finish();
    expect(await next.response).toEqual({ status: 200, body: { node: 'b', bytes: after.length, sha: sha256(after) } });
  });
});

describe('hostile kept-body settings', () => {
  /** Runs `nexus serve` with `yaml` as its config file (and `env`): it must refuse to start. */
  const serve = (yaml: string, env: Record<string, string> = {}) =>
    new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const dir = tempDir('nexus-retry-body-bad-');
      const cfg = join(dir, 'nexus.yaml');
      writeFileSync(cfg, yaml);
      const p = spawn(process.execPath, [MAIN, 'serve', '--config', cfg, '--data-dir', dir, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      p.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => {
        p.kill('SIGKILL');
        reject(new Error(`nexus serve did not exit: ${stderr}`));
      }, 20_000);
      p.once('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, stderr });
      });
    });

  it('are refused at startup with exit 2 and one line naming the setting', async () => {
    const cases: Array<[string, Record<string, string>, string]> = [
      ['hub:\n  retryBodyMaxBytes: 2097152\n  retryBodyTotalBytes: 1048576\n', {}, 'nexus serve: hub.retryBodyMaxBytes (2097152) is larger than hub.retryBodyTotalBytes (1048576): no body that large could be kept\n'],
      ['hub:\n  retryBodyMaxBytes: 0.5\n', {}, 'nexus serve: hub.retryBodyMaxBytes: expected a whole number of bytes, got 0.5\n'],
      ['hub:\n  retryBodyTotalBytes: -1\n', {}, 'nexus serve: config file: "hub.retryBodyTotalBytes" must be a non-negative number\n'],
      ['hub:\n  retryBodyTotalBytes: 64MiB\n', {}, 'nexus serve: config file: "hub.retryBodyTotalBytes" must be a number\n'],
      ['hub:\n  retryBodyTotalBytes: 1e300\n', {}, 'nexus serve: hub.retryBodyTotalBytes: expected a whole number of bytes, got 1e+300\n'],
      ['{}\n', { NEXUS_HUB_RETRY_BODY_TOTAL_BYTES: '1125899906842624' }, "nexus serve: hub.retryBodyTotalBytes (1125899906842624) is more than this machine's memory"],
      ['{}\n', { NEXUS_HUB_RETRY_BODY_MAX_BYTES: 'NaN' }, 'nexus serve: NEXUS_HUB_RETRY_BODY_MAX_BYTES: expected a non-negative number, got "NaN"\n'],
    ];
    const results = await Promise.all(cases.map(([yaml, env]) => serve(yaml, env)));
    for (const [i, r] of results.entries()) {
      expect(r.code, cases[i]![0]).toBe(2);
      expect(r.stderr.startsWith(cases[i]![2]), r.stderr).toBe(true);
      expect(r.stderr.split('\n').filter(Boolean), r.stderr).toHaveLength(1);
    }
  });
});
