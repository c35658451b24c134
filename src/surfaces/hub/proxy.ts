// The service proxy: one request in, one request out, bodies streamed both ways without buffering
// (except the `body` auth method, which must edit a JSON body). Direct services are dialled by the
// appliance behind the SSRF guard; node services go through the relay to the agent that holds the
// credential. Failover: candidates in priority/WRR order; offline nodes never get a request, and a
// node that fails before answering is replaced by the next one when that is safe (`retryReason`),
// within the request's time for retries and its service's retry budget (retry-budget.ts).
import { Readable } from 'node:stream';
import { Agent, request as undiciRequest } from 'undici';
import type WebSocket from 'ws';
import type { AppContext } from '../../core/context.ts';
import { AppError } from '../../core/errors/errors.ts';
import { NODE_OFFLINE, nodeOffline } from '../../core/relay/node-relay.ts';
import { injectTraceHeaders, type TraceContext } from '../../core/telemetry/trace-context.ts';
import { BODY_FIELD_FAILURES, BodyFieldError, endToEnd, inject, joinTarget, withBodyField } from '../../protocol/credentials.ts';
import type { Headers } from '../../protocol/frames.ts';
import { bridgeWebSocket, dialForCaller, MAX_WS_MESSAGE, pipeWebSockets, type WsTally } from '../../protocol/ws-bridge.ts';
import { RelayError, type AgentSession, type RelayedUpgrade } from './agent-session.ts';
import type { Registry } from './registry.ts';
import { KeptBytes } from './replay.ts';
import { RetryBudgets, type RetryTicket } from './retry-budget.ts';
import { NodePicker } from './routing.ts';
import type { Services } from './services.ts';
import type { ServiceNode, ServiceRow } from './services-store.ts';
import { checkUrl, guardedConnector, guardedLookup, portOf, type GuardOptions } from './ssrf.ts';

export interface ProxyCall {
  service: ServiceRow;
  method: string;
  /** Raw path after the slug (still percent-encoded) and raw query (with or without "?"). */
  rest: string;
  search: string;
  headers: Record<string, string | string[] | undefined>;
  /** Header names that carried the caller's Nexus credential; never forwarded. */
  strip: string[];
  body: AsyncIterable<Uint8Array> | null;
  signal: AbortSignal;
  /** The service's node binding when the caller already read it (one lookup per request). */
  bound?: ServiceNode[];
  /** Filled with each node tried, in order, and why those that failed before answering did (for the audit row). */
  tries?: NodeTry[];
  /** Set while exporting: the service gets a `traceparent` naming the proxy's span (proxy-spans.ts). */
  trace?: TraceContext | null;
}

export interface NodeTry {
  node_id: string;
  /** Set when the node failed before answering: a RelayError reason (node_offline, node_refused,
   *  connect_failed, service_failed, node_disconnected, stream_reset, malformed_response) or the
   *  error code the caller got. */
  error?: string;
  /** Set on the last try when its failure allowed a retry that was not made: `budget` (the service's
   *  retry budget was spent) or `timeout` (past hub.retryTimeoutSeconds since the first try). */
  retry_refused?: RetryRefusal;
}

export type RetryRefusal = 'budget' | 'timeout';

/** RFC 9110 §9.2.2: methods whose repetition has the effect of one request. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/**
 * Why `err` (a node's failure before its response head) lets the request go to the next node, or
 * null when it must not: only when none of it reached the service, or when it may have but the
 * method is idempotent, and in both cases only when the body can be sent again from its start.
 * `resendable`: no body, or all of it kept (KeptBody).
 */
export function retryReason(err: unknown, method: string, resendable: boolean): string | null {
  const f = relayFailure(err);
  if (!f || (!resendable && f.reason !== 'node_offline')) return null;
  return f.unsent || IDEMPOTENT.has(method) ? f.reason : null;
}

/** The node failure `err` stands for, or null for an error that says nothing about the node. */
function relayFailure(err: unknown): { reason: string; unsent: boolean } | null {
  if (err instanceof RelayError) return { reason: err.reason, unsent: err.failure === 'unsent' };
  // The registry had no session: nothing was sent and the body is untouched.
  if (err instanceof AppError && err.numericCode === NODE_OFFLINE) return { reason: 'node_offline', unsent: true };
  return null;
}

/** A request body's declared length (Content-Length), undefined when it has none (chunked). */
function declaredLength(headers: ProxyCall['headers']): number | undefined {
  const len = headers['content-length'];
  return typeof len === 'string' ? Number(len) : undefined;
}

/**
 * A service's answer to a WebSocket handshake, before the caller's is answered. Accepted: the
 * subprotocol and other headers of its 101; `join` the caller's socket once its handshake completes
 * (or `cancel`), `tally` counting the caller's messages each way. Refused: the service's own answer.
 */
export type DialedWebSocket = { routedVia: 'direct' | 'node'; nodeId: string | null } & (
  | { accepted: true; protocol: string | null; headers: Headers; join(caller: WebSocket, tally?: WsTally): void; cancel(): void }
  | { accepted: false; status: number; headers: Headers; body: Readable }
);

export interface ProxyResult {
  status: number;
  headers: Headers;
  body: AsyncIterable<Uint8Array>;
  /** The whole body when it came with the head (through a node; see RelayResponse). */
  whole?: Buffer;
  routedVia: 'direct' | 'node';
  nodeId: string | null;
}

/** A `body` credential added to the request body, or the caller's error (agent-session.ts gives the same through a node). */
async function bodyWithField(body: AsyncIterable<Uint8Array> | null, field: { name: string; value: string }, limit: number, headers: Headers): Promise<Buffer> {
  try {
    return await withBodyField(body, field, limit, headers);
  } catch (err) {
    if (!(err instanceof BodyFieldError)) throw err;
    const f = BODY_FIELD_FAILURES[err.reason];
    throw new AppError(f.code, f.message);
  }
}

export function createProxy(ctx: AppContext, services: Services, registry: Registry) {
  const picker = new NodePicker();
  const guard: GuardOptions = {
    allowPrivate: ctx.config.proxy.allowPrivateTargets,
    ownListeners: () => [ctx.state.publicAddress, ctx.state.adminAddress].filter((a): a is string => !!a),
  };
  const timeoutMs = ctx.config.proxy.maxStreamSeconds * 1000;
  const dispatcher = new Agent({
    connect: guardedConnector(guard),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    keepAliveTimeout: 30_000,
  });

  async function direct(call: ProxyCall, target: URL, headers: Headers): Promise<ProxyResult> {
    await checkUrl(target, guard);
    const secret = services.credential(call.service);
    let body: AsyncIterable<Uint8Array> | Buffer | null = call.body;
    if (secret !== null) {
      const { bodyField } = inject({ method: call.service.auth_method, keyName: call.service.auth_key_name, secret }, target, headers);
      if (bodyField) body = await bodyWithField(call.body, bodyField, ctx.config.bodyLimitBytes, headers);
    }
    try {
      const res = await undiciRequest(target, {
        method: call.method as 'GET',
        headers,
        body: body as Buffer | null,
        dispatcher,
        signal: call.signal,
      });
      return { status: res.statusCode, headers: endToEnd(res.headers), body: res.body, routedVia: 'direct', nodeId: null };
    } catch (err) {
      if (call.signal.aborted) throw new AppError('upstream_timeout', 'the request was cancelled or ran past the proxy time limit', { cause: err });
      const code = (err as { code?: string }).code;
      if (code === 'ESSRF') throw new AppError('forbidden', `service endpoint refused: ${(err as Error).message}`);
      if (code === 'UND_ERR_HEADERS_TIMEOUT') throw new AppError('upstream_timeout', 'the service did not answer in time');
      throw new AppError('bad_gateway', 'the service could not be reached', { cause: err });
    }
  }

  /** Retries by reason since start, and retries not made by what stopped them, for /metrics. */
  const retries = new Map<string, number>();
  const refused = new Map<RetryRefusal, number>();
  /** No try on another node starts later than this after the first (docs/hub.md, "Retries on another node"). */
  const retryTimeoutMs = ctx.config.hub.retryTimeoutSeconds * 1000;
  const budgets = new RetryBudgets(ctx.config.hub.retryBudgetPercent, ctx.config.hub.retryBudgetMinConcurrent);
  const keptBytes = new KeptBytes(ctx.config.hub.retryBodyMaxBytes, ctx.config.hub.retryBodyTotalBytes);

  /**
   * Records why the last try failed and says whether the next node gets the request (counted by
   * reason). At most one try per node (the order has each once), none after the request's time for
   * retries, and none beyond its service's budget: a request refused a retry ends with the failure it
   * had, its last try saying why it went no further.
   */
  function retry(call: Omit<ProxyCall, 'body'>, err: unknown, resendable: boolean, started: number, more: boolean, ticket: RetryTicket): boolean {
    const tried = call.tries?.at(-1);
    if (tried) tried.error = relayFailure(err)?.reason ?? (err instanceof AppError ? err.code : 'internal');
    const reason = retryReason(err, call.method, resendable);
    if (!reason || !more || call.signal.aborted) return false;
    const refusal: RetryRefusal | null = performance.now() - started > retryTimeoutMs ? 'timeout' : ticket.retry() ? null : 'budget';
    if (refusal) {
      if (tried) tried.retry_refused = refusal;
      refused.set(refusal, (refused.get(refusal) ?? 0) + 1);
      return false;
    }
    retries.set(reason, (retries.get(reason) ?? 0) + 1);
    return true;
  }

  async function viaNodes(call: ProxyCall, target: URL, headers: Headers, bound: ReturnType<Services['store']['nodes']>): Promise<ProxyResult> {
    const order = picker.order(call.service.id, bound, (id) => ctx.relay.isOnline(id));
    if (!order.length) {
      throw new AppError('unavailable', `no node serving "${call.service.slug}" is online`, { numericCode: NODE_OFFLINE, retryAfter: 5 });
    }
    // With a second node to turn to, a body within the bounds is kept so that it can be sent to it from the start.
    let body = call.body;
    const kept = body && order.length > 1
      ? keptBytes.keep((body = body instanceof Readable ? body : Readable.from(body)), declaredLength(call.headers))
      : null;
    const started = performance.now();
    const ticket = budgets.admit(call.service.id);
    try {
      for (let i = 0; ; i++) {
        const nodeId = order[i]!;
        call.tries?.push({ node_id: nodeId });
        try {
          const res = await ctx.relay.request(nodeId, {
            method: call.method,
            url: target.toString(),
            headers,
            body: kept ? kept.take() : body,
            service: call.service.slug,
            signal: call.signal,
          });
          // Not spread: a response that came whole builds its \`body\` stream only if it is read.
          return {
            status: res.status,
            headers: endToEnd(res.headers),
            get body() {
              return res.body;
            },
            whole: res.whole,
            routedVia: 'node',
            nodeId,
          };
        } catch (err) {
          if (!retry(call, err, !call.body || !!kept?.replayable, started, i + 1 < order.length, ticket)) throw err;
        }
      }
    } finally {
      ticket.done();
      kept?.release();
    }
  }

  /** A direct service's WebSocket, dialled by the appliance behind the SSRF guard. */
  async function dialDirect(call: Omit<ProxyCall, 'body'>, target: URL, headers: Headers): Promise<DialedWebSocket> {
    await checkUrl(target, guard);
    const secret = services.credential(call.service);
    if (secret !== null) inject({ method: call.service.auth_method, keyName: call.service.auth_key_name, secret }, target, headers);
    const { ws: upstream, answer } = dialForCaller(target, headers, {
      perMessageDeflate: false,
      handshakeTimeout: 30_000,
      maxPayload: MAX_WS_MESSAGE,
      lookup: guardedLookup(guard, portOf(target)),
    });
    // The caller leaving (or the session's end) closes the upstream, at any stage.
    const cancel = () => upstream.terminate();
    if (call.signal.aborted) cancel();
    call.signal.addEventListener('abort', cancel, { once: true });
    const where = { routedVia: 'direct', nodeId: null } as const;
    return new Promise<DialedWebSocket>((resolve, reject) => {
      upstream.once('open', () => {
        // What the service sends at once waits in its socket until the caller's side is there to take it.
        upstream.pause();
        resolve({
          ...where,
          accepted: true,
          ...answer(),
          join: (caller, tally) => {
            pipeWebSockets(caller, upstream, tally);
            upstream.resume();
          },
          cancel,
        });
      });
      upstream.once('unexpected-response', (_req, res) => {
        res.once('close', cancel);
        resolve({ ...where, accepted: false, status: res.statusCode!, headers: endToEnd(res.headers), body: res });
      });
      // Stays for the socket's life: errors after the handshake are the bridge's to handle.
      upstream.on('error', (err) => {
        const code = (err as { code?: string }).code;
        if (code === 'ESSRF') return reject(new AppError('forbidden', `service endpoint refused: ${err.message}`));
        if (err.message.includes('handshake has timed out')) return reject(new AppError('upstream_timeout', 'the service did not answer the handshake in time'));
        reject(new AppError('bad_gateway', 'the service could not be reached', { cause: err }));
      });
    });
  }

  /** A WebSocket handshake is a GET without a body: a node that fails before answering gives way like one. */
  async function dialViaNodes(call: Omit<ProxyCall, 'body'>, target: URL, headers: Headers, bound: ServiceNode[]): Promise<DialedWebSocket> {
    const order = picker.order(call.service.id, bound, (id) => registry.isOnline(id));
    if (!order.length) throw new AppError('unavailable', `no node serving "${call.service.slug}" is online`, { numericCode: NODE_OFFLINE, retryAfter: 5 });
    const started = performance.now();
    let res: RelayedUpgrade | null = null;
    let session: AgentSession | undefined;
    const ticket = budgets.admit(call.service.id);
    try {
      for (let i = 0; !res; i++) {
        session = registry.get(order[i]!);
        call.tries?.push({ node_id: order[i]! });
        try {
          if (!session) throw nodeOffline(order[i]!);
          res = await session.upgrade({ method: 'GET', url: target.toString(), headers, service: call.service.slug, signal: call.signal });
        } catch (err) {
          if (!retry(call, err, true, started, i + 1 < order.length, ticket)) throw err;
        }
      }
    } finally {
      ticket.done();
    }
    const where = { routedVia: 'node', nodeId: session!.nodeId } as const;
    if (!res.accepted) return { ...where, accepted: false, status: res.status, headers: endToEnd(res.headers), body: res.body };
    const { stream } = res;
    const { 'sec-websocket-protocol': protocol, ...answered } = endToEnd(res.headers);
    return {
      ...where,
      accepted: true,
      protocol: typeof protocol === 'string' && protocol ? protocol : null,
      headers: answered,
      // Messages the service sent meanwhile wait in the stream, within its window.
      join: (caller, tally) => bridgeWebSocket(caller, stream, session!.features.has('ws_close'), tally),
      cancel: () => stream.reset('caller went away'),
    };
  }

  return {
    /**
     * Dials the service's WebSocket before the caller's handshake is answered, so that the caller can
     * be told what the service said: a refusal as the service's own HTTP answer, an acceptance with
     * the subprotocol the service chose. Through a node, messages travel over a relay stream; for a
     * direct service, the appliance holds the second WebSocket. Aborting `call.signal` gives up the
     * dial at any stage and, once joined, ends the session.
     */
    async dialWebSocket(call: Omit<ProxyCall, 'body'>): Promise<DialedWebSocket> {
      const target = joinTarget(call.service.endpoint_url, call.rest, call.search);
      if (!target) throw new AppError('validation_failed', 'path may not climb above the service endpoint');
      const headers = endToEnd(call.headers, call.strip);
      if (call.trace) injectTraceHeaders(headers, call.trace);
      const bound = call.bound ?? services.store.nodes(call.service.id);
      return bound.length ? dialViaNodes(call, target, headers, bound) : dialDirect(call, target, headers);
    },

    async forward(call: ProxyCall): Promise<ProxyResult> {
      const target = joinTarget(call.service.endpoint_url, call.rest, call.search);
      if (!target) throw new AppError('validation_failed', 'path may not climb above the service endpoint');
      const headers = endToEnd(call.headers, call.strip);
      if (call.trace) injectTraceHeaders(headers, call.trace);
      const bound = call.bound ?? services.store.nodes(call.service.id);
      return bound.length ? viaNodes(call, target, headers, bound) : direct(call, target, headers);
    },
    /** Tries handed to another node, by the failure that caused them. */
    retries: (): ReadonlyMap<string, number> => retries,
    /** Retries a failure allowed and the time limit or the service's budget did not. */
    retriesRefused: (): ReadonlyMap<RetryRefusal, number> => refused,
    /** Requests through nodes waiting for an answer, and retries among them (the budgets' counts, every service together). */
    inFlight: () => budgets.inFlight,
    /** The per-service budgets themselves (how many are held, a service's counts). */
    budgets: (): Pick<RetryBudgets, 'held' | 'of'> => budgets,
    /** Request bodies kept for a retry: bytes held now, bodies not kept by why. */
    keptBodies: (): Pick<KeptBytes, 'held' | 'notKept'> => keptBytes,
    close: () => dispatcher.close(),
  };
}

export type Proxy = ReturnType<typeof createProxy>;
