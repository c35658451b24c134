// Serves the hub's `open` frames on the agent: checks the signature (timestamp skew + nonce replay
// cache), injects this host's credential for the service when the target is under the credential's
// URL, dials the local service and streams both bodies through the multiplexed stream (except for
// the `body` method, which must read the request body to add its field).
import type { Readable } from 'node:stream';
import { Agent, util, type Dispatcher } from 'undici';
import type { Logger } from '../core/log/log.ts';
import { incomingContext, injectTraceHeaders } from '../core/telemetry/trace-context.ts';
import { SpanKind, type Span, type Tracing } from '../core/telemetry/tracing.ts';
import type { Stream, StreamMux } from '../protocol/streams.ts';
import { AGENT_BODY_LIMIT, BodyFieldError, endToEnd, formatMethod, inject, withBodyField } from '../protocol/credentials.ts';
import { isHeaders, isStreamId, type Headers, type OpenMsg, type StreamErrorCode } from '../protocol/frames.ts';
import { bridgeWebSocket, dialForCaller, MAX_WS_MESSAGE, wsTally, type WsTally } from '../protocol/ws-bridge.ts';
import { ReplayGuard } from '../protocol/signing.ts';
import { credentialCovers, type CredentialsStore } from './credentials-store.ts';

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;

export interface LocalRelayDeps {
  mux: StreamMux;
  secret: string;
  credentials: CredentialsStore;
  log: Logger;
  sendJson(msg: object): void;
  /** The features the hub announced in `auth_ok` (version.ts); empty until then. */
  hubFeatures(): ReadonlySet<string>;
  /** Spans of the agent's own, when a collector is configured (agentTelemetryConfig). */
  tracing?: Tracing;
  nodeId?: string;
}

/** `notDelivered`: nothing of the request reached the local service, so the hub may try another node. */
type Refuse = (sid: string, code: StreamErrorCode, message: string, notDelivered?: boolean) => void;

/**
 * Errors of a connection that never got established (refused, unroutable, name not found, connect
 * timeout): the local service cannot have received any of the request.
 */
export function neverConnected(err: unknown): boolean {
  const e = err as { code?: unknown; syscall?: unknown };
  if (e.syscall === 'connect' || e.syscall === 'getaddrinfo') return true;
  return e.code === 'ECONNREFUSED' || e.code === 'UND_ERR_CONNECT_TIMEOUT' || e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN';
}

/**
 * One request to the local service, as an undici dispatch handler: the response head goes back as a
 * `response` frame, the body chunks into the stream (pausing the socket while the stream has no
 * credit), and a stream that fails (the caller went away) aborts the request.
 */
class LocalExchange implements Dispatcher.DispatchHandler {
  private m: OpenMsg;
  private stream: Stream;
  private deps: LocalRelayDeps;
  private refuse: Refuse;
  private target: URL;
  private started = performance.now();
  private status = 0;
  private abort: ((err?: Error) => void) | null = null;
  private resume: () => void = () => {};
  private readonly span: Span | null;
  private bytesOut = 0;

  constructor(m: OpenMsg, stream: Stream, target: URL, deps: LocalRelayDeps, refuse: Refuse, span: Span | null) {
    this.m = m;
    this.stream = stream;
    this.target = target;
    this.deps = deps;
    this.refuse = refuse;
    this.span = span;
    // Only a failed stream cancels the local request.
    stream.whenFinished(() => {
      if (stream.failed) this.abort?.(stream.failed);
      if (span) endRelaySpan(span, this.status, this.bytesOut, stream.failed ? 'incomplete' : null);
    });
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.stream.failed) return abort(this.stream.failed);
    this.abort = abort;
  }

  onHeaders(status: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (status < 200) return true; // 1xx: informational, the real head follows
    this.status = status;
    this.deps.sendJson({ t: 'response', sid: this.m.sid, status, headers: endToEnd(util.parseHeaders(rawHeaders) as Headers) });
    this.resume = resume;
    return true;
  }

  onData(chunk: Buffer): boolean {
    const stream = this.stream;
    this.bytesOut += chunk.length;
    let ok: boolean;
    try {
      ok = stream.send(chunk);
    } catch {
      return false; // reset: the abort above is on its way
    }
    if (!ok) stream.whenWritable(() => stream.failed || this.resume());
    return ok;
  }

  onComplete(): void {
    const stream = this.stream;
    stream.end();
    if (this.deps.log.isLevelEnabled('debug')) {
      stream.whenFinished(() => {
        if (stream.failed) this.deps.log.debug({ service: this.m.service, err: stream.failed.message }, 'stream ended early');
        else this.deps.log.debug({ service: this.m.service, method: this.m.method, status: this.status, ms: Math.round(performance.now() - this.started) }, 'request relayed');
      });
    }
  }

  onError(err: Error): void {
    const stream = this.stream;
    if (stream.failed) return;
    if (this.status) {
      // The head is out: all the caller can learn now is that the body was cut.
      stream.reset(err.message || 'local service failed');
      return;
    }
    const code = (err as { code?: string }).code === 'UND_ERR_HEADERS_TIMEOUT' ? 'upstream_timeout' : 'bad_gateway';
    this.span?.fail(code);
    this.deps.log.warn({ service: this.m.service, host: this.target.host, err: err.message }, 'local service unreachable');
    this.refuse(this.m.sid, code, 'the local service could not be reached', code === 'bad_gateway' && neverConnected(err));
    stream.reset(code);
  }
}

export function createLocalRelay(deps: LocalRelayDeps) {
  const guard = new ReplayGuard();
  const dispatcher = new Agent({ headersTimeout: 300_000, bodyTimeout: 300_000, keepAliveTimeout: 30_000 });

  const refuse: Refuse = (sid, code, message, notDelivered) => deps.sendJson({ t: 'stream_error', sid, code, message, ...(notDelivered ? { delivered: false } : {}) });
  const uncredentialed = new Set<string>();

  function serve(m: OpenMsg, stream: Stream, target: URL): void {
    const headers = endToEnd(m.headers);
    // A span per HTTP request, and one per WebSocket session that lives as long as the session.
    const span = deps.tracing?.exporting ? startRelaySpan(deps.tracing, m, target, headers, deps.nodeId) : null;
    let bodyField: { name: string; value: string } | null = null;
    if (m.service) {
      const cred = deps.credentials.get(m.service);
      span?.set('nexus.credential_injected', cred !== null);
      if (cred) {
        if (!credentialCovers(cred.url, target)) {
          deps.log.warn({ service: m.service, host: target.host }, 'refused: target is outside the credential URL');
          refuse(m.sid, 'forbidden', `the credential for "${m.service}" is bound to another URL`);
          stream.reset('forbidden');
          if (span) endRelaySpan(span, 0, 0, 'forbidden');
          return;
        }
        // A format written by a newer version: sending the request without it, or with it put
        // somewhere else, would only earn a confusing answer from the service.
        const method = formatMethod(cred.format);
        if (!method) {
          deps.log.warn({ service: m.service, format: String(cred.format).slice(0, 32) }, `refused: the credential for "${m.service}" has a format this agent does not know; update the agent or store the credential again`);
          refuse(m.sid, 'unknown_format', 'unknown credential format');
          stream.reset('unknown_format');
          if (span) endRelaySpan(span, 0, 0, 'unknown_format');
          return;
        }
        ({ bodyField } = inject({ method, keyName: cred.header, secret: cred.secret }, target, headers));
      } else if (!uncredentialed.has(m.service) && uncredentialed.size < 1000) {
        // Said once per service: a slug that differs from the one the credential was stored under
        // (the appliance turns a taken slug into `slug-2`) otherwise shows only as the service's 401.
        uncredentialed.add(m.service);
        deps.log.warn({ service: m.service }, `no credential stored for service "${m.service}"; requests go without one (nexus agent credentials add --service ${m.service} … if it needs one)`);
      }
    }
    if (m.upgrade) return upgrade(m, stream, target, headers, span);
    if (bodyField) return void withField(m, stream, target, headers, bodyField, span);
    const body = m.body ? stream.readable() : null;
    // The stream's reset ends this readable with an error; the exchange reports the failure itself, and
    // undici may have let go of the body already (a connection refused before it was read).
    body?.on('error', () => {});
    send(m, stream, target, headers, body, span);
  }

  function send(m: OpenMsg, stream: Stream, target: URL, headers: Headers, body: Buffer | Readable | null, span: Span | null): void {
    const exchange = new LocalExchange(m, stream, target, deps, refuse, span);
    // undici's callback API, which its `request()` is built on: the body goes straight from the
    // socket's chunks into the stream, with no Readable and no promise per request.
    dispatcher.dispatch({
      origin: target.origin,
      path: target.pathname + target.search,
      method: m.method as 'GET',
      headers,
      body,
    }, exchange);
  }

  /** The `body` method: the whole request body is read (bounded) to add the field, as the appliance does. */
  async function withField(m: OpenMsg, stream: Stream, target: URL, headers: Headers, field: { name: string; value: string }, span: Span | null): Promise<void> {
    let body: Buffer;
    const readable = m.body ? stream.readable() : null;
    // The reset below ends the readable with an error; the refusal sent before it says why.
    readable?.on('error', () => {});
    try {
      // Not destroyed on an early exit: the refusal must reach the hub before the stream's reset.
      body = await withBodyField(readable?.iterator({ destroyOnReturn: false }) ?? null, field, AGENT_BODY_LIMIT, headers);
    } catch (err) {
      if (stream.failed) return; // the caller went away meanwhile
      const reason = err instanceof BodyFieldError ? err.reason : 'bad_request';
      refuse(m.sid, reason, err instanceof BodyFieldError ? err.message : 'the request body could not be read');
      stream.reset(reason);
      if (span) endRelaySpan(span, 0, 0, reason);
      return;
    }
    if (!stream.failed) send(m, stream, target, headers, body, span);
    else if (span) endRelaySpan(span, 0, 0, 'incomplete');
  }

  function upgrade(m: OpenMsg, stream: Stream, target: URL, headers: Headers, span: Span | null): void {
    const { ws, answer } = dialForCaller(target, headers, { perMessageDeflate: false, handshakeTimeout: 30_000, maxPayload: MAX_WS_MESSAGE });
    // Set once the service has answered the handshake either way; later errors are the bridge's.
    let answered = false;
    let status = 0;
    // The service's messages: `in` from it (towards the caller), `out` to it (from the caller).
    const tally = span ? wsTally() : undefined;
    ws.on('unexpected-response', (_req, res) => {
      answered = true;
      status = res.statusCode ?? 0;
      // A refusal goes back as the service gave it, status, headers and body, like any response.
      deps.sendJson({ t: 'response', sid: m.sid, status: res.statusCode, headers: endToEnd(res.headers) });
      stream.pipeFrom(res);
    });
    ws.on('error', (err) => {
      if (answered || stream.failed) return;
      const timedOut = err.message.includes('handshake has timed out');
      deps.log.warn({ service: m.service, host: target.host, err: err.message }, 'local WebSocket unreachable');
      refuse(m.sid, timedOut ? 'upstream_timeout' : 'bad_gateway', timedOut ? 'the local service did not answer the handshake in time' : 'the local service could not be reached', !timedOut && neverConnected(err));
      span?.fail(timedOut ? 'upstream_timeout' : 'bad_gateway');
      stream.reset(timedOut ? 'upstream_timeout' : 'bad_gateway');
    });
    ws.on('open', () => {
      answered = true;
      status = 101;
      const { protocol, headers: head } = answer();
      deps.sendJson({ t: 'response', sid: m.sid, status: 101, headers: protocol ? { ...head, 'sec-websocket-protocol': protocol } : head });
      bridgeWebSocket(ws, stream, deps.hubFeatures().has('ws_close'), tally);
    });
    // The hub gave up (its caller left) or the refusal's body is through: the handshake is over.
    stream.whenFinished(() => ws.readyState === ws.CONNECTING && ws.terminate());
    // The session's span ends with the service's socket, whichever way it went: closed after the
    // session (its close code), refused (terminated once the refusal is through) or never reached.
    if (span) ws.once('close', (code: number) => endWsRelaySpan(span, status, tally!, status === 101 ? code : null, stream.failed ? 'incomplete' : null));
  }

  return {
    open(msg: Record<string, unknown>): void {
      const m = msg as unknown as OpenMsg;
      if (!isStreamId(m.sid)) return;
      if (typeof m.method !== 'string' || !TOKEN.test(m.method) || typeof m.url !== 'string' || !isHeaders(m.headers)
        || (m.service !== null && typeof m.service !== 'string') || typeof m.body !== 'boolean' || typeof m.upgrade !== 'boolean') {
        return refuse(m.sid, 'bad_request', 'malformed open frame');
      }
      const verdict = guard.verifyOpen(deps.secret, m);
      if (verdict !== 'ok') {
        deps.log.warn({ verdict }, 'refused a request frame: signature check failed');
        return refuse(m.sid, verdict === 'bad_signature' ? 'bad_signature' : 'replayed', `request frame refused: ${verdict}`);
      }
      let target: URL;
      try {
        target = new URL(m.url);
        if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new Error('scheme');
      } catch {
        return refuse(m.sid, 'bad_request', 'target is not an http(s) URL');
      }
      let stream: Stream;
      try {
        stream = deps.mux.create(m.sid);
      } catch {
        return refuse(m.sid, 'bad_request', 'stream id in use');
      }
      serve(m, stream, target);
    },
    close: () => dispatcher.close(),
  };
}

/**
 * The agent's CLIENT span for one request to the local service, under the hub's proxy span (the
 * `traceparent` the hub sent) or the root of a new trace. The service then gets this span as its
 * parent. It names the service and the host and port dialled, never the path or query: a `path` or
 * `query` credential is in them.
 */
function startRelaySpan(tracing: Tracing, m: OpenMsg, target: URL, headers: Headers, nodeId: string | undefined): Span {
  const span = tracing
    .start(`relay ${m.upgrade ? 'ws ' : ''}${m.service || target.hostname}`, SpanKind.CLIENT, incomingContext(headers))
    .set('http.request.method', m.method)
    .set('server.address', target.hostname)
    .set('server.port', Number(target.port) || (target.protocol === 'https:' ? 443 : 80))
    .set('url.scheme', target.protocol.slice(0, -1))
    .set('nexus.service.slug', m.service || null)
    .set('nexus.node_id', nodeId);
  if (tracing.propagate) injectTraceHeaders(headers, span);
  return span;
}

/** `failure`: a stable code, or null when the exchange ran to its end (a 5xx still marks it failed). */
function endRelaySpan(span: Span, status: number, bytesOut: number, failure: string | null): void {
  if (status) span.set('http.response.status_code', status);
  span.set('nexus.bytes_out', bytesOut);
  if (failure) {
    if (!span.statusMessage) span.fail(failure);
  } else if (status >= 500) span.fail(String(status));
  span.finish();
}

/** Close codes that say a session broke (RFC 6455 §7.4.1: 1006 no close frame, 1011 an endpoint failed). */
const BROKEN_CLOSE = new Set([1006, 1011]);

/**
 * A WebSocket session's span: the handshake's status, the bytes and messages each way (in = from
 * the caller to the service, out = from the service back) and the service's close code.
 */
function endWsRelaySpan(span: Span, status: number, tally: WsTally, closeCode: number | null, failure: string | null): void {
  if (status) span.set('http.response.status_code', status);
  span
    .set('nexus.bytes_in', tally.bytesOut)
    .set('nexus.bytes_out', tally.bytesIn)
    .set('nexus.ws.messages_in', tally.messagesOut)
    .set('nexus.ws.messages_out', tally.messagesIn);
  if (closeCode !== null) span.set('nexus.ws.close_code', closeCode);
  if (!span.statusMessage) {
    if (status >= 500) span.fail(String(status));
    else if (closeCode !== null && BROKEN_CLOSE.has(closeCode)) span.fail(`ws_close_${closeCode}`);
    else if (failure && status === 101) span.fail(failure);
  }
  span.finish();
}
