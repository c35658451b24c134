import { once } from 'node:events';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { rawFrameWriter } from './ws-frames.ts';

let server: WebSocketServer | null = null;
afterEach(() => server?.close());

async function pair(): Promise<{ client: WebSocket; clientSocket: Socket; peer: WebSocket; peerSocket: Socket }> {
  server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const accepted = once(server, 'connection') as Promise<[WebSocket, { socket: Socket }]>;
  const client = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
  const upgraded = once(client, 'upgrade') as Promise<[{ socket: Socket }]>;
  await once(client, 'open');
  const [res] = await upgraded;
  const [peer, req] = await accepted;
  return { client, clientSocket: res.socket, peer, peerSocket: req.socket };
}

// Parts of odd sizes, so the masking key has to carry on across part boundaries; sizes cross each
// payload-length form (7-bit, 16-bit, 64-bit).
function partsOf(total: number): Buffer[] {
  const parts: Buffer[] = [];
  let seed = total;
  for (let left = total, size = 1; left > 0; size = (size * 7 + 3) % 70_001 || 1) {
    const n = Math.min(left, size);
    parts.push(Buffer.from(Array.from({ length: n }, () => (seed = (seed * 31 + 7) & 0xff))));
    left -= n;
  }
  return parts;
}

describe('raw frame writer', () => {
  for (const masked of [true, false]) {
    it(`${masked ? 'masked (client → server)' : 'unmasked (server → client)'}: the peer reads the parts as one message`, async () => {
      const { client, clientSocket, peer, peerSocket } = await pair();
      const [from, socket, to] = masked ? [client, clientSocket, peer] : [peer, peerSocket, client];
      const write = rawFrameWriter(from, socket, masked);
      const got: Buffer[] = [];
      to.on('message', (data: Buffer) => got.push(data));
      const sizes = [0, 1, 5, 125, 126, 65_535, 65_536, 100_000, 200_000, 100_003, 300_001];
      for (const size of sizes) {
        const parts = [Buffer.from([9]), ...partsOf(size)];
        await new Promise<void>((resolve, reject) => write(parts, 1 + size, (err) => (err ? reject(err) : resolve())));
        // Interleaved with ws's own messages, order is kept.
        from.send(Buffer.from('x'));
      }
      for (let i = 0; i < 100 && got.length < sizes.length * 2; i++) await new Promise((r) => setTimeout(r, 20));
      expect(got.length).toBe(sizes.length * 2);
      sizes.forEach((size, i) => {
        expect(got[2 * i]!.equals(Buffer.concat([Buffer.from([9]), ...partsOf(size)]))).toBe(true);
        expect(got[2 * i + 1]!.toString()).toBe('x');
      });
      client.close();
    });
  }

  it('reports an error instead of writing once the socket is closed', async () => {
    const { client, clientSocket } = await pair();
    const write = rawFrameWriter(client, clientSocket, true);
    client.close();
    const err = await new Promise<Error | null | undefined>((resolve) => write([Buffer.from('a')], 1, resolve));
    expect(err).toBeInstanceOf(Error);
  });
});
