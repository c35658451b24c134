// The agent's side of the protocol against a scripted hub in this process: the agent (started
// through the CLI) must refuse request frames with a wrong signature, a replayed nonce or a stale
// timestamp, answer re-authentication, and stop for good when the hub revokes it.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { tempDir } from '../helpers/appliance.ts';
import { agentCli, startAgent, type AgentProcess } from '../helpers/agent.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { encodeFrame, FRAME, newStreamId, type OpenMsg } from '../../src/protocol/frames.ts';
import { newNonce, signOpen, verifyAuthProof } from '../../src/protocol/signing.ts';

const NODE = 'node-under-test';
const SECRET = randomBytes(32).toString('base64url');
const AUTH = `nx_nauth_${randomBytes(32).toString('base64url')}`;
const TOKEN = `upstream-${randomBytes(8).toString('hex')}`;

let server: Server;
let wss: WebSocketServer;
let hubUrl: string;
let upstream: Upstream;
let agent: AgentProcess;
const home = tempDir('nexus-agent-sig-');
let socket: WebSocket;
const inbox: Array<Record<string, unknown>> = [];
const binary: Buffer[] = [];
let connected!: Promise<WebSocket>;

function next(pred: (m: Record<string, unknown>) => boolean, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const end = Date.now() + timeoutMs;
    const tick = () => {
      const i = inbox.findIndex(pred);
      if (i >= 0) return resolve(inbox.splice(i, 1)[0]!);
      if (Date.now() > end) return reject(new Error(`no matching message; inbox: ${JSON.stringify(inbox)}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

beforeAll(async () => {
  upstream = await startUpstream(TOKEN);
  server = createServer((req, res) => {
    // Scripted enrollment: always hands out the known credentials.
    if (req.url === '/api/internal/things/enroll' && req.method === 'POST') {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ node_id: NODE, auth_token: AUTH, signing_secret: SECRET }));
      return;
    }
    res.writeHead(404).end();
  });
  wss = new WebSocketServer({ server, path: '/ws' });
  connected = new Promise((resolve) => {
    wss.on('connection', (ws) => {
      const nonce = newNonce();
      ws.on('message', (data, isBinary) => {
        if (isBinary) return void binary.push(data as Buffer);
        const m = JSON.parse(String(data)) as Record<string, unknown>;
        if (m.t === 'auth') {
          expect(m.auth_token).toBe(AUTH);
          expect(verifyAuthProof(SECRET, NODE, nonce, m.proof)).toBe(true);
          ws.send(JSON.stringify({ t: 'auth_ok', node_id: NODE, heartbeat_seconds: 30, offline_after_seconds: 90 }));
          socket = ws;
          resolve(ws);
          return;
        }
        inbox.push(m);
      });
      ws.send(JSON.stringify({ t: 'challenge', nonce }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hubUrl = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws`;
});

afterAll(async () => {
  await agent?.stop();
  wss?.close();
  server?.close();
  await upstream?.close();
});

function open(overrides: Partial<OpenMsg> = {}, ts?: number): OpenMsg {
  const sid = newStreamId();
  return { ...signOpen(SECRET, { t: 'open', sid, method: 'GET', url: `${upstream.url}/echo`, headers: {}, service: 'svc', body: false, upgrade: false }, ts), ...overrides };
}

function send(m: OpenMsg) {
  socket.send(JSON.stringify(m));
  socket.send(encodeFrame(FRAME.end, m.sid));
}

describe('agent against a scripted hub', () => {
  it('enrolls, stores a credential and authenticates with a proof of the secret', async () => {
    const e = await agentCli(home, ['enroll', '--url', hubUrl, '--token', 'nx_nreg_scripted']);
    expect(e.code, e.stderr).toBe(0);
    const again = await agentCli(home, ['enroll', '--url', hubUrl, '--token', 'nx_nreg_scripted']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already enrolled');
    const c = await agentCli(home, ['credentials', 'add', '--service', 'svc', '--url', upstream.url, '--header', 'Authorization', '--secret-format', 'bearer', '--secret-env', 'S'], { S: TOKEN });
    expect(c.code, c.stderr).toBe(0);
    agent = startAgent(home);
    await connected;
    await agent.waitFor(/Connected to hub/);
  });

  it('serves a correctly signed frame and refuses its replay', async () => {
    const m = open();
    send(m);
    const res = await next((x) => x.t === 'response' && x.sid === m.sid);
    expect(res.status).toBe(200);
    socket.send(JSON.stringify(m));
    const err = await next((x) => x.t === 'stream_error' && x.sid === m.sid);
    expect(err.code).toBe('replayed');
  });

  it('refuses a tampered frame, a frame signed with another secret and a stale one', async () => {
    const tampered = open();
    tampered.url = `${upstream.url}/other`;
    send(tampered);
    expect((await next((x) => x.sid === tampered.sid)).code).toBe('bad_signature');

    const sid = newStreamId();
    const foreign = signOpen('not-the-secret', { t: 'open', sid, method: 'GET', url: `${upstream.url}/echo`, headers: {}, service: 'svc', body: false, upgrade: false });
    send(foreign);
    expect((await next((x) => x.sid === sid)).code).toBe('bad_signature');

    const stale = open({}, Date.now() - 10 * 60_000);
    send(stale);
    expect((await next((x) => x.sid === stale.sid)).code).toBe('replayed');
    expect(agent.output()).toMatch(/signature check failed/);
    // The upstream saw exactly the one valid request.
    expect(upstream.seen.filter((s) => s.url === '/echo')).toHaveLength(1);
  });

  it('keeps the credential to its URL even for a validly signed frame', async () => {
    const m = open({});
    const elsewhere = signOpen(SECRET, { t: 'open', sid: m.sid, method: 'GET', url: 'http://127.0.0.1:1/steal', headers: {}, service: 'svc', body: false, upgrade: false });
    send(elsewhere);
    expect((await next((x) => x.sid === m.sid)).code).toBe('forbidden');
  });

  it('answers re-authentication, and stops for good when the hub revokes the node', async () => {
    const nonce = newNonce();
    socket.send(JSON.stringify({ t: 'reauth', nonce }));
    const proof = await next((x) => x.t === 'reauth_proof');
    expect(proof.nonce).toBe(nonce);
    expect(verifyAuthProof(SECRET, NODE, nonce, proof.proof)).toBe(true);
    socket.close(4004, 'node was deleted');
    expect(await agent.exited()).toBe(3);
    expect(agent.output()).toMatch(/deleted on the appliance/);
    void binary;
  });
});
