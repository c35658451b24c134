import { randomBytes } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { addAnswerHeaders, answerWith, checkHandshake, handleProtocols } from './websocket-protocol.ts';

// A real ws server using the module as the appliance does: `/as-is` leaves the choice to the default,
// `/pick/NAME` records NAME first, `/none` records that no subprotocol is named, `/headers` records
// headers for the 101, some of which must not get through.
let server: Server;
let port: number;
const wss = new WebSocketServer({ noServer: true, handleProtocols });
wss.on('headers', addAnswerHeaders);

beforeAll(async () => {
  server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const path = req.url ?? '';
    if (path.startsWith('/pick/')) answerWith(req, path.slice('/pick/'.length));
    if (path === '/none') answerWith(req, null);
    if (path === '/headers') {
      answerWith(req, 'a.v1', {
        'set-cookie': ['a=1', 'b=2'],
        'x-kept': 'yes',
        'x-split': 'v\r\nx-injected: yes',
        'bad name': 'v',
        'sec-websocket-accept': 'forged',
        connection: 'keep-alive',
        upgrade: 'h2c',
      });
    }
    wss.handleUpgrade(req, socket, head, (ws) => ws.close());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  wss.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

/** The subprotocol the handshake answered with ('' for none), or the client's error. */
const dial = (path: string, protocols: string[]) => dialFor(path, protocols).then((d) => d.protocol);
const dialFor = (path: string, protocols: string[]) =>
  new Promise<{ protocol: string; headers: IncomingMessage['headers'] }>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, protocols);
    let headers: IncomingMessage['headers'] = {};
    ws.once('upgrade', (res) => (headers = res.headers));
    ws.once('open', () => resolve({ protocol: ws.protocol, headers }));
    ws.once('error', reject);
  });

describe('handleProtocols', () => {
  it("keeps ws's default, the first protocol offered, when nothing was recorded", async () => {
    expect(await dial('/as-is', ['b.v1', 'a.v1'])).toBe('b.v1');
    expect(await dial('/as-is', [])).toBe('');
  });

  it('answers with the protocol recorded on the request, not the first offered', async () => {
    expect(await dial('/pick/a.v1', ['b.v1', 'a.v1'])).toBe('a.v1');
  });

  it('names no protocol when that was recorded, which a client that offered some refuses', async () => {
    await expect(dial('/none', ['b.v1'])).rejects.toThrow(/no subprotocol/);
    expect(await dial('/none', [])).toBe('');
  });

  it("adds the recorded headers to the 101, but never ws's own nor a line that would split it", async () => {
    const { protocol, headers } = await dialFor('/headers', ['b.v1', 'a.v1']);
    // The handshake completed, so Sec-WebSocket-Accept and Upgrade were ws's own.
    expect(protocol).toBe('a.v1');
    expect(headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(headers['x-kept']).toBe('yes');
    expect(headers.connection).toBe('Upgrade');
    expect(headers['x-split']).toBeUndefined();
    expect(headers['x-injected']).toBeUndefined();
    expect(Object.keys(headers).filter((k) => k.includes(' '))).toEqual([]);
  });

  it('keeps each request to its own choice when many handshakes interleave', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `p${i}`);
    const got = await Promise.all(names.map((n) => dial(`/pick/${n}`, ['first', n])));
    expect(got).toEqual(names);
  });
});

describe('checkHandshake', () => {
  const key = () => randomBytes(16).toString('base64');
  const good = () => ({ upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': key(), 'sec-websocket-version': '13' });

  it('accepts a well-formed handshake and lists the offered protocols', () => {
    expect(checkHandshake('GET', good())).toEqual({ ok: true, protocols: [] });
    expect(checkHandshake('GET', { ...good(), upgrade: 'WebSocket', 'sec-websocket-protocol': 'a.v1 ,b.v1' })).toEqual({ ok: true, protocols: ['a.v1', 'b.v1'] });
  });

  it('names the version it speaks when the client asked for another', () => {
    expect(checkHandshake('GET', { ...good(), 'sec-websocket-version': '8' })).toMatchObject({ ok: false, headers: { 'sec-websocket-version': '13' } });
  });

  // Each malformed request is one ws itself refuses: checked against ws's own handshake code.
  const malformed: Array<[string, Record<string, string | undefined>]> = [
    ['garbage key', { 'sec-websocket-key': 'not-a-key' }],
    ['key of 20 bytes', { 'sec-websocket-key': randomBytes(20).toString('base64') }],
    ['key with a space', { 'sec-websocket-key': `${key().slice(0, 10)} ${key().slice(11)}` }],
    ['no key', { 'sec-websocket-key': undefined }],
    ['no version', { 'sec-websocket-version': undefined }],
    ['version 99', { 'sec-websocket-version': '99' }],
    ['other upgrade', { upgrade: 'h2c' }],
    ['protocol with a space', { 'sec-websocket-protocol': 'a b' }],
    ['empty protocol in the list', { 'sec-websocket-protocol': 'a,,b' }],
    ['trailing comma', { 'sec-websocket-protocol': 'a,' }],
    ['repeated protocol', { 'sec-websocket-protocol': 'a, a' }],
    ['protocol with a slash', { 'sec-websocket-protocol': 'a/b' }],
  ];
  for (const [name, change] of malformed) {
    it(`refuses a handshake with ${name}, as ws does`, async () => {
      const headers = Object.fromEntries(Object.entries({ ...good(), ...change }).filter((e): e is [string, string] => e[1] !== undefined));
      expect(checkHandshake('GET', headers).ok).toBe(false);
      const status = await new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/as-is', headers });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on('upgrade', (_res, socket) => {
          socket.destroy();
          resolve(101);
        });
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(400);
    });
  }

  it('refuses methods other than GET', () => {
    expect(checkHandshake('POST', good()).ok).toBe(false);
  });
});
