import { describe, expect, it } from 'vitest';
import { encodeFrame, FRAME, newStreamId } from './frames.ts';
import { StreamMux, StreamResetError } from './streams.ts';

/** Two muxes joined back to back; frames are delivered asynchronously, as a socket would. */
function pair(window = 64 * 1024) {
  const muxes: { a?: StreamMux; b?: StreamMux } = {};
  const deliver = (to: () => StreamMux) => (buf: Buffer, done: (err?: Error) => void) => {
    setImmediate(() => {
      to().handleBinary(buf);
      done();
    });
  };
  const a = (muxes.a = new StreamMux(deliver(() => muxes.b!), { window, maxFrame: 16 * 1024 }));
  const b = (muxes.b = new StreamMux(deliver(() => muxes.a!), { window, maxFrame: 16 * 1024 }));
  return { a, b };
}

async function readAll(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

describe('stream multiplexer', () => {
  it('carries many interleaved streams intact in both directions', async () => {
    const { a, b } = pair();
    const jobs = Array.from({ length: 20 }, async (_, i) => {
      const id = newStreamId();
      const sa = a.create(id);
      const sb = b.create(id);
      const payload = Buffer.alloc(100_000 + i * 997, i);
      const echo = (async () => {
        const got = await readAll(sb);
        await sb.write(got);
        sb.end();
      })();
      const sending = (async () => {
        await sa.write(payload);
        sa.end();
      })();
      const back = await readAll(sa);
      await Promise.all([echo, sending]);
      expect(back.equals(payload)).toBe(true);
    });
    await Promise.all(jobs);
    expect(a.size).toBe(0);
    expect(b.size).toBe(0);
  });

  it('holds a fast writer back to the window while nobody reads', async () => {
    const window = 64 * 1024;
    const { a, b } = pair(window);
    const id = newStreamId();
    const sa = a.create(id);
    const sb = b.create(id);
    let written = 0;
    const writer = (async () => {
      for (let i = 0; i < 100; i++) {
        await sa.write(Buffer.alloc(8 * 1024));
        written += 8 * 1024;
      }
      sa.end();
    })();
    await new Promise((r) => setTimeout(r, 50));
    expect(written).toBeLessThanOrEqual(window);
    expect(sb.buffered).toBeLessThanOrEqual(window);
    const all = await readAll(sb);
    await writer;
    expect(all.length).toBe(800 * 1024);
  });

  it('resets a stream whose peer sends more than it was granted', async () => {
    const { b } = pair(1024);
    const id = newStreamId();
    const sb = b.create(id);
    b.handleBinary(encodeFrame(FRAME.data, id, Buffer.alloc(2048)));
    await expect(readAll(sb)).rejects.toThrow(/flow control/);
  });

  it('propagates a reset to the peer reader and writer', async () => {
    const { a, b } = pair(1024);
    const id = newStreamId();
    const sa = a.create(id);
    const sb = b.create(id);
    const writing = sa.write(Buffer.alloc(10_000));
    sb.reset('caller went away');
    await expect(writing).rejects.toBeInstanceOf(StreamResetError);
    await expect(readAll(sa)).rejects.toThrow('caller went away');
  });

  it('fails every stream when the connection goes, and rejects malformed frames', async () => {
    const { a } = pair();
    const s = a.create(newStreamId());
    a.closeAll('node disconnected');
    await expect(readAll(s)).rejects.toThrow('node disconnected');
    expect(a.handleBinary(Buffer.alloc(3))).toBe(false);
    expect(a.handleBinary(Buffer.concat([Buffer.from([9]), Buffer.alloc(16)]))).toBe(false);
    expect(() => a.create(newStreamId())).toThrow();
  });

  it('resets the stream when its reader stops early', async () => {
    const { a, b } = pair();
    const id = newStreamId();
    const sa = a.create(id);
    const sb = b.create(id);
    const writing = sa.write(Buffer.alloc(500_000)).catch((e) => e);
    for await (const _ of sb) break;
    expect(await writing).toBeInstanceOf(StreamResetError);
  });
});
