// Streams multiplexed over one WebSocket, with per-stream byte-credit flow control. ALL credit state
// lives in this file (DESIGN.md §5: scattered credit state is where tunnels grow their bugs):
// - a receiver grants the sender `initialWindow` bytes per stream and grants more only after its own
//   consumer has taken bytes out of the queue, so a slow reader bounds what is buffered for it;
// - a sender never sends more than it was granted, and also waits while the socket itself has more
//   than `socketHighWater` bytes queued, so many streams together stay bounded too.
// The hub and the agent use this same module, so both directions behave alike.
import { encodeCredit, encodeFrame, decodeFrame, FRAME } from './frames.ts';
import { LIMITS } from './version.ts';

export type SendFn = (data: Buffer, done: (err?: Error) => void) => void;

export class StreamResetError extends Error {
  override name = 'StreamResetError';
  /** True when the peer reset the stream (false: we did, or the connection went away). */
  readonly byPeer: boolean;
  constructor(message: string, byPeer: boolean) {
    super(message);
    this.byPeer = byPeer;
  }
}

export interface MuxOptions {
  window?: number;
  maxFrame?: number;
  socketHighWater?: number;
}

export class Stream implements AsyncIterable<Uint8Array> {
  readonly id: string;
  bytesIn = 0;
  bytesOut = 0;
  readonly openedAt = Date.now();

  private mux: StreamMux;
  // receive side
  private queue: Buffer[] = [];
  private allowance: number;
  private unacked = 0;
  private peerEnded = false;
  private reading = false;
  // send side
  private credit: number;
  private sentEnd = false;
  // both
  private failure: StreamResetError | null = null;
  private wakeReader: (() => void) | null = null;
  private wakeWriter: (() => void) | null = null;
  private onFinish: Array<() => void> = [];

  constructor(mux: StreamMux, id: string, window: number) {
    this.mux = mux;
    this.id = id;
    this.allowance = window;
    this.credit = window;
  }

  get failed(): StreamResetError | null {
    return this.failure;
  }

  /** Bytes received but not yet consumed; never more than the window. */
  get buffered(): number {
    let n = 0;
    for (const b of this.queue) n += b.length;
    return n;
  }

  get finished(): boolean {
    return this.failure !== null || (this.sentEnd && this.peerEnded && this.queue.length === 0);
  }

  /** Runs once the stream is finished (ended both ways and drained, or reset). */
  whenFinished(fn: () => void): void {
    if (this.finished) fn();
    else this.onFinish.push(fn);
  }

  /** Sends bytes, waiting for credit and for the socket to drain. Rejects once the stream is reset. */
  async write(chunk: Uint8Array): Promise<void> {
    if (this.sentEnd) throw new Error('write after end');
    let offset = 0;
    while (offset < chunk.byteLength) {
      if (this.failure) throw this.failure;
      if (this.credit <= 0) {
        await new Promise<void>((resolve) => (this.wakeWriter = resolve));
        continue;
      }
      const n = Math.min(this.credit, chunk.byteLength - offset, this.mux.maxFrame);
      this.credit -= n;
      this.bytesOut += n;
      this.mux.send(encodeFrame(FRAME.data, this.id, chunk.subarray(offset, offset + n)));
      offset += n;
      await this.mux.drained();
    }
    if (this.failure) throw this.failure;
  }

  /** Half-closes: the peer's reader ends after the bytes already sent. */
  end(): void {
    if (this.sentEnd || this.failure) return;
    this.sentEnd = true;
    this.mux.send(encodeFrame(FRAME.end, this.id));
    this.checkFinished();
  }

  /** Aborts both directions and tells the peer why. Safe to call more than once. */
  reset(reason: string): void {
    if (this.failure) return;
    this.mux.send(encodeFrame(FRAME.reset, this.id, Buffer.from(reason.slice(0, 200), 'utf8')));
    this.fail(new StreamResetError(reason, false));
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.reading) throw new Error('stream is already being read');
    this.reading = true;
    let done = false;
    try {
      for (;;) {
        const chunk = this.queue.shift();
        if (chunk) {
          this.consumed(chunk.length);
          yield chunk;
          continue;
        }
        if (this.failure) throw this.failure;
        if (this.peerEnded) {
          done = true;
          this.checkFinished();
          return;
        }
        await new Promise<void>((resolve) => (this.wakeReader = resolve));
      }
    } finally {
      // A consumer that stops early no longer wants the bytes: stop the sender instead of buffering.
      if (!done && !this.failure) this.reset('reader went away');
    }
  }

  // ---- called by the mux ----

  onData(payload: Buffer): void {
    if (this.failure) return;
    if (this.peerEnded) return this.reset('data after end');
    if (payload.length > this.allowance) return this.reset('flow control violated: more bytes than granted');
    this.allowance -= payload.length;
    this.bytesIn += payload.length;
    // The payload is a view into the frame ws handed us; keeping it keeps only this frame alive.
    this.queue.push(payload);
    this.wake();
  }

  onEnd(): void {
    if (this.failure || this.peerEnded) return;
    this.peerEnded = true;
    this.wake();
    this.checkFinished();
  }

  onCredit(bytes: number): void {
    if (this.failure) return;
    this.credit += bytes;
    const w = this.wakeWriter;
    this.wakeWriter = null;
    w?.();
  }

  fail(err: StreamResetError): void {
    if (this.failure) return;
    this.failure = err;
    this.queue = [];
    this.wake();
    const w = this.wakeWriter;
    this.wakeWriter = null;
    w?.();
    this.checkFinished();
  }

  private consumed(n: number): void {
    this.unacked += n;
    // Grant credit back in batches (a quarter window) rather than per frame.
    if (this.unacked >= this.mux.window / 4 && !this.peerEnded && !this.failure) {
      this.allowance += this.unacked;
      this.mux.send(encodeCredit(this.id, this.unacked));
      this.unacked = 0;
    }
  }

  private wake(): void {
    const r = this.wakeReader;
    this.wakeReader = null;
    r?.();
  }

  private checkFinished(): void {
    if (!this.finished) return;
    this.mux.forget(this.id);
    const fns = this.onFinish;
    this.onFinish = [];
    for (const fn of fns) fn();
  }
}

export class StreamMux {
  readonly window: number;
  readonly maxFrame: number;
  private highWater: number;
  private sendFn: SendFn;
  private streams = new Map<string, Stream>();
  private pending = 0;
  private drainWaiters: Array<() => void> = [];
  private closedWith: StreamResetError | null = null;
  bytesIn = 0;
  bytesOut = 0;

  constructor(send: SendFn, opts: MuxOptions = {}) {
    this.sendFn = send;
    this.window = opts.window ?? LIMITS.initialWindow;
    this.maxFrame = opts.maxFrame ?? LIMITS.maxFramePayload;
    this.highWater = opts.socketHighWater ?? 4 * this.window;
  }

  get size(): number {
    return this.streams.size;
  }

  list(): Stream[] {
    return [...this.streams.values()];
  }

  get(id: string): Stream | undefined {
    return this.streams.get(id);
  }

  /** Creates a stream with the given id (the opener chooses ids; they are random, 16 bytes). */
  create(id: string): Stream {
    if (this.closedWith) throw this.closedWith;
    if (this.streams.has(id)) throw new Error('duplicate stream id');
    const s = new Stream(this, id, this.window);
    this.streams.set(id, s);
    return s;
  }

  /** Dispatches one binary frame. Returns false for a frame that is malformed (a protocol error). */
  handleBinary(buf: Buffer): boolean {
    const f = decodeFrame(buf);
    if (!f) return false;
    const s = this.streams.get(f.streamId);
    this.bytesIn += buf.length;
    // Frames for a stream we already finished are late, not wrong (e.g. credit after a reset).
    if (!s) return f.type >= FRAME.data && f.type <= FRAME.reset;
    switch (f.type) {
      case FRAME.data:
        s.onData(f.payload);
        return true;
      case FRAME.end:
        s.onEnd();
        return true;
      case FRAME.credit:
        if (f.payload.length !== 4) return false;
        s.onCredit(f.payload.readUInt32BE(0));
        return true;
      case FRAME.reset:
        s.fail(new StreamResetError(f.payload.toString('utf8') || 'reset by peer', true));
        return true;
      default:
        return false;
    }
  }

  /** The connection is gone: every stream fails with this reason. */
  closeAll(reason: string): void {
    this.closedWith ??= new StreamResetError(reason, false);
    for (const s of [...this.streams.values()]) s.fail(new StreamResetError(reason, false));
    this.streams.clear();
    this.release();
  }

  // ---- used by Stream ----

  send(buf: Buffer): void {
    if (this.closedWith) return;
    this.pending += buf.length;
    this.bytesOut += buf.length;
    this.sendFn(buf, () => {
      this.pending -= buf.length;
      if (this.pending <= this.highWater / 2) this.release();
    });
  }

  drained(): Promise<void> | void {
    if (this.pending <= this.highWater || this.closedWith) return;
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  forget(id: string): void {
    this.streams.delete(id);
  }

  private release(): void {
    const ws = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of ws) w();
  }
}
