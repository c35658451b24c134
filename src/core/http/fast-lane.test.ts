// The fast lane on a real node:http server: which requests it takes and which it leaves to the
// listener behind it (fastify in the appliance, a stand-in answering 299 here), how it reads bodies
// (split over many packets, blank, malformed, a client leaving midway), the request id, the address
// through trusted proxies, errors before and after the answer began, and the metric and access line
// each answered request leaves; with a collector configured, the SERVER span it makes (exported to a
// real local receiver). test/e2e/gateway-fast-lane.test.ts holds the same requests against the
// fastify routes, and test/e2e/tracing.test.ts compares the spans of both.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AppContext } from '../context.ts';
import { loadConfig } from '../config/config.ts';
import { createLogger } from '../log/log.ts';
import { createMetrics } from '../metrics/metrics.ts';
import { createTracing } from '../telemetry/tracing.ts';
import { startCollector } from '../../../test/helpers/otlp-collector.ts';
import { createFastLane, installFastLane, type FastLane, type LaneReply, type LaneRequest } from './fast-lane.ts';
import { rawRequest } from '../../../test/helpers/raw-http.ts';

const LIMIT = 1000;
let server: Server;
let port: number;
let lane: FastLane;
const lines: string[] = [];
const state = { shuttingDown: false };
const tracing = { exporting: false };
const metrics = createMetrics();
let seen: LaneRequest[] = [];
let fallbacks = 0;

function answer(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

const onError = (err: unknown, req: LaneRequest, reply: LaneReply) => {
  const e = err as { code?: string; message: string };
  answer(reply.raw, 400, { error: e.message, code: e.code ?? null, id: req.id }, reply.getHeaders());
};

beforeAll(async () => {
  const destination = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  const log = createLogger({ level: 'info', destination: destination as never });
  const ctx = { log, metrics, config: { trustProxy: ['127.0.0.1', '::1'] }, state, tracing } as unknown as AppContext;
  lane = createFastLane(ctx);
  lane.post('/echo', async (req, reply) => {
    seen.push(req);
    answer(reply.raw, 200, { body: req.body ?? null, ip: req.ip, id: req.id }, reply.getHeaders());
  }, { bodyLimit: LIMIT, onError, surface: 'test' });
  lane.post('/fails-early', async () => {
    throw Object.assign(new Error('refused'), { code: 'refused' });
  }, { bodyLimit: LIMIT, onError, surface: 'test' });
  lane.post('/fails-late', async (_req, reply) => {
    reply.raw.writeHead(200, { 'content-length': '2' }).end('ok');
    throw new Error('after the answer');
  }, { bodyLimit: LIMIT, onError, surface: 'test' });
  server = createServer((_req: IncomingMessage, res: ServerResponse) => {
    fallbacks++;
    _req.resume();
    _req.once('end', () => res.writeHead(299, { 'content-length': '8' }).end('fallback'));
  });
  installFastLane(server, lane);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  seen = [];
  fallbacks = 0;
  state.shuttingDown = false;
});

/** One request as exact bytes on its own connection (`parts` written 20 ms apart); bounded. */
const send = (parts: (string | Buffer)[], timeoutMs = 5000) => rawRequest(port, parts, timeoutMs);

const head = (path: string, body: string, headers: Record<string, string> = {}, method = 'POST') =>
  `${method} ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n${Object.entries({ 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers })
    .filter(([, v]) => v !== '')
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
const post = (path: string, body: string, headers: Record<string, string> = {}, method = 'POST') => send([head(path, body, headers, method) + body]);

describe('fast lane: what it takes', () => {
  it('takes a plain JSON POST to its exact path and hands the parsed body over', async () => {
    const r = await post('/echo', '{"model":"m","n":[1,2]}');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).body).toEqual({ model: 'm', n: [1, 2] });
    expect(seen).toHaveLength(1);
    expect(fallbacks).toBe(0);
    const r2 = await post('/echo', '{"a":1}', { 'content-type': 'application/json; charset=utf-8' });
    expect(JSON.parse(r2.body).body).toEqual({ a: 1 });
  });

  it.each([
    ['another method', '/echo', {}, 'PUT'],
    ['a query string', '/echo?x=1', {}, 'POST'],
    ['a trailing slash', '/echo/', {}, 'POST'],
    ['an unknown path', '/other', {}, 'POST'],
    ['another Content-Type', '/echo', { 'content-type': 'text/plain' }, 'POST'],
    ['a Content-Type spelled otherwise', '/echo', { 'content-type': 'application/json; charset=UTF-8' }, 'POST'],
    ['a Content-Type with parameters', '/echo', { 'content-type': 'application/json; foo=bar' }, 'POST'],
    ['no Content-Type', '/echo', { 'content-type': '' }, 'POST'],
    ['Expect: 100-continue', '/echo', { expect: '100-continue' }, 'POST'],
  ])('leaves %s to the listener behind it', async (_what, path, headers, method) => {
    const r = await post(path, '{"a":1}', headers as Record<string, string>, method);
    expect(r.status).toBe(299);
    expect(fallbacks).toBe(1);
    expect(seen).toHaveLength(0);
  });

  it('leaves a chunked body, an empty one and one over the limit (fastify answers 413 and drains it)', async () => {
    const chunked = `POST /echo HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n7\r\n{"a":1}\r\n0\r\n\r\n`;
    expect((await send([chunked])).status).toBe(299);
    expect((await post('/echo', '')).status).toBe(299);
    const big = JSON.stringify({ pad: 'x'.repeat(LIMIT) });
    expect((await post('/echo', big)).status).toBe(299);
    const atLimit = JSON.stringify({ pad: 'x'.repeat(LIMIT - 10) });
    expect(Buffer.byteLength(atLimit)).toBe(LIMIT);
    expect((await post('/echo', atLimit)).status).toBe(200);
    expect(fallbacks).toBe(3);
  });

  it('leaves everything to fastify while shutting down', async () => {
    state.shuttingDown = true;
    expect((await post('/echo', '{}')).status).toBe(299);
    state.shuttingDown = false;
    expect((await post('/echo', '{}')).status).toBe(200);
    expect(seen[0]!.span).toBeNull(); // not exporting: no span is made
    expect(fallbacks).toBe(1);
  });
});

describe('fast lane: bodies', () => {
  it('reads a body that arrives in many packets', async () => {
    const body = JSON.stringify({ text: 'é'.repeat(200), n: 7 }); // two-byte characters split across packets
    const bytes = Buffer.from(body);
    const parts: (string | Buffer)[] = [head('/echo', body)];
    for (let i = 0; i < bytes.length; i += 33) parts.push(bytes.subarray(i, i + 33));
    const r = await send(parts);
    expect(JSON.parse(r.body).body).toEqual({ text: 'é'.repeat(200), n: 7 });
  });

  it('reads a blank body as no body and refuses malformed JSON with the parser\'s own error', async () => {
    expect(JSON.parse((await post('/echo', '   ')).body).body).toBe(null);
    const bad = await post('/echo', '{"model":');
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toMatchObject({ error: 'request body is not valid JSON', code: 'FST_ERR_CTP_INVALID_JSON_BODY' });
    expect(seen).toHaveLength(1); // the blank one only
  });

  it('never calls the handler for a client that leaves mid-body, and keeps serving', async () => {
    const sock = connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write(`POST /echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{"model":"half`);
    await new Promise((r) => setTimeout(r, 50));
    sock.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect(seen).toHaveLength(0);
    expect((await post('/echo', '{}')).status).toBe(200);
  });
});

describe('fast lane: what goes around the handler', () => {
  it('reuses a sane x-request-id, mints one otherwise, and sends it on the answer', async () => {
    const given = await post('/echo', '{}', { 'x-request-id': 'abc-123.X_y' });
    expect(given.headers['x-request-id']).toBe('abc-123.X_y');
    expect(JSON.parse(given.body).id).toBe('abc-123.X_y');
    for (const bad of ['has space', 'x'.repeat(65), 'semi;colon']) {
      const r = await post('/echo', '{}', { 'x-request-id': bad });
      expect(r.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it('takes the caller\'s address from X-Forwarded-For only through trusted proxies', async () => {
    const r = await post('/echo', '{}', { 'x-forwarded-for': '203.0.113.9, 198.51.100.2' });
    // 127.0.0.1 (trusted) forwarded for 198.51.100.2, which is not trusted: that is the caller.
    expect(JSON.parse(r.body).ip).toBe('198.51.100.2');
    expect(JSON.parse((await post('/echo', '{}')).body).ip).toBe('127.0.0.1');
  });

  it('renders an error thrown before the answer, and only logs one thrown after it', async () => {
    const early = await post('/fails-early', '{}', { 'x-request-id': 'early-1' });
    expect(early.status).toBe(400);
    expect(early.headers['x-request-id']).toBe('early-1');
    expect(JSON.parse(early.body)).toEqual({ error: 'refused', code: 'refused', id: 'early-1' });
    const late = await post('/fails-late', '{}', { 'x-request-id': 'late-1' });
    expect(late.status).toBe(200);
    expect(late.body).toBe('ok');
    await new Promise((r) => setTimeout(r, 50));
    const logged = lines.join('').split('\n').filter((l) => l.includes('"reqId":"late-1"') && l.includes('"level":50'));
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain('after the answer');
  });

  it('counts each answered request and writes its access line', async () => {
    await post('/echo', '{}', { 'x-request-id': 'acc-1', 'x-forwarded-for': '192.0.2.44' });
    await post('/fails-early', '{}', { 'x-request-id': 'acc-2' });
    await new Promise((r) => setTimeout(r, 250)); // access lines go out every 100 ms
    const access = lines.join('').split('\n').filter((l) => l.includes('"msg":"request"'));
    const one = JSON.parse(access.find((l) => l.includes('"reqId":"acc-1"'))!);
    expect(one).toMatchObject({ level: 30, reqId: 'acc-1', req: { method: 'POST', url: '/echo', remote: '192.0.2.44' }, res: { status: 200 } });
    expect(one.ms).toBeGreaterThanOrEqual(0);
    expect(JSON.parse(access.find((l) => l.includes('"reqId":"acc-2"'))!).res.status).toBe(400);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/nexus_http_requests_total\{surface="test",method="POST",status="200"\} [1-9]/);
    expect(text).toMatch(/nexus_http_requests_total\{surface="test",method="POST",status="400"\} [1-9]/);
  });
});

describe('fast lane: spans while exporting', () => {
  it('takes the request, hands the handler its SERVER span under the caller\'s context, and exports it when the answer has finished', async () => {
    const collector = await startCollector();
    const cfg = loadConfig({ env: { NEXUS_OTLP_ENDPOINT: collector.url, OTEL_BSP_SCHEDULE_DELAY: '20' } }).telemetry;
    const tracing = createTracing(cfg, { registry: new Registry(), log: createLogger({ level: 'silent' }), version: 't' });
    const ctx = { log: createLogger({ level: 'silent' }), metrics: createMetrics(), config: { trustProxy: [] }, state: { shuttingDown: false }, tracing } as unknown as AppContext;
    const traced = createFastLane(ctx);
    traced.post('/traced', async (req, reply) => {
      const status = (req.body as { status: number }).status;
      const s = req.span!;
      answer(reply.raw, status, { traceId: s.traceId, spanId: s.spanId, parent: s.parentSpanId, sampled: s.sampled, ended: s.end !== 0 }, reply.getHeaders());
    }, { bodyLimit: LIMIT, onError, surface: 'test' });
    let behind = 0;
    const srv = createServer((req, res) => {
      behind++;
      req.resume();
      res.writeHead(299, { 'content-length': '0' }).end();
    });
    installFastLane(srv, traced);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const at = (srv.address() as AddressInfo).port;
    try {
      const call = (status: number, headers: Record<string, string>) => rawRequest(at, [head('/traced', JSON.stringify({ status }), headers) + JSON.stringify({ status })], 5000);
      const T = 'f'.repeat(31) + 'e';
      const ok = await call(200, { traceparent: `00-${T}-00f067aa0ba902b7-01`, tracestate: 'k=v' });
      expect(ok.status).toBe(200);
      const seenOk = JSON.parse(ok.body);
      expect(seenOk).toEqual({ traceId: T, spanId: expect.stringMatching(/^[0-9a-f]{16}$/), parent: '00f067aa0ba902b7', sampled: true, ended: false });
      const span = await collector.waitFor((x) => x.spanId === seenOk.spanId, 5000);
      expect(span).toMatchObject({ traceId: T, parentSpanId: '00f067aa0ba902b7', traceState: 'k=v', name: 'POST /traced', kind: 2 });
      expect(span.attributes).toEqual({ 'http.request.method': 'POST', 'url.path': '/traced', 'http.route': '/traced', 'http.response.status_code': 200, 'client.address': '127.0.0.1' });
      expect(span.status.code ?? 0).toBe(0);
      expect(BigInt(span.endTimeUnixNano)).toBeGreaterThan(BigInt(span.startTimeUnixNano));

      // A 5xx is the server's failure; a malformed traceparent starts a trace of our own.
      const failed = JSON.parse((await call(503, { traceparent: `00-${T.toUpperCase()}-00f067aa0ba902b7-01` })).body);
      expect(failed.traceId).not.toBe(T);
      expect(failed.parent).toBe('');
      const bad = await collector.waitFor((x) => x.spanId === failed.spanId, 5000);
      expect(bad.parentSpanId ?? '').toBe('');
      expect(bad).toMatchObject({ status: { code: 2, message: '503' }, attributes: { 'http.response.status_code': 503, 'error.type': '503' } });

      // Not sampled by the caller: the span is made (its context travels on) but never exported.
      const unsampled = JSON.parse((await call(200, { traceparent: `00-${'e'.repeat(32)}-00f067aa0ba902b7-00` })).body);
      expect(unsampled).toMatchObject({ traceId: 'e'.repeat(32), sampled: false });
      const marker = JSON.parse((await call(201, {})).body);
      await collector.waitFor((x) => x.spanId === marker.spanId, 5000);
      expect(collector.spans.some((x) => x.traceId === 'e'.repeat(32))).toBe(false);
      expect(behind).toBe(0);
    } finally {
      await new Promise((r) => srv.close(r));
      await tracing.shutdown(1000);
      await collector.close();
    }
  });
});
