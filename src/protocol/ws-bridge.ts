// WebSocket pass-through over a relay stream. A proxied WebSocket is carried message by message:
// each message becomes `[1-byte kind (0 text, 1 binary)][uint32 length][payload]` in the stream's
// bytes, so message boundaries and types survive the relay whatever the chunking. Back-pressure is the
// stream's credit: a side that cannot write pauses its WebSocket, which stops reading its socket.
// Between peers that both announced `ws_close` (docs/protocol.md, "Features"), a side whose WebSocket
// closed sends one more record, kind 2, `[uint16 code][reason]`, before it ends the stream, so that
// the other side closes its WebSocket with the same code and reason.
import WebSocket, { type ClientOptions } from 'ws';
import { endToEnd } from './credentials.ts';
import type { Headers } from './frames.ts';
import type { Stream } from './streams.ts';

export const MAX_WS_MESSAGE = 16 * 1024 * 1024;

/** Record kinds in a relayed WebSocket's stream; `close` only between peers that announced `ws_close`. */
const KIND = { text: 0, binary: 1, close: 2 } as const;

function encodeRecord(kind: number, data: Buffer): Buffer {
  const head = Buffer.allocUnsafe(5);
  head[0] = kind;
  head.writeUInt32BE(data.length, 1);
  return Buffer.concat([head, data]);
}

export function encodeWsMessage(data: Buffer, isBinary: boolean): Buffer {
  return encodeRecord(isBinary ? KIND.binary : KIND.text, data);
}

/** A close record: the code as RFC 6455 puts it on the wire, then at most 123 bytes of UTF-8 reason. */
export function encodeWsClose(code: number, reason: Buffer): Buffer {
  const body = Buffer.allocUnsafe(2 + Math.min(reason.length, 123));
  body.writeUInt16BE(code, 0);
  reason.copy(body, 2, 0, body.length - 2);
  return encodeRecord(KIND.close, body);
}

export type WsRecord = { close?: undefined; data: Buffer; isBinary: boolean } | { close: { code: number; reason: Buffer } };

/**
 * The code one side's WebSocket closed with, as the other side may send it: 1005 (no code) and 1006
 * (no close frame) cannot be sent (RFC 6455 §7.4.1), nor can codes outside the ranges a close frame
 * may carry; those become 1000.
 */
export function sendableCloseCode(code: number): number {
  const ok = (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
  return ok ? code : 1000;
}

export class WsMessageDecoder {
  private buf: Buffer = Buffer.alloc(0);
  private closeRecords: boolean;

  /** `closeRecords`: the peer announced `ws_close`, so kind 2 is a close record (else malformed). */
  constructor(closeRecords = false) {
    this.closeRecords = closeRecords;
  }

  /** Returns the complete records so far; throws on a malformed or oversized one. */
  push(chunk: Uint8Array): WsRecord[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : Buffer.from(chunk);
    const out: WsRecord[] = [];
    while (this.buf.length >= 5) {
      const kind = this.buf[0]!;
      const len = this.buf.readUInt32BE(1);
      const close = kind === KIND.close && this.closeRecords;
      if ((kind > KIND.binary && !close) || len > MAX_WS_MESSAGE || (close && (len < 2 || len > 125))) throw new Error('malformed relayed WebSocket message');
      if (this.buf.length < 5 + len) break;
      const data = this.buf.subarray(5, 5 + len);
      out.push(close ? { close: { code: data.readUInt16BE(0), reason: data.subarray(2) } } : { data, isBinary: kind === KIND.binary });
      this.buf = this.buf.subarray(5 + len);
    }
    return out;
  }
}

type Pausable = WebSocket & { pause(): void; resume(): void };

/** Messages and their bytes through a bridged WebSocket: `in` received from it, `out` sent to it. */
export interface WsTally {
  messagesIn: number;
  bytesIn: number;
  messagesOut: number;
  bytesOut: number;
}

export const wsTally = (): WsTally => ({ messagesIn: 0, bytesIn: 0, messagesOut: 0, bytesOut: 0 });

/** Returns what waits for the messages handed over so far to be written. */
function relayInto(ws: WebSocket, write: (data: Buffer, isBinary: boolean) => Promise<void>, onError: () => void, count?: (n: number) => void): () => Promise<void> {
  let chain = Promise.resolve();
  ws.on('message', (data: Buffer | Buffer[] | ArrayBuffer, isBinary: boolean) => {
    const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    count?.(buf.length);
    (ws as Pausable).pause();
    chain = chain.then(() => write(buf, isBinary)).then(() => (ws as Pausable).resume(), onError);
  });
  return () => chain;
}

const countInto = (tally: WsTally | undefined) => tally && ((n: number) => {
  tally.messagesIn++;
  tally.bytesIn += n;
});

/**
 * Joins a local WebSocket and a relay stream until either ends. `closeRecords`: the peer announced
 * `ws_close`, so close codes and reasons travel both ways; without it, an ended stream closes with 1000.
 * `tally` counts the messages of `ws`.
 */
export function bridgeWebSocket(ws: WebSocket, stream: Stream, closeRecords = false, tally?: WsTally): void {
  const written = relayInto(ws, (data, isBinary) => stream.write(encodeWsMessage(data, isBinary)), () => ws.terminate(), countInto(tally));
  ws.on('close', (code: number, reason: Buffer) => {
    if (!closeRecords) return stream.end();
    // After the last message: the close record, then END.
    void written().then(() => stream.write(encodeWsClose(sendableCloseCode(code), reason))).then(() => stream.end(), () => {});
  });
  ws.on('error', () => stream.reset('websocket failed'));
  void (async () => {
    const dec = new WsMessageDecoder(closeRecords);
    let closeWith: { code: number; reason: Buffer } | null = null;
    try {
      for await (const chunk of stream) {
        for (const m of dec.push(chunk)) {
          if (ws.readyState !== ws.OPEN) return;
          if (m.close) {
            closeWith = m.close;
            continue;
          }
          if (tally) {
            tally.messagesOut++;
            tally.bytesOut += m.data.length;
          }
          await new Promise<void>((res, rej) => ws.send(m.data, { binary: m.isBinary }, (err) => (err ? rej(err) : res())));
        }
      }
      if (ws.readyState === ws.OPEN) ws.close(closeWith ? sendableCloseCode(closeWith.code) : 1000, closeWith?.reason);
    } catch {
      if (ws.readyState === ws.OPEN) ws.close(1011, 'relay stream failed');
    }
  })();
}

/** Joins two WebSockets directly (a direct service's upstream and its caller); `tally` counts `a`'s messages. */
export function pipeWebSockets(a: WebSocket, b: WebSocket, tally?: WsTally): void {
  const send = (to: WebSocket) => (data: Buffer, isBinary: boolean) =>
    new Promise<void>((res, rej) => (to.readyState === to.OPEN ? to.send(data, { binary: isBinary }, (err) => (err ? rej(err) : res())) : rej(new Error('closed'))));
  relayInto(a, send(b), () => b.terminate(), countInto(tally));
  relayInto(b, send(a), () => a.terminate(), tally && ((n) => {
    tally.messagesOut++;
    tally.bytesOut += n;
  }));
  const closeOther = (other: WebSocket) => (code: number, reason: Buffer) => {
    if (other.readyState === other.OPEN) other.close(sendableCloseCode(code), reason.subarray(0, 120));
  };
  a.on('close', closeOther(b));
  b.on('close', closeOther(a));
  a.on('error', () => b.terminate());
  b.on('error', () => a.terminate());
}

/**
 * Dials a service's WebSocket for a caller whose handshake `headers` carries (the caller's own
 * handshake fields are dropped; the dialling side sets its own). The subprotocols the caller offered
 * go on as offered, and `answer()` gives the service's choice, none included, with the other
 * end-to-end headers of its 101: RFC 6455 §4.1 lets a server choose none of those offered, which ws's
 * client would refuse, so the offer goes as a plain header and the answer is checked here (a
 * protocol that was not offered fails the dial, as §4.1 says a client must).
 */
export function dialForCaller(target: URL, headers: Headers, opts: Omit<ClientOptions, 'headers'> & { lookup?: unknown }): { ws: WebSocket; answer(): { protocol: string | null; headers: Headers } } {
  const offered = String(headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  for (const k of Object.keys(headers)) if (k.startsWith('sec-websocket-')) delete headers[k];
  if (offered.length) headers['sec-websocket-protocol'] = offered.join(', ');
  const url = new URL(target);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(url, { ...opts, headers: headers as Record<string, string> });
  let answer = { protocol: null as string | null, headers: {} as Headers };
  ws.once('upgrade', (res) => {
    const p = res.headers['sec-websocket-protocol'];
    // Taken out before ws checks the answer against the (to ws, empty) offer.
    delete res.headers['sec-websocket-protocol'];
    const rest = endToEnd(res.headers);
    for (const k of Object.keys(rest)) if (k.startsWith('sec-websocket-')) delete rest[k];
    answer = { protocol: p ?? null, headers: rest };
    if (p !== undefined && !offered.includes(p)) ws.terminate();
  });
  return { ws, answer: () => answer };
}
