// The HTTP fallback for networks that block WebSocket upgrades (docs/protocol.md, "HTTP fallback").
// The same frames travel in HTTP bodies instead: a batch is a sequence of
// `[1-byte kind][uint32 length][payload]`, kind 0 = text frame, 1 = binary frame, 2 = close
// (payload JSON `{code, reason}`). The agent long-polls for hub → agent batches and posts its own.
export const LP_KIND = { text: 0, binary: 1, close: 2 } as const;

export interface LpFrame {
  kind: number;
  data: Buffer;
}

/** Longest a poll waits for frames before answering with an empty batch. */
export const LP_POLL_WAIT_MS = 25_000;
/** Largest batch either side sends in one body. */
export const LP_MAX_BATCH = 4 * 1024 * 1024;

export function encodeBatch(frames: LpFrame[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of frames) {
    const head = Buffer.allocUnsafe(5);
    head[0] = f.kind;
    head.writeUInt32BE(f.data.length, 1);
    parts.push(head, f.data);
  }
  return Buffer.concat(parts);
}

/** Throws on a malformed batch. */
export function decodeBatch(buf: Buffer): LpFrame[] {
  const out: LpFrame[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < 5) throw new Error('truncated batch');
    const kind = buf[off]!;
    const len = buf.readUInt32BE(off + 1);
    if (kind > 2 || off + 5 + len > buf.length) throw new Error('malformed batch');
    out.push({ kind, data: buf.subarray(off + 5, off + 5 + len) });
    off += 5 + len;
  }
  return out;
}
