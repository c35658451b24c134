// Routing and streaming under failure: priority/weight deployments, retries before the first byte
// with cooldown, never after; mid-stream failure, client disconnect, maximum stream duration, flat
// memory on a 100 MB stream, and the node relay seam.
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentCli, startAgent } from '../helpers/agent.ts';
import { startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { authed, json, post, setupAdmin, type Admin } from '../helpers/api.ts';
import { createKey, createModel, createProvider, simpleModel } from '../helpers/gateway.ts';
import { startLlmUpstream, type LlmUpstream } from '../helpers/llm-upstream.ts';

let app: Appliance;
let admin: Admin;
let up: LlmUpstream;
let vk: string;
let client: OpenAI;

const hits = (model: string) => up.requests.filter((r) => r.body?.model === model).length;
const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${app.proc.pid}/status`, 'utf8'))![1]);

beforeAll(async () => {
  [app, up] = await Promise.all([startAppliance(), startLlmUpstream()]);
  admin = await setupAdmin(app);
  const { id } = await createProvider(app, admin, { name: 'local', type: 'openai', base_url: `${up.url}/v1`, api_key: 'sk-x' });
  const dead = await createProvider(app, admin, { name: 'dead', type: 'openai', base_url: 'http://127.0.0.1:9/v1' });
  const remote = await createProvider(app, admin, { name: 'remote', type: 'openai-compatible', base_url: 'http://localhost:11434/v1', node_id: 'node-1' });
  await createModel(app, admin, { name: 'failover', deployments: [
    { provider_id: id, upstream_model: 'primary-fail-500', priority: 0 },
    { provider_id: dead.id, upstream_model: 'never', priority: 1 },
    { provider_id: id, upstream_model: 'backup', priority: 2 },
  ] });
  await createModel(app, admin, { name: 'limited', deployments: [
    { provider_id: id, upstream_model: 'first-rate-429', priority: 0 },
    { provider_id: id, upstream_model: 'second', priority: 1 },
  ] });
  await createModel(app, admin, { name: 'cut-twice', deployments: [
    { provider_id: id, upstream_model: 'a-chunks-20-cut-3', priority: 0 },
    { provider_id: id, upstream_model: 'b-ok', priority: 1 },
  ] });
  await createModel(app, admin, { name: 'cut-json', deployments: [
    { provider_id: id, upstream_model: 'c-cut-1', priority: 0 },
    { provider_id: id, upstream_model: 'c-ok', priority: 1 },
  ] });
  await createModel(app, admin, { name: 'weighted', deployments: [
    { provider_id: id, upstream_model: 'w-light', weight: 1 },
    { provider_id: id, upstream_model: 'w-heavy', weight: 4 },
  ] });
  await simpleModel(app, admin, id, 'all-fail', 'x-fail-503');
  await simpleModel(app, admin, id, 'hang', 'hang-forever');
  await simpleModel(app, admin, id, 'slow-stream', 'slow-stream-chunks-400-tick-50');
  await simpleModel(app, admin, id, 'big', 'big-200');
  await simpleModel(app, admin, id, 'bad-request', 'x');
  await simpleModel(app, admin, remote.id, 'via-node', 'llama');
  ({ key: vk } = await createKey(app, admin.token));
  client = new OpenAI({ apiKey: vk, baseURL: `${app.url}/v1`, maxRetries: 0 });
});
afterAll(async () => {
  await app?.stop();
  await up?.close();
});

const ask = (model: string) => client.chat.completions.create({ model, messages: [{ role: 'user', content: 'route me' }] });

describe('routing', () => {
  it('fails over on 5xx and connect errors before the first byte, then cools the failures down', async () => {
    expect((await ask('failover')).choices[0]!.message.content).toBe('echo: route me');
    expect(hits('primary-fail-500')).toBe(1);
    expect(hits('backup')).toBe(1);
    // The failed deployments now cool down: the next request goes straight to the healthy one.
    expect((await ask('failover')).choices[0]!.message.content).toBe('echo: route me');
    expect(hits('primary-fail-500')).toBe(1);
    expect(hits('backup')).toBe(2);
  });

  it('fails over on 429, and answers 429 with Retry-After when every deployment is limited', async () => {
    await ask('limited');
    expect(hits('first-rate-429')).toBe(1);
    expect(hits('second')).toBe(1);
    const res = await post(`${app.url}/v1/chat/completions`, { model: 'all-fail', messages: [{ role: 'user', content: 'x' }] }, { authorization: `Bearer ${vk}` });
    expect(res.status).toBe(502);
    expect((await json(res)).error).toMatchObject({ type: 'server_error', code: 'upstream_error' });
  });

  it('spreads traffic by weight within a priority', async () => {
    for (let i = 0; i < 40; i++) await ask('weighted');
    expect(hits('w-heavy')).toBeGreaterThan(hits('w-light'));
    expect(hits('w-light') + hits('w-heavy')).toBe(40);
  });

  it('never retries once bytes reached the client, and ends the stream with an error event', async () => {
    const stream = await client.chat.completions.create({ model: 'cut-twice', messages: [{ role: 'user', content: 'x' }], stream: true });
    let text = '';
    await expect((async () => {
      for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
    })()).rejects.toThrow(/upstream stream failed/);
    expect(text).toBe('w0 w1 ');
    expect(hits('b-ok')).toBe(0);
    // A JSON answer cut after its headers is not retried either; the caller gets a 502 it can read.
    const res = await post(`${app.url}/v1/chat/completions`, { model: 'cut-json', messages: [{ role: 'user', content: 'x' }] }, { authorization: `Bearer ${vk}` });
    expect(res.status).toBe(502);
    expect((await json(res)).error).toMatchObject({ type: 'server_error', code: 'upstream_incomplete' });
    expect(hits('c-cut-1')).toBe(1);
    expect(hits('c-ok')).toBe(0);
  });

  it('sends a node-bound provider through the relay seam, which answers 8002 while no hub is connected', async () => {
    const res = await post(`${app.url}/v1/chat/completions`, { model: 'via-node', messages: [{ role: 'user', content: 'x' }] }, { authorization: `Bearer ${vk}` });
    expect(res.status).toBe(503);
    expect((await json(res)).error).toMatchObject({ code: '8002' });
    const gemini = await post(`${app.url}/v1beta/models/via-node:generateContent`, { contents: [{ parts: [{ text: 'x' }] }] }, { 'x-goog-api-key': vk });
    expect((await json(gemini)).error).toMatchObject({ code: 503, status: 'UNAVAILABLE' });
  });
});

describe('through a node', () => {
  it('relays a provider with node_id through the enrolled agent, and records it as routed via the node', async () => {
    const node = await json(await post(`${app.url}/api/v1/nodes`, { name: 'gpu-box' }, { authorization: `Bearer ${admin.token}` }));
    const home = tempDir('nexus-agent-gw-');
    const enrolled = await agentCli(home, ['enroll', '--url', `${app.url.replace('http', 'ws')}/ws`, '--token', node.registration_token]);
    expect(enrolled.code).toBe(0);
    const agent = startAgent(home);
    try {
      let status = 'offline';
      for (let i = 0; i < 100 && status !== 'online'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        status = (await json(await fetch(`${app.url}/api/v1/nodes/${node.id}`, authed(admin.token)))).status;
      }
      expect(status).toBe('online');
      const p = await createProvider(app, admin, { name: 'on-node', type: 'openai-compatible', base_url: `${up.url}/v1`, api_key: 'sk-node', node_id: node.id });
      await simpleModel(app, admin, p.id, 'node-model', 'relayed-model');
      const { id: keyId, key } = await createKey(app, admin.token);
      const nodeClient = new OpenAI({ apiKey: key, baseURL: `${app.url}/v1`, maxRetries: 0 });
      const res = await nodeClient.chat.completions.create({ model: 'node-model', messages: [{ role: 'user', content: 'via agent' }] });
      expect(res.choices[0]!.message.content).toBe('echo: via agent');
      let text = '';
      for await (const c of await nodeClient.chat.completions.create({ model: 'node-model', messages: [{ role: 'user', content: 'streamed' }], stream: true })) text += c.choices[0]?.delta.content ?? '';
      expect(text).toBe('echo: streamed');
      expect(up.requests.at(-1)!.headers.authorization).toBe('Bearer sk-node');
      const usage = await json(await fetch(`${app.url}/api/v1/usage?group_by=key,model&key_id=${keyId}`, authed(admin.token)));
      expect(usage.items[0]).toMatchObject({ model: 'node-model', requests: 2, errors: 0 });
    } finally {
      await agent.stop();
    }
  });
});

describe('streaming limits', () => {
  it('aborts the upstream request when the client disconnects', async () => {
    const ac = new AbortController();
    const pending = fetch(`${app.url}/v1/chat/completions`, { method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json', authorization: `Bearer ${vk}` }, body: JSON.stringify({ model: 'hang', stream: true, messages: [{ role: 'user', content: 'x' }] }) });
    for (let i = 0; i < 50 && hits('hang-forever') === 0; i++) await new Promise((r) => setTimeout(r, 20));
    ac.abort();
    await pending.catch(() => {});
    for (let i = 0; i < 100 && !up.aborted.includes('hang-forever'); i++) await new Promise((r) => setTimeout(r, 20));
    expect(up.aborted).toContain('hang-forever');

    // Also mid-stream: the upstream sees its stream cancelled.
    const ac2 = new AbortController();
    const res = await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', signal: ac2.signal, headers: { 'content-type': 'application/json', authorization: `Bearer ${vk}` }, body: JSON.stringify({ model: 'slow-stream', stream: true, messages: [{ role: 'user', content: 'x' }] }) });
    const reader = res.body!.getReader();
    await reader.read();
    ac2.abort();
    for (let i = 0; i < 100 && !up.aborted.includes('slow-stream-chunks-400-tick-50'); i++) await new Promise((r) => setTimeout(r, 20));
    expect(up.aborted).toContain('slow-stream-chunks-400-tick-50');
  });

  it('ends a stream that runs past the maximum duration with an error event', async () => {
    const short = await startAppliance({ env: { NEXUS_GATEWAY_MAX_STREAM_SECONDS: '1' } });
    try {
      const a = await setupAdmin(short);
      const { id } = await createProvider(short, a, { name: 'local', type: 'openai', base_url: `${up.url}/v1` });
      await simpleModel(short, a, id, 'slow-stream', 'slow-stream-chunks-400-tick-50');
      const { key } = await createKey(short, a.token);
      const before = up.aborted.length;
      const res = await post(`${short.url}/v1/chat/completions`, { model: 'slow-stream', stream: true, messages: [{ role: 'user', content: 'x' }] }, { authorization: `Bearer ${key}` });
      const events = (await res.text()).trim().split('\n\n');
      expect(JSON.parse(events.at(-1)!.slice(6)).error.message).toContain('maximum duration');
      expect(events.length).toBeLessThan(400);
      for (let i = 0; i < 100 && up.aborted.length === before; i++) await new Promise((r) => setTimeout(r, 20));
      expect(up.aborted.length).toBe(before + 1);
    } finally {
      await short.stop();
    }
  });

  // V8 frees Buffers only at its next collection (it tolerates tens of MB of external garbage), so
  // "flat" here means: growth stays far below the size of the stream, which is never held whole.
  it('keeps memory flat while streaming 200 MB', async () => {
    const res = await post(`${app.url}/v1/chat/completions`, { model: 'big', stream: true, messages: [{ role: 'user', content: 'x' }] }, { authorization: `Bearer ${vk}` });
    const before = rssKb();
    let peak = before;
    let bytes = 0;
    let n = 0;
    const reader = res.body!.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
      if (++n % 200 === 0) peak = Math.max(peak, rssKb());
    }
    expect(bytes).toBeGreaterThan(200 * 1024 * 1024);
    expect(peak - before).toBeLessThan(100 * 1024);
  });
});

describe('upstream errors', () => {
  it('turns an upstream credential failure into a 502 that does not blame the caller', async () => {
    const up401 = await createProvider(app, admin, { name: 'wrong-key', type: 'gemini', base_url: up.url, api_key: 'k' });
    await simpleModel(app, admin, up401.id, 'gem-missing', 'gone-fail-404');
    const res = await post(`${app.url}/v1/chat/completions`, { model: 'gem-missing', messages: [{ role: 'user', content: 'x' }] }, { authorization: `Bearer ${vk}` });
    expect(res.status).toBe(404);
    expect((await json(res)).error.code).toBe('upstream_not_found');
  });
});
