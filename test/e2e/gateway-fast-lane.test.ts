// The public listener's fast lane (src/core/http/fast-lane.ts) against the fastify routes it shortens:
// every request here goes once to the exact path (which the lane takes when the request is plain) and
// once with a query string (which the lane leaves to fastify), and the two answers must be the same —
// status, headers, body — for successes, every early error in each wire format, bodies over the
// gateway's limit, other Content-Types and chunked bodies. Also what goes around a call on the lane:
// the request id, the caller's address through the trusted proxy (access line and audit entry), the
// request metric, and a client that leaves mid-body (nothing reaches the provider, nothing is charged,
// and, as on fastify's route, no access line and no request metric: no request was ever handled).
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAppliance, type Appliance } from '../helpers/appliance.ts';
import { authed, json, setupAdmin, type Admin } from '../helpers/api.ts';
import { createKey, createProvider, simpleModel } from '../helpers/gateway.ts';
import { rawRequest, type RawAnswer } from '../helpers/raw-http.ts';
import { startLlmUpstream, type LlmUpstream } from '../helpers/llm-upstream.ts';
import { until } from '../helpers/until.ts';

let app: Appliance;
let admin: Admin;
let up: LlmUpstream;
let vk: string;
let keyId: string;
let port: number;

const BODY_LIMIT = 64 * 1024;
const GATEWAY_BODY_LIMIT = 4 * BODY_LIMIT;

beforeAll(async () => {
  [app, up] = await Promise.all([startAppliance({ env: { NEXUS_BODY_LIMIT_BYTES: String(BODY_LIMIT), NEXUS_GATEWAY_BODY_LIMIT_BYTES: String(GATEWAY_BODY_LIMIT) } }), startLlmUpstream()]);
  port = Number(new URL(app.url).port);
  admin = await setupAdmin(app);
  const openai = await createProvider(app, admin, { name: 'local', type: 'openai-compatible', base_url: `${up.url}/v1`, api_key: 'sk-upstream' });
  await simpleModel(app, admin, openai.id, 'gpt-local', 'plain', { input_price_per_mtok: 1, output_price_per_mtok: 1 });
  await simpleModel(app, admin, openai.id, 'gpt-broken', 'fail-500');
  await simpleModel(app, admin, openai.id, 'gpt-limited', 'rate-429');
  ({ key: vk, id: keyId } = await createKey(app, admin.token));
});
afterAll(async () => {
  await app?.stop();
  await up?.close();
});

/** One request as exact bytes on its own connection (`parts` written 20 ms apart); bounded. */
const send = (parts: (string | Buffer)[], timeoutMs = 15_000) => rawRequest(port, parts, timeoutMs);

function request(path: string, body: string, headers: Record<string, string> = {}): Promise<RawAnswer> {
  const all = { host: 'nexus.test', connection: 'close', 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers };
  const head = Object.entries(all).filter(([, v]) => v !== '').map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return send([`POST ${path} HTTP/1.1\r\n${head}\r\n${body}`]);
}

const auth = () => ({ authorization: `Bearer ${vk}` });
const chat = (model: string, extra: Record<string, unknown> = {}) => JSON.stringify({ model, messages: [{ role: 'user', content: 'hello lane' }], ...extra });
/** What may differ between two answers to the same request: the date, a minted request id, the mock's message id. */
const comparable = (r: RawAnswer) => {
  const { date: _date, 'x-request-id': _id, ...headers } = r.headers;
  return { status: r.status, headers, body: r.body.replace(/"id":"msg_[^"]+"/, '"id":"msg_"') };
};

/** The same request to the lane's exact path and, past the lane, with a query string: equal answers. */
async function same(path: string, body: string, headers: Record<string, string> = {}): Promise<RawAnswer> {
  const lane = await request(path, body, headers);
  const fastify = await request(`${path}?via=fastify`, body, headers);
  expect(comparable(lane)).toEqual(comparable(fastify));
  expect(lane.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  expect(fastify.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  return lane;
}

describe('fast lane: the same answers as the fastify routes', () => {
  it('answers a chat completion, an embedding and a moderation alike', async () => {
    const ok = await same('/v1/chat/completions', chat('gpt-local'), auth());
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).choices[0].message.content).toBe('echo: hello lane');
    expect((await same('/v1/embeddings', JSON.stringify({ model: 'gpt-local', input: 'x' }), auth())).status).toBe(200);
    expect((await same('/openai/v1/chat/completions', chat('gpt-local'), { 'api-key': vk })).status).toBe(200);
    expect((await same('/api/paas/v4/chat/completions', chat('gpt-local'), auth())).status).toBe(200);
    expect((await same('/v1/messages', JSON.stringify({ model: 'gpt-local', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }), { 'x-api-key': vk, 'anthropic-version': '2023-06-01' })).status).toBe(200);
  });

  it.each([
    ['no key', '/v1/chat/completions', chat('gpt-local'), {}, 401],
    ['a wrong key', '/v1/chat/completions', chat('gpt-local'), { authorization: 'Bearer nx_vk_nope' }, 401],
    ['malformed JSON', '/v1/chat/completions', '{"model": "gpt-local", "messages": [', null, 400],
    ['a blank body', '/v1/chat/completions', '   \n', null, 400],
    ['a JSON array', '/v1/chat/completions', '[1,2]', null, 400],
    ['a JSON string', '/v1/chat/completions', '"hello"', null, 400],
    ['no model', '/v1/chat/completions', JSON.stringify({ messages: [] }), null, 400],
    ['an unknown model', '/v1/chat/completions', chat('nope'), null, 404],
    ['a stream flag that is not a boolean', '/v1/chat/completions', chat('gpt-local', { stream: 'yes' }), null, 400],
    ['a provider failing', '/v1/chat/completions', chat('gpt-broken'), null, 502],
    ['a provider rate limit', '/v1/chat/completions', chat('gpt-limited'), null, 429],
    ['malformed JSON, Anthropic', '/v1/messages', '{"model":', { 'x-api-key': '' }, 400],
    ['no max_tokens, Anthropic', '/v1/messages', chat('gpt-local'), { 'x-api-key': '' }, 400],
    ['no key, Anthropic', '/v1/messages', chat('gpt-local'), {}, 401],
    ['malformed JSON, GLM', '/api/paas/v4/chat/completions', '{"model":', null, 400],
    ['no key, GLM', '/api/paas/v4/chat/completions', chat('gpt-local'), {}, 401],
    ['an unknown model, Azure', '/openai/v1/chat/completions', chat('nope'), null, 404],
    ['malformed JSON, embeddings', '/v1/embeddings', '{', null, 400],
  ])('refuses %s alike', async (_what, path, body, headers, status) => {
    // null: the key as Bearer; an x-api-key of '' means the key goes there.
    const h: Record<string, string> = headers === null ? auth() : 'x-api-key' in headers ? { 'x-api-key': vk } : headers;
    const r = await same(path, body, h);
    expect(r.status).toBe(status);
    expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
    if (path === '/v1/messages') expect(JSON.parse(r.body).type).toBe('error');
    else if (path.startsWith('/api/paas')) expect(typeof JSON.parse(r.body).error.code).toBe('string');
    else expect(JSON.parse(r.body).error).toHaveProperty('type');
    if (status === 429) expect(r.headers['retry-after']).toBeDefined();
  });

  it('applies the gateway\'s body limit, not the listener\'s: larger bodies pass, bodies over it get 413 in the caller\'s format', async () => {
    const between = chat('gpt-local', { pad: 'x'.repeat(2 * BODY_LIMIT) });
    expect((await same('/v1/chat/completions', between, auth())).status).toBe(200);
    const over = chat('gpt-local', { pad: 'x'.repeat(GATEWAY_BODY_LIMIT) });
    const r = await same('/v1/chat/completions', over, auth());
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body).error.code).toBe('payload_too_large');
    const a = await same('/v1/messages', over, { 'x-api-key': vk });
    expect(JSON.parse(a.body)).toMatchObject({ type: 'error', error: { type: 'request_too_large' } });
  });

  it('refuses another Content-Type with 415 and reads a chunked body, as before', async () => {
    const r = await same('/v1/chat/completions', chat('gpt-local'), { ...auth(), 'content-type': 'application/xml' });
    expect(r.status).toBe(415);
    expect(JSON.parse(r.body).error.code).toBe('unsupported_media_type');
    expect((await same('/v1/chat/completions', chat('gpt-local'), { ...auth(), 'content-type': 'text/plain' })).status).toBe(400);
    const upper = await same('/v1/chat/completions', chat('gpt-local'), { ...auth(), 'content-type': 'application/json; charset=UTF-8' });
    expect(upper.status).toBe(200);
    const body = chat('gpt-local');
    const chunked = (path: string) => send([
      `POST ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\nauthorization: Bearer ${vk}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n`,
      `${(10).toString(16)}\r\n${body.slice(0, 10)}\r\n`,
      `${Buffer.byteLength(body.slice(10)).toString(16)}\r\n${body.slice(10)}\r\n0\r\n\r\n`,
    ]);
    const [lane, fastify] = [await chunked('/v1/chat/completions'), await chunked('/v1/chat/completions?via=fastify')];
    expect(lane.status).toBe(200);
    expect(comparable(lane)).toEqual(comparable(fastify));
  });

  it('streams on the lane as on the fastify route', async () => {
    const r = await same('/v1/chat/completions', chat('gpt-local', { stream: true }), auth());
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toContain('text/event-stream');
    expect(r.body).toContain('data: [DONE]');
  });
});

describe('fast lane: what goes around a call', () => {
  it('echoes a sane request id, takes the caller\'s address from the trusted proxy, counts and logs the call', async () => {
    const before = await (await fetch(`${app.adminUrl}/metrics`)).text();
    const count = (text: string) => Number(/nexus_http_requests_total\{surface="gateway",method="POST",status="200"\} (\d+)/.exec(text)?.[1] ?? 0);
    const r = await request('/v1/chat/completions', chat('gpt-local'), { ...auth(), 'x-request-id': 'lane-req-1', 'x-forwarded-for': '203.0.113.77' });
    expect(r.status).toBe(200);
    expect(r.headers['x-request-id']).toBe('lane-req-1');
    const line = await until('access line', async () => app.output().split('\n').find((l) => l.includes('"reqId":"lane-req-1"') && l.includes('"msg":"request"')));
    expect(JSON.parse(line)).toMatchObject({ req: { method: 'POST', url: '/v1/chat/completions', remote: '203.0.113.77' }, res: { status: 200 } });
    expect(count(await (await fetch(`${app.adminUrl}/metrics`)).text())).toBe(count(before) + 1);
    const audit = await json(await fetch(`${app.url}/api/v1/audit?action=gateway.*&actor=${keyId}&limit=1`, authed(admin.token)));
    expect(audit.items[0]).toMatchObject({ action: 'gateway.chat', source_ip: '203.0.113.77', outcome: 'success' });
    expect(app.output()).not.toContain(vk);
  });

  it('a client that leaves mid-body reaches no provider, is charged nothing and is neither logged nor counted, on either path', async () => {
    const usage = async () => (await json(await fetch(`${app.url}/api/v1/usage?group_by=model&key_id=${keyId}`, authed(admin.token)))).items.reduce((n: number, i: { requests: number }) => n + i.requests, 0);
    const gatewayPosts = async () => [...(await (await fetch(`${app.adminUrl}/metrics`)).text()).matchAll(/^nexus_http_requests_total\{surface="gateway",method="POST",status="\d+"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    const calls = up.requests.length;
    const used = await usage();
    const counted = await gatewayPosts();
    const head = (path: string, id: string) => `POST ${path} HTTP/1.1\r\nhost: x\r\nx-request-id: ${id}\r\nauthorization: Bearer ${vk}\r\ncontent-type: application/json\r\ncontent-length: 4000\r\n\r\n{"model":"gpt-local","messages":[`;
    const answers: string[] = [];
    for (const [via, path] of [['lane', '/v1/chat/completions'], ['fastify', '/v1/chat/completions?via=fastify']] as const) {
      // Gone at once (a reset): nothing can be answered.
      const cut = connect(port, '127.0.0.1');
      await new Promise((r) => cut.once('connect', r));
      cut.write(head(path, `mid-body-reset-${via}`));
      await new Promise((r) => setTimeout(r, 100));
      cut.destroy();
      // Half-closed: node's parser sees the body end early, the server answers 400 and closes.
      const half = connect(port, '127.0.0.1');
      const got: Buffer[] = [];
      half.on('data', (d) => got.push(d));
      await new Promise((r) => half.once('connect', r));
      half.write(head(path, `mid-body-end-${via}`));
      await new Promise((r) => setTimeout(r, 100));
      half.end();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no close in time')), 5000);
        half.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      answers.push(Buffer.concat(got).toString());
    }
    expect(answers[0]).toMatch(/^HTTP\/1\.1 400 /);
    expect(answers[0]).toBe(answers[1]);
    // A request after them, on the lane: once its access line is out, the ones before it would be too.
    expect((await request('/v1/chat/completions', chat('gpt-local'), { ...auth(), 'x-request-id': 'after-mid-body' })).status).toBe(200);
    await until('access line', async () => app.output().includes('"reqId":"after-mid-body"'));
    expect(app.output()).not.toMatch(/"reqId":"mid-body-/);
    expect(await gatewayPosts()).toBe(counted + 1);
    expect(up.requests.length).toBe(calls + 1);
    expect(await usage()).toBe(used + 1);
  });
});
