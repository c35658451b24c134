// DATA frames read straight off the WebSocket's TCP socket, as they arrive, without `ws` reassembling
// them. A DATA message is up to 256 KiB and the socket delivers it in reads of 64 KiB, so `ws` had to
// allocate a buffer for each message, copy the reads into it (and, on the hub, unmask it) before the
// stream layer saw a byte; fresh 256 KiB buffers are mapped from the system and faulted in page by
// page. Here the payload goes to the stream layer as views of the socket's own read buffers,
// piece by piece, unmasked in place.
//
// Only what `ws` would deliver as one whole, unfragmented, uncompressed binary message whose payload
// starts with a DATA header (type 0x01 + 16-byte stream id + at least one byte, within both the
// socket's maxPayload and LIMITS.maxFramePayload) takes this path. Every other byte — text messages,
// END/CREDIT/RESET, fragmented messages, control frames (ping/pong/close), anything malformed or too
// large — is handed to `ws`'s own receiver unchanged, so RFC 6455 validation, close codes and the
// closing handshake stay exactly what `ws` does. `ws` only ever sees whole frames, so skipping some of
// them leaves its parser in step.
import * as bufferUtil from 'bufferutil';
import type { WebSocket } from 'ws';
import { FRAME, FRAME_HEADER } from './frames.ts';
import { LIMITS } from './version.ts';

/** Where DATA frames go: `begin` once the frame's stream id is known, then its payload in pieces. */
export interface DataFrameSink {
  /** A DATA frame for `streamId` (32 hex) with `length` payload bytes starts. */
  begin(streamId: string, length: number): void;
  /** The next bytes of the current frame's payload (a view of a socket read; unmasked). */
  piece(bytes: Buffer): void;
}

export interface FrameSplitterOptions {
  /** Frames arrive masked (the hub's side, RFC 6455 §5.3); a frame masked otherwise goes to `forward`. */
  masked: boolean;
  /** The connection's largest message (0: none); larger frames go to `forward`. */
  maxPayload: number;
  /** Hands bytes to the WebSocket's own parser; false asks the caller to pause the socket. */
  forward(bytes: Buffer): boolean;
  /** True once the WebSocket's parser has failed or seen a close frame: nothing more is read. */
  halted(): boolean;
  sink: DataFrameSink;
}

type UnmaskFn = (buffer: Uint8Array, mask: Uint8Array) => void;
// bufferutil is CommonJS: under Node its functions sit on the default export.
const nativeUnmask = ((bufferUtil as unknown as { default?: { unmask: UnmaskFn } }).default ?? (bufferUtil as unknown as { unmask: UnmaskFn })).unmask;

/** XORs `bytes` in place with `key`, starting at key byte `offset % 4`. */
function unmaskAt(bytes: Buffer, key: Buffer, offset: number, rotated: Buffer): void {
  const r = offset & 3;
  let k = key;
  if (r) {
    for (let i = 0; i < 4; i++) rotated[i] = key[(r + i) & 3]!;
    k = rotated;
  }
  if (bytes.length < 32) {
    for (let i = 0; i < bytes.length; i++) bytes[i]! ^= k[i & 3]!;
  } else {
    nativeUnmask(bytes, k);
  }
}

const HEAD = 0;
const PAYLOAD = 1;
const FORWARD = 2;
const HALTED = 3;

// The longest prefix read before deciding: 2 + 8 (64-bit length) + 4 (key) + the relay header.
const MAX_HEAD = 14 + FRAME_HEADER;

/**
 * Splits a WebSocket byte stream into DATA frames (to the sink) and everything else (to `forward`).
 * Feed it every byte the socket reads, in order.
 */
export class FrameSplitter {
  private opts: FrameSplitterOptions;
  private state = HEAD;
  /** Bytes of the current frame's start, kept until it is clear where the frame goes. */
  private head = Buffer.alloc(MAX_HEAD);
  private have = 0;
  /** Bytes the current decision needs in `head`: 2, then the whole header, then the relay header. */
  private need = 2;
  /** The current frame's bytes are forwarded as they are read (decided from its first two bytes). */
  private passing = false;
  /** Payload bytes of the current frame still to come (PAYLOAD, FORWARD). */
  private left = 0;
  /** The current frame is a close frame: after it, `ws` reads nothing more. */
  private closing = false;
  /** A fragmented message is under way at `ws` (its frames and continuations all go there). */
  private fragmented = false;
  private key = Buffer.alloc(4);
  private rotated = Buffer.alloc(4);
  /** Payload offset of the next DATA byte, for the masking key's phase. */
  private offset = 0;
  private maxData: number;

  constructor(opts: FrameSplitterOptions) {
    this.opts = opts;
    const limit = FRAME_HEADER + LIMITS.maxFramePayload;
    this.maxData = opts.maxPayload > 0 ? Math.min(opts.maxPayload, limit) : limit;
  }

  /** Reads one chunk; returns false when `forward` asked to pause. */
  push(chunk: Buffer): boolean {
    this.paused = false;
    let at = 0;
    const n = chunk.length;
    while (at < n && this.state !== HALTED) {
      if (this.state === PAYLOAD) {
        const take = Math.min(this.left, n - at);
        const piece = chunk.subarray(at, at + take);
        if (this.opts.masked) unmaskAt(piece, this.key, this.offset, this.rotated);
        at += take;
        this.offset += take;
        this.left -= take;
        if (this.left === 0) this.state = HEAD;
        this.opts.sink.piece(piece);
      } else if (this.state === FORWARD) {
        const take = Math.min(this.left, n - at);
        this.left -= take;
        this.forward(chunk.subarray(at, at + take));
        at += take;
        if (this.left === 0) this.frameForwarded();
      } else {
        at = this.readHead(chunk, at);
      }
      // `ws` failed on what it was given, or a close frame ended the connection: read nothing more.
      if (this.opts.halted()) this.state = HALTED;
    }
    return !this.paused;
  }

  private paused = false;

  private forward(bytes: Buffer): void {
    if (!this.opts.forward(bytes)) this.paused = true;
  }

  /** Takes bytes of a frame's start from `chunk` at `at` until a decision is made; returns the new position. */
  private readHead(chunk: Buffer, at: number): number {
    const take = Math.min(this.need - this.have, chunk.length - at);
    chunk.copy(this.head, this.have, at, at + take);
    if (this.passing) this.forward(chunk.subarray(at, at + take));
    this.have += take;
    at += take;
    if (this.have < this.need) return at;
    const h = this.head;
    if (this.have === 2) {
      const fin = (h[0]! & 0x80) !== 0;
      const rsv = h[0]! & 0x70;
      const opcode = h[0]! & 0x0f;
      const masked = (h[1]! & 0x80) !== 0;
      const len7 = h[1]! & 0x7f;
      this.closing = opcode === 0x08;
      const candidate = fin && rsv === 0 && opcode === 0x02 && masked === this.opts.masked && !this.fragmented;
      // Follow `ws`'s view of fragmentation (§5.4): a data frame without FIN starts a message that
      // continuation frames go on, the one with FIN ends it; control frames may come in between.
      if (opcode === 0x01 || opcode === 0x02) this.fragmented = !fin;
      else if (opcode === 0x00 && fin) this.fragmented = false;
      this.need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
      if (!candidate) {
        // Not ours whatever follows: `ws` gets the bytes as they come (and rejects them at once if bad).
        this.passing = true;
        this.forward(Buffer.from(h.subarray(0, 2)));
      }
      if (this.have < this.need) return at;
    }
    const headerLength = this.headerLength();
    if (this.have === headerLength) {
      const length = this.payloadLength();
      if (this.passing) return this.startForward(length, at);
      if (length <= FRAME_HEADER || length > this.maxData) return this.forwardHeld(length, at);
      this.need = headerLength + FRAME_HEADER;
      if (this.have < this.need) return at;
    }
    // The relay header is here: a DATA frame is ours, anything else (END, CREDIT, RESET) goes to `ws`.
    const length = this.payloadLength();
    if ((h[headerLength]! ^ this.keyByte(headerLength, 0)) !== FRAME.data) return this.forwardHeld(length, at);
    if (this.opts.masked) {
      h.copy(this.key, 0, headerLength - 4, headerLength);
      unmaskAt(h.subarray(headerLength, headerLength + FRAME_HEADER), this.key, 0, this.rotated);
    }
    const streamId = h.toString('hex', headerLength + 1, headerLength + FRAME_HEADER);
    this.offset = FRAME_HEADER;
    this.left = length - FRAME_HEADER;
    this.reset();
    this.state = PAYLOAD;
    this.opts.sink.begin(streamId, this.left);
    return at;
  }

  private headerLength(): number {
    const len7 = this.head[1]! & 0x7f;
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + ((this.head[1]! & 0x80) !== 0 ? 4 : 0);
  }

  private payloadLength(): number {
    const h = this.head;
    const len7 = h[1]! & 0x7f;
    if (len7 === 126) return h.readUInt16BE(2);
    if (len7 === 127) return h.readUInt32BE(2) * 2 ** 32 + h.readUInt32BE(6);
    return len7;
  }

  /** The masking-key byte for payload byte `i` (0 when unmasked). */
  private keyByte(headerLength: number, i: number): number {
    return this.opts.masked ? this.head[headerLength - 4 + (i & 3)]! : 0;
  }

  /** The frame goes to `ws` after all: the bytes held so far first, then the rest as it comes. */
  private forwardHeld(length: number, at: number): number {
    this.forward(Buffer.from(this.head.subarray(0, this.have)));
    return this.startForward(length - (this.have - this.headerLength()), at);
  }

  private startForward(left: number, at: number): number {
    this.reset();
    this.left = left;
    if (left > 0) this.state = FORWARD;
    else this.frameForwarded();
    return at;
  }

  private frameForwarded(): void {
    this.state = this.closing ? HALTED : HEAD;
  }

  private reset(): void {
    this.have = 0;
    this.need = 2;
    this.passing = false;
  }
}

/** The parts of `ws`'s receiver this module relies on (ws 8: `WebSocket#_receiver`, a Writable). */
interface WsReceiver {
  write(chunk: Buffer): boolean;
  writableEnded: boolean;
  destroyed: boolean;
  errored: Error | null;
  _isServer: boolean;
  _maxPayload: number;
  _state: number;
  _bufferedBytes: number;
}

/**
 * Puts a FrameSplitter in front of an open `ws` WebSocket's parser: DATA frames go to `sink`, every
 * other byte to `ws` as before. Call it from the `open` event (client) or the connection handler
 * (server), before the socket has delivered anything. Returns false, changing nothing, when the
 * socket is not a plain `ws` connection at a frame boundary (e.g. the long-poll transport).
 */
export function splitDataFrames(ws: WebSocket, sink: DataFrameSink): boolean {
  const receiver = (ws as unknown as { _receiver?: WsReceiver | null })._receiver;
  if (!receiver || typeof receiver.write !== 'function' || receiver._state !== 0 || receiver._bufferedBytes !== 0) return false;
  if (ws.extensions) return false; // permessage-deflate negotiated: frames may be compressed
  const write = receiver.write.bind(receiver);
  const splitter = new FrameSplitter({
    masked: receiver._isServer,
    maxPayload: receiver._maxPayload,
    forward: (bytes) => write(bytes),
    halted: () => receiver.writableEnded || receiver.destroyed || receiver.errored != null,
    sink,
  });
  // `ws` feeds its receiver from the socket's data events and, at close, from what is left in the
  // socket's buffer; both go through `write`.
  receiver.write = (chunk) => splitter.push(chunk);
  return true;
}
