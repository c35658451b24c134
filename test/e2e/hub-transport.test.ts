// The hub's transport when time is what matters, with real processes (appliances, agents started
// through the CLI entry point, a local service): the proxy's maximum stream duration, an agent or an
// appliance that goes silent (SIGSTOP), 8002 answered without waiting on any timer, enrollments that
// truly race, and an agent that rides out an appliance restart. No assertion bounds a duration from
// above by anything close to what it measures: the machine is shared and noisy.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { authed, json, setupAdmin, type Admin } from '../helpers/api.ts';
import { agentCli, startAgent, type AgentProcess } from '../helpers/agent.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { until } from '../helpers/until.ts';
import { authProof } from '../../src/protocol/signing.ts';
import { SUBPROTOCOL } from '../../src/protocol/version.ts';

const UPSTREAM_TOKEN = `upstream-secret-${randomBytes(12).toString('hex')}`;

let upstream: Upstream;
const hubs: TestHub[] = [];
const agents: AgentProcess[] = [];

/** An appliance with an admin, and the calls these tests make on it; `restart` keeps data dir and port. */
interface TestHub {
  app: Appliance;
  admin: Admin;
  api(path: string, init?: RequestInit): Promise<Response>;
  proxy(slug: string, path: string, init?: RequestInit): Promise<Response>;
  proxyWs(slug: string, path: string): WebSocket;
  hubUrl(): string;
  nodeStatus(id: string): Promise<string>;
  service(body: Record<string, unknown>): Promise<{ id: string; slug: string }>;
  register(name: string): Promise<{ id: string; registration_token: string }>;
  /** Registers a node, enrolls a fresh agent home with the upstream's token for `slugs`, starts it. */
  nodeWithAgent(name: string, slugs: string[], agentArgs?: string[]): Promise<{ id: string; home: string; agent: AgentProcess }>;
  audit(query: string): Promise<Array<Record<string, any>>>; // eslint-disable-line @typescript-eslint/no-explicit-any
  restart(): Promise<void>;
}

async function startHub(config: string[], env: Record<string, string> = {}): Promise<TestHub> {
  const cfg = join(tempDir('nexus-transport-cfg-'), 'nexus.yaml');
  writeFileSync(cfg, [...config, 'proxy:', '  allowPrivateTargets: true', ''].join('\n'));
  const app = await startAppliance({ args: ['--config', cfg], env });
  const admin = await setupAdmin(app);
  const hub: TestHub = {
    app,
    admin,
    api: (path, init = {}) => fetch(`${hub.app.url}${path}`, authed(admin.token, init)),
    proxy: (slug, path, init = {}) =>
      fetch(`${hub.app.url}/api/v1/proxy/s/${slug}${path}`, { ...init, headers: { 'x-api-key': admin.token, ...(init.headers as Record<string, string>) } }),
    proxyWs: (slug, path) => new WebSocket(`${hub.app.url.replace('http', 'ws')}/api/v1/proxy/s/${slug}${path}`, { headers: { 'x-api-key': admin.token } }),
    hubUrl: () => `${hub.app.url.replace('http', 'ws')}/ws`,
    nodeStatus: async (id) => (await json(await hub.api(`/api/v1/nodes/${id}`))).status as string,
    async service(body) {
      const res = await hub.api('/api/v1/keys', { method: 'POST', body: JSON.stringify(body) });
      expect(res.status, await res.clone().text()).toBe(201);
      return json(res);
    },
    async register(name) {
      const res = await hub.api('/api/v1/nodes', { method: 'POST', body: JSON.stringify({ name }) });
      expect(res.status).toBe(201);
      return json(res);
    },
    async nodeWithAgent(name, slugs, agentArgs = []) {
      const node = await hub.register(name);
      const home = tempDir('nexus-transport-agent-');
      const en = await agentCli(home, ['enroll', '--url', hub.hubUrl(), '--token', node.registration_token]);
      expect(en.code, en.stderr).toBe(0);
      for (const slug of slugs) {
        const add = await agentCli(home, ['credentials', 'add', '--service', slug, '--url', upstream.url, '--secret-format', 'bearer', '--secret-env', 'T'], { T: UPSTREAM_TOKEN });
        expect(add.code, add.stderr).toBe(0);
      }
      const agent = startAgent(home, agentArgs);
      agents.push(agent);
      await agent.waitFor(/Connected to hub/);
      await until(`${name} online`, async () => (await hub.nodeStatus(node.id)) === 'online');
      return { id: node.id, home, agent };
    },
    audit: async (query) => (await json(await hub.api(`/api/v1/audit?${query}&limit=1000`))).items,
    async restart() {
      expect(await hub.app.stop('SIGTERM')).toBe(0);
      // The agent dials the address it enrolled with, so the same port again.
      hub.app = await startAppliance({ dataDir: hub.app.dataDir, args: ['--config', cfg, '--listen', new URL(hub.app.url).host], env });
    },
  };
  hubs.push(hub);
  return hub;
}

/** Sends a raw HTTP/1.1 request and reads the whole answer (the server closes: `connection: close`). */
function rawRequest(port: number, head: string, body: Buffer): { sock: Duplex; send(last: Buffer): void; answer: Promise<{ status: number; body: string }> } {
  const sock = connect(port, '127.0.0.1');
  sock.setNoDelay(true);
  let got = '';
  sock.on('data', (c: Buffer) => (got += c.toString('utf8')));
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    sock.once('error', reject);
    sock.once('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})[^]*?\r\n\r\n([^]*)$/.exec(got);
      if (!m) return reject(new Error(`not an HTTP answer: ${got.slice(0, 200)}`));
      resolve({ status: Number(m[1]), body: m[2]! });
    });
  });
  sock.write(head);
  sock.write(body);
  return { sock, send: (last) => sock.write(last), answer };
}

beforeAll(async () => {
  upstream = await startUpstream(UPSTREAM_TOKEN);
});

afterAll(async () => {
  // A test that failed half way may leave a process stopped; a stopped process cannot exit.
  for (const p of [...agents.map((a) => a.proc), ...hubs.map((h) => h.app.proc)]) if (p.exitCode === null && p.signalCode === null) p.kill('SIGCONT');
  await Promise.all(agents.map((a) => a.stop()));
  await Promise.all(hubs.map((h) => h.app.stop()));
  await upstream?.close();
});

// ---------------------------------------------------------------------------------------------------
// A short maximum stream duration (set through the environment) and short heartbeats.

const LIMIT_SECONDS = 2;

describe('with a maximum stream duration of 2 s and 1 s heartbeats', () => {
  let hub: TestHub;
  let node: { id: string; home: string; agent: AgentProcess };

  beforeAll(async () => {
    hub = await startHub(['hub:', '  heartbeatSeconds: 1', '  offlineAfterSeconds: 3'], { NEXUS_PROXY_MAX_STREAM_SECONDS: String(LIMIT_SECONDS) });
    node = await hub.nodeWithAgent('limited', ['forever-node', 'quiet']);
    await hub.service({ slug: 'forever-node', endpoint_url: upstream.url, auth_method: 'bearer', nodes: [{ node_id: node.id }] });
    await hub.service({ slug: 'forever-direct', endpoint_url: upstream.url, auth_method: 'bearer', credential: UPSTREAM_TOKEN });
    await hub.service({ slug: 'quiet', endpoint_url: upstream.url, auth_method: 'bearer', nodes: [{ node_id: node.id }] });
  });

  /** The audit row of the one request to `slug` + `path` (the path without its query; written when the response closes). */
  const auditOf = (slug: string, path: string) =>
    until(`audit of ${slug}${path}`, async () => (await hub.audit('action=proxy.request')).find((i) => i.details.slug === slug && i.details.path === path), 10_000);

  describe.each([
    { via: 'node', slug: 'forever-node' },
    { via: 'direct', slug: 'forever-direct' },
  ])('for a service reached $via', ({ via, slug }) => {
    it('cuts a never-ending response at the limit: the caller sees the body break off, the service its request end', async () => {
      // The service's side of this one response: it must see its caller leave, not keep writing.
      let serviceClosed!: Promise<void>;
      const seen = new Promise<void>((resolve) => {
        const onRequest = (req: IncomingMessage, res: ServerResponse) => {
          if (!req.url?.startsWith(`/forever?cut=${via}`)) return;
          upstream.server.off('request', onRequest);
          serviceClosed = new Promise((r) => res.once('close', () => r()));
          resolve();
        };
        upstream.server.on('request', onRequest);
      });
      const t0 = performance.now();
      // The wait's own bound, far past the limit; the test fails if it is what ends the stream.
      const bound = AbortSignal.timeout(30_000);
      const res = await hub.proxy(slug, `/forever?cut=${via}`, { signal: bound });
      expect(res.status).toBe(200);
      let bytes = 0;
      // A chunked body that ends without its last chunk: fetch rejects, the caller cannot take the
      // cut for a complete answer.
      const ended = await (async () => {
        try {
          for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) bytes += c.byteLength;
          return 'completed';
        } catch (err) {
          return `broke off: ${(err as Error).message}`;
        }
      })();
      const elapsed = performance.now() - t0;
      expect(bound.aborted).toBe(false);
      expect(ended).toMatch(/^broke off/);
      expect(bytes).toBeGreaterThan(0);
      // Only a lower bound: the limit's timer cannot have fired before the limit.
      expect(elapsed).toBeGreaterThanOrEqual(LIMIT_SECONDS * 1000 - 50);
      await seen;
      await serviceClosed;

      const row = await auditOf(slug, '/forever');
      expect(row).toMatchObject({ routed_via: via, node_id: via === 'node' ? node.id : null, status: 200, outcome: 'failure' });
      expect(row.details).toMatchObject({ aborted: true, max_duration: true });
      expect(row.details.bytes_out).toBeGreaterThan(0);
      expect(row.details.latency_ms).toBeGreaterThanOrEqual(LIMIT_SECONDS * 1000 - 50);
    });

    it('closes a WebSocket at the limit with 1001, and the service sees its socket close', async () => {
      let serviceClosed!: Promise<void>;
      const seen = new Promise<void>((resolve) => {
        const onUpgrade = (req: IncomingMessage, socket: Duplex) => {
          if (!req.url?.startsWith(`/ws-echo?cut=${via}`)) return;
          upstream.server.off('upgrade', onUpgrade);
          serviceClosed = new Promise((r) => socket.once('close', () => r()));
          resolve();
        };
        upstream.server.on('upgrade', onUpgrade);
      });
      const ws = hub.proxyWs(slug, `/ws-echo?cut=${via}`);
      const closed = new Promise<{ code: number; reason: string }>((resolve, reject) => {
        ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
        setTimeout(() => reject(new Error('the session outlived the limit')), 30_000).unref();
      });
      await new Promise((res, rej) => {
        ws.once('open', res);
        ws.once('error', rej);
      });
      const t0 = performance.now();
      // The session is alive and carries messages until the limit.
      ws.send('still here');
      expect(String(await new Promise((res) => ws.once('message', res)))).toBe('still here');
      const { code, reason } = await closed;
      expect({ code, reason }).toEqual({ code: 1001, reason: 'maximum stream duration reached' });
      expect(performance.now() - t0).toBeGreaterThanOrEqual(LIMIT_SECONDS * 1000 - 200);
      await seen;
      await serviceClosed;

      const row = await auditOf(slug, '/ws-echo');
      expect(row).toMatchObject({ routed_via: via, status: 101, details: { websocket: true, max_duration: true } });
    });
  });

  it('a request that ends in time is not marked as cut', async () => {
    expect((await hub.proxy('forever-direct', '/echo?in-time')).status).toBe(200);
    const row = await auditOf('forever-direct', '/echo');
    expect(row).toMatchObject({ status: 200, outcome: 'success' });
    expect(row.details.max_duration).toBeUndefined();
  });

  it('takes an agent that stops sending offline (4008 "no heartbeat"), and back online when it continues', async () => {
    expect((await hub.proxy('quiet', '/echo')).status).toBe(200);
    const appMark = hub.app.output().length;
    const agentMark = node.agent.output().length;
    node.agent.proc.kill('SIGSTOP');
    try {
      // offline_after is 3 s; the hub checks every second.
      await until('the silent node to go offline', async () => (await hub.nodeStatus(node.id)) === 'offline', 20_000);
      const connected = await json(await fetch(`${hub.app.adminUrl}/api/hub/agents`));
      expect(connected.items.map((a: { node_id: string }) => a.node_id)).not.toContain(node.id);
      expect(hub.app.output().slice(appMark)).toMatch(/"code":4008,"reason":"no heartbeat","msg":"closing agent connection"/);
      const res = await hub.proxy('quiet', '/echo');
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBeTruthy();
      expect((await json(res)).error.code).toBe(8002);
    } finally {
      node.agent.proc.kill('SIGCONT');
    }
    await node.agent.waitFor(/Connected to hub/, 30_000, agentMark);
    await until('the node online again', async () => (await hub.nodeStatus(node.id)) === 'online');
    const back = await hub.proxy('quiet', '/echo?back');
    expect(back.status).toBe(200);
    expect(await json(back)).toMatchObject({ query: '?back' });
  });

  it('has the agent reconnect when the appliance goes silent, once it continues', async () => {
    expect((await hub.proxy('quiet', '/echo')).status).toBe(200);
    const agentMark = node.agent.output().length;
    hub.app.proc.kill('SIGSTOP');
    try {
      // The agent hears nothing for offline_after (3 s), gives the socket up and dials again.
      await node.agent.waitFor(/hub went silent; reconnecting/, 20_000, agentMark);
    } finally {
      hub.app.proc.kill('SIGCONT');
    }
    await node.agent.waitFor(/Connected to hub/, 30_000, agentMark);
    await until('the node online again', async () => (await hub.nodeStatus(node.id)) === 'online');
    expect((await hub.proxy('quiet', '/echo')).status).toBe(200);
    expect(node.agent.proc.exitCode).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------------------
// Every timer that could answer a request (heartbeat, offline, auth, stream limit, gateway dial and
// first byte) set to a minute: anything that arrives well before a minute did not wait on one.

const PATIENT = 60;

describe('with every timer at a minute', () => {
  let hub: TestHub;

  beforeAll(async () => {
    hub = await startHub([
      'hub:',
      `  heartbeatSeconds: ${PATIENT / 3}`,
      `  offlineAfterSeconds: ${PATIENT}`,
      `  authTimeoutSeconds: ${PATIENT}`,
      'gateway:',
      `  connectTimeoutSeconds: ${PATIENT}`,
      `  firstByteTimeoutSeconds: ${PATIENT}`,
      `  maxStreamSeconds: ${PATIENT}`,
    ], { NEXUS_PROXY_MAX_STREAM_SECONDS: String(PATIENT) });
  });

  it('lets exactly one of 8 enrollments that arrive together win; the rest get 8003', async () => {
    const node = await hub.register('raced');
    const body = Buffer.from(JSON.stringify({ registration_token: node.registration_token }));
    const head = `POST /api/internal/things/enroll HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`;
    // Every request is on the server but its last byte; the last bytes leave in one turn, so the
    // appliance has all 8 complete requests to choose from at once.
    const port = Number(new URL(hub.app.url).port);
    const racers = Array.from({ length: 8 }, () => rawRequest(port, head, body.subarray(0, -1)));
    await new Promise((r) => setTimeout(r, 300));
    for (const r of racers) r.send(body.subarray(-1));
    const answers = await Promise.all(racers.map((r) => r.answer));

    const won = answers.filter((a) => a.status === 200);
    expect(won).toHaveLength(1);
    const creds = JSON.parse(won[0]!.body) as { node_id: string; auth_token: string; signing_secret: string };
    expect(creds).toMatchObject({ node_id: node.id, auth_token: expect.stringMatching(/^nx_nauth_/), signing_secret: expect.any(String) });
    for (const lost of answers.filter((a) => a.status !== 200)) {
      expect(lost.status).toBe(401);
      const err = JSON.parse(lost.body).error;
      expect(err.code).toBe(8003);
      expect(lost.body).not.toMatch(/nx_nauth_|signing_secret/);
    }

    // The node holds exactly the winner's credentials: they authenticate, and one enrollment is on record.
    const ws = new WebSocket(hub.hubUrl(), SUBPROTOCOL);
    const authed = await new Promise<Record<string, unknown>>((resolve, reject) => {
      ws.on('message', (d) => {
        const m = JSON.parse(String(d)) as Record<string, unknown>;
        if (m.t === 'challenge') {
          ws.send(JSON.stringify({ t: 'auth', node_id: creds.node_id, auth_token: creds.auth_token, nonce: m.nonce, proof: authProof(creds.signing_secret, creds.node_id, m.nonce as string) }));
        } else resolve(m);
      });
      ws.once('close', (code, reason) => reject(new Error(`closed ${code} ${String(reason)}`)));
      ws.once('error', reject);
    });
    expect(authed).toMatchObject({ t: 'auth_ok', node_id: node.id });
    ws.close();
    const enrolls = await hub.audit('action=node.enroll');
    expect(enrolls.filter((e) => e.target_id === node.id && e.outcome === 'success')).toHaveLength(1);
    expect(enrolls.filter((e) => e.outcome === 'denied')).toHaveLength(7);
  });

  it('answers 8002 at once for a service whose nodes are all offline, and for one whose only node was just killed', async () => {
    // Offline: one node enrolled whose agent stopped, one that never enrolled.
    const stopped = await hub.nodeWithAgent('stopped', ['nowhere']);
    await stopped.agent.stop();
    await until('the stopped node offline', async () => (await hub.nodeStatus(stopped.id)) === 'offline', 10_000);
    const pending = await hub.register('never-enrolled');
    await hub.service({ slug: 'nowhere', endpoint_url: upstream.url, auth_method: 'bearer', nodes: [{ node_id: stopped.id, priority: 0 }, { node_id: pending.id, priority: 1 }] });
    const t0 = performance.now();
    const res = await hub.proxy('nowhere', '/echo');
    const allOfflineMs = performance.now() - t0;
    expect(res.status).toBe(503);
    expect((await json(res)).error.code).toBe(8002);

    // kill -9 of the only node: the kernel closes its socket, and that alone takes the node offline.
    const killed = await hub.nodeWithAgent('killed', ['doomed']);
    await hub.service({ slug: 'doomed', endpoint_url: upstream.url, auth_method: 'bearer', nodes: [{ node_id: killed.id }] });
    expect((await hub.proxy('doomed', '/echo')).status).toBe(200);
    killed.agent.proc.kill('SIGKILL');
    const k0 = performance.now();
    // A request that left before the hub saw the socket close fails as a gateway error, never as a hang.
    const before: number[] = [];
    let lastMs = 0;
    const offline = await until('8002 after kill -9', async () => {
      const s = performance.now();
      const r = await hub.proxy('doomed', '/echo');
      lastMs = performance.now() - s;
      if (r.status === 503) return r;
      before.push(r.status);
      await r.arrayBuffer();
      return null;
    }, (PATIENT / 4) * 1000, 20);
    const killToOfflineMs = performance.now() - k0;
    expect((await json(offline)).error.code).toBe(8002);
    for (const s of before) expect(s).toBe(502);
    // Far inside every one-minute timer: the answers did not wait for one to fire.
    for (const ms of [allOfflineMs, killToOfflineMs, lastMs]) expect(ms).toBeLessThan((PATIENT / 4) * 1000);
    console.log(`8002 timings: all-offline ${allOfflineMs.toFixed(1)} ms; kill -9 → 8002 ${killToOfflineMs.toFixed(1)} ms (that request ${lastMs.toFixed(1)} ms, ${before.length} earlier requests)`);
  });

  it('keeps the same agent process across an appliance restart: it reconnects and traffic resumes, no enrollment', async () => {
    const { id, home, agent } = await hub.nodeWithAgent('survivor', ['steady']);
    await hub.service({ slug: 'steady', endpoint_url: upstream.url, auth_method: 'bearer', nodes: [{ node_id: id }] });
    expect((await hub.proxy('steady', '/echo?before')).status).toBe(200);
    const identity = readFileSync(join(home, 'node.json'), 'utf8');
    const enrollsBefore = (await hub.audit('action=node.enroll')).length;
    const mark = agent.output().length;

    await hub.restart();
    await agent.waitFor(/disconnected from hub; reconnecting/, 10_000, mark);
    await agent.waitFor(/Connected to hub/, 60_000, mark);
    await until('the node online after the restart', async () => (await hub.nodeStatus(id)) === 'online');
    const after = await hub.proxy('steady', '/echo?after');
    expect(after.status).toBe(200);
    expect(await json(after)).toMatchObject({ query: '?after' });
    expect(agent.proc.exitCode).toBeNull();
    expect(readFileSync(join(home, 'node.json'), 'utf8')).toBe(identity);
    expect((await hub.audit('action=node.enroll')).length).toBe(enrollsBefore);
  });

  it('tells a WebSocket agent 1001 when it shuts down: the agent logs the close code, not a lost connection', async () => {
    const { id, agent } = await hub.nodeWithAgent('told-ws', ['told-ws']);
    await hub.service({ slug: 'told-ws', endpoint_url: upstream.url, auth_method: 'bearer', nodes: [{ node_id: id }] });
    expect((await hub.proxy('told-ws', '/echo?before')).status).toBe(200);
    const mark = agent.output().length;

    await hub.restart();
    const line = await agent.waitFor(/.*disconnected from hub; reconnecting.*/, 10_000, mark);
    expect(JSON.parse(line)).toMatchObject({ code: 1001, reason: 'hub shutting down' });
    await agent.waitFor(/Connected to hub/, 60_000, mark);
    await until('the node online after the restart', async () => (await hub.nodeStatus(id)) === 'online');
    expect((await hub.proxy('told-ws', '/echo?after')).status).toBe(200);
  });

  it('answers a long-poll agent\'s pending poll with a 1001 close frame when it shuts down, instead of holding shutdown for the poll\'s wait', async () => {
    const { id, agent } = await hub.nodeWithAgent('told-http', ['told-http'], ['--transport', 'http']);
    await hub.service({ slug: 'told-http', endpoint_url: upstream.url, auth_method: 'bearer', nodes: [{ node_id: id }] });
    expect(agent.output()).toMatch(/"transport":"http long-poll"/);
    expect((await hub.proxy('told-http', '/echo?before')).status).toBe(200);
    // A relayed response still streaming (its first event out, the rest held back by the service)
    // when the appliance stops ends with the session. Nothing else moves, so the agent's poll is pending.
    const sse = await hub.proxy('told-http', '/sse');
    expect(sse.status).toBe(200);
    const reader = sse.body!.getReader();
    expect(Buffer.from((await reader.read()).value!).toString()).toContain('"n":1');
    const sseEnd = (async () => {
      for (;;) if ((await reader.read()).done) return 'ended';
    })().catch(() => 'aborted');
    const mark = agent.output().length;
    const old = hub.app;

    await hub.restart();
    // The agent heard why (the close frame in a poll's answer, not a failed poll), and so the
    // appliance did not wait out its grace period for the poll: it would have logged that.
    const line = await agent.waitFor(/.*disconnected from hub; reconnecting.*/, 10_000, mark);
    expect(JSON.parse(line), agent.output().slice(mark)).toMatchObject({ code: 1001, reason: 'hub shutting down' });
    expect(agent.output().slice(mark)).not.toMatch(/poll answered HTTP|connection lost/);
    expect(old.output()).toMatch(/"code":1001,"reason":"hub shutting down".*"closing agent connection"/);
    expect(old.output()).not.toMatch(/grace period over/);
    expect(await sseEnd).toMatch(/^(ended|aborted)$/);

    await agent.waitFor(/Connected to hub/, 60_000, mark);
    await until('the node online after the restart', async () => (await hub.nodeStatus(id)) === 'online');
    const after = await hub.proxy('told-http', '/echo?after');
    expect(after.status).toBe(200);
    expect(await json(after)).toMatchObject({ query: '?after' });
  });
});
