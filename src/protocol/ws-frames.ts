// DATA frames written straight onto the WebSocket's TCP socket, as RFC 6455 binary messages, instead
// of through `ws.send`. A relay frame is a 17-byte header plus the bytes a writer handed over (several
// socket reads, usually); `ws.send` needs them in one buffer, so each frame cost a copy to gather them
// and, on the agent (a client must mask, §5.3), a second copy to mask them. Here:
// - unmasked (hub → agent): header and payload parts leave as one writev, no copy at all;
// - masked (agent → hub): the parts are masked straight into the outgoing buffer, one copy in total.
// Control messages still go through `ws.send`. With permessage-deflate off (both sides turn it off)
// ws writes every message synchronously, so frames written here and there keep their order.
import type { Socket } from 'node:net';
import * as bufferUtil from 'bufferutil';
import type { WebSocket } from 'ws';
import { fillRandom, FRAME_HEADER } from './frames.ts';
import { LIMITS } from './version.ts';

/** Sends one binary message made of `parts` (`length` bytes in all); `done` runs once it is written. */
export type SendPartsFn = (parts: Uint8Array[], length: number, done: (err?: Error | null) => void) => void;

type MaskFn = (source: Uint8Array, mask: Buffer, output: Buffer, offset: number, length: number) => void;
// bufferutil is CommonJS: under Node its functions sit on the default export.
const mask = ((bufferUtil as unknown as { default?: { mask: MaskFn } }).default ?? (bufferUtil as unknown as { mask: MaskFn })).mask;

const rotated = Buffer.alloc(4);

/** Header length for a payload of `n` bytes (§5.2), without the masking key. */
function headerLength(n: number): number {
  return n < 126 ? 2 : n < 65536 ? 4 : 10;
}

function writeHeader(out: Buffer, n: number, masked: boolean): number {
  out[0] = 0x82; // FIN, binary
  const m = masked ? 0x80 : 0;
  if (n < 126) {
    out[1] = m | n;
    return 2;
  }
  if (n < 65536) {
    out[1] = m | 126;
    out.writeUInt16BE(n, 2);
    return 4;
  }
  out[1] = m | 127;
  out.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
  out.writeUInt32BE(n >>> 0, 6);
  return 10;
}

// Masked frames above this size go into buffers kept for reuse: a fresh buffer that large is mapped
// from the system and faulted in page by page, which cost more than masking the bytes into it
// (0.23 vs 0.05 ms per MiB). A buffer comes back once the socket has written it.
const REUSE_ABOVE = 64 * 1024;
const BLOCK = 10 + 4 + FRAME_HEADER + LIMITS.maxFramePayload;
const KEEP = 8;

/** Writes binary messages for `ws` onto `socket` (the TCP socket under it). */
export function rawFrameWriter(ws: WebSocket, socket: Socket, masked: boolean): SendPartsFn {
  const free: Buffer[] = [];
  return (parts, length, done) => {
    if (ws.readyState !== ws.OPEN || socket.destroyed) {
      process.nextTick(done, new Error('WebSocket is not open'));
      return;
    }
    const head = headerLength(length);
    if (!masked) {
      const header = Buffer.allocUnsafe(head);
      writeHeader(header, length, false);
      socket.cork();
      socket.write(header);
      for (let i = 0; i < parts.length - 1; i++) socket.write(parts[i]!);
      socket.write(parts[parts.length - 1]!, done);
      socket.uncork();
      return;
    }
    const size = head + 4 + length;
    const block = size > REUSE_ABOVE && size <= BLOCK ? (free.pop() ?? Buffer.allocUnsafeSlow(BLOCK)) : null;
    const out = block ? block.subarray(0, size) : Buffer.allocUnsafe(size);
    const keyAt = writeHeader(out, length, true);
    fillRandom(out, keyAt, 4);
    const key = out.subarray(keyAt, keyAt + 4);
    let at = keyAt + 4;
    let pos = 0;
    for (const part of parts) {
      // The key runs over the whole payload: a part starting at payload offset p starts at key byte p % 4.
      const r = pos & 3;
      let k = key;
      if (r) {
        for (let i = 0; i < 4; i++) rotated[i] = key[(r + i) & 3]!;
        k = rotated;
      }
      mask(part, k, out, at, part.byteLength);
      at += part.byteLength;
      pos += part.byteLength;
    }
    if (!block) {
      socket.write(out, done);
      return;
    }
    socket.write(out, (err) => {
      if (!err && free.length < KEEP) free.push(block);
      done(err);
    });
  };
}
