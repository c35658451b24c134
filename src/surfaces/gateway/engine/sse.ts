// Minimal SSE framing over raw bytes (https://html.spec.whatwg.org/multipage/server-sent-events.html).
// Our own rather than eventsource-parser because pass-through must forward each event's exact bytes
// (a parser hands back decoded fields, and re-serialising them would change what the client sees),
// and because most events are forwarded without ever being decoded to a string.
// Events end at a blank line; LF and CRLF line endings are handled (OpenAI, Anthropic send LF,
// Gemini sends CRLF). A bare-CR stream is not split (no provider sends one).

const LF = 0x0a;
const CR = 0x0d;

export class SseFramer {
  private rest: Buffer | null = null;

  /** Calls `onEvent` with each complete event's bytes, terminator included. */
  push(chunk: Uint8Array, onEvent: (raw: Buffer) => void): void {
    let buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.rest) {
      buf = Buffer.concat([this.rest, buf]);
      this.rest = null;
    }
    let start = 0;
    let i = buf.indexOf(LF, 0);
    while (i !== -1) {
      // A line feed followed by LF, or by CRLF, closes the event.
      const next = buf[i + 1];
      let end = -1;
      if (next === LF) end = i + 2;
      else if (next === CR && buf[i + 2] === LF) end = i + 3;
      if (end !== -1) {
        onEvent(buf.subarray(start, end));
        start = end;
        i = buf.indexOf(LF, start);
      } else {
        if (i + 2 >= buf.length && (next === undefined || next === CR)) break; // undecided until more bytes
        i = buf.indexOf(LF, i + 1);
      }
    }
    if (start < buf.length) this.rest = Buffer.from(buf.subarray(start));
  }

  /** Bytes of an event that never ended (upstream closed mid-event). */
  pending(): number {
    return this.rest?.length ?? 0;
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
