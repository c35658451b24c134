// A keep-alive HTTP/1.1 client for exchanges whose answer is wanted whole (the gateway's non-streamed
// calls: chat, embeddings, moderations…). undici stays the client for everything that streams.
//
// Why a second client: on the gateway's busiest path undici's `dispatch` (request validation, its
// dispatcher layers, the WASM llhttp parser and the copies in and out of it, its timers) measured 7–21 µs
// more of the request thread per call than this client, 7–11 % of all of it, in interleaved rounds
// (BENCHMARKS.md, "own HTTP/1.1 client"). This client writes the request in one socket write, parses
// the answer in JavaScript over the bytes as they came (usually one read), and keeps its deadlines in
// one sweeping timer instead of timers per call.
//
// What it implements of RFC 9112: status line and header fields (no obs-fold, at most `maxHeaderBytes`),
// 1xx answers skipped, message framing by §6.3 (HEAD, 204 and 304 carry no body; Transfer-Encoding
// chunked, with extensions and trailers ignored; Content-Length, several equal values allowed, differing
// ones refused; otherwise to the end of the connection), persistence by §9.3 (HTTP/1.1 unless
// `Connection: close`; HTTP/1.0 never reused), the server's `Keep-Alive: timeout` honoured minus a
// second. A request sent on a reused connection that the server closes before any byte of an answer is
// sent once more on a new connection (the server closed an idle connection as the request crossed it,
// as browsers retry); any other failure is the caller's.
import { Buffer } from 'node:buffer';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';

export interface Http1ClientOptions {
  connectTimeoutMs: number;
  /** From the request written (or, on a new connection, the connection made) to the answer's head complete. */
  headersTimeoutMs: number;
  /** Longest silence while the body arrives. */
  bodyTimeoutMs: number;
  /** How long an idle connection is kept (shortened by the server's `Keep-Alive: timeout`). */
  keepAliveMs?: number;
  maxHeaderBytes?: number;
  /** Extra TLS options for https origins (a private CA, for instance). */
  tls?: ConnectionOptions;
}

export interface Http1Request {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | Buffer | null;
}

/** What the client needs of a cancel signal: an AbortSignal, or the gateway's lighter CallAbort (call-abort.ts). */
export interface CancelSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** An answer read whole. Header names are lower-case; a repeated field's values are joined by ", ". */
export interface Http1Answer {
  status: number;
  readonly headers: Record<string, string>;
  body: Buffer;
}

/**
 * Why an exchange failed. `headers` is set when the failure came after the answer's head (the body did
 * not complete): the server was reached and may have done the work.
 */
export class Http1Error extends Error {
  readonly code: 'CONNECT' | 'CONNECT_TIMEOUT' | 'HEADERS_TIMEOUT' | 'BODY_TIMEOUT' | 'CLOSED' | 'PROTOCOL' | 'TOO_LARGE' | 'ABORTED' | 'BAD_REQUEST';
  status: number | undefined;
  constructor(code: Http1Error['code'], message: string, status?: number) {
    super(message);
    this.name = 'Http1Error';
    this.code = code;
    this.status = status;
  }
}


const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BAD_VALUE = /[\r\n\0]/;
const CHUNK_SIZE = /^[0-9a-fA-F]{1,12}$/;
const STATUS_LINE = /^HTTP\/1\.[01] [1-9]\d\d(?: |$)/;
// Set by this client from the request itself, never taken from the caller's headers.
const OWN = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'expect']);

interface Origin {
  readonly tls: boolean;
  readonly host: string;
  readonly port: number;
  readonly hostHeader: string;
  readonly idle: Conn[];
  session: Buffer | undefined;
}

// A header field name given by the caller: not a token, one this client sets itself, or one to send.
const Field = { Invalid: 0, Own: 1, Sent: 2 } as const;
type Field = (typeof Field)[keyof typeof Field];

// Where the parser is within an answer.
const State = { Head: 0, Body: 1, UntilClose: 2, ChunkSize: 3, ChunkData: 4, ChunkEnd: 5, Trailers: 6 } as const;
type State = (typeof State)[keyof typeof State];

/** An answer read whole; its header fields are parsed only when asked for. */
class Answer implements Http1Answer {
  readonly status: number;
  readonly body: Buffer;
  private readonly head: string;
  private fields: Record<string, string> | null = null;

  constructor(status: number, head: string, body: Buffer) {
    this.status = status;
    this.head = head;
    this.body = body;
  }

  get headers(): Record<string, string> {
    if (this.fields) return this.fields;
    const out: Record<string, string> = {};
    const lines = this.head.split('\r\n');
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      out[name] = out[name] === undefined ? value : `${out[name]}, ${value}`;
    }
    return (this.fields = out);
  }
}

/** One request and what is known of its answer so far. */
class Exchange {
  readonly origin: Origin;
  readonly method: string;
  readonly request: string;
  readonly body: string | Buffer | null;
  readonly limit: number;
  conn: Conn | null = null;
  phase: 'connect' | 'head' | 'body' = 'connect';
  deadline = 0;
  status = 0;
  head = '';
  close = false;
  keepAliveMs = -1;
  received = false;
  retried = false;
  private resolve: ((a: Http1Answer) => void) | null;
  private reject: ((e: Error) => void) | null;
  private readonly signal: CancelSignal | undefined;
  private readonly onAbort: (() => void) | undefined;

  constructor(origin: Origin, method: string, request: string, body: string | Buffer | null, limit: number, signal: CancelSignal | undefined, resolve: (a: Http1Answer) => void, reject: (e: Error) => void) {
    this.origin = origin;
    this.method = method;
    this.request = request;
    this.body = body;
    this.limit = limit;
    this.resolve = resolve;
    this.reject = reject;
    this.signal = signal;
    if (signal) {
      this.onAbort = () => {
        const err = new Http1Error('ABORTED', 'request aborted', this.status || undefined);
        if (this.conn) this.conn.abandon(err);
        else this.fail(err);
      };
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  settle(body: Buffer): void {
    const resolve = this.resolve;
    this.done();
    resolve?.(new Answer(this.status, this.head, body));
  }

  fail(err: Error): void {
    const reject = this.reject;
    this.done();
    reject?.(err);
  }

  private done(): void {
    this.resolve = this.reject = null;
    this.conn = null;
    if (this.onAbort) this.signal!.removeEventListener('abort', this.onAbort);
  }
}

/** One connection and the exchange on it, if any. */
class Conn {
  readonly origin: Origin;
  readonly sock: Socket;
  private readonly client: Http1Client;
  uses = 0;
  connected = false;
  idleUntil = 0;
  ex: Exchange | null = null;
  private pending: Buffer | null = null;
  private state: State = State.Head;
  private remaining = 0;
  private chunks: Buffer[] = [];
  private size = 0;
  /** The clock when the bytes being read arrived (one reading serves every deadline they move). */
  private now = 0;

  constructor(client: Http1Client, origin: Origin, sock: Socket, tls: boolean) {
    this.client = client;
    this.origin = origin;
    this.sock = sock;
    sock.setNoDelay(true);
    sock.once(tls ? 'secureConnect' : 'connect', () => {
      this.connected = true;
      const ex = this.ex;
      if (ex && ex.phase === 'connect') {
        ex.phase = 'head';
        ex.deadline = Date.now() + client.headersTimeoutMs;
      }
    });
    if (tls) sock.on('session', (s: Buffer) => (origin.session = s));
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('end', () => this.onClosed(null));
    sock.on('error', (err: Error) => this.onClosed(err));
    sock.on('close', () => this.onClosed(null));
  }

  start(ex: Exchange, now: number): void {
    this.ex = ex;
    this.uses++;
    this.state = State.Head;
    this.pending = null;
    this.chunks = [];
    this.size = 0;
    ex.conn = this;
    ex.phase = this.connected ? 'head' : 'connect';
    ex.deadline = now + (this.connected ? this.client.headersTimeoutMs : this.client.connectTimeoutMs);
    const { request, body } = ex;
    if (body === null || typeof body === 'string') this.sock.write(body === null ? request : request + body);
    else {
      this.sock.cork();
      this.sock.write(request);
      this.sock.write(body);
      this.sock.uncork();
    }
  }

  /** Ends the exchange with `err` and lets the connection go (its state is unknown). */
  abandon(err: Error): void {
    const ex = this.ex;
    this.ex = null;
    this.client.drop(this);
    ex?.fail(err);
  }

  private onData(d: Buffer): void {
    const ex = this.ex;
    if (!ex) return this.client.drop(this); // bytes nobody asked for: the connection is out of step
    ex.received = true;
    this.now = Date.now();
    if (ex.phase === 'body') ex.deadline = this.now + this.client.bodyTimeoutMs;
    try {
      this.feed(ex, this.pending ? Buffer.concat([this.pending, d]) : d);
    } catch (err) {
      this.abandon(err instanceof Http1Error ? err : new Http1Error('PROTOCOL', (err as Error).message, ex.status || undefined));
    }
  }

  private feed(ex: Exchange, buf: Buffer): void {
    const max = this.client.maxHeaderBytes;
    let at = 0;
    this.pending = null;
    const wait = (limit: number, what: string) => {
      if (buf.length - at > limit) throw new Http1Error('PROTOCOL', `${what} is larger than ${limit} bytes`, ex.status || undefined);
      if (at < buf.length) this.pending = buf.subarray(at);
    };
    for (;;) {
      switch (this.state) {
        case State.Head: {
          const end = buf.indexOf('\r\n\r\n', at, 'latin1');
          if (end < 0) return wait(max, 'answer head');
          if (end - at > max) throw new Http1Error('PROTOCOL', `answer head is larger than ${max} bytes`);
          const head = buf.toString('latin1', at, end);
          at = end + 4;
          this.onHead(ex, head);
          break;
        }
        case State.Body: {
          const n = Math.min(this.remaining, buf.length - at);
          if (n > 0) this.take(ex, buf.subarray(at, at + n));
          at += n;
          this.remaining -= n;
          if (this.remaining === 0) return this.finish(ex, at < buf.length);
          return;
        }
        case State.UntilClose:
          if (at < buf.length) this.take(ex, buf.subarray(at));
          return;
        case State.ChunkSize: {
          const nl = buf.indexOf('\r\n', at, 'latin1');
          if (nl < 0) return wait(4096, 'chunk size line');
          const line = buf.toString('latin1', at, nl);
          const semi = line.indexOf(';');
          const hex = (semi < 0 ? line : line.slice(0, semi)).trim();
          if (!CHUNK_SIZE.test(hex)) throw new Http1Error('PROTOCOL', 'malformed chunk size', ex.status);
          this.remaining = parseInt(hex, 16);
          at = nl + 2;
          this.state = this.remaining === 0 ? State.Trailers : State.ChunkData;
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.remaining, buf.length - at);
          if (n > 0) this.take(ex, buf.subarray(at, at + n));
          at += n;
          this.remaining -= n;
          if (this.remaining > 0) return;
          this.state = State.ChunkEnd;
          break;
        }
        case State.ChunkEnd:
          if (buf.length - at < 2) return wait(2, 'chunk end');
          if (buf[at] !== 13 || buf[at + 1] !== 10) throw new Http1Error('PROTOCOL', 'chunk data is not followed by CRLF', ex.status);
          at += 2;
          this.state = State.ChunkSize;
          break;
        case State.Trailers: {
          // Trailer fields are read past, not kept (RFC 9112 §7.1.2 lets a recipient discard them).
          const nl = buf.indexOf('\r\n', at, 'latin1');
          if (nl < 0) return wait(max, 'trailer section');
          const last = nl === at;
          at = nl + 2;
          if (last) return this.finish(ex, at < buf.length);
          break;
        }
      }
    }
  }

  /** Takes an answer's head: its status, framing and persistence (RFC 9112 §4, §6.3, §9.3). */
  private onHead(ex: Exchange, head: string): void {
    const eol = head.indexOf('\r\n');
    const statusLine = eol < 0 ? head : head.slice(0, eol);
    if (!STATUS_LINE.test(statusLine)) throw new Http1Error('PROTOCOL', 'malformed status line');
    const status = Number(statusLine.slice(9, 12));
    if (status < 200) {
      if (status === 101) throw new Http1Error('PROTOCOL', 'unexpected protocol switch');
      return; // interim (100 Continue, 103 Early Hints): the answer follows
    }
    const http10 = statusLine.charCodeAt(7) === 48;
    let contentLength = -1;
    let te = false;
    let chunked = false;
    let close = http10; // an HTTP/1.0 connection is never reused here
    let keepAliveMs = -1;
    for (let at = eol < 0 ? head.length + 2 : eol + 2; at < head.length + 2; ) {
      let nl = head.indexOf('\r\n', at);
      if (nl < 0) nl = head.length;
      const colon = head.indexOf(':', at);
      if (colon <= at || colon > nl) throw new Http1Error('PROTOCOL', 'malformed header field');
      const c0 = head.charCodeAt(at);
      if (c0 === 32 || c0 === 9) throw new Http1Error('PROTOCOL', 'folded header field');
      const len = colon - at;
      // Only the fields that frame the message or keep the connection are read here (by length first).
      if (len === 10 || len === 14 || len === 17) {
        const name = head.slice(at, colon).toLowerCase();
        const value = head.slice(colon + 1, nl).trim();
        if (name === 'content-length') {
          for (const v of value.split(',')) {
            const t = v.trim();
            if (!/^\d{1,15}$/.test(t)) throw new Http1Error('PROTOCOL', 'malformed Content-Length');
            if (contentLength >= 0 && Number(t) !== contentLength) throw new Http1Error('PROTOCOL', 'conflicting Content-Length values');
            contentLength = Number(t);
          }
        } else if (name === 'transfer-encoding') {
          te = true;
          const codings = value.toLowerCase().split(',');
          chunked = codings[codings.length - 1]!.trim() === 'chunked';
        } else if (name === 'connection') {
          if (value.toLowerCase().split(',').some((t) => t.trim() === 'close')) close = true;
        } else if (name === 'keep-alive') {
          const m = /(?:^|[\s,])timeout\s*=\s*(\d{1,6})/i.exec(value);
          if (m) keepAliveMs = Math.max(0, Number(m[1]) * 1000 - 1000);
        }
      }
      at = nl + 2;
    }
    ex.status = status;
    ex.head = head;
    ex.phase = 'body';
    ex.deadline = this.now + this.client.bodyTimeoutMs;
    ex.close = close;
    ex.keepAliveMs = keepAliveMs;
    if (ex.method === 'HEAD' || status === 204 || status === 304) {
      this.state = State.Body;
      this.remaining = 0;
    } else if (te) {
      // Transfer-Encoding overrides Content-Length, and such a connection is not reused (RFC 9112 §6.3).
      if (contentLength >= 0 || !chunked) ex.close = true;
      this.state = chunked ? State.ChunkSize : State.UntilClose;
    } else if (contentLength >= 0) {
      if (contentLength > ex.limit) throw new Http1Error('TOO_LARGE', `upstream body is larger than ${ex.limit} bytes`, status);
      this.state = State.Body;
      this.remaining = contentLength;
    } else {
      this.state = State.UntilClose;
      ex.close = true;
    }
  }

  private take(ex: Exchange, chunk: Buffer): void {
    this.size += chunk.length;
    if (this.size > ex.limit) throw new Http1Error('TOO_LARGE', `upstream body is larger than ${ex.limit} bytes`, ex.status);
    this.chunks.push(chunk);
  }

  private body(): Buffer {
    const { chunks } = this;
    this.chunks = [];
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.size);
  }

  private finish(ex: Exchange, extra: boolean): void {
    const body = this.body();
    this.ex = null;
    // Bytes past the answer's end mean the two sides disagree on framing: such a connection is not reused.
    if (ex.close || extra) this.client.drop(this);
    else this.client.release(this, ex.keepAliveMs, this.now);
    ex.settle(body);
  }

  private onClosed(err: Error | null): void {
    const ex = this.ex;
    this.ex = null;
    this.client.drop(this);
    if (!ex) return;
    if (this.state === State.UntilClose && !err) return ex.settle(this.body());
    this.chunks = [];
    // A reused connection closed before any byte of an answer: the server let it go idle as the
    // request crossed it. Sent once more, on a new connection.
    if (!ex.received && this.uses > 1 && !ex.retried) {
      ex.retried = true;
      return this.client.dispatch(ex);
    }
    const code = (err as NodeJS.ErrnoException | null)?.code;
    if (!this.connected) return ex.fail(new Http1Error('CONNECT', `could not connect to the upstream${code ? ` (${code})` : ''}`));
    const what = ex.status ? 'upstream closed the connection before its answer was complete' : 'upstream closed the connection before answering';
    ex.fail(new Http1Error('CLOSED', code ? `${what} (${code})` : what, ex.status || undefined));
  }
}

/** A keep-alive HTTP/1.1 client for answers read whole; see the top of this file. */
export class Http1Client {
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly keepAliveMs: number;
  readonly maxHeaderBytes: number;
  private readonly tls: ConnectionOptions;
  private readonly origins = new Map<string, Origin>();
  private readonly targets = new Map<string, { origin: Origin; path: string }>();
  private readonly conns = new Set<Conn>();
  private readonly fields = new Map<string, Field>();
  private readonly tick: number;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(opts: Http1ClientOptions) {
    this.connectTimeoutMs = opts.connectTimeoutMs;
    this.headersTimeoutMs = opts.headersTimeoutMs;
    this.bodyTimeoutMs = opts.bodyTimeoutMs;
    this.keepAliveMs = opts.keepAliveMs ?? 30_000;
    this.maxHeaderBytes = opts.maxHeaderBytes ?? 64 * 1024;
    this.tls = opts.tls ?? {};
    // Deadlines are checked by one timer, at a tenth of the shortest of them (10 ms to 1 s).
    this.tick = Math.max(10, Math.min(1000, Math.floor(Math.min(this.connectTimeoutMs, this.headersTimeoutMs, this.bodyTimeoutMs, this.keepAliveMs) / 10)));
  }

  /** Sends `req` and reads its answer whole, refusing a body over `limit` bytes. */
  request(req: Http1Request, limit: number, signal?: CancelSignal): Promise<Http1Answer> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Http1Error('ABORTED', 'client is closed'));
      if (signal?.aborted) return reject(new Http1Error('ABORTED', 'request aborted'));
      const t = this.targets.get(req.url) ?? this.target(req.url);
      if (!t) return reject(new Http1Error('BAD_REQUEST', 'upstream URL must be http: or https:'));
      const { origin, path } = t;
      let head = `${req.method} ${path} HTTP/1.1\r\nhost: ${origin.hostHeader}\r\n`;
      for (const name in req.headers) {
        const value = req.headers[name]!;
        const kind = this.fieldKind(name);
        if (kind === Field.Invalid || BAD_VALUE.test(value)) return reject(new Http1Error('BAD_REQUEST', `header field "${kind === Field.Invalid ? '?' : name}" is not valid`));
        if (kind === Field.Own) continue;
        head += `${name}: ${value}\r\n`;
      }
      const { body } = req;
      if (body !== null) head += `content-length: ${typeof body === 'string' ? Buffer.byteLength(body) : body.length}\r\n`;
      else if (req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH') head += 'content-length: 0\r\n';
      this.dispatch(new Exchange(origin, req.method, head + '\r\n', body, limit, signal, resolve, reject));
    });
  }

  /** What a header field name is, looked up once per name: the same few names come with every request. */
  private fieldKind(name: string): Field {
    let kind = this.fields.get(name);
    if (kind === undefined) {
      kind = !TOKEN.test(name) ? Field.Invalid : OWN.has(name.toLowerCase()) ? Field.Own : Field.Sent;
      if (this.fields.size >= 1000) this.fields.clear();
      this.fields.set(name, kind);
    }
    return kind;
  }

  /** Closes every connection; exchanges in progress fail. */
  close(): Promise<void> {
    this.closed = true;
    for (const c of [...this.conns]) c.abandon(new Http1Error('ABORTED', 'client is closed'));
    return Promise.resolve();
  }

  /** @internal */
  dispatch(ex: Exchange): void {
    const { idle } = ex.origin;
    let conn = idle.pop();
    const now = Date.now();
    // One whose keep-alive ran out since the last sweep is let go, not used.
    while (conn && conn.idleUntil <= now) {
      this.drop(conn);
      conn = idle.pop();
    }
    (conn ?? this.connect(ex.origin)).start(ex, now);
  }

  /** @internal An exchange ended cleanly: keep the connection for the next one. */
  release(conn: Conn, keepAliveMs: number, now: number): void {
    const ms = keepAliveMs >= 0 ? Math.min(keepAliveMs, this.keepAliveMs) : this.keepAliveMs;
    if (ms <= 0 || this.closed) return this.drop(conn);
    conn.idleUntil = now + ms;
    conn.origin.idle.push(conn);
  }

  /** @internal */
  drop(conn: Conn): void {
    if (!this.conns.delete(conn)) return;
    const i = conn.origin.idle.lastIndexOf(conn);
    if (i >= 0) conn.origin.idle.splice(i, 1);
    conn.sock.destroy();
    if (this.conns.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  private connect(origin: Origin): Conn {
    const sock = origin.tls
      ? (tlsConnect({ host: origin.host, port: origin.port, servername: isIP(origin.host) ? undefined : origin.host, ALPNProtocols: ['http/1.1'], session: origin.session, ...this.tls }) as TLSSocket)
      : netConnect({ host: origin.host, port: origin.port });
    const conn = new Conn(this, origin, sock, origin.tls);
    this.conns.add(conn);
    if (!this.timer) {
      this.timer = setInterval(() => this.sweep(), this.tick);
      this.timer.unref();
    }
    return conn;
  }

  private sweep(): void {
    const now = Date.now();
    for (const conn of this.conns) {
      const ex = conn.ex;
      if (ex) {
        if (now < ex.deadline) continue;
        const [code, what] = ex.phase === 'connect' ? (['CONNECT_TIMEOUT', 'connecting to the upstream timed out'] as const)
          : ex.phase === 'head' ? (['HEADERS_TIMEOUT', 'upstream did not answer in time'] as const)
          : (['BODY_TIMEOUT', 'upstream answer stalled'] as const);
        conn.abandon(new Http1Error(code, what, ex.status || undefined));
      } else if (now >= conn.idleUntil) this.drop(conn);
    }
  }

  private target(url: string): { origin: Origin; path: string } | null {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return null;
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
    const tls = u.protocol === 'https:';
    const key = `${u.protocol}//${u.host}`;
    let origin = this.origins.get(key);
    if (!origin) {
      const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
      origin = { tls, host, port: Number(u.port) || (tls ? 443 : 80), hostHeader: u.host, idle: [], session: undefined };
      this.origins.set(key, origin);
    }
    const t = { origin, path: (u.pathname || '/') + u.search };
    if (this.targets.size >= 1000) this.targets.clear();
    this.targets.set(url, t);
    return t;
  }
}
