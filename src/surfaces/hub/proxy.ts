// The service proxy: one request in, one request out, bodies streamed both ways without buffering
// (except the `body` auth method, which must edit a JSON body). Direct services are dialled by the
// appliance behind the SSRF guard; node services go through the relay to the agent that holds the
// credential. Failover: candidates in priority/WRR order; offline nodes never get a request.
import { Agent, request as undiciRequest } from 'undici';
import WebSocket from 'ws';
import type { AppContext } from '../../core/context.ts';
import { AppError } from '../../core/errors/errors.ts';
import { NODE_OFFLINE } from '../../core/relay/node-relay.ts';
import { endToEnd, inject, joinTarget } from '../../protocol/credentials.ts';
import type { Headers } from '../../protocol/frames.ts';
import { bridgeWebSocket, MAX_WS_MESSAGE, pipeWebSockets } from '../../protocol/ws-bridge.ts';
import type { Registry } from './registry.ts';
import { NodePicker } from './routing.ts';
import type { Services } from './services.ts';
import type { ServiceNode, ServiceRow } from './services-store.ts';
import { checkUrl, guardedLookup, type GuardOptions } from './ssrf.ts';

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
}

export interface ProxyResult {
  status: number;
  headers: Headers;
  body: AsyncIterable<Uint8Array>;
  routedVia: 'direct' | 'node';
  nodeId: string | null;
}

async function collect(body: AsyncIterable<Uint8Array>, limit: number): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.byteLength;
    if (n > limit) throw new AppError('payload_too_large', 'request body is larger than the configured limit');
    parts.push(c);
  }
  return Buffer.concat(parts);
}

export function createProxy(ctx: AppContext, services: Services, registry: Registry) {
  const picker = new NodePicker();
  const guard: GuardOptions = {
    allowPrivate: ctx.config.proxy.allowPrivateTargets,
    ownListeners: () => [ctx.state.publicAddress, ctx.state.adminAddress].filter((a): a is string => !!a),
  };
  const timeoutMs = ctx.config.proxy.maxStreamSeconds * 1000;
  const dispatcher = new Agent({
    connect: { lookup: guardedLookup(guard) } as object,
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
      if (bodyField) {
        const raw = call.body ? await collect(call.body, ctx.config.bodyLimitBytes) : Buffer.from('{}');
        let json: unknown;
        try {
          json = JSON.parse(raw.length ? raw.toString('utf8') : '{}');
        } catch {
          throw new AppError('invalid_json', 'this service takes its credential in a JSON body; the request body is not JSON');
        }
        if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new AppError('validation_failed', 'this service needs a JSON object body');
        (json as Record<string, unknown>)[bodyField.name] = bodyField.value;
        body = Buffer.from(JSON.stringify(json));
        headers['content-type'] = 'application/json';
        headers['content-length'] = String(body.length);
      }
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

  async function viaNodes(call: ProxyCall, target: URL, headers: Headers, bound: ReturnType<Services['store']['nodes']>): Promise<ProxyResult> {
    const order = picker.order(call.service.id, bound, (id) => ctx.relay.isOnline(id));
    if (!order.length) {
      throw new AppError('unavailable', `no node serving "${call.service.slug}" is online`, { numericCode: NODE_OFFLINE, retryAfter: 5 });
    }
    let last: unknown;
    for (const nodeId of order) {
      try {
        const res = await ctx.relay.request(nodeId, {
          method: call.method,
          url: target.toString(),
          headers,
          body: call.body,
          service: call.service.slug,
          signal: call.signal,
        });
        return { ...res, headers: endToEnd(res.headers), routedVia: 'node', nodeId };
      } catch (err) {
        last = err;
        // Only a request that never reached a node may be tried on the next one.
        const retryable = err instanceof AppError && err.numericCode === NODE_OFFLINE;
        if (!retryable || call.signal.aborted) throw err;
      }
    }
    throw last;
  }

  /** WebSocket headers the dialling side sets itself. */
  const wsHeaders = (headers: Headers) => {
    const protocols = String(headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter(Boolean);
    for (const k of Object.keys(headers)) if (k.startsWith('sec-websocket-')) delete headers[k];
    return protocols;
  };

  return {
    /**
     * Joins an accepted caller WebSocket to the service: through a node (messages over a relay
     * stream) or, for a direct service, to a WebSocket the appliance dials. Resolves with where it went.
     */
    async forwardWebSocket(call: Omit<ProxyCall, 'body'>, caller: WebSocket): Promise<{ routedVia: 'direct' | 'node'; nodeId: string | null }> {
      const target = joinTarget(call.service.endpoint_url, call.rest, call.search);
      if (!target) throw new AppError('validation_failed', 'path may not climb above the service endpoint');
      const headers = endToEnd(call.headers, call.strip);
      const bound = call.bound ?? services.store.nodes(call.service.id);
      if (bound.length) {
        const order = picker.order(call.service.id, bound, (id) => registry.isOnline(id));
        const session = order.length ? registry.get(order[0]!) : undefined;
        if (!session) throw new AppError('unavailable', `no node serving "${call.service.slug}" is online`, { numericCode: NODE_OFFLINE });
        const { stream } = await session.upgrade({ method: 'GET', url: target.toString(), headers, service: call.service.slug, signal: call.signal });
        bridgeWebSocket(caller, stream);
        return { routedVia: 'node', nodeId: session.nodeId };
      }
      await checkUrl(target, guard);
      const protocols = wsHeaders(headers);
      const secret = services.credential(call.service);
      if (secret !== null) inject({ method: call.service.auth_method, keyName: call.service.auth_key_name, secret }, target, headers);
      target.protocol = target.protocol === 'https:' ? 'wss:' : 'ws:';
      const upstream = new WebSocket(target, protocols, {
        headers: headers as Record<string, string>,
        perMessageDeflate: false,
        handshakeTimeout: 30_000,
        maxPayload: MAX_WS_MESSAGE,
        lookup: guardedLookup(guard) as never,
      });
      await new Promise<void>((resolve, reject) => {
        upstream.once('open', resolve);
        upstream.once('unexpected-response', (_req, res) => {
          res.resume();
          reject(new AppError('bad_gateway', `the service answered ${res.statusCode} instead of upgrading`));
        });
        upstream.once('error', (err) => reject(new AppError('bad_gateway', 'the service could not be reached', { cause: err })));
      });
      pipeWebSockets(caller, upstream);
      return { routedVia: 'direct', nodeId: null };
    },

    async forward(call: ProxyCall): Promise<ProxyResult> {
      const target = joinTarget(call.service.endpoint_url, call.rest, call.search);
      if (!target) throw new AppError('validation_failed', 'path may not climb above the service endpoint');
      const headers = endToEnd(call.headers, call.strip);
      const bound = call.bound ?? services.store.nodes(call.service.id);
      return bound.length ? viaNodes(call, target, headers, bound) : direct(call, target, headers);
    },
    close: () => dispatcher.close(),
  };
}

export type Proxy = ReturnType<typeof createProxy>;
