import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import * as wsModule from 'ws';
import WebSocket, { WebSocketServer } from 'ws';
import { FRAME } from './frames.ts';
import { LIMITS } from './version.ts';
import { FrameSplitter, splitDataFrames } from './ws-receive.ts';

// ---- frames built by hand (RFC 6455 §5.2) ----

interface FrameOpts {
  fin?: boolean;
  rsv?: number;
  /** A masking key (client → server) or none. */
  key?: Buffer | null;
  /** Claimed payload length when it differs from the bytes sent (hostile frames). */
  claim?: number;
}

function wsFrame(opcode: number, payload: Buffer, o: FrameOpts = {}): Buffer {
  const n = o.claim ?? payload.length;
  const form = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + form + (o.key ? 4 : 0));
  head[0] = (o.fin === false ? 0 : 0x80) | ((o.rsv ?? 0) << 4) | opcode;
  head[1] = (o.key ? 0x80 : 0) | (form === 0 ? n : form === 2 ? 126 : 127);
  if (form === 2) head.writeUInt16BE(n, 2);
  if (form === 8) {
    head.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    head.writeUInt32BE(n >>> 0, 6);
  }
  let body = payload;
  if (o.key) {
    o.key.copy(head, 2 + form);
    body = Buffer.allocUnsafe(payload.length);
    for (let i = 0; i < payload.length; i++) body[i] = payload[i]! ^ o.key[i & 3]!;
  }
  return Buffer.concat([head, body]);
}

const SID = 'a1'.repeat(16);
const SID2 = '5c'.repeat(16);

function relay(type: number, sid: string, payload: Uint8Array = Buffer.alloc(0)): Buffer {
  return Buffer.concat([Buffer.from([type]), Buffer.from(sid, 'hex'), payload]);
}

function bytes(n: number, seed = n): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = seed = (seed * 31 + 7) & 0xff;
  return b;
}

// ---- a splitter wired to a real ws Receiver, recording what each side got, in order ----

type Event = { kind: 'data'; sid: string; payload: string } | { kind: 'message'; binary: boolean; payload: string } | { kind: 'ping' | 'pong'; payload: string } | { kind: 'close'; code: number } | { kind: 'error'; code: number };

/** Payloads compare by length and digest (comparing megabytes element by element is slow). */
const digest = (b: Buffer) => `${b.length}:${createHash('sha256').update(b).digest('hex').slice(0, 16)}`;

interface ReceiverLike extends Writable {
  on(event: string, fn: (...args: never[]) => void): this;
}
// ws exports its parser, though its type declarations do not say so.
const Receiver = (wsModule as unknown as { Receiver: new (o: object) => ReceiverLike }).Receiver;

function harness(masked: boolean, maxPayload = 1024 * 1024) {
  const events: Event[] = [];
  const receiver = new Receiver({ isServer: masked, maxPayload });
  receiver.on('message', (data: Buffer, binary: boolean) => events.push({ kind: 'message', binary, payload: digest(data) }));
  receiver.on('ping', (data: Buffer) => events.push({ kind: 'ping', payload: digest(data) }));
  receiver.on('pong', (data: Buffer) => events.push({ kind: 'pong', payload: digest(data) }));
  receiver.on('conclude', (code: number) => events.push({ kind: 'close', code }));
  receiver.on('error', (err: Error & { [k: symbol]: number }) => {
    const sym = Object.getOwnPropertySymbols(err).find((s) => s.description === 'status-code');
    events.push({ kind: 'error', code: sym ? err[sym]! : 0 });
  });
  let current: { sid: string; parts: Buffer[]; left: number } | null = null;
  const splitter = new FrameSplitter({
    masked,
    maxPayload,
    forward: (b) => receiver.write(b),
    halted: () => receiver.writableEnded || receiver.destroyed || receiver.errored != null,
    sink: {
      begin: (sid, length) => {
        expect(current).toBeNull();
        current = { sid, parts: [], left: length };
      },
      piece: (b) => {
        expect(current).not.toBeNull();
        current!.parts.push(Buffer.from(b));
        current!.left -= b.length;
        expect(current!.left).toBeGreaterThanOrEqual(0);
        if (current!.left === 0) {
          events.push({ kind: 'data', sid: current!.sid, payload: digest(Buffer.concat(current!.parts)) });
          current = null;
        }
      },
    },
  });
  return { events, splitter, receiver, pending: () => current };
}

/**
 * Feeds a copy of `wire` (both parsers unmask in place, as they may with socket reads) cut at the
 * given offsets; errors surface on the next tick, so wait one.
 */
async function feed(h: ReturnType<typeof harness>, original: Buffer, cuts: number[]): Promise<void> {
  const wire = Buffer.from(original);
  let from = 0;
  for (const c of [...cuts, wire.length]) {
    if (c > from) h.splitter.push(wire.subarray(from, c));
    from = Math.max(from, c);
  }
  await new Promise((r) => setImmediate(r));
}

const key = () => bytes(4, Math.floor(Math.random() * 256));

describe('frame splitter', () => {
  for (const masked of [true, false]) {
    const side = masked ? 'masked (hub side)' : 'unmasked (agent side)';
    const k = () => (masked ? key() : null);

    it(`${side}: DATA frames of every length form reach the sink, payload intact`, async () => {
      // 7-bit (≤ 125), 16-bit (126..65535) and 64-bit lengths, the largest frame a sender makes.
      for (const n of [1, 108, 109, 110, 1000, 65535 - 17, 65536 - 17, 65536, LIMITS.maxFramePayload]) {
        const h = harness(masked);
        const payload = bytes(n);
        await feed(h, wsFrame(2, relay(FRAME.data, SID, payload), { key: k() }), []);
        expect(h.events).toEqual([{ kind: 'data', sid: SID, payload: digest(payload) }]);
      }
    });

    it(`${side}: a mixed sequence split at every byte boundary gives the same events`, async () => {
      const wire = Buffer.concat([
        wsFrame(1, Buffer.from('{"t":"ping","ts":1}'), { key: k() }),
        wsFrame(2, relay(FRAME.data, SID, bytes(300)), { key: k() }),
        wsFrame(9, Buffer.from('hi'), { key: k() }),
        wsFrame(2, relay(FRAME.credit, SID, Buffer.from([0, 4, 0, 0])), { key: k() }),
        wsFrame(2, relay(FRAME.data, SID2, bytes(1)), { key: k() }),
        wsFrame(2, relay(FRAME.end, SID), { key: k() }),
        wsFrame(2, relay(FRAME.data, SID, Buffer.alloc(0)), { key: k() }), // empty DATA: ws delivers it
        wsFrame(10, Buffer.alloc(0), { key: k() }),
        wsFrame(2, relay(FRAME.data, SID2, bytes(70_000)), { key: k() }),
      ]);
      const want = harness(masked);
      await feed(want, wire, []);
      expect(want.events.map((e) => e.kind)).toEqual(['message', 'data', 'ping', 'message', 'data', 'message', 'message', 'pong', 'data']);
      for (let cut = 1; cut < wire.length; cut += cut < 500 ? 1 : 997) {
        const h = harness(masked);
        await feed(h, wire, [cut]);
        expect(h.events, `cut at ${cut}`).toEqual(want.events);
      }
      const oneByOne = harness(masked);
      await feed(oneByOne, wire.subarray(0, 2000), Array.from({ length: 2000 }, (_, i) => i));
      expect(oneByOne.events).toEqual(want.events.slice(0, oneByOne.events.length));
      expect(oneByOne.events.length).toBe(8);
    });

    it(`${side}: a fragmented message goes to ws whole, control frames in between included`, async () => {
      const h = harness(masked);
      const first = relay(FRAME.data, SID, bytes(40));
      await feed(h, Buffer.concat([
        wsFrame(2, first.subarray(0, 30), { fin: false, key: k() }),
        wsFrame(9, Buffer.from('mid'), { key: k() }),
        wsFrame(0, first.subarray(30), { key: k() }),
        wsFrame(2, relay(FRAME.data, SID, bytes(20)), { key: k() }),
      ]), [5, 33, 40]);
      expect(h.events).toEqual([
        { kind: 'ping', payload: digest(Buffer.from('mid')) },
        { kind: 'message', binary: true, payload: digest(first) },
        { kind: 'data', sid: SID, payload: digest(bytes(20)) },
      ]);
    });

    it(`${side}: a data frame while a fragmented message is open is ws's protocol error, not ours`, async () => {
      const h = harness(masked);
      await feed(h, Buffer.concat([
        wsFrame(2, relay(FRAME.data, SID, bytes(30)), { fin: false, key: k() }),
        wsFrame(2, relay(FRAME.data, SID, bytes(30)), { key: k() }),
        wsFrame(2, relay(FRAME.data, SID, bytes(30)), { key: k() }),
      ]), []);
      expect(h.events).toEqual([{ kind: 'error', code: 1002 }]);
    });

    it(`${side}: DATA larger than a relay frame goes to ws; beyond maxPayload it closes with 1009`, async () => {
      const big = bytes(LIMITS.maxFramePayload + 1);
      const h = harness(masked);
      await feed(h, wsFrame(2, relay(FRAME.data, SID, big), { key: k() }), [3000]);
      expect(h.events).toEqual([{ kind: 'message', binary: true, payload: digest(relay(FRAME.data, SID, big)) }]);

      const small = harness(masked, 1000);
      await feed(small, Buffer.concat([
        wsFrame(2, relay(FRAME.data, SID, bytes(1200)), { key: k() }),
        wsFrame(2, relay(FRAME.data, SID, bytes(10)), { key: k() }),
      ]), [1]);
      expect(small.events).toEqual([{ kind: 'error', code: 1009 }]);

      // A 64-bit length beyond 2^53: refused from its header alone, nothing after it is read.
      const huge = harness(masked, 0);
      const head = wsFrame(2, Buffer.alloc(0), { key: k(), claim: 2 ** 40 });
      head.writeUInt32BE(0xffffffff, 2);
      await feed(huge, Buffer.concat([head, relay(FRAME.data, SID, bytes(50))]), []);
      expect(huge.events).toEqual([{ kind: 'error', code: 1009 }]);
    });

    it(`${side}: reserved bits, bad opcodes and the wrong masking close with 1002 and stop reading`, async () => {
      const hostile = [
        wsFrame(2, relay(FRAME.data, SID, bytes(30)), { key: k(), rsv: 4 }), // RSV1 without an extension
        wsFrame(2, relay(FRAME.data, SID, bytes(30)), { key: k(), rsv: 1 }), // RSV3
        wsFrame(3, relay(FRAME.data, SID, bytes(30)), { key: k() }), // reserved opcode
        wsFrame(0, relay(FRAME.data, SID, bytes(30)), { key: k() }), // continuation with nothing to continue
        wsFrame(9, Buffer.alloc(126), { key: k() }), // control frame over 125 bytes
        wsFrame(9, Buffer.from('x'), { key: k(), fin: false }), // fragmented control frame
        wsFrame(2, relay(FRAME.data, SID, bytes(30)), { key: masked ? null : key() }), // masking the other way
      ];
      for (const [i, bad] of hostile.entries()) {
        const h = harness(masked);
        await feed(h, Buffer.concat([bad, wsFrame(2, relay(FRAME.data, SID, bytes(20)), { key: k() })]), [1]);
        expect(h.events, `frame ${i}`).toEqual([{ kind: 'error', code: 1002 }]);
        expect(h.pending()).toBeNull();
      }
    });

    it(`${side}: nothing after a close frame is read`, async () => {
      const h = harness(masked);
      const close = Buffer.concat([Buffer.from([0x0f, 0xa1]), Buffer.from('bye')]); // 4001
      await feed(h, Buffer.concat([
        wsFrame(2, relay(FRAME.data, SID, bytes(10)), { key: k() }),
        wsFrame(8, close, { key: k() }),
        wsFrame(2, relay(FRAME.data, SID, bytes(10)), { key: k() }),
        Buffer.from('garbage that is no frame at all'),
      ]), [40]);
      expect(h.events).toEqual([{ kind: 'data', sid: SID, payload: digest(bytes(10)) }, { kind: 'close', code: 4001 }]);
    });
  }
});

// ---- on a real connection ----

let server: WebSocketServer | null = null;
afterEach(() => server?.close());

async function pair(): Promise<{ client: WebSocket; clientSocket: Socket; peer: WebSocket }> {
  server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 1024 * 1024 });
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const accepted = once(server, 'connection') as Promise<[WebSocket]>;
  const client = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
  const upgraded = once(client, 'upgrade') as Promise<[{ socket: Socket }]>;
  await once(client, 'open');
  const [res] = await upgraded;
  const [peer] = await accepted;
  return { client, clientSocket: res.socket, peer };
}

function collect(ws: WebSocket) {
  const data: Array<{ sid: string; length: number; bytes: Buffer[] }> = [];
  const messages: Buffer[] = [];
  expect(splitDataFrames(ws, {
    begin: (sid, length) => data.push({ sid, length, bytes: [] }),
    piece: (b) => data.at(-1)!.bytes.push(b),
  })).toBe(true);
  ws.on('message', (m: Buffer) => messages.push(m));
  return { data, messages };
}

describe('splitDataFrames on a ws connection', () => {
  it('both ways: DATA as pieces of the socket reads, other messages as before, in order', async () => {
    const { client, peer } = await pair();
    const atServer = collect(peer);
    const atClient = collect(client);
    const payload = bytes(LIMITS.maxFramePayload, 3);
    for (const [from, to] of [[client, atServer], [peer, atClient]] as const) {
      from.send(relay(FRAME.data, SID, payload));
      from.send('{"t":"x"}');
      from.send(relay(FRAME.end, SID));
      from.ping('p');
      from.send(relay(FRAME.data, SID2, payload.subarray(0, 5)));
      for (let i = 0; i < 200 && to.data.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
      expect(to.data.map((d) => [d.sid, d.length])).toEqual([[SID, payload.length], [SID2, 5]]);
      expect(digest(Buffer.concat(to.data[0]!.bytes))).toBe(digest(payload));
      expect(digest(Buffer.concat(to.data[1]!.bytes))).toBe(digest(payload.subarray(0, 5)));
      expect(to.messages.map((m) => m.toString('hex'))).toEqual([Buffer.from('{"t":"x"}').toString('hex'), relay(FRAME.end, SID).toString('hex')]);
    }
    client.close(4001, 'done');
    const [code] = await once(peer, 'close');
    expect(code).toBe(4001);
  });

  it('a hostile client frame closes the connection with 1002; the server keeps running', async () => {
    const { client, clientSocket, peer } = await pair();
    const atServer = collect(peer);
    peer.on('error', () => {});
    const closed = once(client, 'close');
    clientSocket.write(Buffer.concat([
      wsFrame(2, relay(FRAME.data, SID, bytes(10)), { key: key() }),
      wsFrame(2, relay(FRAME.data, SID, bytes(10)), { key: key(), rsv: 2 }),
      wsFrame(2, relay(FRAME.data, SID, bytes(10)), { key: key() }),
    ]));
    const [code] = await closed;
    expect(code).toBe(1002);
    expect(atServer.data.map((d) => d.sid)).toEqual([SID]);
    // The server still accepts connections.
    const again = await pair();
    again.client.close();
  });

  it('leaves a socket alone that has no ws receiver (the long-poll transport)', () => {
    expect(splitDataFrames({} as WebSocket, { begin: () => {}, piece: () => {} })).toBe(false);
  });
});
