// Streams multiplexed over one WebSocket, with per-stream byte-credit flow control. ALL credit state
// lives in this file (DESIGN.md §5: scattered credit state is where tunnels grow their bugs):
// - a receiver grants the sender `initialWindow` bytes per stream and grants more only after its own
//   consumer has taken bytes out of the queue, so a slow reader bounds what is buffered for it;
// - a receiver whose consumer keeps up grows the stream's window (auto-tuning, as TCP receivers and
//   HTTP/2 implementations do) by granting extra credit, up to `maxWindow`: a bulk transfer then has
//   more bytes in flight than one credit round trip's worth, while a stream whose consumer is slow
//   never grows and stays at the initial window;
// - a sender never sends more than it was granted, and also waits while the socket itself has more
//   than `socketHighWater` bytes queued, so many streams together stay bounded too.
// - bytes a writer hands over are framed in batches: whatever piles up before the event loop comes
//   round again (several socket reads, usually) leaves as one DATA frame of up to `maxFrame` bytes, so
//   a bulk transfer costs a few large frames per MiB instead of one per upstream chunk, while a lone
//   small chunk (an SSE event) still leaves at once.
// The hub and the agent use this same module, so both directions behave alike.
import { Readable } from 'node:stream';
import { encodeCredit, encodeFrame, decodeFrame, FRAME, FRAME_HEADER } from './frames.ts';
import { LIMITS } from './version.ts';
import type { SendPartsFn } from './ws-frames.ts';

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

/**
 * How far a receiver grows a stream's window (bytes) when its consumer keeps up. Not part of the wire
 * contract: growth is extra credit, which any sender accepts. 4 MiB measured best (BENCHMARKS.md, "Hub
 * and agent", receive-window auto-tuning).
 */
export const MAX_WINDOW = 4 * 1024 * 1024;

export interface MuxOptions {
  /** The initial window of every stream, each way: part of the wire contract (LIMITS.initialWindow). */
  window?: number;
  /** The most a stream's receive window grows to; `window` itself turns growth off. */
  maxWindow?: number;
  /** Growth (beyond the initial window) all of a mux's streams may hold at once; 4 × (maxWindow − window) by default. */
  growthBudget?: number;
  maxFrame?: number;
  socketHighWater?: number;
  /** Writes a frame given as parts without gathering them first (ws-frames.ts); else they are concatenated. */
  partsWriter?: SendPartsFn | null;
}

export class Stream implements AsyncIterable<Uint8Array> {
  readonly id: string;
  bytesIn = 0;
  bytesOut = 0;
  readonly openedAt = Date.now();

  private mux: StreamMux;
  // receive side
  private queue: Buffer[] = [];
  /** Bytes in `queue`. */
  private queued = 0;
  /** The receive window: what the peer may have sent beyond what our consumer took (grows, never shrinks). */
  private window: number;
  /** Bytes the peer may still send: `window` − `queued` − `unacked`. */
  private allowance: number;
  /** Bytes our consumer took that were not granted back yet. */
  private unacked = 0;
  private growthReleased = false;
  private peerEnded = false;
  private reading = false;
  private sink: Readable | null = null;
  private sinkWants = false;
  // send side
  private credit: number;
  /** Bytes accepted from the writer and not framed yet (at most about one frame plus one chunk). */
  private outQueue: Uint8Array[] = [];
  private outBytes = 0;
  private flushTimer: NodeJS.Immediate | null = null;
  private ending = false;
  private sentEnd = false;
  /** The DATA frame header for this stream: type + id, shared by every frame it sends. */
  private dataHead: Buffer;
  // both
  private failure: StreamResetError | null = null;
  private wakeReader: (() => void) | null = null;
  private writableWaiters: Array<() => void> = [];
  private onFinish: Array<() => void> = [];

  constructor(mux: StreamMux, id: string, window: number) {
    this.mux = mux;
    this.id = id;
    this.dataHead = encodeFrame(FRAME.data, id);
    this.window = window;
    this.allowance = window;
    this.credit = window;
  }

  get failed(): StreamResetError | null {
    return this.failure;
  }

  /** Bytes received but not yet consumed; never more than the receive window. */
  get buffered(): number {
    return this.queued;
  }

  /** The receive window now: the initial window, or more once the consumer has kept up. */
  get receiveWindow(): number {
    return this.window;
  }

  get finished(): boolean {
    return this.failure !== null || (this.sentEnd && this.peerEnded && this.queue.length === 0);
  }

  /** Runs once the stream is finished (ended both ways and drained, or reset). */
  whenFinished(fn: () => void): void {
    if (this.finished) fn();
    else this.onFinish.push(fn);
  }

  /**
   * Hands bytes over for sending; they leave in DATA frames as credit and the socket allow. Returns
   * false when the writer should wait (`whenWritable`) before handing over more: the bytes queued here
   * are not covered by credit yet, or make up a whole frame the socket cannot take. Throws once reset.
   */
  send(chunk: Uint8Array): boolean {
    if (this.failure) throw this.failure;
    if (this.ending) throw new Error('write after end');
    if (chunk.byteLength) {
      this.outQueue.push(chunk);
      this.outBytes += chunk.byteLength;
      if (this.outBytes >= this.mux.maxFrame) this.flush(true);
      // Whatever else arrives before the loop comes round joins the rest.
      if (this.outBytes > 0) this.flushTimer ??= setImmediate(() => this.flush());
    }
    return this.writable;
  }

  /** Sends bytes; resolves once they are queued within credit. Rejects once the stream is reset. */
  async write(chunk: Uint8Array): Promise<void> {
    if (!this.send(chunk)) await new Promise<void>((resolve) => this.whenWritable(resolve));
    if (this.failure) throw this.failure;
  }

  /** Calls `fn` once the writer may hand over more (or the stream failed). */
  whenWritable(fn: () => void): void {
    if (this.writable || this.failure) fn();
    else this.writableWaiters.push(fn);
  }

  /**
   * Sends everything `source` produces, then ends the stream; pauses the source while the stream
   * cannot take more. `onBytes` sees each chunk's size. The source is destroyed if the stream resets.
   */
  pipeFrom(source: Readable, onBytes?: (n: number) => void): void {
    const onData = (chunk: Buffer) => {
      onBytes?.(chunk.byteLength);
      let ok: boolean;
      try {
        ok = this.send(chunk);
      } catch {
        return source.destroy();
      }
      if (!ok) {
        source.pause();
        this.whenWritable(() => (this.failure ? source.destroy() : source.resume()));
      }
    };
    source.on('data', onData);
    source.once('end', () => this.end());
    // An error after the end (e.g. an abort once the stream finished) changes nothing the peer got.
    source.once('error', (err) => source.readableEnded || this.reset(err.message || 'source failed'));
    source.once('close', () => source.readableEnded || this.reset('source closed early'));
    this.whenFinished(() => {
      if (this.failure && !source.destroyed) source.destroy();
    });
  }

  /** Half-closes: the peer's reader ends after the bytes already handed over. */
  end(): void {
    if (this.ending || this.failure) return;
    this.ending = true;
    this.flush();
  }

  /** Aborts both directions and tells the peer why. Safe to call more than once. */
  reset(reason: string): void {
    if (this.finished) return;
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
      // One that stops right after the last chunk, with the peer's END already in, stopped nothing:
      // the stream is finished both ways, and is let go as if the loop had run to its end.
      if (!done) this.stopReading();
    }
  }

  /**
   * The received bytes as a Readable (for piping into a socket or an HTTP body). Credit goes back as
   * the Readable's consumer takes bytes, so a slow consumer holds the sender back; destroying the
   * Readable before its end resets the stream.
   */
  readable(): Readable {
    if (this.reading) throw new Error('stream is already being read');
    this.reading = true;
    const sink = new Readable({
      highWaterMark: 64 * 1024,
      read: () => {
        this.sinkWants = true;
        this.feedSink();
      },
      destroy: (err, cb) => {
        this.stopReading();
        cb(err);
      },
    });
    this.sink = sink;
    return sink;
  }

  /**
   * The whole received body in one buffer, when the peer has already ended the stream and nothing
   * was read yet (a small response usually arrives with its head, END included, in one socket read);
   * else null, and the stream is untouched. Once taken, the stream has no reader left to feed.
   */
  takeWhole(): Buffer | null {
    if (this.reading || !this.peerEnded || this.failure) return null;
    this.reading = true;
    const parts = this.queue;
    this.queue = [];
    this.queued = 0;
    this.checkFinished();
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  private feedSink(): void {
    const sink = this.sink!;
    while (this.sinkWants) {
      const chunk = this.queue.shift();
      if (!chunk) break;
      this.consumed(chunk.length);
      this.sinkWants = sink.push(chunk);
    }
    if (this.queue.length) return;
    if (this.failure) {
      if (!sink.destroyed) sink.destroy(this.failure);
    } else if (this.peerEnded && !sink.readableEnded && this.sinkWants) {
      sink.push(null);
      this.checkFinished();
    }
  }

  // ---- called by the mux ----

  onData(payload: Buffer): void {
    if (this.acceptData(payload.length)) this.takeData(payload);
  }

  /**
   * A DATA frame of `n` bytes arrives: checks it against the stream's state and the credit granted,
   * resetting the stream when it breaks them. True when its bytes are to be taken (`takeData`).
   */
  acceptData(n: number): boolean {
    if (this.failure) return false;
    if (this.peerEnded) {
      this.reset('data after end');
      return false;
    }
    if (n > this.allowance) {
      this.reset('flow control violated: more bytes than granted');
      return false;
    }
    this.allowance -= n;
    return true;
  }

  /** Queues bytes of an accepted DATA frame: the whole payload, or one piece of it as it arrives. */
  takeData(bytes: Buffer): void {
    if (this.failure) return;
    this.bytesIn += bytes.length;
    this.queued += bytes.length;
    // A view of a socket read or of a message ws handed us; keeping it keeps only that buffer alive.
    this.queue.push(bytes);
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
    this.flush();
  }

  fail(err: StreamResetError): void {
    if (this.failure) return;
    this.failure = err;
    this.queue = [];
    this.queued = 0;
    this.outQueue = [];
    this.outBytes = 0;
    if (this.flushTimer) clearImmediate(this.flushTimer);
    this.flushTimer = null;
    this.wake();
    this.wakeWriters();
    this.checkFinished();
  }

  /**
   * Frames what credit and the socket allow (only whole frames when `wholeFrames`); sends END after
   * the last byte once the writer ended.
   */
  flush(wholeFrames = false): void {
    if (!wholeFrames && this.flushTimer) {
      clearImmediate(this.flushTimer);
      this.flushTimer = null;
    }
    if (this.failure) return;
    const least = wholeFrames ? this.mux.maxFrame : 1;
    while (this.outBytes >= least && this.credit > 0) {
      if (this.mux.congested) return this.mux.whenDrained(this);
      const n = Math.min(this.outBytes, this.credit, this.mux.maxFrame);
      this.credit -= n;
      this.outBytes -= n;
      this.bytesOut += n;
      this.mux.sendParts(this.frame(n), n);
    }
    if (this.ending && !this.sentEnd && this.outBytes === 0) {
      this.sentEnd = true;
      this.mux.send(encodeFrame(FRAME.end, this.id));
      this.checkFinished();
    }
    if (this.writable) this.wakeWriters();
  }

  /** The parts of one DATA frame carrying the next `n` queued bytes (views, no copy). */
  private frame(n: number): Uint8Array[] {
    const parts: Uint8Array[] = [this.dataHead];
    while (n > 0) {
      const head = this.outQueue[0]!;
      if (head.byteLength <= n) {
        parts.push(head);
        this.outQueue.shift();
        n -= head.byteLength;
      } else {
        parts.push(head.subarray(0, n));
        this.outQueue[0] = head.subarray(n);
        n = 0;
      }
    }
    return parts;
  }

  private get writable(): boolean {
    return this.outBytes < this.credit && this.outBytes < this.mux.maxFrame && !this.failure;
  }

  private wakeWriters(): void {
    const ws = this.writableWaiters;
    this.writableWaiters = [];
    for (const w of ws) w();
  }

  private consumed(n: number): void {
    this.queued -= n;
    this.unacked += n;
    // Grant credit back in batches (a quarter of the initial window, whatever the window has grown
    // to: the sender hears of freed space as soon as before) rather than per frame.
    if (this.unacked < this.mux.window / 4 || this.peerEnded || this.failure) return;
    let grant = this.unacked;
    // Auto-tuning: a consumer that has nearly emptied the queue when a batch falls due, on a stream
    // that has moved at least a whole window, is waiting on the sender, not the other way round: the
    // window doubles (up to maxWindow), the extra going out with this batch. A slow consumer leaves
    // most of the window queued here, so its stream never grows.
    if (this.queued <= this.mux.window / 4 && this.bytesIn >= this.window) {
      const more = this.mux.takeGrowth(this.window, this.window);
      this.window += more;
      grant += more;
    }
    this.allowance += grant;
    this.mux.send(encodeCredit(this.id, grant));
    this.unacked = 0;
  }

  /** Once the receive side is done with its window, its growth goes back to the mux's budget. */
  private releaseGrowth(): void {
    if (this.growthReleased) return;
    this.growthReleased = true;
    this.mux.releaseGrowth(this.window);
  }

  private wake(): void {
    const r = this.wakeReader;
    this.wakeReader = null;
    r?.();
    if (this.sink && (this.sinkWants || this.failure)) this.feedSink();
  }

  /** The reader is gone: resets the stream unless the peer's bytes were all taken after its END. */
  private stopReading(): void {
    if (this.failure) return;
    if (this.peerEnded && this.queue.length === 0) this.checkFinished();
    else this.reset('reader went away');
  }

  private checkFinished(): void {
    // The receive side is done once the peer ended and everything was read: its window is no longer needed.
    if (this.failure || (this.peerEnded && this.queue.length === 0)) this.releaseGrowth();
    if (!this.finished) return;
    this.mux.forget(this.id);
    const fns = this.onFinish;
    this.onFinish = [];
    for (const fn of fns) fn();
  }
}

export class StreamMux {
  readonly window: number;
  readonly maxWindow: number;
  readonly maxFrame: number;
  /** Growth beyond the initial window that streams may still take (growthBudget less what they hold). */
  private growthLeft: number;
  private highWater: number;
  private sendFn: SendFn;
  /** Set once the transport can write a frame's parts as they are (a real WebSocket's socket). */
  partsWriter: SendPartsFn | null;
  private streams = new Map<string, Stream>();
  private pending = 0;
  private drainWaiters = new Set<Stream>();
  /** The stream the DATA frame being read piecewise belongs to (null: its bytes are dropped). */
  private receiving: Stream | null = null;
  private closedWith: StreamResetError | null = null;
  bytesIn = 0;
  bytesOut = 0;

  constructor(send: SendFn, opts: MuxOptions = {}) {
    this.sendFn = send;
    this.partsWriter = opts.partsWriter ?? null;
    this.window = opts.window ?? LIMITS.initialWindow;
    this.maxWindow = Math.max(this.window, opts.maxWindow ?? MAX_WINDOW);
    this.growthLeft = opts.growthBudget ?? 4 * (this.maxWindow - this.window);
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

  /**
   * A DATA frame read piecewise off the socket (ws-receive.ts): its header arrived, its `length`
   * payload bytes follow through `dataPiece`.
   */
  beginData(streamId: string, length: number): void {
    this.bytesIn += FRAME_HEADER + length;
    const s = this.streams.get(streamId);
    this.receiving = s?.acceptData(length) ? s : null;
  }

  dataPiece(bytes: Buffer): void {
    this.receiving?.takeData(bytes);
  }

  /** The connection is gone: every stream fails with this reason. */
  closeAll(reason: string): void {
    this.closedWith ??= new StreamResetError(reason, false);
    for (const s of [...this.streams.values()]) s.fail(new StreamResetError(reason, false));
    this.streams.clear();
    this.receiving = null;
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

  /** Sends one frame given as parts; `payload` is its length without the header. */
  sendParts(parts: Uint8Array[], payload: number): void {
    if (this.closedWith) return;
    const writer = this.partsWriter;
    if (!writer) return this.send(Buffer.concat(parts, parts[0]!.byteLength + payload));
    const n = parts[0]!.byteLength + payload;
    this.pending += n;
    this.bytesOut += n;
    writer(parts, n, () => {
      this.pending -= n;
      if (this.pending <= this.highWater / 2) this.release();
    });
  }

  /** The socket has more than the high-water mark queued: streams hold their bytes until it drains. */
  get congested(): boolean {
    return this.pending > this.highWater && !this.closedWith;
  }

  whenDrained(s: Stream): void {
    this.drainWaiters.add(s);
  }

  forget(id: string): void {
    this.streams.delete(id);
  }

  /**
   * Up to `wanted` bytes of window growth for a stream whose window is `window` now: never past
   * maxWindow, and never more than the mux's growth budget has left, so that streams that grew and
   * then stalled cannot hold more than the budget beyond their initial windows between them.
   */
  takeGrowth(wanted: number, window: number): number {
    const n = Math.max(0, Math.min(wanted, this.maxWindow - window, this.growthLeft));
    this.growthLeft -= n;
    return n;
  }

  /** A stream with receive window `window` is gone: its growth goes back to the budget. */
  releaseGrowth(window: number): void {
    this.growthLeft += window - this.window;
  }

  private release(): void {
    const ws = this.drainWaiters;
    this.drainWaiters = new Set();
    for (const s of ws) s.flush();
  }
}
