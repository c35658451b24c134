// The hub's own reading of DATA messages on /ws (src/protocol/ws-receive.ts), against the real
// appliance: a scripted agent writes raw WebSocket frames onto its socket — DATA cut at odd places,
// control frames in between, and hostile frames — and the appliance must relay the good bytes
// intact and answer the bad ones with clean closes, staying up throughout.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startAppliance, type Appliance } from '../helpers/appliance.ts';
import { authed, json, post, setupAdmin, type Admin } from '../helpers/api.ts';
import { FRAME } from '../../src/protocol/frames.ts';
import { authProof } from '../../src/protocol/signing.ts';
import { SUBPROTOCOL } from '../../src/protocol/version.ts';

let app: Appliance;
let admin: Admin;
let node: { node_id: string; auth_token: string; signing_secret: string };

const api = (path: string, init: RequestInit = {}) => fetch(`${app.url}${path}`, authed(admin.token, init));

beforeAll(async () => {
  app = await startAppliance();
  admin = await setupAdmin(app);
  const n = await json(await api('/api/v1/nodes', { method: 'POST', body: JSON.stringify({ name: 'scripted' }) }));
  node = await json(await post(`${app.url}/api/internal/things/enroll`, { registration_token: n.registration_token }));
  const svc = await api('/api/v1/keys', { method: 'POST', body: JSON.stringify({ slug: 'scripted', endpoint_url: 'http://127.0.0.1:9/', auth_method: 'none', nodes: [{ node_id: node.node_id }] }) });
  expect(svc.status).toBe(201);
});

afterAll(async () => {
  await app?.stop();
});

/** One masked client frame (RFC 6455 §5.2, §5.3); `claim` overrides the length field. */
function frame(opcode: number, payload: Buffer, o: { fin?: boolean; rsv?: number; claim?: number } = {}): Buffer {
  const n = o.claim ?? payload.length;
  const form = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + form + 4);
  head[0] = (o.fin === false ? 0 : 0x80) | ((o.rsv ?? 0) << 4) | opcode;
  head[1] = 0x80 | (form === 0 ? n : form === 2 ? 126 : 127);
  if (form === 2) head.writeUInt16BE(n, 2);
  if (form === 8) {
    head.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    head.writeUInt32BE(n >>> 0, 6);
  }
  const key = randomBytes(4);
  key.copy(head, 2 + form);
  const body = Buffer.allocUnsafe(payload.length);
  for (let i = 0; i < payload.length; i++) body[i] = payload[i]! ^ key[i & 3]!;
  return Buffer.concat([head, body]);
}

const relay = (type: number, sid: string, payload: Buffer = Buffer.alloc(0)) => Buffer.concat([Buffer.from([type]), Buffer.from(sid, 'hex'), payload]);
const text = (msg: object) => frame(1, Buffer.from(JSON.stringify(msg)));

interface Scripted {
  ws: WebSocket;
  socket: Socket;
  inbox: Array<Record<string, unknown>>;
  closed: Promise<{ code: number; reason: string }>;
  next(t: string): Promise<Record<string, unknown>>;
}

/** Connects as the node; authenticates unless told not to. */
async function connect(authenticate = true): Promise<Scripted> {
  const ws = new WebSocket(`${app.url.replace('http', 'ws')}/ws`, SUBPROTOCOL, { perMessageDeflate: false });
  const upgraded = once(ws, 'upgrade') as Promise<[{ socket: Socket }]>;
  const inbox: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (d, isBinary) => {
    if (!isBinary) inbox.push(JSON.parse(String(d)));
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((res) => ws.on('close', (code, reason) => res({ code, reason: reason.toString() })));
  const next = async (t: string) => {
    for (let i = 0; i < 100; i++) {
      const at = inbox.findIndex((m) => m.t === t);
      if (at >= 0) return inbox.splice(at, 1)[0]!;
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 100);
      });
    }
    throw new Error(`no "${t}" frame; got ${JSON.stringify(inbox)}`);
  };
  const [[res]] = await Promise.all([upgraded, once(ws, 'open')]);
  const s: Scripted = { ws, socket: res.socket, inbox, closed, next };
  const challenge = await next('challenge');
  if (authenticate) {
    ws.send(JSON.stringify({ t: 'auth', node_id: node.node_id, auth_token: node.auth_token, nonce: challenge.nonce, proof: authProof(node.signing_secret, node.node_id, challenge.nonce as string) }));
    await next('auth_ok');
  }
  return s;
}

describe('DATA read by the hub itself', () => {
  it('relays a response body sent as DATA cut at odd places, with pings and JSON in between', async () => {
    const agent = await connect();
    const call = fetch(`${app.url}/api/v1/proxy/s/scripted/file`, { headers: { 'x-api-key': admin.token } });
    const open = await agent.next('open');
    const sid = open.sid as string;
    const body = randomBytes(700_000);
    const wire: Buffer[] = [text({ t: 'response', sid, status: 200, headers: { 'content-type': 'application/octet-stream' } })];
    // Frames of every length form, the largest a relay frame may be, and pings and a heartbeat between them.
    for (let at = 0, i = 0; at < body.length; i++) {
      const n = Math.min(body.length - at, [1, 100, 126, 5000, 65_536, 262_144][i % 6]!);
      wire.push(frame(2, relay(FRAME.data, sid, body.subarray(at, at + n))));
      if (i % 3 === 0) wire.push(frame(9, Buffer.from('p')));
      if (i % 4 === 0) wire.push(text({ t: 'ping', ts: i }));
      at += n;
    }
    wire.push(frame(2, relay(FRAME.end, sid)));
    const all = Buffer.concat(wire);
    // Written in slices that cut headers, stream ids and payloads alike.
    agent.socket.setNoDelay(true);
    for (let at = 0, k = 0; at < all.length; k++) {
      const n = [1, 2, 3, 7, 17, 18, 1000, 65_535, 9][k % 9]!;
      agent.socket.write(all.subarray(at, at + n));
      at += n;
      if (k % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    const res = await call;
    expect(res.status).toBe(200);
    const got = Buffer.from(await res.arrayBuffer());
    expect(got.length).toBe(body.length);
    expect(createHash('sha256').update(got).digest('hex')).toBe(createHash('sha256').update(body).digest('hex'));
    await agent.next('pong');
    agent.ws.close(1000);
    expect((await agent.closed).code).toBe(1000);
  });

  it('closes hostile sockets cleanly and keeps serving', async () => {
    // DATA before authenticating: the same 1008 as any other binary frame.
    const early = await connect(false);
    early.socket.write(frame(2, relay(FRAME.data, 'ab'.repeat(16), Buffer.from('x'))));
    expect((await early.closed).code).toBe(1008);

    // Reserved bits set on what looks like DATA: a protocol error, nothing after it is read.
    const rsv = await connect();
    rsv.socket.write(Buffer.concat([frame(2, relay(FRAME.data, 'ab'.repeat(16), Buffer.alloc(40)), { rsv: 4 }), text({ t: 'ping', ts: 1 })]));
    expect((await rsv.closed).code).toBe(1002);
    expect(rsv.inbox.filter((m) => m.t === 'pong')).toEqual([]);

    // A message claiming more than the socket's limit (16 MiB): too large, refused from its header.
    const big = await connect();
    big.socket.write(frame(2, relay(FRAME.data, 'ab'.repeat(16)), { claim: 17 * 1024 * 1024 }));
    expect((await big.closed).code).toBe(1009);

    // DATA for a stream nobody opened, a fragmented message and an unmasked frame.
    const odd = await connect();
    odd.socket.write(Buffer.concat([
      frame(2, relay(FRAME.data, 'cd'.repeat(16), Buffer.alloc(1000))),
      frame(2, relay(FRAME.data, 'cd'.repeat(16), Buffer.alloc(10)), { fin: false }),
      frame(9, Buffer.from('mid-message')),
      frame(0, Buffer.alloc(10)),
      text({ t: 'ping', ts: 2 }),
    ]));
    expect((await odd.next('pong')).ts).toBe(2);
    odd.socket.write(Buffer.from([0x82, 0x12, ...relay(FRAME.data, 'cd'.repeat(16), Buffer.from('x'))]));
    expect((await odd.closed).code).toBe(1002);

    // Garbage after a close frame is never read.
    const closing = await connect();
    closing.socket.write(Buffer.concat([frame(8, Buffer.from([0x03, 0xe8])), frame(2, relay(FRAME.data, 'ab'.repeat(16), Buffer.alloc(30))), Buffer.from('not a frame')]));
    expect((await closing.closed).code).toBe(1000);

    // Still up, and a well-behaved agent still gets in.
    expect((await fetch(`${app.url}/ready`)).status).toBe(200);
    const fine = await connect();
    fine.ws.send(JSON.stringify({ t: 'ping', ts: 3 }));
    expect((await fine.next('pong')).ts).toBe(3);
    fine.ws.close(1000);
    await fine.closed;
  });
});
