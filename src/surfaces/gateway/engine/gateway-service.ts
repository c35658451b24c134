// One gateway request from admission to accounting: resolve the public model, check the key's
// scope, reserve against its limits, try deployments in the router's order (retrying connect errors,
// 429 and 5xx only before the first byte reached the client), answer or stream in the client's
// format, then settle the reservation with real usage and queue the usage row.
import { isUtf8 } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { isoNow } from '../../../core/clock.ts';
import { AppError } from '../../../core/errors/errors.ts';
import type { CallAbort } from '../../../core/http/call-abort.ts';
import type { Logger } from '../../../core/log/log.ts';
import type { Catalog, Deployment, Model } from '../catalog/catalog.ts';
import { admitAll, isLimitHit, settleAll, type Reservation } from '../keys/limits.ts';
import type { ResolvedKey, VirtualKeys } from '../keys/virtual-keys.ts';
import type { IngressFormat } from '../ingress/wire-format.ts';
import { anthropicStreamUsage } from '../providers/anthropic/anthropic-ingress.ts';
import { ADAPTERS } from '../providers/index.ts';
import type { AudioForm } from '../providers/openai-base/audio-form.ts';
import { openAiUsage } from '../providers/openai-base/openai-base.ts';
import { isObject, NO_USAGE, type Json, type Operation, type Usage } from '../providers/types.ts';
import type { Audit } from '../../../core/audit/audit.ts';
import { audioMeter, NO_AUDIO_CHARGE, type AudioMeter } from '../usage/audio-metering.ts';
import type { TraceContext } from '../../../core/telemetry/trace-context.ts';
import type { Span, Tracing } from '../../../core/telemetry/tracing.ts';
import type { GatewayMetrics } from '../usage/gateway-metrics.ts';
import type { UsageRecorder } from '../usage/usage-recorder.ts';
import { clientEncoder, type ClientEncoder } from './client-encoders.ts';
import { cacheable, CachedStream, cacheDirectives, cacheKey, keyBody, StreamRecorder, waitFor, type ResponseCache } from './response-cache.ts';
import { estimateInputTokens, requestedOutputCap } from './estimate.ts';
import { attemptFailed, beginAttempt, endCall } from './gateway-spans.ts';
import type { Router } from './router.ts';
import { parseSseEvent, SseFramer } from './sse.ts';
import { canServe, clientAskedUsage, familyOf, nativeUsage, plan, type Plan } from './translate.ts';
import type { Upstream, UpstreamResponse } from './upstream.ts';

export interface GatewayCall {
  ingress: IngressFormat;
  op: Operation;
  model: string;
  body: Json;
  stream: boolean;
  /** Gemini ingress: the :method and, for streams, SSE (alt=sse) or a JSON array. */
  geminiMethod?: string;
  geminiMode?: 'sse' | 'array';
  /** Client headers that go with the body when it passes through to a provider of the client's own
   *  family (Anthropic's `anthropic-version` and `anthropic-beta`, which name what the body uses). */
  passHeaders?: Record<string, string>;
  /** Audio uploads: the client's multipart body, sent as its own bytes with the model replaced. */
  form?: AudioForm;
  /** The request's Cache-Control (response-cache.ts), when it sent one. */
  cacheControl?: string | undefined;
  key: ResolvedKey;
  /** The caller's address (from the trusted proxy's X-Forwarded-For), for the audit log. */
  sourceIp?: string;
  /** Aborted (without an AppError reason) when the client goes away; the gateway aborts it with an
   *  AppError when a stream outlives its maximum duration. One controller per request. */
  abort: CallAbort;
  /** What the upstream calls continue (Tracing.contextOf): the request's span, or the caller's context. */
  trace?: TraceContext | null;
}

/** Where the answer goes; the ingress layer implements it over the HTTP response. */
export interface ClientSink {
  /** A whole JSON answer (usually the upstream's own bytes), handed to the socket at once. */
  json(status: number, body: Buffer | string, headers?: Record<string, string>): void;
  /** The head of a stream. */
  begin(status: number, headers: Record<string, string>): void;
  /** Resolves when the client can take more (backpressure), at once otherwise. */
  write(chunk: string | Buffer): Promise<void> | undefined;
  end(): void;
  /** Cuts the connection: a body that failed midway (audio bytes) must not look complete. */
  destroy(): void;
}

export interface JsonResult {
  status: number;
  body: Buffer | string;
}

export interface GatewayDeps {
  catalog: Catalog;
  keys: VirtualKeys;
  usage: UsageRecorder;
  upstream: Upstream;
  router: Router;
  log: Logger;
  maxStreamMs: number;
  reserveOutputTokens: number;
  /** Every gateway call is also an audit entry (batched: ctx.audit.enqueue). */
  audit?: Pick<Audit, 'enqueue'>;
  metrics?: GatewayMetrics;
  /** Answers kept for models with a `cache_ttl_seconds`. */
  cache?: ResponseCache;
  tracing?: Tracing;
}

const MAX_JSON_RESPONSE = 64 * 1024 * 1024;
const MAX_ERROR_BODY = 64 * 1024;
// The first-byte timeout as undici (streams) and the gateway's HTTP/1.1 client (whole answers) name it.
const HEADERS_TIMEOUT = new Set(['UND_ERR_HEADERS_TIMEOUT', 'HEADERS_TIMEOUT']);
const USAGE = Buffer.from('"usage');

interface Outcome {
  deployment: Deployment | null;
  usage: Usage | null;
  status: number;
  errorCode: string | null;
  ttftMs: number | null;
  /** Streamed events seen, to estimate output when a cut-short stream never reported usage. */
  events: number;
  upstreamReached: boolean;
  /** Answered from the response cache: nothing reached a provider and nothing is charged. */
  cacheHit: boolean;
  /** The x-nexus-cache header of a cacheable call, and the recorder of a stream the cache will keep. */
  cacheHeader?: Record<string, string>;
  recorder?: StreamRecorder;
  /** The CLIENT span of the attempt that answered (gateway-spans.ts), ended in finish(). */
  span: Span | null;
  responseModel: string | null;
}

export function modelNotFound(name: string): AppError {
  return new AppError('not_found', `model "${name}" does not exist or is not available`, { details: { code: 'model_not_found', param: 'model' } });
}

/** Input tokens include the cached ones; those are priced at the model's cached rate when it has one. */
function costOf(model: Model, u: Usage): number {
  const cached = Math.min(u.cached, u.input);
  const cachedRate = model.cachedInputPricePerMtok ?? model.inputPricePerMtok;
  return ((u.input - cached) * model.inputPricePerMtok + cached * cachedRate + u.output * model.outputPricePerMtok) / 1e6;
}

/** A JSON answer (or one without a Content-Type, which OpenAI-shaped providers mean as JSON). */
function isJson(res: UpstreamResponse): boolean {
  const t = res.headers['content-type'];
  return t === undefined || /\bjson\b/i.test(String(t));
}

function retryAfterOf(res: UpstreamResponse): number | undefined {
  const v = res.headers['retry-after'];
  const n = Number(Array.isArray(v) ? v[0] : v);
  return Number.isFinite(n) && n >= 0 ? Math.ceil(n) : undefined;
}

/** The upstream's own error message, whatever its family's shape; never its headers or key. */
function upstreamMessage(body: Buffer): string {
  const text = body.toString('utf8');
  try {
    const j = JSON.parse(text);
    const e = Array.isArray(j) ? j[0]?.error : j?.error;
    if (isObject(e) && typeof e.message === 'string') return e.message.slice(0, 500);
    if (typeof e === 'string') return e.slice(0, 500);
    if (typeof j?.message === 'string') return j.message.slice(0, 500);
  } catch {
    /* not JSON */
  }
  return text.slice(0, 200);
}

function upstreamError(status: number, message: string, retryAfter?: number): AppError {
  if (status === 429) return new AppError('rate_limited', `upstream rate limit: ${message}`, { retryAfter: retryAfter ?? 1, details: { code: 'upstream_rate_limited', limit: 'upstream' } });
  if (status === 401 || status === 403) return new AppError('bad_gateway', 'the provider refused the gateway\'s credentials; ask an administrator to check the provider key', { details: { code: 'upstream_auth_failed' } });
  if (status >= 500) return new AppError('bad_gateway', `upstream error ${status}: ${message}`, { details: { code: 'upstream_error' } });
  if (status === 404) return new AppError('not_found', `the provider answered 404 Not Found${message ? ` (${message})` : ''}: it has no such model or path; an administrator may need to check the deployment's upstream model and the provider's base URL`, { details: { code: 'upstream_not_found' } });
  return new AppError('validation_failed', `upstream rejected the request: ${message}`, { status: status === 413 || status === 422 ? status : 400, details: { code: 'upstream_rejected' } });
}

const CLIENT_CLOSED = 'client closed the connection';
const clientClosed = (ac: CallAbort) => ac.aborted && !(ac.reason instanceof AppError);

export function createGatewayService(deps: GatewayDeps) {
  const { catalog, keys, usage, upstream, router, log } = deps;

  const encoderFor = (c: GatewayCall): ClientEncoder => clientEncoder(c);

  /**
   * An answer that broke off after it began: the outcome says why (the client left, the maximum
   * duration — the abort's reason — or `fallback`), and the error to tell the client is returned
   * (null when the client left).
   */
  function endedEarly(c: GatewayCall, o: Outcome, fallback: AppError, err: unknown, what: string): AppError | null {
    if (clientClosed(c.abort)) {
      o.status = 499;
      o.errorCode = 'client_closed';
      return null;
    }
    const reason = c.abort.reason;
    const e = reason instanceof AppError ? reason : fallback;
    o.status = e.status;
    o.errorCode = (e.details?.code as string | undefined) ?? e.code;
    log.warn({ err, model: c.model, deployment: o.deployment?.id }, what);
    return e;
  }

  async function streamOut(c: GatewayCall, p: Plan, res: UpstreamResponse, sink: ClientSink, o: Outcome, started: number): Promise<void> {
    const ac = c.abort;
    const enc = encoderFor(c);
    sink.begin(200, { 'content-type': enc.contentType, 'cache-control': 'no-cache', 'x-accel-buffering': 'no', ...o.cacheHeader });
    const rec = o.recorder;
    const framer = new SseFramer();
    const decoder = p.passthrough ? null : p.decoder();
    const geminiRaw = p.passthrough && c.ingress === 'gemini';
    const anthropicRaw = p.passthrough && c.ingress === 'anthropic';
    let lastUsage: Buffer | null = null;
    const timer = setTimeout(() => ac.abort(new AppError('upstream_timeout', `stream exceeded the maximum duration of ${Math.round(deps.maxStreamMs / 1000)} s`)), deps.maxStreamMs);
    const send = (out: string | Buffer) => {
      if (!out.length) return undefined;
      o.ttftMs ??= performance.now() - started;
      return sink.write(out);
    };
    try {
      for await (const chunk of res.body) {
        let out: string | Buffer[] = decoder || geminiRaw ? '' : [];
        framer.push(chunk, (ev) => {
          o.events++;
          if (decoder) {
            const { data, event } = parseSseEvent(ev);
            if (data === null) return;
            for (const pc of decoder.push(data, event)) {
              if (isObject(pc.usage)) o.usage = openAiUsage(pc.usage);
              rec?.chunk(pc);
              out += enc.chunk(pc);
            }
          } else if (geminiRaw) {
            const { data } = parseSseEvent(ev);
            if (data === null) return;
            if (data.includes('"usageMetadata"')) lastUsage = ev;
            rec?.raw(data);
            out += enc.raw(data);
          } else if (anthropicRaw) {
            // Anthropic pass-through: the exact bytes; usage comes in message_start and message_delta.
            if (ev.includes(USAGE)) {
              const { data } = parseSseEvent(ev);
              if (data) o.usage = anthropicStreamUsage(o.usage, JSON.parse(data) as Json);
            }
            rec?.event(ev, false);
            (out as Buffer[]).push(ev);
          } else {
            // OpenAI pass-through: forward the event's exact bytes; look inside only for usage.
            let usageOnly = false;
            if (ev.includes(USAGE)) {
              const { data } = parseSseEvent(ev);
              const j = data && data !== '[DONE]' ? (JSON.parse(data) as Json) : null;
              const u = j && (isObject(j.usage) ? j.usage : isObject(j.response) && isObject(j.response.usage) ? j.response.usage : null);
              if (u) {
                o.usage = openAiUsage(u);
                usageOnly = Array.isArray(j.choices) && j.choices.length === 0;
                if (typeof j.model === 'string') o.responseModel = j.model;
              }
            }
            rec?.event(ev, usageOnly);
            if (usageOnly && p.stripUsage) return;
            (out as Buffer[]).push(ev);
          }
        });
        const pending = send(typeof out === 'string' ? out : out.length === 1 ? out[0]! : Buffer.concat(out));
        if (pending) await pending;
      }
      let tail = '';
      if (decoder) {
        for (const pc of decoder.end()) {
          if (isObject(pc.usage)) o.usage = openAiUsage(pc.usage);
          rec?.chunk(pc);
          tail += enc.chunk(pc);
        }
      }
      if (geminiRaw && lastUsage) o.usage = nativeUsage('gemini', JSON.parse(parseSseEvent(lastUsage).data!) as Json);
      tail += enc.end(p.passthrough);
      send(tail);
      o.status = 200;
    } catch (err) {
      const e = endedEarly(c, o, err instanceof AppError ? err : new AppError('bad_gateway', 'upstream stream failed before it completed', { details: { code: 'upstream_stream_failed' } }), err, 'gateway stream ended early');
      if (e) send(enc.error(e));
    } finally {
      clearTimeout(timer);
      sink.end();
    }
  }

  /** A stream kept by the cache, replayed through the client's own encoder (response-cache.ts). */
  async function replayOut(c: GatewayCall, kept: CachedStream, sink: ClientSink, o: Outcome, started: number, headers: Record<string, string>): Promise<void> {
    const enc = encoderFor(c);
    sink.begin(200, { 'content-type': enc.contentType, 'cache-control': 'no-cache', 'x-accel-buffering': 'no', ...headers });
    try {
      for (const out of kept.replay(enc, clientAskedUsage(c.body))) {
        o.ttftMs ??= performance.now() - started;
        const pending = sink.write(out);
        if (pending) await pending;
        if (clientClosed(c.abort)) {
          o.status = 499;
          o.errorCode = 'client_closed';
          return;
        }
      }
    } finally {
      sink.end();
    }
  }

  /** Audio or text passed on as it arrives, under the upstream's Content-Type; it carries no usage. */
  async function bytesOut(c: GatewayCall, res: UpstreamResponse, sink: ClientSink, o: Outcome, started: number): Promise<void> {
    const ac = c.abort;
    const type = res.headers['content-type'];
    sink.begin(200, { 'content-type': String(Array.isArray(type) ? type[0] : type), 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
    const timer = setTimeout(() => ac.abort(new AppError('upstream_timeout', `answer exceeded the maximum duration of ${Math.round(deps.maxStreamMs / 1000)} s`)), deps.maxStreamMs);
    try {
      for await (const chunk of res.body) {
        o.ttftMs ??= performance.now() - started;
        const pending = sink.write(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if (pending) await pending;
      }
      o.status = 200;
      sink.end();
    } catch (err) {
      endedEarly(c, o, new AppError('bad_gateway', 'upstream answer ended before it was complete', { details: { code: 'upstream_incomplete' } }), err, 'gateway answer ended early');
      sink.destroy();
    } finally {
      clearTimeout(timer);
    }
  }

  function jsonOut(p: Plan, buf: Buffer, o: Outcome, started: number, now: number): JsonResult {
    o.ttftMs = now - started;
    const text = buf.toString('utf8');
    let json: Json;
    try {
      json = JSON.parse(text) as Json;
    } catch {
      throw new AppError('bad_gateway', 'upstream answered with invalid JSON', { details: { code: 'upstream_invalid' } });
    }
    const { out, usage: u } = p.response(json);
    o.usage = u;
    const rm = json.model ?? json.modelVersion;
    if (typeof rm === 'string') o.responseModel = rm;
    o.status = 200;
    // The upstream's own bytes, passed on as the text already decoded when that is the same bytes
    // (valid UTF-8): the answer's head and body then leave in one socket write instead of a writev
    // of two pieces (BENCHMARKS.md, "per-call cuts").
    return { status: 200, body: out !== null ? JSON.stringify(out) : isUtf8(buf) ? text : buf };
  }

  async function attempt(c: GatewayCall, model: Model, candidates: Deployment[], estInput: number, sink: ClientSink, o: Outcome, started: number): Promise<JsonResult | null> {
    const family = familyOf(c.ingress);
    const ac = c.abort;
    let last: AppError | null = null;
    let tries = 0;
    for (const d of router.order(candidates, model.routing, c.stream)) {
      if (ac.aborted) break;
      router.begin(d); // in flight until its answer is in hand (a stream: passed on) or the attempt failed
      try {
        const adapter = ADAPTERS[d.provider.type];
        const p = plan({ family, op: c.op, model: model.name, body: c.body, stream: c.stream, geminiMethod: c.geminiMethod, estInput }, adapter, d.upstreamModel);
        const req = adapter.request(d.provider, p.upstreamOp ?? c.op, d.upstreamModel, c.form ? c.form.withModel(d.upstreamModel) : JSON.stringify(p.body), c.stream);
        if (c.passHeaders && p.passthrough) Object.assign(req.headers, c.passHeaders);
        const span = c.trace ? beginAttempt(deps.tracing!, c.trace, c, model.name, d, ++tries, req.headers) : null;
        o.span = span;
        o.deployment = d;
        let res: UpstreamResponse;
        const sentAt = performance.now();
        try {
          res = await upstream.send(d.provider, req, ac, c.stream || p.raw ? undefined : MAX_JSON_RESPONSE);
        } catch (err) {
          if (ac.aborted) break;
          router.fail(d);
          last = err instanceof AppError && err.status === 503
            ? err
            : HEADERS_TIMEOUT.has((err as { code?: string }).code!) // reached, but silent past gateway.firstByteTimeoutSeconds
              ? new AppError('upstream_timeout', `provider "${d.provider.name}" did not start its answer in time`, { details: { code: 'upstream_timeout' } })
              : new AppError('bad_gateway', `provider "${d.provider.name}" is unreachable`, { details: { code: 'upstream_unreachable' } });
          deps.metrics?.upstreamFailure(d.provider.name, last.status === 503 ? 'node_offline' : last.status === 504 ? 'timeout' : 'unreachable');
          attemptFailed(span, (last.details?.code as string | undefined) ?? last.code);
          o.span = null;
          log.warn({ err, deployment: d.id, provider: d.provider.name }, 'upstream request failed');
          continue;
        }
        o.upstreamReached = true;
        if (res.status >= 400) {
          const msg = upstreamMessage(await res.read(MAX_ERROR_BODY).catch(() => Buffer.alloc(0)));
          const err = upstreamError(res.status, msg, retryAfterOf(res));
          if (res.status === 429 || res.status >= 500) {
            router.fail(d, retryAfterOf(res));
            deps.metrics?.upstreamFailure(d.provider.name, res.status === 429 ? 'rate_limited' : 'server_error');
            // When every deployment is limited, the client may come back as soon as the first of them may.
            const sooner = last?.status === 429 && err.status === 429 && (last.retryAfter ?? Infinity) <= (err.retryAfter ?? Infinity);
            if (!sooner) last = err;
            attemptFailed(span, String(res.status), res.status);
            o.span = null;
            continue;
          }
          throw err;
        }
        const answeredAt = performance.now();
        router.ok(d);
        if (c.stream) {
          // What a pass-through OpenAI-shaped stream holds depends on the client's include_usage when
          // the provider ignores stream_options (the gateway cannot ask it for usage on the client's behalf).
          o.recorder?.begin(p.passthrough, p.passthrough && family === 'openai' && !adapter.streamUsageOption ? clientAskedUsage(c.body) : null);
          await streamOut(c, p, res, sink, o, started);
          // Time to first token, from sending (`ttftMs` counts from the call's start).
          if (o.status === 200 && o.ttftMs !== null) router.took(d, true, started + o.ttftMs - sentAt);
          return null;
        }
        if (p.raw && !isJson(res)) {
          router.took(d, false, answeredAt - sentAt); // audio passed on as it comes: the time to its head
          await bytesOut(c, res, sink, o, started);
          return null;
        }
        let buf = res.complete; // the whole answer came with its head
        let doneAt = answeredAt;
        if (!buf) {
          buf = await res.read(MAX_JSON_RESPONSE).catch((err: unknown) => {
            // Bytes came, so no retry (the provider may have done the work); the client is told why.
            if (clientClosed(ac)) throw new AppError('validation_failed', CLIENT_CLOSED, { status: 499, details: { code: 'client_closed' } });
            log.warn({ err, model: c.model, deployment: d.id }, 'upstream answer ended early');
            throw new AppError('bad_gateway', 'upstream answer ended before it was complete', { details: { code: 'upstream_incomplete' } });
          });
          doneAt = performance.now();
        }
        const result = jsonOut(p, buf, o, started, doneAt);
        router.took(d, false, doneAt - sentAt, o.usage?.output);
        return result;
      } finally {
        router.end(d);
      }
    }
    if (clientClosed(ac)) throw new AppError('validation_failed', CLIENT_CLOSED, { status: 499, details: { code: 'client_closed' } });
    throw last ?? new AppError('unavailable', `model "${model.name}" has no deployment that can answer`);
  }

  return {
    /**
     * Answers through `sink`. A JSON answer is handed to the socket before its usage row and audit
     * entry are queued, in the same synchronous step: the client's next request is read on a later
     * turn of the event loop, and reads of usage and audit flush what is queued, so it finds both.
     */
    async call(c: GatewayCall, sink: ClientSink): Promise<void> {
      const started = performance.now();
      const model = catalog.resolve(c.model);
      if (!model) throw modelNotFound(c.model);
      if (c.key.models && !c.key.models.has(model.name)) {
        throw new AppError('forbidden', `this virtual key may not use model "${model.name}"`, { details: { code: 'model_not_allowed', param: 'model' } });
      }
      const family = familyOf(c.ingress);
      const candidates = model.deployments.filter((d) => canServe(family, c.op, ADAPTERS[d.provider.type]));
      const estInput = estimateInputTokens(c.body);
      // Counting tokens for a model no provider of the client's family serves: our estimate, free of charge.
      if (c.op === 'count_tokens' && !candidates.length) {
        return sink.json(200, JSON.stringify(family === 'anthropic' ? { input_tokens: estInput } : { totalTokens: estInput }));
      }
      if (!candidates.length) {
        throw new AppError('validation_failed', `model "${model.name}" does not support this operation`, { details: { code: 'unsupported_operation', param: 'model' } });
      }
      const estOutput = c.op === 'embeddings' || c.op === 'count_tokens' || c.op === 'moderations' ? 0 : (requestedOutputCap(c.body) ?? deps.reserveOutputTokens);
      const estimate: Usage = { input: estInput, output: estOutput, cached: 0, reasoning: 0 };
      const o: Outcome = { deployment: null, usage: null, status: 500, errorCode: null, ttftMs: null, events: 0, upstreamReached: false, cacheHit: false, span: null, responseModel: null };
      // Audio priced by its length or characters (usage/audio-metering.ts) reserves that too.
      const audio = audioMeter(model, c.op, c.body, c.form);
      // Key, then owner, then the key's group: a refusal gives back the reservations already made.
      const admitted = admitAll(c.key.chain, Date.now(), estInput + estOutput, costOf(model, estimate) + (audio?.reserveUsd ?? 0));
      if (isLimitHit(admitted)) {
        o.status = 429;
        o.errorCode = `limit_${admitted.limit}`;
        finish(c, model, null, o, started);
        throw new AppError('rate_limited', admitted.message, {
          retryAfter: admitted.retryAfter,
          retryable: admitted.retryable,
          details: admitted.limit === 'budget'
            ? { code: 'budget_exceeded', type: 'insufficient_quota', limit: 'budget' }
            : { code: 'rate_limit_exceeded', type: admitted.limit === 'rpm' ? 'requests' : 'tokens', limit: admitted.limit },
        });
      }
      const cache = deps.cache;
      const ttl = model.cacheTtlSeconds;
      let stored: string | null = null; // the cache key, when the answer is to be stored
      let land: ((answer: Buffer | string | null) => void) | null = null; // a coalesced miss's leader lands its answer
      if (ttl && cache?.enabled && !c.form && cacheable(c.op, c.body)) {
        const dirs = cacheDirectives(c.cacheControl);
        o.cacheHeader = { 'x-nexus-cache': dirs.read ? 'miss' : 'bypass' };
        const k = dirs.read || dirs.write
          ? cacheKey([model.name, c.ingress, c.op, c.stream ? 'stream' : '', c.geminiMethod ?? '', c.passHeaders ? JSON.stringify(c.passHeaders) : ''], keyBody(c.body, c.stream))
          : '';
        // A non-streamed miss identical to one in flight waits for its answer; when that one fails,
        // it looks once more (the first to look leads the rest), then asks a provider itself.
        for (let waits = 0; dirs.read; waits++) {
          let now = Date.now();
          const hit = cache.get(k, Math.min(ttl, dirs.maxAge ?? ttl) * 1000, now);
          let answer = hit && (hit.body instanceof CachedStream ? c.stream && hit.body.serves(clientAskedUsage(c.body)) : !c.stream) ? hit.body : undefined;
          const flight = answer || c.stream || waits === 2 ? undefined : cache.inFlight(k);
          if (flight) {
            answer = (await waitFor(flight, c.abort.signal)) ?? undefined;
            if (clientClosed(c.abort)) {
              o.status = 499;
              o.errorCode = 'client_closed';
              finish(c, model, admitted, o, started);
              throw new AppError('validation_failed', CLIENT_CLOSED, { status: 499, details: { code: 'client_closed' } });
            }
            if (!answer) continue;
            now = Date.now();
          }
          if (!answer) break;
          o.cacheHit = true;
          o.status = 200;
          deps.metrics?.cache(model.name, true);
          const headers = { 'x-nexus-cache': 'hit', age: String(hit && answer === hit.body ? Math.floor((now - hit.storedAt) / 1000) : 0) };
          if (answer instanceof CachedStream) await replayOut(c, answer, sink, o, started, headers);
          else {
            o.ttftMs = performance.now() - started;
            sink.json(200, answer, headers);
          }
          return finish(c, model, admitted, o, started);
        }
        if (dirs.read) deps.metrics?.cache(model.name, false);
        if (dirs.write) {
          stored = k;
          if (c.stream) o.recorder = new StreamRecorder(cache.entryLimit);
          else land = cache.lead(k);
        }
      }
      try {
        const result = await attempt(c, model, candidates, estInput, sink, o, started);
        if (result) {
          sink.json(result.status, result.body, o.cacheHeader);
          if (stored !== null && result.status === 200) {
            cache!.set(stored, result.body, Date.now());
            land?.(result.body);
          }
        } else if (stored !== null && o.recorder && o.status === 200) {
          const kept = o.recorder.finish();
          if (kept) cache!.set(stored, kept, Date.now());
        }
      } catch (err) {
        const e = err instanceof AppError ? err : null;
        o.status = e?.status ?? 500;
        o.errorCode = (e?.details?.code as string | undefined) ?? e?.code ?? 'internal';
        throw err;
      } finally {
        land?.(null); // when the answer was not landed above, the waiters ask for themselves
        // A stream cut short without a usage report still used its prompt and what it streamed.
        if (!o.usage && o.upstreamReached && o.events > 0) o.usage = { input: estInput, output: o.events, cached: 0, reasoning: 0 };
        finish(c, model, admitted, o, started, audio);
      }
    },
    models(key: ResolvedKey): Model[] {
      return catalog.all().filter((m) => !key.models || key.models.has(m.name));
    },
  };

  function finish(c: GatewayCall, model: Model, r: Reservation[] | null, o: Outcome, started: number, audio: AudioMeter | null = null) {
    const u = o.usage ?? NO_USAGE;
    // Charged once the provider began its answer: it did the work even if the answer broke off.
    const a = audio ? audio.settle(o.usage, o.upstreamReached && o.ttftMs !== null) : NO_AUDIO_CHARGE;
    const cost = costOf(model, u) + a.usd;
    if (r) settleAll(c.key.chain, r, u.input + u.output, cost);
    keys.addSpend(c.key.id, cost);
    const d = o.deployment;
    const latencyMs = performance.now() - started;
    if (c.trace) endCall(c.trace, o.span, c.key, { status: o.status, errorCode: o.errorCode, usage: o.usage, firstByteAt: o.ttftMs === null ? null : started + o.ttftMs, responseModel: o.responseModel }, cost);
    deps.metrics?.call({
      model: model.name,
      provider: d?.provider.name ?? null,
      ingress: c.ingress,
      status: o.status,
      usage: u,
      costUsd: cost,
      audio: a,
      seconds: latencyMs / 1000,
      ttftSeconds: c.stream && o.ttftMs !== null ? o.ttftMs / 1000 : null,
    });
    const ts = isoNow();
    usage.record({
      ts,
      key_id: c.key.id,
      user_id: c.key.userId,
      model: model.name,
      provider_id: d?.provider.id ?? null,
      deployment_id: d?.id ?? null,
      upstream_model: d?.upstreamModel ?? null,
      ingress: c.ingress,
      operation: c.op,
      stream: c.stream ? 1 : 0,
      input_tokens: u.input,
      output_tokens: u.output,
      cached_tokens: u.cached,
      reasoning_tokens: u.reasoning,
      audio_seconds: Math.round(a.seconds * 1000) / 1000,
      input_characters: a.characters,
      cost_usd: cost,
      latency_ms: Math.round(latencyMs * 100) / 100,
      ttft_ms: o.ttftMs === null ? null : Math.round(o.ttftMs * 100) / 100,
      status: o.status,
      error_code: o.errorCode,
      routed_via: d?.provider.nodeId ? 'node' : 'direct',
      node_id: d?.provider.nodeId ?? null,
      cache_hit: o.cacheHit ? 1 : 0,
    });
    deps.audit?.enqueue({
      ts, // the usage row's
      actor_type: 'virtual_key',
      actor_id: c.key.id,
      actor_name: c.key.name,
      action: `gateway.${c.op}`,
      target_type: 'model',
      target_id: model.name,
      outcome: o.status < 400 ? 'success' : 'failure',
      source_ip: c.sourceIp ?? null,
      routed_via: d?.provider.nodeId ? 'node' : 'direct',
      node_id: d?.provider.nodeId ?? null,
      status: o.status,
      details: { ingress: c.ingress, stream: c.stream, user_id: c.key.userId, provider_id: d?.provider.id ?? null, input_tokens: u.input, output_tokens: u.output, cost_usd: cost, ...(a.seconds ? { audio_seconds: a.seconds } : {}), ...(a.characters ? { input_characters: a.characters } : {}), ...(o.cacheHit ? { cache: 'hit' } : {}) },
    });
  }
}

export type GatewayService = ReturnType<typeof createGatewayService>;
