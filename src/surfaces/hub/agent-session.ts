// One agent's WebSocket on the hub side: handshake (challenge–response), heartbeats, periodic
// re-authentication that leaves streams alone, and requests relayed as multiplexed streams.
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Logger } from '../../core/log/log.ts';
import { AppError, type ErrorCode } from '../../core/errors/errors.ts';
import { NODE_OFFLINE, type RelayRequest, type RelayResponse } from '../../core/relay/node-relay.ts';
import { corkPerTick } from '../../protocol/cork.ts';
import { BODY_FIELD_FAILURES } from '../../protocol/credentials.ts';
import { isHeaders, newStreamId, parseControl, type Headers } from '../../protocol/frames.ts';
import { newNonce, signOpen, verifyAuthProof } from '../../protocol/signing.ts';
import { StreamMux, type Stream } from '../../protocol/streams.ts';
import { rawFrameWriter } from '../../protocol/ws-frames.ts';
import { splitDataFrames } from '../../protocol/ws-receive.ts';
import { announcedFeatures, CLOSE, FEATURES, LIMITS, SUBPROTOCOL } from '../../protocol/version.ts';

export interface SessionTimings {
  heartbeatSeconds: number;
  offlineAfterSeconds: number;
  authTimeoutSeconds: number;
  reauthSeconds: number;
}

export interface SessionHost {
  timings: SessionTimings;
  log: Logger;
  /** The node's signing secret when the token is valid, else null. */
  verify(nodeId: string, authToken: string): string | null;
  online(session: AgentSession): void;
  offline(session: AgentSession): void;
}

export type RelayedUpgrade =
  | { accepted: true; headers: Headers; stream: Stream }
  | { accepted: false; status: number; headers: Headers; body: Readable };

interface PendingHead {
  resolve(v: { status: number; headers: Headers }): void;
  reject(err: Error): void;
}

/**
 * How far a relayed request had got when it failed before its response head, which decides whether
 * the proxy may send it to another node (docs/hub.md, "Retries on another node"):
 * - `unsent`: none of it reached the service: the node was offline or gone before the open frame
 *   left, the agent refused the frame before acting on it, or could not connect to the service;
 * - `lost`: it may have reached the service: the node dropped or reset the stream afterwards, or the
 *   service failed after the agent had connected to it.
 */
export type RelayFailure = 'unsent' | 'lost';

/** A relayed request that failed before its response head; `reason` names why in audit rows and metrics. */
export class RelayError extends AppError {
  readonly failure: RelayFailure;
  readonly reason: string;

  constructor(code: ErrorCode, message: string, failure: RelayFailure, reason: string, numericCode?: number) {
    super(code, message, numericCode === undefined ? {} : { numericCode, retryAfter: 5 });
    this.failure = failure;
    this.reason = reason;
  }
}

const disconnected = () => new RelayError('bad_gateway', 'the node disconnected', 'lost', 'node_disconnected');

/** Codes with which an agent refuses an `open` before it does anything with it (local-relay.ts). */
const REFUSED_OPEN = new Set(['bad_signature', 'replayed', 'forbidden', 'bad_request', 'unknown_format']);

const STREAM_ERRORS: Record<string, { code: ErrorCode; message: string }> = {
  bad_signature: { code: 'bad_gateway', message: 'the node rejected the request signature' },
  replayed: { code: 'bad_gateway', message: 'the node rejected the request as a replay' },
  forbidden: { code: 'bad_gateway', message: 'the node refused the request' },
  bad_request: { code: 'bad_gateway', message: 'the node could not read the request' },
  upstream_timeout: { code: 'upstream_timeout', message: 'the service behind the node timed out' },
  bad_gateway: { code: 'bad_gateway', message: 'the node could not reach the service' },
  unknown_format: { code: 'bad_gateway', message: 'the node holds this service\'s credential in a format it does not know (update its agent, or store the credential again)' },
  // The `body` method's refusals, as the appliance gives them for a direct service.
  ...BODY_FIELD_FAILURES,
};

export class AgentSession {
  nodeId: string | null = null;
  readonly remote: string;
  readonly connectedAt = new Date();
  lastSeen = Date.now();
  readonly mux: StreamMux;
  /** What the agent announced in `auth` (version.ts): an agent of an older build announces nothing. */
  features: ReadonlySet<string> = new Set();

  private socket: WebSocket;
  private host: SessionHost;
  private log: Logger;
  private secret: string | null = null;
  private challenge: string | null = null;
  private reauthNonce: string | null = null;
  private timers: NodeJS.Timeout[] = [];
  private authTimer: NodeJS.Timeout | null = null;
  private reauthDeadline: NodeJS.Timeout | null = null;
  private heads = new Map<string, PendingHead>();
  private closed = false;
  private cork: () => void;

  /** `raw` is the TCP socket under a real WebSocket (none for long-poll): writes in one tick share a writev. */
  constructor(socket: WebSocket, remote: string, host: SessionHost, raw?: Socket) {
    this.socket = socket;
    this.remote = remote;
    this.host = host;
    this.log = host.log.child({ remote });
    this.cork = corkPerTick(raw);
    // DATA frames leave as header + the bytes handed over, in one writev (ws-frames.ts).
    const write = raw ? rawFrameWriter(socket, raw, false) : null;
    this.mux = new StreamMux((buf, done) => {
      this.cork();
      socket.send(buf, { binary: true }, done);
    }, {
      partsWriter: write && ((parts, n, done) => {
        this.cork();
        write(parts, n, done);
      }),
    });
  }

  get authenticated(): boolean {
    return this.secret !== null;
  }

  start(): void {
    const s = this.socket;
    // DATA frames reach the streams piece by piece as the socket reads them (ws-receive.ts); the
    // rest arrives as `message` events. Any frame counts as a sign of life.
    splitDataFrames(s, {
      begin: (sid, n) => {
        this.lastSeen = Date.now();
        if (!this.secret) this.close(CLOSE.policy, 'authenticate first');
        this.mux.beginData(sid, n);
      },
      piece: (bytes) => this.mux.dataPiece(bytes),
    });
    s.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    s.on('close', (code, reason) => this.onClose(code, reason.toString()));
    s.on('error', (err) => this.log.debug({ err: err.message }, 'agent socket error'));
    if (s.protocol !== SUBPROTOCOL) {
      this.close(CLOSE.unsupportedVersion, `unsupported subprotocol "${s.protocol}"; this hub speaks ${SUBPROTOCOL}`);
      return;
    }
    this.challenge = newNonce();
    this.sendJson({ t: 'challenge', nonce: this.challenge });
    this.authTimer = setTimeout(
      () => this.close(CLOSE.authTimeout, 'authentication timed out'),
      this.host.timings.authTimeoutSeconds * 1000,
    );
  }

  /** Relays one HTTP request through this agent. Resolves with the response head; the body streams. */
  async request(req: RelayRequest): Promise<RelayResponse> {
    const { status, headers, stream } = await this.open(req, false);
    const whole = stream.takeWhole();
    if (!whole) return { status, headers, body: stream.readable() };
    let body: Readable | null = null;
    return {
      status,
      headers,
      whole,
      // Built only for a caller that reads the body as a stream after all.
      get body() {
        return (body ??= Readable.from([whole], { objectMode: false }));
      },
    };
  }

  /**
   * Opens a WebSocket to the service through this agent. Accepted, the stream then carries its
   * messages; refused, the answer is the service's own, its body streamed.
   */
  async upgrade(req: Omit<RelayRequest, 'body'>): Promise<RelayedUpgrade> {
    const { status, headers, stream } = await this.open({ ...req, body: null }, true);
    if (status === 101) return { accepted: true, headers, stream };
    stream.end(); // nothing goes the other way on a refused handshake
    return { accepted: false, status, headers, body: stream.readable() };
  }

  private async open(req: RelayRequest, upgrade: boolean): Promise<{ status: number; headers: Headers; stream: Stream }> {
    if (!this.secret || this.closed) throw new RelayError('unavailable', `node ${this.nodeId} is offline`, 'unsent', 'node_offline', NODE_OFFLINE);
    const sid = newStreamId();
    const stream = this.mux.create(sid);
    const head = new Promise<{ status: number; headers: Headers }>((resolve, reject) => this.heads.set(sid, { resolve, reject }));
    stream.whenFinished(() => {
      if (!this.heads.has(sid)) return;
      this.failHead(sid, stream.failed?.message === 'node disconnected' ? disconnected() : new RelayError('bad_gateway', 'the node closed the stream', 'lost', 'stream_reset'));
    });
    const onAbort = () => {
      stream.reset('cancelled');
      this.failHead(sid, new AppError('bad_gateway', 'request cancelled'));
    };
    if (req.signal?.aborted) onAbort();
    req.signal?.addEventListener('abort', onAbort, { once: true });
    stream.whenFinished(() => req.signal?.removeEventListener('abort', onAbort));

    this.sendJson(signOpen(this.secret, {
      t: 'open',
      sid,
      method: req.method,
      url: req.url,
      headers: req.headers,
      service: req.service ?? null,
      body: req.body !== null,
      upgrade,
    }));
    // A WebSocket's stream stays open for its messages; a request's body (if any) follows and ends.
    if (!upgrade) void this.pump(req.body, stream);
    const { status, headers } = await head;
    return { status, headers, stream };
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.stopTimers();
    // Said here: a peer that never answers the close (a stopped or vanished agent) is reported as 1006
    // when its socket is finally cut, which would hide why the hub let it go.
    this.log.info({ code, reason }, 'closing agent connection');
    this.mux.closeAll('node disconnected');
    try {
      this.socket.close(code, reason);
    } catch {
      this.socket.terminate();
    }
    // A peer that does not finish the closing handshake is cut off.
    setTimeout(() => this.socket.terminate(), 2000).unref();
    if (this.nodeId && this.secret) this.host.offline(this);
  }

  // ---- internals ----

  private async pump(body: AsyncIterable<Uint8Array> | null, stream: Stream): Promise<void> {
    if (body instanceof Readable) {
      body.once('error', (err) => this.failHead(stream.id, new AppError('bad_gateway', 'the request body could not be sent', { cause: err })));
      return stream.pipeFrom(body);
    }
    try {
      if (body) for await (const chunk of body) await stream.write(chunk);
      stream.end();
    } catch (err) {
      stream.reset(stream.failed ? stream.failed.message : 'request body failed');
      this.failHead(stream.id, new AppError('bad_gateway', 'the request body could not be sent', { cause: err }));
    }
  }

  private failHead(sid: string, err: Error): void {
    const h = this.heads.get(sid);
    if (!h) return;
    this.heads.delete(sid);
    h.reject(err);
  }

  private sendJson(msg: object): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    this.cork();
    this.socket.send(JSON.stringify(msg));
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    this.lastSeen = Date.now();
    if (isBinary) {
      if (!this.secret) return this.close(CLOSE.policy, 'authenticate first');
      if (!this.mux.handleBinary(data)) this.close(CLOSE.protocolError, 'malformed frame');
      return;
    }
    if (data.length > LIMITS.maxControlFrame) return this.close(CLOSE.policy, 'control frame too large');
    const msg = parseControl(data.toString('utf8'));
    if (!msg) return this.close(CLOSE.protocolError, 'control frames are JSON objects with a "t" field');
    if (!this.secret) {
      if (msg.t !== 'auth') return this.close(CLOSE.policy, 'authenticate first');
      return this.onAuth(msg);
    }
    switch (msg.t) {
      case 'ping':
        return this.sendJson({ t: 'pong', ts: typeof msg.ts === 'number' ? msg.ts : Date.now() });
      case 'pong':
        return;
      case 'reauth_proof':
        if (!this.reauthNonce || msg.nonce !== this.reauthNonce || !verifyAuthProof(this.secret, this.nodeId!, this.reauthNonce, msg.proof)) {
          return this.close(CLOSE.authFailed, 're-authentication failed');
        }
        this.reauthNonce = null;
        return;
      case 'response': {
        const h = typeof msg.sid === 'string' ? this.heads.get(msg.sid) : undefined;
        if (!h) return;
        const status = msg.status;
        if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599 || !isHeaders(msg.headers)) {
          this.mux.get(msg.sid as string)?.reset('malformed response head');
          return this.failHead(msg.sid as string, new RelayError('bad_gateway', 'the node sent a malformed response', 'lost', 'malformed_response'));
        }
        this.heads.delete(msg.sid as string);
        return h.resolve({ status, headers: msg.headers });
      }
      case 'stream_error': {
        if (typeof msg.sid !== 'string') return;
        const code = String(msg.code);
        const known = Object.hasOwn(STREAM_ERRORS, code) ? STREAM_ERRORS[code]! : STREAM_ERRORS.bad_gateway!;
        if (code === 'bad_signature' || code === 'replayed') this.log.warn({ node: this.nodeId, code }, 'agent rejected a signed frame');
        // Refused before acting, or could not connect: the service got nothing. Any other bad_gateway
        // (or a code this hub does not know) may come after the service got the request.
        let err: AppError;
        if (REFUSED_OPEN.has(code)) err = new RelayError(known.code, known.message, 'unsent', 'node_refused');
        else if (code === 'bad_gateway' && msg.delivered === false) err = new RelayError(known.code, known.message, 'unsent', 'connect_failed');
        else if (code === 'bad_gateway' || !Object.hasOwn(STREAM_ERRORS, code)) err = new RelayError(known.code, known.message, 'lost', 'service_failed');
        else err = new AppError(known.code, known.message);
        this.failHead(msg.sid, err);
        this.mux.get(msg.sid)?.reset(String(msg.code));
        return;
      }
      default:
        return this.close(CLOSE.protocolError, `unknown control frame "${msg.t.slice(0, 32)}"`);
    }
  }

  private onAuth(msg: Record<string, unknown>): void {
    const nodeId = msg.node_id;
    const token = msg.auth_token;
    const secret = typeof nodeId === 'string' && typeof token === 'string' ? this.host.verify(nodeId, token) : null;
    if (!secret || msg.nonce !== this.challenge || !verifyAuthProof(secret, nodeId as string, this.challenge!, msg.proof)) {
      this.log.warn({ node: typeof nodeId === 'string' ? nodeId.slice(0, 64) : null }, 'agent authentication failed');
      return this.close(CLOSE.authFailed, 'authentication failed: unknown node, wrong token or wrong signing secret');
    }
    if (this.authTimer) clearTimeout(this.authTimer);
    this.nodeId = nodeId as string;
    this.secret = secret;
    this.challenge = null;
    this.log = this.log.child({ node: this.nodeId });
    const t = this.host.timings;
    this.features = announcedFeatures(msg.features);
    this.sendJson({ t: 'auth_ok', node_id: this.nodeId, heartbeat_seconds: t.heartbeatSeconds, offline_after_seconds: t.offlineAfterSeconds, features: FEATURES });
    this.host.online(this);
    this.timers.push(setInterval(() => {
      if (Date.now() - this.lastSeen > t.offlineAfterSeconds * 1000) this.close(CLOSE.heartbeatTimeout, 'no heartbeat');
    }, Math.max(250, Math.min(t.heartbeatSeconds, t.offlineAfterSeconds / 3) * 1000)));
    if (t.reauthSeconds > 0) {
      this.timers.push(setInterval(() => this.reauth(), t.reauthSeconds * 1000));
    }
  }

  private reauth(): void {
    if (this.reauthNonce) return; // still waiting for the last one
    const nonce = (this.reauthNonce = newNonce());
    this.sendJson({ t: 'reauth', nonce });
    // The proof may queue behind megabytes of stream data on a busy socket, so it gets as long as any
    // sign of life does (offline_after), not the short handshake timeout.
    const t = this.host.timings;
    if (this.reauthDeadline) clearTimeout(this.reauthDeadline);
    this.reauthDeadline = setTimeout(() => {
      if (this.reauthNonce === nonce) this.close(CLOSE.authTimeout, 're-authentication not answered');
    }, Math.max(t.authTimeoutSeconds, t.offlineAfterSeconds) * 1000);
  }

  private onClose(code: number, reason: string): void {
    const wasOnline = !this.closed && this.nodeId && this.secret;
    this.closed = true;
    this.stopTimers();
    this.mux.closeAll('node disconnected');
    for (const [sid] of this.heads) this.failHead(sid, disconnected());
    this.log.info({ code, reason: reason.slice(0, 120) }, 'agent disconnected');
    if (wasOnline) this.host.offline(this);
  }

  private stopTimers(): void {
    if (this.authTimer) clearTimeout(this.authTimer);
    if (this.reauthDeadline) clearTimeout(this.reauthDeadline);
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }
}
