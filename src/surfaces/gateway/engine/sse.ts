// Minimal SSE framing over raw bytes (https://html.spec.whatwg.org/multipage/server-sent-events.html).
// Our own rather than eventsource-parser because pass-through must forward each event's exact bytes
// (a parser hands back decoded fields, and re-serialising them would change what the client sees),
// and because most events are forwarded without ever being decoded to a string.
// Events end at a blank line; LF and CRLF line endings are handled (OpenAI, Anthropic send LF,
// Gemini sends CRLF). A bare-CR stream is not split (no provider sends one).

const LF = 0x0a;
const CR = 0x0d;

export class SseFramer {
  /** Bytes of the event in progress, kept as the chunks they came in (no copying per chunk). */
  private parts: Buffer[] = [];
  private partsLength = 0;

  /** The byte `back` positions before index 0 of the current chunk, from the pending parts. */
  private pendingByte(back: number): number | undefined {
    for (let p = this.parts.length - 1; p >= 0; p--) {
      const part = this.parts[p]!;
      if (back <= part.length) return part[part.length - back];
      back -= part.length;
    }
    return undefined;
  }

  /** Calls `onEvent` with each complete event's bytes, terminator included. */
  push(chunk: Uint8Array, onEvent: (raw: Buffer) => void): void {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    let i = buf.indexOf(LF);
    while (i !== -1) {
      // An event ends at a line feed that follows an empty line: "\n\n" or "\n\r\n".
      const p1 = i >= 1 ? buf[i - 1] : this.pendingByte(1 - i);
      const p2 = i >= 2 ? buf[i - 2] : this.pendingByte(2 - i);
      if (p1 === LF || (p1 === CR && p2 === LF)) {
        const tail = buf.subarray(start, i + 1);
        if (this.parts.length) {
          this.parts.push(tail);
          onEvent(Buffer.concat(this.parts, this.partsLength + tail.length));
          this.parts = [];
          this.partsLength = 0;
        } else onEvent(tail);
        start = i + 1;
      }
      i = buf.indexOf(LF, i + 1);
    }
    if (start < buf.length) {
      this.parts.push(buf.subarray(start));
      this.partsLength += buf.length - start;
    }
  }

  /** Bytes of an event that never ended (upstream closed mid-event). */
  pending(): number {
    return this.partsLength;
  }
}

export interface SseFields {
  event: string | null;
  data: string | null;
}

/** The event name and the data lines joined with "\n" (a single leading space is dropped). */
export function parseSseEvent(raw: Buffer): SseFields {
  const text = raw.toString('utf8');
  let event: string | null = null;
  let data: string | null = null;
  for (const line of text.split(/\r?\n/)) {
    if (!line || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data = data === null ? value : `${data}\n${value}`;
    else if (field === 'event') event = value;
  }
  return { event, data };
}
