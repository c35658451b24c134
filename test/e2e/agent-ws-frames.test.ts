// The agent's own reading of DATA messages (src/protocol/ws-receive.ts), against a scripted hub in
// this process that writes raw frames onto its socket: a request body sent as DATA cut at odd
// places with control frames in between must reach the local service intact, and a malformed frame
// must make the agent close with 1002 and reconnect, not crash.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { tempDir } from '../helpers/appliance.ts';
import { agentCli, startAgent, type AgentProcess } from '../helpers/agent.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { FRAME, newStreamId } from '../../src/protocol/frames.ts';
import { newNonce, signOpen } from '../../src/protocol/signing.ts';

const NODE = 'node-frames';
const SECRET = randomBytes(32).toString('base64url');
const AUTH = `nx_nauth_${randomBytes(32).toString('base64url')}`;
const TOKEN = `upstream-${randomBytes(8).toString('hex')}`;

let server: Server;
let hubUrl: string;
let upstream: Upstream;
let agent: AgentProcess;
const home = tempDir('nexus-agent-frames-');

interface Session { ws: WebSocket; socket: Socket; inbox: Array<Record<string, unknown>>; data: Buffer[]; closed: Promise<number> }
const sessions: Session[] = [];

async function session(n: number): Promise<Session> {
  for (let i = 0; i < 200 && sessions.length < n; i++) await new Promise((r) => setTimeout(r, 50));
  expect(sessions.length).toBeGreaterThanOrEqual(n);
  return sessions[n - 1]!;
}

async function next(s: Session, pred: (m: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  for (let i = 0; i < 200; i++) {
    const at = s.inbox.findIndex(pred);
    if (at >= 0) return s.inbox.splice(at, 1)[0]!;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no matching message; inbox: ${JSON.stringify(s.inbox)}`);
}

/** One unmasked server frame (RFC 6455 §5.2). */
function frame(opcode: number, payload: Buffer, o: { rsv?: number } = {}): Buffer {
  const n = payload.length;
  const form = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + form);
  head[0] = 0x80 | ((o.rsv ?? 0) << 4) | opcode;
  head[1] = form === 0 ? n : form === 2 ? 126 : 127;
  if (form === 2) head.writeUInt16BE(n, 2);
  if (form === 8) head.writeUInt32BE(n, 6);
  return Buffer.concat([head, payload]);
}
const relay = (type: number, sid: string, payload: Buffer = Buffer.alloc(0)) => Buffer.concat([Buffer.from([type]), Buffer.from(sid, 'hex'), payload]);

beforeAll(async () => {
  upstream = await startUpstream(TOKEN);
  server = createServer((req, res) => {
    if (req.url === '/api/internal/things/enroll' && req.method === 'POST') {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ node_id: NODE, auth_token: AUTH, signing_secret: SECRET }));
      return;
    }
    res.writeHead(404).end();
  });
  const wss = new WebSocketServer({ server, path: '/ws', perMessageDeflate: false });
  wss.on('connection', (ws, req) => {
    const s: Session = { ws, socket: req.socket, inbox: [], data: [], closed: new Promise((r) => ws.on('close', (code) => r(code))) };
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => {
      if (isBinary) return void s.data.push(Buffer.from(data as Buffer));
      const m = JSON.parse(String(data)) as Record<string, unknown>;
      if (m.t === 'auth') {
        ws.send(JSON.stringify({ t: 'auth_ok', node_id: NODE, heartbeat_seconds: 30, offline_after_seconds: 90 }));
        sessions.push(s);
        return;
      }
      s.inbox.push(m);
    });
    ws.send(JSON.stringify({ t: 'challenge', nonce: newNonce() }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hubUrl = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws`;
  expect((await agentCli(home, ['enroll', '--url', hubUrl, '--token', 'nx_nreg_frames'])).code).toBe(0);
  const c = await agentCli(home, ['credentials', 'add', '--service', 'svc', '--url', upstream.url, '--secret-format', 'bearer', '--secret-env', 'S'], { S: TOKEN });
  expect(c.code, c.stderr).toBe(0);
  agent = startAgent(home);
  await agent.waitFor(/Connected to hub/);
});

afterAll(async () => {
  await agent?.stop();
  server?.closeAllConnections();
  server?.close();
  await upstream?.close();
});

describe('DATA read by the agent itself', () => {
  it('uploads a body sent as DATA cut at odd places, with pings and JSON in between, intact', async () => {
    const s = await session(1);
    const sid = newStreamId();
    s.ws.send(JSON.stringify(signOpen(SECRET, { t: 'open', sid, method: 'POST', url: `${upstream.url}/upload`, headers: { 'content-type': 'application/octet-stream' }, service: 'svc', body: true, upgrade: false })));
    const body = randomBytes(900_000);
    const wire: Buffer[] = [];
    for (let at = 0, i = 0; at < body.length; i++) {
      const n = Math.min(body.length - at, [1, 125, 126, 4000, 65_536, 262_144][i % 6]!);
      wire.push(frame(2, relay(FRAME.data, sid, body.subarray(at, at + n))));
      if (i % 3 === 0) wire.push(frame(9, Buffer.from('hub ping')));
      if (i % 4 === 0) wire.push(frame(1, Buffer.from(JSON.stringify({ t: 'pong', ts: Date.now() }))));
      at += n;
    }
    wire.push(frame(2, relay(FRAME.end, sid)));
    const all = Buffer.concat(wire);
    // Within the 1 MiB window the agent grants at the start, so no credit is needed from it first.
    for (let at = 0, k = 0; at < all.length; k++) {
      const n = [1, 2, 17, 18, 19, 999, 65_535, 3][k % 8]!;
      s.socket.write(all.subarray(at, at + n));
      at += n;
      if (k % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    const res = await next(s, (m) => m.t === 'response' && m.sid === sid);
    expect(res.status).toBe(200);
    for (let i = 0; i < 200 && !s.data.some((d) => d[0] === FRAME.end); i++) await new Promise((r) => setTimeout(r, 25));
    const answer = Buffer.concat(s.data.filter((d) => d[0] === FRAME.data && d.subarray(1, 17).toString('hex') === sid).map((d) => d.subarray(17)));
    expect(JSON.parse(answer.toString())).toEqual({ bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') });
  });

  it('closes with 1002 on a malformed frame, stays up and reconnects', async () => {
    const s = await session(1);
    const mark = agent.output().length;
    s.socket.write(Buffer.concat([
      frame(2, relay(FRAME.data, newStreamId(), Buffer.alloc(30)), { rsv: 2 }),
      frame(2, relay(FRAME.data, newStreamId(), Buffer.alloc(30))),
    ]));
    expect(await s.closed).toBe(1002);
    await agent.waitFor(/Connected to hub/, 20_000, mark);
    const again = await session(2);
    // Garbage after a close frame is never read: a clean close, then another reconnect.
    again.socket.write(Buffer.concat([frame(8, Buffer.from([0x03, 0xe9])), Buffer.from('not a frame at all')]));
    expect(await again.closed).toBe(1001);
    await session(3);
    expect(agent.output()).not.toMatch(/TypeError|RangeError|uncaught/i);
  });
});
