import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame, FRAME, newStreamId } from './frames.ts';
import { MAX_WINDOW, StreamMux, StreamResetError, type MuxOptions, type Stream } from './streams.ts';

/**
 * Two muxes joined back to back; frames are delivered asynchronously, as a socket would. Windows do
 * not grow unless `a` or `b` say how far (their maxWindow).
 */
function pair(window = 64 * 1024, a: MuxOptions = {}, b: MuxOptions = {}) {
  const muxes: { a?: StreamMux; b?: StreamMux } = {};
  const deliver = (to: () => StreamMux) => (buf: Buffer, done: (err?: Error) => void) => {
    setImmediate(() => {
      to().handleBinary(buf);
      done();
    });
  };
  const opts = { window, maxWindow: window, maxFrame: 16 * 1024 };
  muxes.a = new StreamMux(deliver(() => muxes.b!), { ...opts, ...a });
  muxes.b = new StreamMux(deliver(() => muxes.a!), { ...opts, ...b });
  return { a: muxes.a, b: muxes.b };
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

  it('hands over a body that has fully arrived in one piece, and only then', async () => {
    const { a, b } = pair();
    const id = newStreamId();
    const sa = a.create(id);
    const sb = b.create(id);
    sb.send(Buffer.from('he'));
    sb.send(Buffer.from('llo'));
    // Not ended yet: nothing is taken, and the stream still reads as usual afterwards.
    await new Promise((r) => setTimeout(r, 20));
    expect(sa.takeWhole()).toBeNull();
    sb.end();
    await new Promise((r) => setTimeout(r, 20));
    sa.end();
    const whole = sa.takeWhole();
    expect(whole?.toString()).toBe('hello');
    // Taken: no second reader, and the stream is finished on this side once both ends are sent.
    expect(sa.takeWhole()).toBeNull();
    expect(() => sa.readable()).toThrow(/already being read/);
    expect(sa.finished).toBe(true);

    // A stream already being read is left to its reader.
    const id2 = newStreamId();
    const sa2 = a.create(id2);
    const sb2 = b.create(id2);
    const reading = readAll(sa2.readable());
    sb2.send(Buffer.from('x'));
    sb2.end();
    await new Promise((r) => setTimeout(r, 20));
    expect(sa2.takeWhole()).toBeNull();
    sa2.end();
    expect((await reading).toString()).toBe('x');
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

  it('batches chunks written in one turn of the event loop into one frame, and sends a lone chunk at once', async () => {
    const frames: Buffer[] = [];
    const mux = new StreamMux((buf, done) => {
      frames.push(buf);
      setImmediate(done);
    }, { window: 1024 * 1024, maxFrame: 64 * 1024 });
    const s = mux.create(newStreamId());
    for (let i = 0; i < 10; i++) expect(s.send(Buffer.alloc(1000, i))).toBe(true);
    expect(frames).toHaveLength(0);
    await new Promise((r) => setImmediate(r));
    expect(frames.map((f) => decodeFrame(f)!.payload.length)).toEqual([10_000]);
    // A whole frame's worth leaves without waiting for the loop.
    s.send(Buffer.alloc(100 * 1024));
    expect(frames.map((f) => decodeFrame(f)!.payload.length)).toEqual([10_000, 64 * 1024]);
    s.end();
    expect(frames.slice(2).map((f) => [decodeFrame(f)!.type, decodeFrame(f)!.payload.length])).toEqual([[FRAME.data, 36 * 1024], [FRAME.end, 0]]);
  });

  it('pipes a Readable through a stream into a Readable, holding both ends to the slowest', async () => {
    const window = 64 * 1024;
    const { a, b } = pair(window);
    const id = newStreamId();
    const sa = a.create(id);
    const sb = b.create(id);
    let produced = 0;
    const source = new Readable({
      read() {
        produced += 8 * 1024;
        this.push(produced > 2 * 1024 * 1024 ? null : Buffer.alloc(8 * 1024, produced % 251));
      },
    });
    sa.pipeFrom(source);
    const sink = sb.readable();
    // Nobody reads: the source is held back to about the window plus the buffers on the way.
    await new Promise((r) => setTimeout(r, 100));
    expect(produced).toBeLessThan(window + 256 * 1024);
    expect(sb.buffered).toBeLessThanOrEqual(window);
    let got = 0;
    await pipeline(sink, new Writable({
      write(chunk: Buffer, _e, done) {
        got += chunk.length;
        setImmediate(done);
      },
    }));
    expect(got).toBe(2 * 1024 * 1024);
    sb.end();
    await new Promise((r) => setTimeout(r, 20));
    expect(a.size).toBe(0);
    expect(b.size).toBe(0);
  });

  it('lets a stream go when its reader stops after the last chunk, with both ENDs already through', async () => {
    // A relayed WebSocket's reader stops at the close record, which is the last thing the peer sends
    // before its END; the stream must leave the mux then, not linger until the connection goes.
    const { a, b } = pair();
    const id = newStreamId();
    const sa = a.create(id);
    const sb = b.create(id);
    let finishedB = false;
    sb.whenFinished(() => (finishedB = true));
    sb.end();
    await sa.write(Buffer.from('last'));
    sa.end();
    for (let i = 0; i < 100 && (a.size > 0 || sb.buffered === 0); i++) await new Promise((r) => setImmediate(r));
    expect(a.size).toBe(0); // a: sent END, got b's END
    const got: Buffer[] = [];
    for await (const c of sb) {
      got.push(Buffer.from(c));
      break;
    }
    expect(Buffer.concat(got).toString()).toBe('last');
    expect(sb.failed).toBeNull();
    expect(finishedB).toBe(true);
    expect(b.size).toBe(0);
  });

  it('lets a stream go when its Readable is destroyed after the last chunk and the END', async () => {
    const { a, b } = pair();
    const id = newStreamId();
    const sa = a.create(id);
    const sb = b.create(id);
    sb.end();
    await sa.write(Buffer.from('last'));
    sa.end();
    for (let i = 0; i < 100 && (a.size > 0 || sb.buffered === 0); i++) await new Promise((r) => setImmediate(r));
    const sink = sb.readable();
    await new Promise((r) => sink.once('readable', r));
    expect(sink.read()?.toString()).toBe('last');
    sink.destroy();
    expect(sb.failed).toBeNull();
    expect(b.size).toBe(0);
  });

  it('resets the stream when its Readable is destroyed early, and the source with it', async () => {
    const { a, b } = pair();
    const id = newStreamId();
    const sa = a.create(id);
    const sb = b.create(id);
    const source = new PassThrough();
    sa.pipeFrom(source);
    source.write(Buffer.alloc(1000));
    const sink = sb.readable();
    await new Promise((r) => sink.once('readable', r));
    sink.destroy();
    await new Promise((r) => setTimeout(r, 20));
    expect(sa.failed?.byPeer).toBe(true);
    expect(source.destroyed).toBe(true);
  });

  it('ignores a reset once the stream has finished both ways', async () => {
    const { a, b } = pair();
    const id = newStreamId();
    const sa = a.create(id);
    const sb = b.create(id);
    sa.end();
    sb.end();
    const [fromB, fromA] = await Promise.all([readAll(sa), readAll(sb)]);
    expect(fromB.length + fromA.length).toBe(0);
    expect(sa.finished).toBe(true);
    sa.reset('late error');
    expect(sa.failed).toBeNull();
  });
});


describe('DATA read piecewise (beginData / dataPiece)', () => {
  /** A mux whose frames are recorded instead of sent. */
  function solo(window = 64 * 1024) {
    const sent: Buffer[] = [];
    const mux = new StreamMux((buf, done) => {
      sent.push(buf);
      done();
    }, { window });
    return { mux, sent };
  }

  it('queues the pieces as they come and counts them against the credit once per frame', async () => {
    const { mux } = solo();
    const id = newStreamId();
    const s = mux.create(id);
    mux.beginData(id, 10);
    mux.dataPiece(Buffer.from('01234'));
    mux.dataPiece(Buffer.from('56789'));
    mux.beginData(newStreamId(), 3); // an unknown (finished) stream: its bytes are dropped
    mux.dataPiece(Buffer.from('xyz'));
    mux.beginData(id, 2);
    mux.dataPiece(Buffer.from('ab'));
    s.onEnd();
    expect((await readAll(s)).toString()).toBe('0123456789ab');
  });

  it('resets a stream whose frame exceeds the credit before queuing any of it', () => {
    const { mux, sent } = solo(16);
    const id = newStreamId();
    const s = mux.create(id);
    mux.beginData(id, 17);
    mux.dataPiece(Buffer.alloc(17));
    expect(s.failed?.message).toMatch(/flow control violated/);
    expect(s.buffered).toBe(0);
    expect(decodeFrame(sent.at(-1)!)!.type).toBe(FRAME.reset);
  });

  it('drops the rest of a frame once its stream is reset, and data after the end resets', () => {
    const { mux } = solo();
    const id = newStreamId();
    const s = mux.create(id);
    mux.beginData(id, 6);
    mux.dataPiece(Buffer.from('abc'));
    s.reset('caller went away');
    mux.dataPiece(Buffer.from('def'));
    expect(s.buffered).toBe(0);

    const id2 = newStreamId();
    const s2 = mux.create(id2);
    s2.onEnd();
    mux.beginData(id2, 1);
    mux.dataPiece(Buffer.from('x'));
    expect(s2.failed?.message).toBe('data after end');
  });
});

describe('receive-window auto-tuning', () => {
  const W = 64 * 1024;
  const MAX = 4 * W;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  /** Writes `total` bytes in 8 KiB writes, then ends. */
  async function writeAll(s: Stream, total: number): Promise<void> {
    for (let n = 0; n < total; n += 8 * 1024) await s.write(Buffer.alloc(8 * 1024, n % 251));
    s.end();
  }

  it('defaults to the wire contract\'s 1 MiB initial window, growing to MAX_WINDOW', () => {
    const mux = new StreamMux((_b, done) => done());
    expect(mux.window).toBe(1024 * 1024);
    expect(mux.maxWindow).toBe(MAX_WINDOW);
    expect(mux.create(newStreamId()).receiveWindow).toBe(1024 * 1024);
  });

  it('doubles the window of a stream whose consumer keeps up, up to the maximum and no further', async () => {
    const { a, b } = pair(W, {}, { maxWindow: MAX });
    const id = newStreamId();
    const sa = a.create(id);
    const sb = b.create(id);
    const writing = writeAll(sa, 2 * 1024 * 1024);
    const windows = new Set<number>();
    let n = 0;
    for await (const c of sb) {
      n += c.length;
      windows.add(sb.receiveWindow);
      expect(sb.buffered).toBeLessThanOrEqual(sb.receiveWindow);
    }
    await writing;
    expect(n).toBe(2 * 1024 * 1024);
    expect([...windows].sort((x, y) => x - y)).toEqual([W, 2 * W, MAX]);
  });

  it('never grows the window of a slow consumer, which holds no more than the initial window', async () => {
    const { a, b } = pair(W, {}, { maxWindow: MAX });
    const id = newStreamId();
    const sa = a.create(id);
    const sb = b.create(id);
    const writing = writeAll(sa, 1024 * 1024);
    let most = 0;
    let n = 0;
    for await (const c of sb) {
      most = Math.max(most, sb.buffered + c.length);
      n += c.length;
      await sleep(1);
    }
    await writing;
    expect(n).toBe(1024 * 1024);
    expect(sb.receiveWindow).toBe(W);
    // The sender kept the window full: the consumer was the slow one.
    expect(most).toBeGreaterThan(W / 2);
    expect(most).toBeLessThanOrEqual(W);
  });

  it('lets a mux\'s streams together grow by no more than its budget, and a finished stream gives its growth back', async () => {
    const { a, b } = pair(W, {}, { maxWindow: MAX, growthBudget: MAX - W });
    const streams = [0, 1].map(() => {
      const id = newStreamId();
      return [a.create(id), b.create(id)] as const;
    });
    // Growth held by the streams still receiving (one that has read to the end holds none).
    const reading = new Set(streams.map(([, sb]) => sb));
    let most = 0;
    await Promise.all(streams.map(async ([sa, sb]) => {
      const writing = writeAll(sa, 2 * 1024 * 1024);
      for await (const _ of sb) most = Math.max(most, [...reading].reduce((g, s) => g + s.receiveWindow - W, 0));
      reading.delete(sb);
      await writing;
    }));
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(MAX - W);
    // Both finished: the whole budget is there again for the next stream.
    const id = newStreamId();
    const sa = a.create(id);
    const sb = b.create(id);
    const writing = writeAll(sa, 2 * 1024 * 1024);
    for await (const _ of sb);
    await writing;
    expect(sb.receiveWindow).toBe(MAX);
  });

  it('still resets a sender that sends more than the grown window allows, to the byte', async () => {
    const sent: Buffer[] = [];
    const mux = new StreamMux((buf, done) => {
      sent.push(buf);
      done();
    }, { window: W, maxWindow: MAX });
    const id = newStreamId();
    const s = mux.create(id);
    const reader = s[Symbol.asyncIterator]();
    let delivered = 0;
    while (s.receiveWindow < MAX) {
      mux.handleBinary(encodeFrame(FRAME.data, id, Buffer.alloc(8 * 1024)));
      delivered += 8 * 1024;
      await reader.next();
    }
    const credited = sent.map((f) => decodeFrame(f)!).filter((f) => f.type === FRAME.credit).reduce((n, f) => n + f.payload.readUInt32BE(0), 0);
    // The CREDIT frames carried the growth: all granted is the initial window plus them.
    expect(credited).toBeGreaterThan(delivered);
    const left = W + credited - delivered;
    expect(left).toBeGreaterThan(W);
    // Everything granted and not yet sent may come at once…
    expect(mux.handleBinary(encodeFrame(FRAME.data, id, Buffer.alloc(left)))).toBe(true);
    expect(s.failed).toBeNull();
    // …one byte more may not.
    mux.handleBinary(encodeFrame(FRAME.data, id, Buffer.alloc(1)));
    expect(s.failed?.message).toMatch(/flow control violated/);
    expect(decodeFrame(sent.at(-1)!)!.type).toBe(FRAME.reset);
  });

  it('interoperates both ways with a peer that never grows (as before auto-tuning)', async () => {
    // a grows its receive windows, b keeps the initial one: each is sender to the other.
    const { a, b } = pair(W, { maxWindow: MAX }, {});
    const id = newStreamId();
    const sa = a.create(id);
    const sb = b.create(id);
    const up = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < up.length; i++) up[i] = (i * 7) % 251;
    let most = 0;
    const echo = (async () => {
      // b reads everything, echoing as it goes; its window must never exceed the initial one.
      for await (const c of sb) {
        most = Math.max(most, sb.buffered + c.length);
        await sb.write(c);
      }
      sb.end();
    })();
    const sending = (async () => {
      for (let n = 0; n < up.length; n += 8 * 1024) await sa.write(up.subarray(n, n + 8 * 1024));
      sa.end();
    })();
    const back = await readAll(sa);
    await Promise.all([echo, sending]);
    expect(back.equals(up)).toBe(true);
    expect(sb.receiveWindow).toBe(W);
    expect(most).toBeLessThanOrEqual(W);
    expect(sa.receiveWindow).toBe(MAX);
    expect(sa.failed ?? sb.failed).toBeNull();
  });
});
