// WebSocket pass-through over a relay stream. A proxied WebSocket is carried message by message:
// each message becomes `[1-byte kind (0 text, 1 binary)][uint32 length][payload]` in the stream's
// bytes, so message boundaries and types survive the relay whatever the chunking. Back-pressure is the
// stream's credit: a side that cannot write pauses its WebSocket, which stops reading its socket.
import WebSocket, { type ClientOptions } from 'ws';
import { endToEnd } from './credentials.ts';
import type { Headers } from './frames.ts';
import type { Stream } from './streams.ts';

export const MAX_WS_MESSAGE = 16 * 1024 * 1024;

export function encodeWsMessage(data: Buffer, isBinary: boolean): Buffer {
  const head = Buffer.allocUnsafe(5);
  head[0] = isBinary ? 1 : 0;
  head.writeUInt32BE(data.length, 1);
  return Buffer.concat([head, data]);
}

export class WsMessageDecoder {
  private buf: Buffer = Buffer.alloc(0);

  /** Returns the complete messages so far; throws on a malformed or oversized one. */
  push(chunk: Uint8Array): Array<{ data: Buffer; isBinary: boolean }> {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : Buffer.from(chunk);
    const out: Array<{ data: Buffer; isBinary: boolean }> = [];
    while (this.buf.length >= 5) {
      const kind = this.buf[0]!;
      const len = this.buf.readUInt32BE(1);
      if (kind > 1 || len > MAX_WS_MESSAGE) throw new Error('malformed relayed WebSocket message');
      if (this.buf.length < 5 + len) break;
      out.push({ data: this.buf.subarray(5, 5 + len), isBinary: kind === 1 });
      this.buf = this.buf.subarray(5 + len);
    }
    return out;
  }
}

type Pausable = WebSocket & { pause(): void; resume(): void };

function relayInto(ws: WebSocket, write: (data: Buffer, isBinary: boolean) => Promise<void>, onError: () => void): void {
  let chain = Promise.resolve();
  ws.on('message', (data: Buffer | Buffer[] | ArrayBuffer, isBinary: boolean) => {
    const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    (ws as Pausable).pause();
    chain = chain.then(() => write(buf, isBinary)).then(() => (ws as Pausable).resume(), onError);
  });
}

/** Joins a local WebSocket and a relay stream until either ends. */
export function bridgeWebSocket(ws: WebSocket, stream: Stream): void {
  relayInto(ws, (data, isBinary) => stream.write(encodeWsMessage(data, isBinary)), () => ws.terminate());
  ws.on('close', () => stream.end());
  ws.on('error', () => stream.reset('websocket failed'));
  void (async () => {
    const dec = new WsMessageDecoder();
    try {
      for await (const chunk of stream) {
        for (const m of dec.push(chunk)) {
          if (ws.readyState !== ws.OPEN) return;
          await new Promise<void>((res, rej) => ws.send(m.data, { binary: m.isBinary }, (err) => (err ? rej(err) : res())));
        }
      }
      if (ws.readyState === ws.OPEN) ws.close(1000);
    } catch {
      if (ws.readyState === ws.OPEN) ws.close(1011, 'relay stream failed');
    }
  })();
}

/** Joins two WebSockets directly (a direct service's upstream and its caller). */
export function pipeWebSockets(a: WebSocket, b: WebSocket): void {
  const send = (to: WebSocket) => (data: Buffer, isBinary: boolean) =>
    new Promise<void>((res, rej) => (to.readyState === to.OPEN ? to.send(data, { binary: isBinary }, (err) => (err ? rej(err) : res())) : rej(new Error('closed'))));
  relayInto(a, send(b), () => b.terminate());
  relayInto(b, send(a), () => a.terminate());
  const closeOther = (other: WebSocket) => (code: number, reason: Buffer) => {
    if (other.readyState === other.OPEN) other.close(code === 1005 || code === 1006 ? 1000 : code, reason.subarray(0, 120));
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
