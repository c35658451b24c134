// Distributed tracing with real processes: an appliance exporting to a local OTLP/HTTP receiver
// (test/helpers/otlp-collector.ts), driven by the official openai SDK with a `traceparent`; the mock
// provider and a private service (direct, and through a real agent) record the `traceparent` they
// got. The same calls on the fast lane (core/http/fast-lane.ts) and forced through fastify make the
// same spans, field by field. Also: an appliance without export passes a caller's valid context on;
// collectors that hang, fail or are absent cost spans (counted), never requests, and never a slow
// shutdown.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import OpenAI from 'openai';
import WebSocket, { WebSocketServer } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentCli, startAgent, type AgentProcess } from '../helpers/agent.ts';
import { authed, json, post, setupAdmin, type Admin } from '../helpers/api.ts';
import { scrapeMetrics, startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { createKey, createModel, createProvider } from '../helpers/gateway.ts';
import { startLlmUpstream, type LlmUpstream } from '../helpers/llm-upstream.ts';
import { startCollector, type Collector, type ExportedSpan } from '../helpers/otlp-collector.ts';
import { until } from '../helpers/until.ts';

const T = '0af7651916cd43dd8448eb211c80319c';
const P = 'b7ad6b7169203331';
const TRACEPARENT = `00-${T}-${P}-01`;
const PROVIDER_KEY = 'sk-provider-secret-7d1e';
const SERVICE_TOKEN = 'service-token-on-the-agent-9a2f';

/** The parts of a `traceparent` a server received (null when none). */
function received(h: IncomingMessage['headers']): { traceId: string; parentId: string; flags: string } | null {
  const v = h.traceparent;
  if (typeof v !== 'string') return null;
  const [, traceId, parentId, flags] = v.split('-');
  return { traceId: traceId!, parentId: parentId!, flags: flags! };
}

/**
 * A local service that answers with the headers it got, standing in for a private API. Its WebSocket
 * echoes each message and closes with 4001 on "bye".
 */
async function startEcho(): Promise<{ server: Server; url: string; seen: IncomingMessage['headers'][] }> {
  const seen: IncomingMessage['headers'][] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers);
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, pad: 'x'.repeat(100) }));
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    seen.push(req.headers);
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (data, isBinary) => (String(data) === 'bye' ? ws.close(4001, 'bye') : ws.send(data, { binary: isBinary }))));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

describe('tracing with export on', () => {
  let app: Appliance;
  let admin: Admin;
  let up: LlmUpstream;
  let collector: Collector;
  let echo: Awaited<ReturnType<typeof startEcho>>;
  let vk: { id: string; key: string };
  let client: OpenAI;
  let agent: AgentProcess | null = null;

  beforeAll(async () => {
    [collector, up, echo] = await Promise.all([startCollector(), startLlmUpstream(), startEcho()]);
    const cfgDir = tempDir('nexus-tracing-cfg-');
    const cfg = join(cfgDir, 'nexus.yaml');
    writeFileSync(cfg, `proxy:\n  allowPrivateTargets: true\ntelemetry:\n  otlpEndpoint: ${collector.url}\n  scheduleDelayMs: 50\n`);
    app = await startAppliance({ args: ['--config', cfg], env: { OTEL_SERVICE_NAME: 'nexus-under-test' } });
    admin = await setupAdmin(app);
    const { id } = await createProvider(app, admin, { name: 'local', type: 'openai', base_url: `${up.url}/v1`, api_key: PROVIDER_KEY });
    await createModel(app, admin, { name: 'traced', deployments: [{ provider_id: id, upstream_model: 'mock-traced' }], input_price_per_mtok: 1, output_price_per_mtok: 2 });
    await createModel(app, admin, { name: 'retried', deployments: [{ provider_id: id, upstream_model: 'fail-503', priority: 0 }, { provider_id: id, upstream_model: 'mock-second', priority: 1 }] });
    await createModel(app, admin, { name: 'broken', deployments: [{ provider_id: id, upstream_model: 'fail-500' }] });
    vk = await createKey(app, admin.token, { name: 'tracing' });
    client = new OpenAI({ apiKey: vk.key, baseURL: `${app.url}/v1`, maxRetries: 0 });
  });

  afterAll(async () => {
    await agent?.stop();
    await app?.stop();
    await Promise.all([collector?.close(), up?.close(), new Promise((r) => echo?.server.close(r))]);
  });

  it('continues the caller\'s trace: SERVER span under its parent, CLIENT span under that, the provider told of the CLIENT span', async () => {
    const res = await client.chat.completions.create({ model: 'traced', messages: [{ role: 'user', content: 'trace me' }] }, { headers: { traceparent: TRACEPARENT, tracestate: 'rojo=00f067aa0ba902b7' } });
    expect(res.choices[0]!.message.content).toBeTruthy();
    const server = await collector.waitFor((s) => s.traceId === T && s.kind === 2);
    const span = await collector.waitFor((s) => s.traceId === T && s.kind === 3);
    expect(server).toMatchObject({ parentSpanId: P, traceState: 'rojo=00f067aa0ba902b7', name: 'POST /v1/chat/completions', resource: { 'service.name': 'nexus-under-test' } });
    expect(server.attributes).toMatchObject({ 'http.request.method': 'POST', 'url.path': '/v1/chat/completions', 'http.route': '/v1/chat/completions', 'http.response.status_code': 200, 'nexus.virtual_key.id': vk.id });
    expect(span.parentSpanId).toBe(server.spanId);
    expect(span.name).toBe('chat mock-traced');
    expect(span.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'mock-traced',
      'gen_ai.response.model': 'mock-traced',
      'nexus.model': 'traced',
      'nexus.virtual_key.id': vk.id,
      'nexus.attempt': 1,
      'nexus.routed_via': 'direct',
      'http.response.status_code': 200,
      'server.address': '127.0.0.1',
    });
    expect(span.attributes['gen_ai.usage.input_tokens']).toBe(res.usage!.prompt_tokens);
    expect(span.attributes['gen_ai.usage.output_tokens']).toBe(res.usage!.completion_tokens);
    expect(span.attributes['nexus.cost_usd']).toBeCloseTo((res.usage!.prompt_tokens * 1 + res.usage!.completion_tokens * 2) / 1e6, 12);
    expect(span.status.code ?? 0).toBe(0);
    const got = up.requests.filter((r) => r.body?.model === 'mock-traced').map((r) => received(r.headers));
    expect(got).toEqual([{ traceId: T, parentId: span.spanId, flags: '01' }]);
    expect(up.requests.find((r) => r.body?.model === 'mock-traced')!.headers.tracestate).toBe('rojo=00f067aa0ba902b7');
  });

  it('a retry is a second CLIENT span beside the first, each the parent of what its provider received', async () => {
    const tp = `00-${'1'.repeat(32)}-${P}-01`;
    const res = await client.chat.completions.create({ model: 'retried', messages: [{ role: 'user', content: 'again' }] }, { headers: { traceparent: tp } });
    expect(res.model).toBe('mock-second');
    const server = await collector.waitFor((s) => s.traceId === '1'.repeat(32) && s.kind === 2);
    await collector.waitFor((s) => s.traceId === '1'.repeat(32) && s.kind === 3 && s.attributes['nexus.attempt'] === 2);
    const attempts = collector.spans.filter((s) => s.traceId === '1'.repeat(32) && s.kind === 3).sort((a, b) => Number(a.attributes['nexus.attempt']) - Number(b.attributes['nexus.attempt']));
    expect(attempts.map((s) => [s.parentSpanId, s.attributes['gen_ai.request.model']])).toEqual([[server.spanId, 'fail-503'], [server.spanId, 'mock-second']]);
    expect(attempts[0]).toMatchObject({ status: { code: 2, message: '503' }, attributes: { 'error.type': '503', 'http.response.status_code': 503 } });
    expect(attempts[1]!.status.code ?? 0).toBe(0);
    for (const a of attempts) {
      const r = up.requests.find((x) => x.body?.model === a.attributes['gen_ai.request.model'] && received(x.headers)?.traceId === '1'.repeat(32));
      expect(received(r!.headers)).toEqual({ traceId: '1'.repeat(32), parentId: a.spanId, flags: '01' });
    }
  });

  it('a streamed call\'s span carries usage and time to first chunk once the stream has ended', async () => {
    const tp = `00-${'2'.repeat(32)}-${P}-01`;
    const stream = await client.chat.completions.create({ model: 'traced', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'stream me' }] }, { headers: { traceparent: tp } });
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
    expect(usage).toBeTruthy();
    const span = await collector.waitFor((s) => s.traceId === '2'.repeat(32) && s.kind === 3);
    expect(span.attributes).toMatchObject({ 'nexus.stream': true, 'gen_ai.usage.input_tokens': usage!.prompt_tokens, 'gen_ai.usage.output_tokens': usage!.completion_tokens });
    expect(span.attributes['gen_ai.response.time_to_first_chunk']).toBeGreaterThan(0);
    expect(BigInt(span.endTimeUnixNano)).toBeGreaterThan(BigInt(span.startTimeUnixNano));
  });

  const hostile: [string, string | string[]][] = [
    ['uppercase hex', `00-${T.toUpperCase()}-${P}-01`],
    ['all-zero trace id', `00-${'0'.repeat(32)}-${P}-01`],
    ['all-zero parent id', `00-${T}-${'0'.repeat(16)}-01`],
    ['short trace id', `00-${T.slice(2)}-${P}-01`],
    ['long parent id', `00-${T}-${P}00-01`],
    ['version ff', `ff-${T}-${P}-01`],
    ['version 00 with a suffix', `00-${T}-${P}-01-00`],
    ['oversized', `01-${T}-${P}-01-${'a'.repeat(6000)}`],
    ['garbage', '%%%--not-a-traceparent'],
    ['two headers', [TRACEPARENT, TRACEPARENT]],
  ];
  it.each(hostile)('a malformed traceparent (%s) starts a new trace and the request is fine', async (name, value) => {
    const marker = `hostile ${name}`;
    const headers = new Headers({ authorization: `Bearer ${vk.key}`, 'content-type': 'application/json', tracestate: 'rojo=1' });
    for (const v of Array.isArray(value) ? value : [value]) headers.append('traceparent', v);
    const res = await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers, body: JSON.stringify({ model: 'traced', messages: [{ role: 'user', content: marker }] }) });
    expect(res.status).toBe(200);
    const req = up.requests.find((r) => JSON.stringify(r.body).includes(marker))!;
    const tp = received(req.headers)!;
    expect(tp.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(tp.traceId).not.toBe(T);
    expect(req.headers.tracestate).toBeUndefined();
    const server = await collector.waitFor((s) => s.traceId === tp.traceId && s.kind === 2);
    expect(server.parentSpanId ?? '').toBe('');
    expect(server.attributes['http.response.status_code']).toBe(200);
  });

  it('never exports a credential: not Gemini\'s ?key=, not the provider key, not a header', async () => {
    const res = await fetch(`${app.url}/v1beta/models/traced:generateContent?key=${vk.key}&alt=json`, { method: 'POST', headers: { 'content-type': 'application/json', traceparent: `00-${'3'.repeat(32)}-${P}-01` }, body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }) });
    expect(res.status).toBe(200);
    const server = await collector.waitFor((s) => s.traceId === '3'.repeat(32) && s.kind === 2);
    expect(server.attributes['url.path']).toBe('/v1beta/models/traced:generateContent');
    await collector.waitFor((s) => s.traceId === '3'.repeat(32) && s.kind === 3);
    const everything = collector.requests.map((r) => r.body).join('\n');
    for (const secret of [vk.key, vk.key.slice(6), PROVIDER_KEY, admin.token, 'key=']) expect(everything).not.toContain(secret);
    expect(everything).not.toMatch(/authorization|x-goog-api-key|api-key"/i);
  });

  it('the service proxy: a span per proxied request, and the service (direct, or through an agent) gets a traceparent naming it', async () => {
    const call = (path: string, body: unknown) => fetch(`${app.url}${path}`, authed(admin.token, { method: 'POST', body: JSON.stringify(body) }));
    const direct = await call('/api/v1/keys', { slug: 'echo-direct', endpoint_url: echo.url, auth_method: 'none' });
    expect(direct.status, await direct.clone().text()).toBe(201);
    const d = await fetch(`${app.url}/api/v1/proxy/s/echo-direct/hello?token=abc`, { method: 'POST', headers: { 'x-api-key': admin.token, traceparent: `00-${'4'.repeat(32)}-${P}-01` }, body: 'ping' });
    expect(d.status).toBe(200);
    await d.text();
    const dSpan = await collector.waitFor((s) => s.traceId === '4'.repeat(32) && s.kind === 3);
    const dServer = await collector.waitFor((s) => s.traceId === '4'.repeat(32) && s.kind === 2);
    expect(dServer).toMatchObject({ parentSpanId: P, attributes: { 'url.path': '/api/v1/proxy/s/echo-direct/hello' } });
    expect(dServer.attributes['user.id']).toBeTruthy();
    expect(dSpan).toMatchObject({ name: 'proxy echo-direct', parentSpanId: dServer.spanId, attributes: { 'nexus.service.slug': 'echo-direct', 'nexus.routed_via': 'direct', 'nexus.bytes_in': 4, 'http.response.status_code': 200 } });
    expect(dSpan.attributes['nexus.bytes_out']).toBeGreaterThan(100);
    expect(received(echo.seen.at(-1)!)).toEqual({ traceId: '4'.repeat(32), parentId: dSpan.spanId, flags: '01' });

    // Through a node: the agent passes the header on to the local service.
    const home = tempDir('nexus-agent-tracing-');
    const reg = await json(await call('/api/v1/nodes', { name: 'trace-node' }));
    const en = await agentCli(home, ['enroll', '--url', `${app.url.replace('http', 'ws')}/ws`, '--token', reg.registration_token]);
    expect(en.code, en.stderr).toBe(0);
    const add = await agentCli(home, ['credentials', 'add', '--service', 'echo-node', '--url', echo.url, '--header', 'authorization', '--secret-format', 'bearer', '--secret-env', 'T'], { T: SERVICE_TOKEN });
    expect(add.code, add.stderr).toBe(0);
    agent = startAgent(home);
    await agent.waitFor(/Connected to hub/);
    const created = await call('/api/v1/keys', { slug: 'echo-node', endpoint_url: echo.url, auth_method: 'bearer', nodes: [{ node_id: reg.id, priority: 0 }] });
    expect(created.status, await created.clone().text()).toBe(201);
    const n = await fetch(`${app.url}/api/v1/proxy/s/echo-node/via-agent`, { headers: { 'x-api-key': admin.token, traceparent: `00-${'5'.repeat(32)}-${P}-00` } });
    expect(n.status).toBe(200);
    await n.text();
    const seen = echo.seen.at(-1)!;
    expect(seen.authorization).toBe(`Bearer ${SERVICE_TOKEN}`);
    // Not sampled by the caller (flags 00): nothing is exported, but the context still travels.
    const tp = received(seen)!;
    expect(tp).toMatchObject({ traceId: '5'.repeat(32), flags: '00' });
    expect(tp.parentId).not.toBe(P);

    const s = await fetch(`${app.url}/api/v1/proxy/s/echo-node/via-agent`, { headers: { 'x-api-key': admin.token, traceparent: `00-${'6'.repeat(32)}-${P}-01` } });
    expect(s.status).toBe(200);
    await s.text();
    const nSpan = await collector.waitFor((x) => x.traceId === '6'.repeat(32) && x.kind === 3);
    expect(nSpan.attributes).toMatchObject({ 'nexus.service.slug': 'echo-node', 'nexus.routed_via': 'node', 'nexus.node_id': reg.id, 'http.response.status_code': 200 });
    expect(received(echo.seen.at(-1)!)).toEqual({ traceId: '6'.repeat(32), parentId: nSpan.spanId, flags: '01' });
    expect(collector.spans.some((x) => x.traceId === '5'.repeat(32))).toBe(false);
    const everything = collector.requests.map((r) => r.body).join('\n');
    expect(everything).not.toContain(SERVICE_TOKEN);
    expect(everything).not.toContain('token=abc');
  });

  // Uses the services (and the agent) the test above made.
  it('a WebSocket session through the proxy: a span per session, and the service\'s handshake carries a traceparent naming it', async () => {
    for (const [slug, routed, t] of [['echo-direct', 'direct', '7'], ['echo-node', 'node', '8']] as const) {
      const ws = new WebSocket(`${app.url.replace('http', 'ws')}/api/v1/proxy/s/${slug}/socket?token=abc`, { headers: { 'x-api-key': admin.token, traceparent: `00-${t.repeat(32)}-${P}-01` } });
      const echoed: string[] = [];
      ws.on('message', (d) => echoed.push(String(d)));
      await new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); });
      ws.send('hello');
      ws.send('again!');
      await until(`${slug}: echoes`, async () => echoed.length === 2, 5_000, 20);
      ws.send('bye');
      const code = await new Promise<number>((res) => ws.once('close', (c) => res(c)));
      expect(code, slug).toBe(4001);
      const span = await collector.waitFor((s) => s.traceId === t.repeat(32) && s.kind === 3);
      expect(span, slug).toMatchObject({
        name: `proxy ws ${slug}`,
        attributes: {
          'http.request.method': 'GET', 'nexus.service.slug': slug, 'nexus.routed_via': routed, 'http.response.status_code': 101,
          'nexus.ws.messages_in': 3, 'nexus.ws.messages_out': 2, 'nexus.bytes_in': 14, 'nexus.bytes_out': 11, 'nexus.ws.close_code': 4001,
        },
      });
      expect(span.status.code ?? 0, slug).not.toBe(2);
      const server = await collector.waitFor((s) => s.traceId === t.repeat(32) && s.kind === 2, 3_000);
      expect(server, slug).toMatchObject({ parentSpanId: P, attributes: { 'url.path': `/api/v1/proxy/s/${slug}/socket` } });
      expect(span.parentSpanId, slug).toBe(server.spanId);
      // The service's handshake continues the session's span.
      expect(received(echo.seen.at(-1)!), slug).toEqual({ traceId: t.repeat(32), parentId: span.spanId, flags: '01' });
    }
    expect(collector.requests.map((r) => r.body).join('\n')).not.toContain('token=abc');
  });

  it('an agent with a collector of its own exports a span per relayed request, between the hub\'s span and the service', async () => {
    const call = (path: string, body: unknown) => fetch(`${app.url}${path}`, authed(admin.token, { method: 'POST', body: JSON.stringify(body) }));
    const home = tempDir('nexus-agent-spans-');
    const reg = await json(await call('/api/v1/nodes', { name: 'span-node' }));
    expect((await agentCli(home, ['enroll', '--url', `${app.url.replace('http', 'ws')}/ws`, '--token', reg.registration_token])).code).toBe(0);
    const add = await agentCli(home, ['credentials', 'add', '--service', 'echo-spans', '--url', echo.url, '--header', 'authorization', '--secret-format', 'bearer', '--secret-env', 'T'], { T: SERVICE_TOKEN });
    expect(add.code, add.stderr).toBe(0);
    // A collector setting it cannot use stops the agent at once, saying which variable.
    for (const [name, value] of [['OTEL_EXPORTER_OTLP_ENDPOINT', 'ftp://collector:4318'], ['OTEL_TRACES_SAMPLER', 'sometimes'], ['OTEL_EXPORTER_OTLP_PROTOCOL', 'grpc']] as const) {
      const bad = await agentCli(home, ['start'], { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, [name]: value });
      expect(bad.code, `${name}=${value}: ${bad.stderr}`).toBe(2);
      expect(bad.stderr, name).toMatch(name === 'OTEL_TRACES_SAMPLER' ? /sampler "sometimes"/ : new RegExp(name));
    }
    const spanAgent = startAgent(home, [], { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_BSP_SCHEDULE_DELAY: '50' });
    try {
      await spanAgent.waitFor(/exporting spans/);
      await spanAgent.waitFor(/Connected to hub/);
      const created = await call('/api/v1/keys', { slug: 'echo-spans', endpoint_url: echo.url, auth_method: 'bearer', nodes: [{ node_id: reg.id, priority: 0 }] });
      expect(created.status, await created.clone().text()).toBe(201);

      const res = await fetch(`${app.url}/api/v1/proxy/s/echo-spans/deep/path?token=abc`, { method: 'POST', headers: { 'x-api-key': admin.token, traceparent: `00-${'9'.repeat(32)}-${P}-01`, tracestate: 'vendor=x1' }, body: 'ping' });
      expect(res.status).toBe(200);
      const answer = await res.text();
      const hubSpan = await collector.waitFor((s) => s.traceId === '9'.repeat(32) && s.name === 'proxy echo-spans');
      const agentSpan = await collector.waitFor((s) => s.traceId === '9'.repeat(32) && s.name === 'relay echo-spans');
      expect(agentSpan).toMatchObject({
        kind: 3,
        parentSpanId: hubSpan.spanId,
        attributes: {
          'http.request.method': 'POST', 'server.address': '127.0.0.1', 'server.port': Number(new URL(echo.url).port), 'url.scheme': 'http',
          'nexus.service.slug': 'echo-spans', 'nexus.node_id': reg.id, 'nexus.credential_injected': true,
          'http.response.status_code': 200, 'nexus.bytes_out': Buffer.byteLength(answer),
        },
        resource: { 'service.name': 'nexus-agent' },
      });
      expect(agentSpan.status.code ?? 0).not.toBe(2);
      // The service's parent is now the agent's span, with the caller's tracestate kept.
      const seen = echo.seen.at(-1)!;
      expect(seen.authorization).toBe(`Bearer ${SERVICE_TOKEN}`);
      expect(received(seen)).toEqual({ traceId: '9'.repeat(32), parentId: agentSpan.spanId, flags: '01' });
      expect(seen.tracestate).toBe('vendor=x1');

      // A local service that is down: the agent's span fails with the code the caller's 502 carries.
      const down = await call('/api/v1/keys', { slug: 'down-spans', endpoint_url: 'http://127.0.0.1:9/', auth_method: 'none', nodes: [{ node_id: reg.id, priority: 0 }] });
      expect(down.status, await down.clone().text()).toBe(201);
      const failed = await fetch(`${app.url}/api/v1/proxy/s/down-spans/x`, { headers: { 'x-api-key': admin.token, traceparent: `00-${'a'.repeat(32)}-${P}-01` } });
      expect(failed.status).toBe(502);
      await failed.text();
      const failedSpan = await collector.waitFor((s) => s.traceId === 'a'.repeat(32) && s.name === 'relay down-spans');
      expect(failedSpan).toMatchObject({ status: { code: 2 }, attributes: { 'error.type': 'bad_gateway', 'nexus.credential_injected': false } });

      // No context from the hub (a malformed traceparent is dropped at the appliance; with export on it
      // starts a trace of its own, which the agent continues).
      const bare = await fetch(`${app.url}/api/v1/proxy/s/echo-spans/again`, { headers: { 'x-api-key': admin.token, traceparent: 'garbage' } });
      expect(bare.status).toBe(200);
      await bare.text();
      const tp = received(echo.seen.at(-1)!)!;
      const rooted = await collector.waitFor((s) => s.spanId === tp.parentId);
      expect(rooted.name).toBe('relay echo-spans');
      expect((await collector.waitFor((s) => s.spanId === rooted.parentSpanId)).name).toBe('proxy echo-spans');

      // A WebSocket session: one span for the whole session, under the hub's session span, with the
      // bytes and messages each way and the service's close code; the service's handshake names it.
      const ws = new WebSocket(`${app.url.replace('http', 'ws')}/api/v1/proxy/s/echo-spans/socket?token=abc`, { headers: { 'x-api-key': admin.token, traceparent: `00-${'b'.repeat(32)}-${P}-01` } });
      const echoed: string[] = [];
      ws.on('message', (d) => echoed.push(String(d)));
      await new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); });
      ws.send('hello');
      ws.send('again!');
      await until('echoes through the agent', async () => echoed.length === 2, 5_000, 20);
      ws.send('bye');
      expect(await new Promise<number>((res) => ws.once('close', (c) => res(c)))).toBe(4001);
      const hubWs = await collector.waitFor((s) => s.traceId === 'b'.repeat(32) && s.name === 'proxy ws echo-spans');
      const agentWs = await collector.waitFor((s) => s.traceId === 'b'.repeat(32) && s.name === 'relay ws echo-spans');
      expect(agentWs).toMatchObject({
        kind: 3,
        parentSpanId: hubWs.spanId,
        attributes: {
          'http.request.method': 'GET', 'server.address': '127.0.0.1', 'server.port': Number(new URL(echo.url).port), 'url.scheme': 'http',
          'nexus.service.slug': 'echo-spans', 'nexus.node_id': reg.id, 'nexus.credential_injected': true, 'http.response.status_code': 101,
          'nexus.ws.messages_in': 3, 'nexus.ws.messages_out': 2, 'nexus.bytes_in': 14, 'nexus.bytes_out': 11, 'nexus.ws.close_code': 4001,
        },
        resource: { 'service.name': 'nexus-agent' },
      });
      expect(agentWs.status.code ?? 0).not.toBe(2);
      expect(BigInt(agentWs.endTimeUnixNano)).toBeGreaterThan(BigInt(agentWs.startTimeUnixNano));
      const handshake = echo.seen.at(-1)!;
      expect(handshake.upgrade).toBe('websocket');
      expect(handshake.authorization).toBe(`Bearer ${SERVICE_TOKEN}`);
      expect(received(handshake)).toEqual({ traceId: 'b'.repeat(32), parentId: agentWs.spanId, flags: '01' });

      const everything = collector.requests.map((r) => r.body).join('\n');
      expect(everything).not.toContain(SERVICE_TOKEN);
      expect(everything).not.toContain('token=abc');
      expect(JSON.stringify(agentWs)).not.toMatch(/\/socket|token=abc/);
      // Not the path or the query either (a `path` or `query` credential would be in them).
      for (const s of [agentSpan, agentWs]) expect(Object.keys(s.attributes).filter((k) => k.startsWith('url.') && k !== 'url.scheme')).toEqual([]);
    } finally {
      await spanAgent.stop();
    }
  });

  describe('the fast lane and fastify make the same spans', () => {
    type Road = 'lane' | 'query' | 'chunked';
    let n = 0;
    /**
     * One chat call: to the exact path as a plain JSON POST (the lane takes it), or past the lane to
     * the fastify route (a query string, or a chunked body). Returns what the provider received.
     */
    async function chatVia(road: Road, traceparent: string | null, model: string, extra: Record<string, unknown> = {}) {
      const marker = `road ${road.padEnd(7, '.')} ${String(++n).padStart(3, '0')}`; // the same length every time: the same usage
      const text = JSON.stringify({ model, messages: [{ role: 'user', content: marker }], ...extra });
      const headers: Record<string, string> = { authorization: `Bearer ${vk.key}`, 'content-type': 'application/json', tracestate: 'rojo=00f067aa0ba902b7' };
      if (traceparent) headers.traceparent = traceparent;
      const url = `${app.url}/v1/chat/completions${road === 'query' ? '?via=fastify' : ''}`;
      const body = road === 'chunked' ? new Blob([text]).stream() : text;
      const res = await fetch(url, { method: 'POST', headers, body, duplex: 'half' } as RequestInit);
      await res.text();
      const sent = up.requests.filter((r) => JSON.stringify(r.body).includes(marker));
      return { status: res.status, upstream: sent.map((r) => ({ ...received(r.headers)!, tracestate: r.headers.tracestate })) };
    }

    /** A trace's SERVER span and its CLIENT spans (`attempts` of them), once exported. */
    async function spansOf(traceId: string, attempts: number) {
      const server = await collector.waitFor((s) => s.traceId === traceId && s.kind === 2);
      await collector.waitFor((s) => s.traceId === traceId && s.kind === 3 && s.attributes['nexus.attempt'] === attempts);
      const clients = collector.spans.filter((s) => s.traceId === traceId && s.kind === 3).sort((a, b) => Number(a.attributes['nexus.attempt']) - Number(b.attributes['nexus.attempt']));
      expect(clients).toHaveLength(attempts);
      expect(collector.spans.filter((s) => s.traceId === traceId && s.kind === 2)).toHaveLength(1);
      return { server, clients };
    }

    /** What must be equal on both roads: everything but the ids and the times. */
    const shape = (s: ExportedSpan) => {
      const { traceId: _t, spanId: _s, parentSpanId, startTimeUnixNano: _a, endTimeUnixNano: _b, attributes, ...rest } = s;
      const { 'gen_ai.response.time_to_first_chunk': ttfc, ...attrs } = attributes;
      return { ...rest, parent: parentSpanId ? 'set' : 'none', attributes: attrs, ttfc: ttfc === undefined ? 'none' : typeof ttfc };
    };
    const ns = (v: string) => BigInt(v);

    /** The spans of one road: CLIENT spans under the SERVER span and within its time; the provider told of each CLIENT span. */
    function check(road: Road, t: { server: ExportedSpan; clients: ExportedSpan[] }, upstream: { traceId: string; parentId: string; flags: string; tracestate?: string | string[] }[], parent: string | null) {
      expect(t.server.parentSpanId ?? '', road).toBe(parent ?? '');
      expect(ns(t.server.endTimeUnixNano), road).toBeGreaterThan(ns(t.server.startTimeUnixNano));
      for (const c of t.clients) {
        expect(c.parentSpanId, road).toBe(t.server.spanId);
        expect(ns(c.startTimeUnixNano), road).toBeGreaterThanOrEqual(ns(t.server.startTimeUnixNano));
        expect(ns(c.endTimeUnixNano), road).toBeLessThanOrEqual(ns(t.server.endTimeUnixNano));
      }
      expect(upstream, road).toEqual(t.clients.map((c) => ({ traceId: t.server.traceId, parentId: c.spanId, flags: '01', tracestate: parent ? 'rojo=00f067aa0ba902b7' : undefined })));
    }

    it.each([
      ['a call', 'traced', {}, 200, 1],
      ['a streamed call', 'traced', { stream: true, stream_options: { include_usage: true } }, 200, 1],
      ['a provider\'s 5xx (ERROR on both spans)', 'broken', {}, 502, 1],
    ] as const)('%s under the caller\'s traceparent', async (_what, model, extra, status, attempts) => {
      const got = new Map<Road, ReturnType<typeof shape>[]>();
      for (const road of ['lane', 'query', 'chunked'] as const) {
        const tid = `${'c'.repeat(24)}${String(n + 1).padStart(8, '0')}`; // n + 1: this call's own number
        const r = await chatVia(road, `00-${tid}-${P}-01`, model, extra);
        expect(r.status, road).toBe(status);
        const t = await spansOf(tid, attempts);
        check(road, t, r.upstream, P);
        got.set(road, [t.server, ...t.clients].map(shape));
      }
      const lane = got.get('lane')!;
      expect(lane[0]!.attributes).toEqual({
        'http.request.method': 'POST', 'url.path': '/v1/chat/completions', 'http.route': '/v1/chat/completions', 'http.response.status_code': status,
        'client.address': '127.0.0.1', 'user.id': expect.any(String), 'nexus.virtual_key.id': vk.id,
        ...(status >= 500 ? { 'error.type': String(status) } : {}),
      });
      expect(lane[0]).toMatchObject({ name: 'POST /v1/chat/completions', traceState: 'rojo=00f067aa0ba902b7', status: status >= 500 ? { code: 2, message: String(status) } : {} });
      expect(got.get('query')).toEqual(lane);
      expect(got.get('chunked')).toEqual(lane);
    });

    it('a malformed traceparent: a trace of its own on both roads, alike', async () => {
      const got = new Map<Road, ReturnType<typeof shape>[]>();
      for (const road of ['lane', 'query', 'chunked'] as const) {
        const r = await chatVia(road, `00-${T.toUpperCase()}-${P}-01`, 'traced');
        expect(r.status, road).toBe(200);
        const traceId = r.upstream[0]!.traceId;
        expect(traceId, road).toMatch(/^[0-9a-f]{32}$/);
        expect(traceId, road).not.toBe(T);
        const t = await spansOf(traceId, 1);
        check(road, t, r.upstream, null);
        got.set(road, [t.server, ...t.clients].map(shape));
      }
      expect(got.get('lane')![0]).toMatchObject({ parent: 'none', attributes: { 'http.response.status_code': 200 } });
      expect(got.get('lane')![0]).not.toHaveProperty('traceState');
      expect(got.get('query')).toEqual(got.get('lane'));
      expect(got.get('chunked')).toEqual(got.get('lane'));
    });

    it('a caller\'s unsampled trace: nothing exported on either road, the context passed on through a span of ours', async () => {
      const ids: string[] = [];
      for (const [i, road] of (['lane', 'query', 'chunked'] as const).entries()) {
        const tid = `${'d'.repeat(31)}${i}`;
        ids.push(tid);
        const r = await chatVia(road, `00-${tid}-${P}-00`, 'traced');
        expect(r.status, road).toBe(200);
        expect(r.upstream, road).toHaveLength(1);
        expect(r.upstream[0], road).toMatchObject({ traceId: tid, flags: '00', tracestate: 'rojo=00f067aa0ba902b7' });
        expect(r.upstream[0]!.parentId, road).toMatch(/^[0-9a-f]{16}$/);
        expect(r.upstream[0]!.parentId, road).not.toBe(P);
      }
      // A sampled call after them, once exported, shows the export queue has moved past them.
      const after = `${'e'.repeat(31)}1`;
      await chatVia('lane', `00-${after}-${P}-01`, 'traced');
      await spansOf(after, 1);
      expect(collector.spans.filter((s) => ids.includes(s.traceId))).toEqual([]);
    });
  });

  it('counts exported spans on /metrics', async () => {
    const m = await scrapeMetrics(app);
    expect(m.get('nexus_otlp_spans_exported_total')).toBeGreaterThan(10);
    expect(m.get('nexus_otlp_spans_dropped_total{reason="queue_full"}')).toBe(0);
  });
});

describe('tracing with export off', () => {
  let app: Appliance;
  let up: LlmUpstream;
  let key: string;

  beforeAll(async () => {
    up = await startLlmUpstream();
    app = await startAppliance({ env: { NEXUS_OTLP_ENDPOINT: '', OTEL_EXPORTER_OTLP_ENDPOINT: '' } });
    const admin = await setupAdmin(app);
    const { id } = await createProvider(app, admin, { name: 'local', type: 'openai', base_url: `${up.url}/v1`, api_key: 'sk-x' });
    await createModel(app, admin, { name: 'plain', deployments: [{ provider_id: id, upstream_model: 'mock-plain' }] });
    key = (await createKey(app, admin.token)).key;
  });
  afterAll(async () => {
    await app?.stop();
    await up?.close();
  });

  it('passes a caller\'s valid context to the provider as it came, a malformed one not at all, and none when none came', async () => {
    const send = async (content: string, headers: Record<string, string>) => {
      const res = await post(`${app.url}/v1/chat/completions`, { model: 'plain', messages: [{ role: 'user', content }] }, { authorization: `Bearer ${key}`, ...headers });
      expect(res.status).toBe(200);
      return up.requests.find((r) => JSON.stringify(r.body).includes(content))!.headers;
    };
    const valid = await send('valid', { traceparent: TRACEPARENT, tracestate: 'rojo=1' });
    expect(valid.traceparent).toBe(TRACEPARENT);
    expect(valid.tracestate).toBe('rojo=1');
    const bad = await send('malformed', { traceparent: `00-${T.toUpperCase()}-${P}-01`, tracestate: 'rojo=1' });
    expect(bad.traceparent).toBeUndefined();
    expect(bad.tracestate).toBeUndefined();
    expect((await send('none', {})).traceparent).toBeUndefined();
    // No exporter at all: not even its metrics.
    const m = await scrapeMetrics(app);
    expect(m.has('nexus_otlp_spans_exported_total')).toBe(false);
    expect(m.has('nexus_http_requests_total{surface="gateway",method="POST",status="200"}')).toBe(true);
  });
});

describe('a collector that is no help', () => {
  it.each(['hang', 'fail-500', 'down'] as const)('%s: requests are unaffected, spans dropped and counted, shutdown bounded', async (mode) => {
    const collector = await startCollector(mode === 'down' ? 'ok' : mode);
    const url = collector.url;
    if (mode === 'down') await collector.close();
    const up = await startLlmUpstream();
    const app = await startAppliance({ env: { NEXUS_OTLP_ENDPOINT: url, OTEL_BSP_SCHEDULE_DELAY: '20', OTEL_BSP_MAX_QUEUE_SIZE: '4', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2', OTEL_EXPORTER_OTLP_TIMEOUT: '30000' } });
    try {
      const admin = await setupAdmin(app);
      const { id } = await createProvider(app, admin, { name: 'local', type: 'openai', base_url: `${up.url}/v1`, api_key: 'sk-x' });
      await createModel(app, admin, { name: 'm', deployments: [{ provider_id: id, upstream_model: 'mock-m' }] });
      const { key } = await createKey(app, admin.token);
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => post(`${app.url}/v1/chat/completions`, { model: 'm', messages: [{ role: 'user', content: `n${i}` }] }, { authorization: `Bearer ${key}`, traceparent: TRACEPARENT }).then(async (r) => [r.status, (await json(r)).choices?.length])));
      expect(results.every(([status, n]) => status === 200 && n === 1)).toBe(true);
      const m = await scrapeMetrics(app);
      const dropped = (reason: string) => m.get(`nexus_otlp_spans_dropped_total{reason="${reason}"}`) ?? 0;
      // A collector that never answers holds the one export in flight, so the queue fills; one that
      // refuses drops each batch it refused, or the queue fills first.
      if (mode !== 'fail-500') expect(dropped('queue_full')).toBeGreaterThan(0);
      else expect(dropped('queue_full') + dropped('export_failed')).toBeGreaterThan(0);
      expect(m.get('nexus_otlp_spans_exported_total')).toBe(0);
      expect(m.get('nexus_otlp_queue_spans')).toBeLessThanOrEqual(4);
      // A hanging export (30 s timeout) does not hold shutdown past its bound: exit 0, not the test's SIGKILL.
      const exit = await app.stop('SIGTERM', 12_000);
      expect(exit).toBe(0);
    } finally {
      await app.stop('SIGKILL');
      await Promise.all([up.close(), mode === 'down' ? undefined : collector.close()]);
    }
  });
});
