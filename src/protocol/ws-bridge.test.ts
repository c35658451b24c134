import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { dialForCaller, encodeWsClose, encodeWsMessage, sendableCloseCode, WsMessageDecoder } from './ws-bridge.ts';

// A real service whose subprotocol choice depends on the path: /second picks the second offered,
// /none picks none, /other answers with one nobody offered.
let server: Server;
let base: URL;
const seen: IncomingMessage['headers'][] = [];
const open = new Set<Socket>();

beforeAll(async () => {
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (offered, req) => {
    if (req.url === '/second') return [...offered][1] ?? false;
    if (req.url === '/other') return 'never.offered';
    return false;
  } });
  wss.on('headers', (lines) => lines.push('Set-Cookie: s=1', 'X-Service: yes'));
  server = createServer();
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    seen.push(req.headers);
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    wss.handleUpgrade(req, socket, head, (ws) => ws.send('hi'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});

afterAll(async () => {
  server.closeAllConnections();
  for (const s of open) s.destroy();
  await new Promise((r) => server.close(r));
});

const dial = (path: string, offered?: string) => {
  const callerKey = 'dGhlIHNhbXBsZSBub25jZQ==';
  const headers: Record<string, string> = { 'sec-websocket-key': callerKey, 'sec-websocket-version': '13', 'x-kept': 'yes' };
  if (offered !== undefined) headers['sec-websocket-protocol'] = offered;
  const { ws, answer } = dialForCaller(new URL(path, base), headers, {});
  return new Promise<{ protocol: string | null; first: string; headers: Record<string, unknown> }>((resolve, reject) => {
    ws.once('message', (d) => {
      resolve({ ...answer(), first: String(d) });
      ws.close();
    });
    ws.once('error', reject);
  });
};

describe('dialForCaller', () => {
  it("answers with the service's choice among those offered", async () => {
    const got = await dial('/second', 'a.v1, b.v1');
    expect(got).toMatchObject({ protocol: 'b.v1', first: 'hi' });
    // The rest of the 101's end-to-end headers come with it; the handshake's own do not.
    expect(got.headers).toEqual({ 'set-cookie': ['s=1'], 'x-service': 'yes' });
    const h = seen.at(-1)!;
    expect(h['sec-websocket-protocol']).toBe('a.v1, b.v1');
    // The caller's own handshake fields are not reused; other headers go on.
    expect(h['sec-websocket-key']).not.toBe('dGhlIHNhbXBsZSBub25jZQ==');
    expect(h['x-kept']).toBe('yes');
  });

  it('opens with no subprotocol when the service chose none of those offered (RFC 6455 §4.1)', async () => {
    expect(await dial('/none', 'a.v1')).toMatchObject({ protocol: null, first: 'hi' });
    expect(await dial('/none')).toMatchObject({ protocol: null, first: 'hi' });
  });

  it('fails when the service names a protocol that was not offered, and lets go of its socket', async () => {
    await expect(dial('/other', 'a.v1')).rejects.toThrow();
    const end = Date.now() + 5_000;
    while (open.size && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(open.size).toBe(0);
  });
});

describe('relayed WebSocket records', () => {
  it('carries a close record only between peers that announced ws_close', () => {
    const close = encodeWsClose(4001, Buffer.from('bye'));
    expect(new WsMessageDecoder(true).push(Buffer.concat([encodeWsMessage(Buffer.from('hi'), false), close]))).toEqual([
      { data: Buffer.from('hi'), isBinary: false },
      { close: { code: 4001, reason: Buffer.from('bye') } },
    ]);
    // A peer that never announced it gets none, and one that arrives anyway is malformed.
    expect(() => new WsMessageDecoder().push(close)).toThrow(/malformed/);
  });

  it('refuses hostile close records: too short, too long, unknown kinds', () => {
    const record = (kind: number, body: Buffer) => Buffer.concat([Buffer.from([kind, 0, 0, 0, body.length]), body]);
    expect(() => new WsMessageDecoder(true).push(record(2, Buffer.from([3])))).toThrow(/malformed/);
    expect(() => new WsMessageDecoder(true).push(record(2, Buffer.alloc(126)))).toThrow(/malformed/);
    expect(() => new WsMessageDecoder(true).push(record(3, Buffer.alloc(2)))).toThrow(/malformed/);
    // A reason longer than a close frame may carry is cut to 123 bytes when encoded.
    const long = new WsMessageDecoder(true).push(encodeWsClose(4000, Buffer.alloc(300, 0x61)));
    expect(long[0]).toMatchObject({ close: { code: 4000 } });
    expect((long[0] as { close: { reason: Buffer } }).close.reason.length).toBe(123);
  });

  it('turns codes that may not be sent into 1000', () => {
    for (const code of [1005, 1006, 1015, 1004, 999, 2000, 5000]) expect(sendableCloseCode(code), String(code)).toBe(1000);
    for (const code of [1000, 1001, 1011, 3000, 4001, 4999]) expect(sendableCloseCode(code), String(code)).toBe(code);
  });
});
