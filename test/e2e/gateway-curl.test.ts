// The gateway driven by curl, the way people first try an API from a shell: every ingress format's key
// header, streams read as they arrive (`curl -N`), Gemini's SSE and array forms, and the error shapes a
// shell user sees for a bad key, bad JSON and an oversized body.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAppliance, type Appliance } from '../helpers/appliance.ts';
import { authed, json, setupAdmin, type Admin } from '../helpers/api.ts';
import { createKey, createProvider, simpleModel } from '../helpers/gateway.ts';
import { startLlmUpstream, type LlmUpstream } from '../helpers/llm-upstream.ts';

let app: Appliance;
let admin: Admin;
let up: LlmUpstream;
let vk: string;
let keyId: string;
let glmKey: string;

const BODY_LIMIT = 256 * 1024;
const GATEWAY_BODY_LIMIT = 4 * BODY_LIMIT;

beforeAll(async () => {
  [app, up] = await Promise.all([startAppliance({ env: { NEXUS_BODY_LIMIT_BYTES: String(BODY_LIMIT), NEXUS_GATEWAY_BODY_LIMIT_BYTES: String(GATEWAY_BODY_LIMIT) } }), startLlmUpstream()]);
  admin = await setupAdmin(app);
  const openai = await createProvider(app, admin, { name: 'local', type: 'openai-compatible', base_url: `${up.url}/v1`, api_key: 'sk-upstream' });
  const gemini = await createProvider(app, admin, { name: 'gem', type: 'gemini', base_url: up.url, api_key: 'g-upstream' });
  await simpleModel(app, admin, openai.id, 'gpt-local', 'plain', { input_price_per_mtok: 1, output_price_per_mtok: 1 });
  // Four content events 250 ms apart: a buffering proxy would hand them over in one piece.
  await simpleModel(app, admin, openai.id, 'gpt-ticking', 'chunks-4-tick-250');
  await simpleModel(app, admin, openai.id, 'gpt-hang', 'hang');
  await simpleModel(app, admin, gemini.id, 'gemini-local', 'plain');
  await simpleModel(app, admin, gemini.id, 'gemini-ticking', 'chunks-4-tick-250');
  ({ key: vk, id: keyId } = await createKey(app, admin.token));
  ({ key: glmKey } = await createKey(app, admin.token, { format: 'id_secret' }));
});
afterAll(async () => {
  await app?.stop();
  await up?.close();
});

interface CurlResult {
  code: number | null;
  status: number;
  headers: Record<string, string>;
  body: string;
  stderr: string;
}

/** Runs the real curl binary (`-sS -i`), bounded by curl's own --max-time and a kill timer. */
function curl(args: string[], input?: Buffer): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    const p = spawn('curl', ['-sS', '-i', '--max-time', '20', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.on('error', reject);
    p.on('exit', (code) => {
      clearTimeout(timer);
      // `curl -i` prints interim answers too (100 Continue for bodies over 1 MiB): the final one counts.
      const raw = Buffer.concat(out).toString().replace(/^(?:HTTP\/[\d.]+ 1\d\d[^\r]*\r\n(?:[^\r]+\r\n)*\r\n)+/, '');
      const split = raw.indexOf('\r\n\r\n');
      const head = split < 0 ? raw : raw.slice(0, split);
      const [statusLine, ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ code, status: Number(/^HTTP\/[\d.]+ (\d+)/.exec(statusLine ?? '')?.[1] ?? 0), headers, body: split < 0 ? '' : raw.slice(split + 4), stderr });
    });
    p.stdin.end(input);
  });
}

/** Starts `curl -N` on a stream and records what arrived in each read, until curl exits. */
function curlStream(args: string[]): Promise<{ code: number | null; reads: string[] }> {
  return new Promise((resolve, reject) => {
    const p = spawn('curl', ['-sS', '-N', '--max-time', '20', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const reads: string[] = [];
    p.stdout.on('data', (d: Buffer) => reads.push(d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.on('error', reject);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, reads });
    });
  });
}

const chatBody = (model: string, extra: Record<string, unknown> = {}) => JSON.stringify({ model, messages: [{ role: 'user', content: 'hello curl' }], ...extra });
const geminiBody = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hello curl' }] }] });

describe('curl against every ingress format', () => {
  it('OpenAI: Bearer key, JSON answer, and the key is never echoed', async () => {
    const r = await curl([`${app.url}/v1/chat/completions`, '-H', `Authorization: Bearer ${vk}`, '-H', 'Content-Type: application/json', '-d', chatBody('gpt-local')]);
    expect(r.code).toBe(0);
    expect(r.status).toBe(200);
    const j = JSON.parse(r.body);
    expect(j.object).toBe('chat.completion');
    expect(j.choices[0].message.content).toBe('echo: hello curl');
    expect(r.body + JSON.stringify(r.headers)).not.toContain(vk);
    // The upstream got the provider's key, not the caller's.
    expect(up.requests.at(-1)!.headers.authorization).toBe('Bearer sk-upstream');
  });

  it('OpenAI: curl -N sees each event as it is sent, usage recorded though the client did not ask for it', async () => {
    const { code, reads } = await curlStream([`${app.url}/v1/chat/completions`, '-H', `Authorization: Bearer ${vk}`, '-H', 'Content-Type: application/json', '-d', chatBody('gpt-ticking', { stream: true })]);
    expect(code).toBe(0);
    const all = reads.join('');
    const words = (s: string) => (s.match(/"content":"[^"]/g) ?? []).length;
    expect(words(all)).toBe(4);
    // Events 250 ms apart arrived in separate reads: no read held more than one of them.
    for (const read of reads) expect(words(read)).toBeLessThanOrEqual(1);
    expect(all.trimEnd().endsWith('data: [DONE]')).toBe(true);
    expect(all).not.toContain('"usage":{');
    const usage = await json(await fetch(`${app.url}/api/v1/usage?group_by=model&key_id=${keyId}&model=gpt-ticking`, authed(admin.token)));
    expect(usage.items[0]).toMatchObject({ model: 'gpt-ticking', requests: 1, output_tokens: 4 });
  });

  it('OpenAI: streaming headers tell nginx and browsers not to buffer', async () => {
    const r = await curl([`${app.url}/v1/chat/completions`, '-H', `Authorization: Bearer ${vk}`, '-H', 'Content-Type: application/json', '-d', chatBody('gpt-local', { stream: true })]);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(r.headers['x-accel-buffering']).toBe('no');
    expect(r.headers['cache-control']).toContain('no-cache');
  });

  it('Azure OpenAI: api-key header on a deployment path, and the v1 form', async () => {
    const a = await curl([`${app.url}/openai/deployments/gpt-local/chat/completions?api-version=2024-10-21`, '-H', `api-key: ${vk}`, '-H', 'Content-Type: application/json', '-d', chatBody('ignored')]);
    expect(a.status).toBe(200);
    expect(JSON.parse(a.body).choices[0].message.content).toBe('echo: hello curl');
    const v1 = await curl([`${app.url}/openai/v1/chat/completions`, '-H', `api-key: ${vk}`, '-H', 'Content-Type: application/json', '-d', chatBody('gpt-local')]);
    expect(v1.status).toBe(200);
  });

  it('Gemini: ?key= with alt=sse gives data frames without [DONE]; without it, one JSON array', async () => {
    const { code, reads } = await curlStream([`${app.url}/v1beta/models/gemini-ticking:streamGenerateContent?alt=sse&key=${vk}`, '-H', 'Content-Type: application/json', '-d', geminiBody]);
    expect(code).toBe(0);
    const all = reads.join('');
    const frames = all.split(/\r?\n\r?\n/).filter((f) => f.startsWith('data: '));
    expect(frames.length).toBeGreaterThanOrEqual(4);
    expect(all).not.toContain('[DONE]');
    for (const f of frames) expect(() => JSON.parse(f.slice(6))).not.toThrow();
    expect(JSON.parse(frames.at(-1)!.slice(6)).usageMetadata).toBeDefined();
    for (const read of reads) expect((read.match(/"text":"[^"]/g) ?? []).length).toBeLessThanOrEqual(1);

    const arr = await curl([`${app.url}/v1beta/models/gemini-local:streamGenerateContent`, '-H', `x-goog-api-key: ${vk}`, '-H', 'Content-Type: application/json', '-d', geminiBody]);
    expect(arr.status).toBe(200);
    const parsed = JSON.parse(arr.body);
    expect(Array.isArray(parsed)).toBe(true);
    expect(parsed.map((c: { candidates?: { content: { parts: { text?: string }[] } }[] }) => c.candidates?.[0]?.content.parts.map((p) => p.text ?? '').join('') ?? '').join('')).toBe('echo: hello curl');
  });

  it('Gemini: the stable /v1 path with the key header, and countTokens', async () => {
    const r = await curl([`${app.url}/v1/models/gemini-local:generateContent`, '-H', `x-goog-api-key: ${vk}`, '-H', 'Content-Type: application/json', '-d', geminiBody]);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).candidates[0].content.parts[0].text).toBe('echo: hello curl');
    const t = await curl([`${app.url}/v1beta/models/gemini-local:countTokens?key=${vk}`, '-H', 'Content-Type: application/json', '-d', geminiBody]);
    expect(t.status).toBe(200);
    expect(JSON.parse(t.body).totalTokens).toBeGreaterThan(0);
  });

  it('GLM: Bearer with an id.secret key', async () => {
    const r = await curl([`${app.url}/api/paas/v4/chat/completions`, '-H', `Authorization: Bearer ${glmKey}`, '-H', 'Content-Type: application/json', '-d', chatBody('gpt-local')]);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).choices[0].message.content).toBe('echo: hello curl');
  });
});

describe('X-Api-Key as the key header', () => {
  it('carries the key on the OpenAI, Gemini and GLM paths, is never passed upstream, and never reaches the log', async () => {
    const h = ['-H', `X-Api-Key: ${vk}`, '-H', 'Content-Type: application/json'];
    const o = await curl([`${app.url}/v1/chat/completions`, ...h, '-d', chatBody('gpt-local')]);
    expect(o.status).toBe(200);
    expect(JSON.parse(o.body).choices[0].message.content).toBe('echo: hello curl');
    const seen = up.requests.at(-1)!.headers;
    expect(seen['x-api-key']).toBeUndefined();
    expect(seen.authorization).toBe('Bearer sk-upstream');
    const streamed = await curlStream([`${app.url}/v1/chat/completions`, ...h, '-d', chatBody('gpt-local', { stream: true })]);
    expect(streamed.reads.join('').trimEnd().endsWith('data: [DONE]')).toBe(true);
    const g = await curl([`${app.url}/v1beta/models/gemini-local:generateContent`, ...h, '-d', geminiBody]);
    expect(g.status).toBe(200);
    expect(JSON.parse(g.body).candidates[0].content.parts[0].text).toBe('echo: hello curl');
    expect(up.requests.at(-1)!.headers).toMatchObject({ 'x-goog-api-key': 'g-upstream' });
    expect(up.requests.at(-1)!.headers['x-api-key']).toBeUndefined();
    const z = await curl([`${app.url}/api/paas/v4/chat/completions`, ...h, '-d', chatBody('gpt-local')]);
    expect(z.status).toBe(200);
    const models = await curl([`${app.url}/v1/models`, '-H', `X-Api-Key: ${vk}`]);
    expect(JSON.parse(models.body).object).toBe('list');

    // Wrong, empty, oversized and foreign keys: a 401 in the caller's shape, the value never echoed.
    const wrong = 'nx_vk_wrong-x-api-key-0000000000';
    const huge = `nx_vk_${'A'.repeat(8000)}`;
    for (const header of [`X-Api-Key: ${wrong}`, 'X-Api-Key;', `X-Api-Key: ${huge}`, 'X-Api-Key: sk-ant-api03-someone-elses']) {
      const r = await curl([`${app.url}/v1/chat/completions`, '-H', header, '-H', 'Content-Type: application/json', '-d', chatBody('gpt-local')]);
      expect(r.status, header.slice(0, 40)).toBe(401);
      expect(JSON.parse(r.body).error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_api_key' });
      if (header.includes(': ')) expect(r.body).not.toContain(header.slice('X-Api-Key: '.length));
      const gem = await curl([`${app.url}/v1beta/models/gemini-local:generateContent`, '-H', header, '-H', 'Content-Type: application/json', '-d', geminiBody]);
      expect(gem.status).toBe(401);
      expect(JSON.parse(gem.body).error).toMatchObject({ code: 401, status: 'UNAUTHENTICATED' });
    }
    for (const secret of [vk, wrong, huge]) expect(app.output()).not.toContain(secret);
  });
});

describe('curl sees errors in the format it spoke', () => {
  it('a wrong key: OpenAI, Azure, Gemini and GLM shapes, the key never echoed', async () => {
    const bad = 'nx_vk_not-a-real-key-0000000000';
    const o = await curl([`${app.url}/v1/chat/completions`, '-H', `Authorization: Bearer ${bad}`, '-H', 'Content-Type: application/json', '-d', chatBody('gpt-local')]);
    expect(o.status).toBe(401);
    expect(JSON.parse(o.body).error).toMatchObject({ message: expect.any(String), type: expect.any(String) });
    const a = await curl([`${app.url}/openai/deployments/gpt-local/chat/completions?api-version=2024-10-21`, '-H', `api-key: ${bad}`, '-H', 'Content-Type: application/json', '-d', chatBody('x')]);
    expect(a.status).toBe(401);
    expect(JSON.parse(a.body).error.message).toEqual(expect.any(String));
    const g = await curl([`${app.url}/v1beta/models/gemini-local:generateContent?key=${bad}`, '-H', 'Content-Type: application/json', '-d', geminiBody]);
    expect(g.status).toBe(401);
    expect(JSON.parse(g.body).error).toMatchObject({ code: 401, message: expect.any(String), status: 'UNAUTHENTICATED' });
    const z = await curl([`${app.url}/api/paas/v4/chat/completions`, '-H', `Authorization: Bearer ${bad}`, '-H', 'Content-Type: application/json', '-d', chatBody('gpt-local')]);
    expect(z.status).toBe(401);
    expect(typeof JSON.parse(z.body).error.code).toBe('string');
    for (const r of [o, a, g, z]) expect(r.body).not.toContain(bad);
  });

  it('malformed JSON, a wrong content type and an oversized body get clear errors; the next request still works', async () => {
    const auth = ['-H', `Authorization: Bearer ${vk}`];
    const malformed = await curl([`${app.url}/v1/chat/completions`, ...auth, '-H', 'Content-Type: application/json', '-d', '{"model": "gpt-local", "messages": [']);
    expect(malformed.status).toBe(400);
    expect(JSON.parse(malformed.body).error).toMatchObject({ type: 'invalid_request_error' });
    const gemMalformed = await curl([`${app.url}/v1beta/models/gemini-local:generateContent?key=${vk}`, '-H', 'Content-Type: application/json', '-d', '{"contents":']);
    expect(gemMalformed.status).toBe(400);
    expect(JSON.parse(gemMalformed.body).error).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT' });
    const wrongType = await curl([`${app.url}/v1/chat/completions`, ...auth, '-H', 'Content-Type: text/plain', '-d', chatBody('gpt-local')]);
    expect([400, 415]).toContain(wrongType.status);
    expect(JSON.parse(wrongType.body).error.message).toEqual(expect.any(String));
    const huge = Buffer.from(chatBody('gpt-local', { pad: 'x'.repeat(GATEWAY_BODY_LIMIT * 2) }));
    const big = await curl([`${app.url}/v1/chat/completions`, ...auth, '-H', 'Content-Type: application/json', '--data-binary', '@-'], huge);
    expect(big.status).toBe(413);
    expect(JSON.parse(big.body).error.message).toEqual(expect.any(String));
    const ok = await curl([`${app.url}/v1/chat/completions`, ...auth, '-H', 'Content-Type: application/json', '-d', chatBody('gpt-local')]);
    expect(ok.status).toBe(200);
  });

  it('an image inline may exceed the control plane\'s body limit: the gateway has its own', async () => {
    const image = `data:image/png;base64,${Buffer.alloc(BODY_LIMIT * 2, 7).toString('base64')}`;
    const body = Buffer.from(JSON.stringify({ model: 'gpt-local', messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url: image } }] }] }));
    expect(body.length).toBeGreaterThan(BODY_LIMIT * 2);
    expect(body.length).toBeLessThan(GATEWAY_BODY_LIMIT);
    const seen = up.requests.length;
    const r = await curl([`${app.url}/v1/chat/completions`, '-H', `Authorization: Bearer ${vk}`, '-H', 'Content-Type: application/json', '--data-binary', '@-'], body);
    expect(r.status, r.body.slice(0, 300)).toBe(200);
    const sent = up.requests.slice(seen).find((q) => q.path === '/v1/chat/completions');
    expect((sent!.body as { messages: { content: { image_url?: { url: string } }[] }[] }).messages[0]!.content[1]!.image_url!.url).toBe(image);
    // The same size anywhere else is over the appliance's limit.
    const control = await curl([`${app.url}/api/v1/tokens`, '-H', `Authorization: Bearer ${admin.token}`, '-H', 'Content-Type: application/json', '--data-binary', '@-'], Buffer.from(JSON.stringify({ name: 'x'.repeat(BODY_LIMIT * 2) })));
    expect(control.status).toBe(413);
  });

  it('curl giving up on a stream (--max-time) aborts the upstream request', async () => {
    const before = up.aborted.length;
    const r = await curlStream([`${app.url}/v1/chat/completions`, '--max-time', '1', '-H', `Authorization: Bearer ${vk}`, '-H', 'Content-Type: application/json', '-d', chatBody('gpt-hang', { stream: true })]);
    expect(r.code).toBe(28); // curl: operation timed out
    for (let i = 0; i < 100 && up.aborted.length === before; i++) await new Promise((res) => setTimeout(res, 50));
    expect(up.aborted.slice(before)).toContain('hang');
  });
});
