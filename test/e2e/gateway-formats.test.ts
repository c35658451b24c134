// Every ingress format (OpenAI, Gemini, Azure OpenAI, Zhipu GLM) against every provider type, through
// the official SDKs (openai, AzureOpenAI, @google/genai) and Zhipu's JWT scheme, streamed and not.
import { ApiError, GoogleGenAI, Type, type GenerateContentResponse } from '@google/genai';
import { SignJWT } from 'jose';
import OpenAI, { AzureOpenAI } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAppliance, type Appliance } from '../helpers/appliance.ts';
import { json, post, setupAdmin, type Admin } from '../helpers/api.ts';
import { createKey, createProvider, PROVIDER_TYPES, providerPerType, simpleModel } from '../helpers/gateway.ts';
import { startLlmUpstream, type LlmUpstream } from '../helpers/llm-upstream.ts';

let app: Appliance;
let admin: Admin;
let up: LlmUpstream;
let vk: string;
let glmKey: string;
const providerIds: Record<string, string> = {};

const PROVIDERS = PROVIDER_TYPES;

beforeAll(async () => {
  [app, up] = await Promise.all([startAppliance(), startLlmUpstream()]);
  admin = await setupAdmin(app);
  Object.assign(providerIds, await providerPerType(app, admin, up.url));
  // Upstreams that misbehave mid-answer: a stream cut after 3 events, a tool call cut off mid-JSON.
  for (const type of ['openai', 'gemini', 'anthropic'] as const) {
    await simpleModel(app, admin, providerIds[type]!, `cut-${type}`, 'up-chunks-10-cut-3');
    await simpleModel(app, admin, providerIds[type]!, `badargs-${type}`, 'up-badargs');
  }
  ({ key: vk } = await createKey(app, admin.token));
  ({ key: glmKey } = await createKey(app, admin.token, { format: 'id_secret' }));
});
afterAll(async () => {
  await app?.stop();
  await up?.close();
});

const genai = (apiVersion?: string) => new GoogleGenAI({ apiKey: vk, httpOptions: { baseUrl: app.url, ...(apiVersion ? { apiVersion } : {}) } });

describe('every ingress × every provider type', () => {
  it.each(PROVIDERS)('OpenAI SDK → %s, streamed and not', async (type) => {
    const client = new OpenAI({ apiKey: vk, baseURL: `${app.url}/v1`, maxRetries: 0 });
    const res = await client.chat.completions.create({ model: `m-${type}`, messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'one two' }] });
    expect(res.choices[0]!.message.content).toBe('echo: one two');
    expect(res.choices[0]!.finish_reason).toBe('stop');
    expect(res.usage!.completion_tokens).toBe(3);
    const stream = await client.chat.completions.create({ model: `m-${type}`, messages: [{ role: 'user', content: 'three four' }], stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    let finish: string | null = null;
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
      usage = c.usage ?? usage;
    }
    expect(text).toBe('echo: three four');
    expect(finish).toBe('stop');
    expect(usage?.completion_tokens).toBe(3);
  });

  it.each(PROVIDERS)('@google/genai → %s, streamed and not, v1beta and v1', async (type) => {
    for (const ai of [genai(), genai('v1')]) {
      const res = await ai.models.generateContent({ model: `m-${type}`, contents: 'five six', config: { systemInstruction: 'be brief' } });
      expect(res.text).toBe('echo: five six');
      expect(res.usageMetadata?.candidatesTokenCount).toBe(3);
      let text = '';
      let usage: number | undefined;
      for await (const c of await ai.models.generateContentStream({ model: `m-${type}`, contents: 'seven eight' })) {
        text += c.text ?? '';
        usage = c.usageMetadata?.candidatesTokenCount ?? usage;
      }
      expect(text).toBe('echo: seven eight');
      expect(usage).toBe(3);
    }
  });

  it.each(PROVIDERS)('AzureOpenAI SDK → %s', async (type) => {
    const azure = new AzureOpenAI({ endpoint: app.url, apiKey: vk, apiVersion: '2024-10-21', maxRetries: 0 });
    const res = await azure.chat.completions.create({ model: `m-${type}`, messages: [{ role: 'user', content: 'nine' }] });
    expect(res.choices[0]!.message.content).toBe('echo: nine');
    let text = '';
    for await (const c of await azure.chat.completions.create({ model: `m-${type}`, messages: [{ role: 'user', content: 'ten' }], stream: true })) text += c.choices[0]?.delta.content ?? '';
    expect(text).toBe('echo: ten');
  });

  it.each(PROVIDERS)('GLM (Bearer) → %s', async (type) => {
    const glm = new OpenAI({ apiKey: vk, baseURL: `${app.url}/api/paas/v4`, maxRetries: 0 });
    const res = await glm.chat.completions.create({ model: `m-${type}`, messages: [{ role: 'user', content: 'eleven' }] });
    expect(res.choices[0]!.message.content).toBe('echo: eleven');
  });
});

describe('Gemini ingress', () => {
  it('streams a JSON array without alt=sse, and SSE frames without [DONE] with it', async () => {
    const body = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'a b' }] }] });
    const headers = { 'content-type': 'application/json', 'x-goog-api-key': vk };
    for (const model of ['m-gemini', 'm-openai']) {
      const arr = await fetch(`${app.url}/v1beta/models/${model}:streamGenerateContent`, { method: 'POST', headers, body });
      expect(arr.headers.get('content-type')).toContain('application/json');
      const frames = JSON.parse(await arr.text());
      expect(frames.map((f: any) => f.candidates[0].content.parts.map((p: any) => p.text ?? '').join('')).join('')).toBe('echo: a b'); // eslint-disable-line @typescript-eslint/no-explicit-any
      const sse = await fetch(`${app.url}/v1beta/models/${model}:streamGenerateContent?alt=sse&key=${vk}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const text = await sse.text();
      expect(sse.headers.get('content-type')).toContain('text/event-stream');
      expect(text).not.toContain('[DONE]');
      expect(text.trim().split(/\r?\n\r?\n/).every((e) => e.startsWith('data: {'))).toBe(true);
      expect(JSON.parse(text.trim().split(/\r?\n\r?\n/).at(-1)!.slice(6)).usageMetadata.candidatesTokenCount).toBe(3);
    }
  });

  it('passes Gemini requests through to a Gemini provider unchanged apart from the key', async () => {
    await genai().models.generateContent({ model: 'm-gemini', contents: 'hi', config: { temperature: 0.5 } });
    const seen = up.requests.at(-1)!;
    expect(seen.path).toBe('/v1beta/models/up-gemini:generateContent');
    expect(seen.headers['x-goog-api-key']).toBe('key-gemini');
    expect(seen.body!.generationConfig).toEqual({ temperature: 0.5 });
  });

  it('lists and gets models, counts tokens and embeds, in Gemini shape', async () => {
    const ai = genai();
    const names: string[] = [];
    for await (const m of await ai.models.list()) names.push(m.name!);
    expect(names).toContain('models/m-gemini');
    expect((await ai.models.get({ model: 'm-openai' })).name).toBe('models/m-openai');
    // GET /v1/models answers in Gemini's shape for a Gemini-authenticated caller, OpenAI's otherwise.
    const v1 = await json(await fetch(`${app.url}/v1/models`, { headers: { 'x-goog-api-key': vk } }));
    expect(v1.models.length).toBeGreaterThanOrEqual(PROVIDERS.length);
    const oa = await json(await fetch(`${app.url}/v1/models`, { headers: { authorization: `Bearer ${vk}` } }));
    expect(oa.object).toBe('list');
    expect(oa.data.map((m: { id: string }) => `models/${m.id}`)).toEqual(v1.models.map((m: { name: string }) => m.name));
    expect((await ai.models.countTokens({ model: 'm-gemini', contents: 'count me' })).totalTokens).toBeGreaterThan(0);
    expect((await ai.models.countTokens({ model: 'm-openai', contents: 'count me' })).totalTokens).toBeGreaterThan(0);
    const emb = await ai.models.embedContent({ model: 'm-openai', contents: ['x', 'y'] });
    expect(emb.embeddings).toHaveLength(2);
    expect(emb.embeddings![0]!.values).toEqual([0.25, -0.5, 1]);
    const native = await ai.models.embedContent({ model: 'm-gemini', contents: ['x'] });
    expect(native.embeddings![0]!.values).toEqual([0, 0.5, -1]);
    const openai = new OpenAI({ apiKey: vk, baseURL: `${app.url}/v1`, maxRetries: 0 });
    const viaGemini = await openai.embeddings.create({ model: 'm-gemini', input: ['p', 'q'] });
    expect(viaGemini.data[1]!.embedding).toEqual([1, 0.5, -1]);
  });

  it('renders Gemini errors as {error:{code,message,status}}', async () => {
    const bad = await fetch(`${app.url}/v1beta/models/m-gemini:generateContent?key=nx_vk_wrong`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"contents":[]}' });
    expect(bad.status).toBe(401);
    expect((await json(bad)).error).toMatchObject({ code: 401, status: 'UNAUTHENTICATED' });
    await expect(genai().models.generateContent({ model: 'nope', contents: 'x' })).rejects.toThrow(/NOT_FOUND|not found/);
    const v1Missing = await fetch(`${app.url}/v1/models/nope:generateContent`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-goog-api-key': vk }, body: '{"contents":[]}' });
    expect((await json(v1Missing)).error.status).toBe('NOT_FOUND');
    const badMethod = await fetch(`${app.url}/v1beta/models/m-gemini:explode`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-goog-api-key': vk }, body: '{}' });
    expect(badMethod.status).toBe(404);
    expect((await json(badMethod)).error.status).toBe('NOT_FOUND');
    const unknown = await fetch(`${app.url}/v1beta/tunedModels`, { headers: { 'x-goog-api-key': vk } });
    expect((await json(unknown)).error).toMatchObject({ code: 404, status: 'NOT_FOUND' });
    const notArray = await post(`${app.url}/v1beta/models/m-openai:generateContent`, { contents: 'nope' }, { 'x-goog-api-key': vk });
    expect((await json(notArray)).error).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT' });
  });

  it('translates function calling both ways', async () => {
    const ai = genai();
    const tools = [{ functionDeclarations: [{ name: 'get_weather', parameters: { type: Type.OBJECT, properties: { city: { type: Type.STRING } } } }] }];
    for (const model of ['m-openai', 'm-anthropic', 'm-gemini']) {
      const first = await ai.models.generateContent({ model, contents: 'weather in Paris?', config: { tools } });
      expect(first.functionCalls?.[0]).toMatchObject({ name: 'get_weather', args: { city: 'Paris' } });
      const second = await ai.models.generateContent({
        model,
        contents: [
          { role: 'user', parts: [{ text: 'weather in Paris?' }] },
          { role: 'model', parts: [{ functionCall: first.functionCalls![0]! }] },
          { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { temp: 21 } } }] },
        ],
        config: { tools },
      });
      expect(second.text).toBe('tool said: {"temp":21}');
    }
  });

  it('streams function calls from OpenAI and Anthropic providers, and takes the results back streamed', async () => {
    const ai = genai();
    const tools = [{ functionDeclarations: [{ name: 'get_weather', parameters: { type: Type.OBJECT, properties: { city: { type: Type.STRING } } } }] }];
    const frames = async (params: Parameters<typeof ai.models.generateContentStream>[0]) => {
      const out: GenerateContentResponse[] = [];
      for await (const f of await ai.models.generateContentStream(params)) out.push(f);
      return out;
    };
    // The upstreams stream the call's arguments in two pieces; the client gets the call once, whole.
    for (const [model, callId] of [['m-openai', 'call_mock1'], ['m-anthropic', 'toolu_1']] as const) {
      const first = await frames({ model, contents: 'weather in Paris?', config: { tools } });
      const calls = first.flatMap((f) => f.functionCalls ?? []);
      expect(calls).toEqual([{ id: callId, name: 'get_weather', args: { city: 'Paris' } }]);
      const last = first.at(-1)!;
      expect(last.functionCalls).toEqual(calls);
      expect(last.candidates![0]!.finishReason).toBe('STOP');
      expect(last.usageMetadata!.candidatesTokenCount).toBeGreaterThan(0);
      const asked = up.requests.at(-1)!;
      if (model === 'm-openai') {
        expect(asked.path).toBe('/v1/chat/completions');
        expect(asked.body).toMatchObject({ stream: true, tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }] });
      } else {
        expect(asked.path).toBe('/v1/messages');
        expect(asked.body).toMatchObject({ stream: true, tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }] });
      }

      // The result goes back streamed: once paired by the call's id, once by its name alone.
      const response = { name: 'get_weather', response: { temp: 21 }, ...(model === 'm-anthropic' ? { id: callId } : {}) };
      const second = await frames({
        model,
        contents: [
          { role: 'user', parts: [{ text: 'weather in Paris?' }] },
          { role: 'model', parts: [{ functionCall: calls[0]! }] },
          { role: 'user', parts: [{ functionResponse: response }] },
        ],
        config: { tools },
      });
      expect(second.map((f) => f.text ?? '').join('')).toBe('tool said: {"temp":21}');
      expect(second.at(-1)!.candidates![0]!.finishReason).toBe('STOP');
      const seen = up.requests.at(-1)!.body!;
      if (model === 'm-openai') {
        expect(seen.messages).toEqual([
          { role: 'user', content: 'weather in Paris?' },
          { role: 'assistant', content: null, tool_calls: [{ id: callId, type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
          { role: 'tool', tool_call_id: callId, content: '{"temp":21}' },
        ]);
      } else {
        expect(seen.messages).toEqual([
          { role: 'user', content: [{ type: 'text', text: 'weather in Paris?' }] },
          { role: 'assistant', content: [{ type: 'tool_use', id: callId, name: 'get_weather', input: { city: 'Paris' } }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: callId, content: '{"temp":21}' }] },
        ]);
      }
    }
  });

  it('ends a stream whose tool call the upstream cut off mid-arguments with an error that does not blame the caller', async () => {
    const ai = genai();
    const tools = [{ functionDeclarations: [{ name: 'get_weather', parameters: { type: Type.OBJECT, properties: { city: { type: Type.STRING } } } }] }];
    for (const model of ['badargs-openai', 'badargs-anthropic']) {
      const err = await (async () => {
        for await (const f of await ai.models.generateContentStream({ model, contents: 'weather?', config: { tools } })) void f;
      })().then(() => null, (e: unknown) => e);
      expect(err, model).toBeInstanceOf(ApiError);
      expect((err as ApiError).status).toBe(502);
      expect((err as ApiError).message).toContain('not valid JSON');
    }
    // The same answer not streamed (Anthropic's non-streamed tool input is already an object).
    await expect(ai.models.generateContent({ model: 'badargs-openai', contents: 'weather?', config: { tools } })).rejects.toMatchObject({ status: 502, message: expect.stringContaining('not valid JSON') });
  });

  it('ends a stream that fails upstream with a Gemini error, as SSE and as the JSON array', async () => {
    const body = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'x' }] }] });
    const headers = { 'content-type': 'application/json', 'x-goog-api-key': vk };
    // Translated (OpenAI and Anthropic upstreams) and passed through (a Gemini upstream).
    for (const model of ['cut-openai', 'cut-anthropic', 'cut-gemini']) {
      let text = '';
      const err = await (async () => {
        for await (const f of await genai().models.generateContentStream({ model, contents: 'x' })) text += f.text ?? '';
      })().then(() => null, (e: unknown) => e);
      expect(err, model).toBeInstanceOf(ApiError);
      expect((err as ApiError).status).toBe(502);
      expect((err as ApiError).message).toContain('upstream stream failed');
      expect(text).toMatch(/^w0 /); // what came before the failure reached the client

      const arr = await fetch(`${app.url}/v1beta/models/${model}:streamGenerateContent`, { method: 'POST', headers, body });
      expect(arr.status).toBe(200);
      const elements = JSON.parse(await arr.text()); // still one well-formed JSON array
      expect(elements.length).toBeGreaterThan(1);
      expect(elements.at(-1)).toEqual({ error: { code: 502, message: expect.stringContaining('upstream stream failed'), status: 'UNAVAILABLE' } });
      expect(elements.slice(0, -1).every((e: { candidates?: unknown }) => Array.isArray(e.candidates))).toBe(true);
    }
  });
});

describe('OpenAI clients on Gemini and Anthropic providers', () => {
  it('translates tools, tool results and finish reasons, streamed and not', async () => {
    const client = new OpenAI({ apiKey: vk, baseURL: `${app.url}/v1`, maxRetries: 0 });
    const tools = [{ type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    for (const model of ['m-gemini', 'm-anthropic']) {
      const first = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'weather?' }], tools });
      expect(first.choices[0]!.finish_reason).toBe('tool_calls');
      const call = first.choices[0]!.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
      expect(JSON.parse(call.function.arguments)).toEqual({ city: 'Paris' });
      const streamed = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'weather?' }], tools, stream: true });
      let args = '';
      let finish: string | null = null;
      for await (const c of streamed) {
        args += c.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? '';
        finish = c.choices[0]?.finish_reason ?? finish;
      }
      expect(JSON.parse(args)).toEqual({ city: 'Paris' });
      expect(finish).toBe('tool_calls');
      const second = await client.chat.completions.create({
        model,
        tools,
        messages: [
          { role: 'user', content: 'weather?' },
          { role: 'assistant', content: null, tool_calls: [call] },
          { role: 'tool', tool_call_id: call.id, content: '{"temp":21}' },
        ],
      });
      expect(second.choices[0]!.message.content).toBe('tool said: {"temp":21}');
    }
    // Images as content parts become Gemini inlineData and Anthropic base64 image blocks.
    const image = [{ type: 'text' as const, text: 'what is this?' }, { type: 'image_url' as const, image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }];
    for (const model of ['m-gemini', 'm-anthropic']) {
      expect((await client.chat.completions.create({ model, messages: [{ role: 'user', content: image }] })).choices[0]!.message.content).toBe('echo: what is this?');
    }
    const geminiParts = up.requests.findLast((r) => r.path.includes('up-gemini:generateContent'))!.body!.contents[0].parts;
    expect(geminiParts[1]).toEqual({ inlineData: { mimeType: 'image/png', data: 'iVBORw0KGgo=' } });
    const anthropicImage = up.requests.findLast((r) => r.path === '/v1/messages')!.body!.messages[0].content[1];
    expect(anthropicImage).toEqual({ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } });

    const anthropicReq = up.requests.findLast((r) => r.path === '/v1/messages' && JSON.stringify(r.body).includes('tool_result'))!;
    expect(anthropicReq.headers['x-api-key']).toBe('key-anthropic');
    expect(anthropicReq.body!.messages.at(-1).content[0]).toMatchObject({ type: 'tool_result', content: '{"temp":21}' });
  });
});

describe('provider base URLs', () => {
  it('takes Gemini and Anthropic base URLs with or without their API version at the end', async () => {
    const client = new OpenAI({ apiKey: vk, baseURL: `${app.url}/v1`, maxRetries: 0 });
    const cases = [
      { type: 'gemini', base: `${up.url}/v1beta`, path: '/v1beta/models/up-gv1beta:generateContent' },
      { type: 'gemini', base: `${up.url}/v1/`, path: '/v1/models/up-gv1:generateContent' },
      { type: 'gemini', base: up.url, apiVersion: 'v1', path: '/v1/models/up-gplain:generateContent' },
      { type: 'anthropic', base: `${up.url}/v1`, path: '/v1/messages' },
      { type: 'anthropic', base: `${up.url}/`, path: '/v1/messages' },
    ];
    for (const [i, c] of cases.entries()) {
      const { id } = await createProvider(app, admin, { name: `base-${i}`, type: c.type, base_url: c.base, api_key: 'k', ...(c.apiVersion ? { api_version: c.apiVersion } : {}) });
      const upstream = c.path.match(/models\/([^:]+):/)?.[1] ?? `up-anthropic-base-${i}`;
      await simpleModel(app, admin, id, `base-${i}`, upstream);
      const res = await client.chat.completions.create({ model: `base-${i}`, messages: [{ role: 'user', content: 'one two' }] });
      expect(res.choices[0]!.message.content, c.base).toBe('echo: one two');
      expect(up.requests.at(-1)!.path, c.base).toBe(c.path);
    }
  });
});

describe('Azure ingress', () => {
  it('serves deployments and the v1 API, with Azure-shaped errors', async () => {
    const azure = new AzureOpenAI({ endpoint: app.url, apiKey: vk, apiVersion: '2024-10-21', maxRetries: 0 });
    const emb = await azure.embeddings.create({ model: 'm-openai', input: 'x' });
    expect(emb.data[0]!.embedding).toEqual([0.25, -0.5, 1]);
    const v1 = new OpenAI({ apiKey: vk, baseURL: `${app.url}/openai/v1`, maxRetries: 0, defaultHeaders: { 'api-key': vk } });
    expect((await v1.chat.completions.create({ model: 'm-azure', messages: [{ role: 'user', content: 'v1' }] })).choices[0]!.message.content).toBe('echo: v1');
    expect(up.requests.at(-1)!.path).toBe('/openai/deployments/up-azure/chat/completions?api-version=2024-10-21');
    expect(up.requests.at(-1)!.headers['api-key']).toBe('key-azure');
    const bad = await fetch(`${app.url}/openai/deployments/m-openai/chat/completions?api-version=2024-10-21`, { method: 'POST', headers: { 'content-type': 'application/json', 'api-key': 'nx_vk_nope' }, body: '{"messages":[]}' });
    expect(bad.status).toBe(401);
    expect((await json(bad)).error).toMatchObject({ code: 'invalid_api_key', type: 'invalid_request_error' });
    const unknown = await fetch(`${app.url}/openai/deployments/m-openai/images/edits`, { method: 'POST', headers: { 'api-key': vk } });
    expect(unknown.status).toBe(404);
    expect((await json(unknown)).error).toHaveProperty('type');
  });
});

describe('GLM ingress', () => {
  const sign = (payload: Record<string, unknown>, secret: string) =>
    new SignJWT(payload).setProtectedHeader({ alg: 'HS256', sign_type: 'SIGN' } as never).sign(new TextEncoder().encode(secret));
  const glmChat = (authorization: string, model = 'm-glm') =>
    post(`${app.url}/api/paas/v4/chat/completions`, { model, messages: [{ role: 'user', content: 'jwt' }] }, { authorization });

  it('accepts Zhipu JWTs with millisecond and microsecond timestamps, and rejects bad ones', async () => {
    const [id, secret] = glmKey.split('.') as [string, string];
    const ms = Date.now();
    const okMs = await glmChat(await sign({ api_key: id, exp: ms + 60_000, timestamp: ms }, secret));
    expect(okMs.status).toBe(200);
    expect((await json(okMs)).choices[0].message.content).toBe('echo: jwt');
    const us = ms * 1000;
    expect((await glmChat(`Bearer ${await sign({ api_key: id, exp: us + 60_000_000, timestamp: us }, secret)}`)).status).toBe(200);
    // The whole id.secret key also works as a plain Bearer key.
    expect((await glmChat(`Bearer ${glmKey}`)).status).toBe(200);

    const expired = await glmChat(await sign({ api_key: id, exp: ms - 1000, timestamp: ms - 60_000 }, secret));
    expect(expired.status).toBe(401);
    expect((await json(expired)).error).toEqual({ code: '1003', message: 'token has expired' });
    const expiredUs = await glmChat(await sign({ api_key: id, exp: us - 1_000_000, timestamp: us - 60_000_000 }, secret));
    expect(expiredUs.status).toBe(401);
    const forged = await glmChat(await sign({ api_key: id, exp: ms + 60_000, timestamp: ms }, 'not-the-secret'));
    expect(forged.status).toBe(401);
    expect((await json(forged)).error.code).toBe('1000');
    const unknownId = await glmChat(await sign({ api_key: 'nx_vk_unknown', exp: ms + 60_000, timestamp: ms }, secret));
    expect(unknownId.status).toBe(401);
    const noneAlg = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ api_key: id, exp: ms + 60_000 })).toString('base64url')}.x`;
    expect((await glmChat(noneAlg)).status).toBe(401);
    const farFuture = await glmChat(await sign({ api_key: id, exp: ms + 400 * 86_400_000, timestamp: ms }, secret));
    expect(farFuture.status).toBe(401);
  });

  it('serves embeddings under /api/paas/v4 with a Bearer key or a Zhipu JWT', async () => {
    const [id, secret] = glmKey.split('.') as [string, string];
    const ms = Date.now();
    const jwt = await sign({ api_key: id, exp: ms + 60_000, timestamp: ms }, secret);
    for (const [model, path] of [['m-glm', '/api/paas/v4/embeddings'], ['m-openai', '/v1/embeddings']] as const) {
      for (const authorization of [`Bearer ${vk}`, jwt]) {
        const res = await post(`${app.url}/api/paas/v4/embeddings`, { model, input: ['a', 'b'] }, { authorization });
        expect(res.status).toBe(200);
        const body = await json(res);
        expect(body.data.map((d: { index: number; embedding: number[] }) => [d.index, d.embedding])).toEqual([[0, [0.25, -0.5, 1]], [1, [0.25, -0.5, 1]]]);
        expect(body.usage.prompt_tokens).toBeGreaterThan(0);
        const seen = up.requests.at(-1)!;
        expect(seen.path).toBe(path);
        expect(seen.body).toMatchObject({ input: ['a', 'b'] });
        expect(seen.headers.authorization).toBe(`Bearer key-${model.slice(2)}`);
      }
    }
    // The openai SDK pointed at the GLM base URL, as Zhipu's docs suggest.
    const glm = new OpenAI({ apiKey: vk, baseURL: `${app.url}/api/paas/v4`, maxRetries: 0 });
    expect((await glm.embeddings.create({ model: 'm-glm', input: 'one' })).data[0]!.embedding).toEqual([0.25, -0.5, 1]);

    const before = up.requests.length;
    const expired = await post(`${app.url}/api/paas/v4/embeddings`, { model: 'm-glm', input: 'x' }, { authorization: await sign({ api_key: id, exp: ms - 1000, timestamp: ms - 60_000 }, secret) });
    expect(expired.status).toBe(401);
    expect((await json(expired)).error).toEqual({ code: '1003', message: 'token has expired' });
    const forged = await post(`${app.url}/api/paas/v4/embeddings`, { model: 'm-glm', input: 'x' }, { authorization: await sign({ api_key: id, exp: ms + 60_000, timestamp: ms }, 'guess') });
    expect((await json(forged)).error.code).toBe('1000');
    const bad: [unknown, number][] = [[[1, 2], 400], [{ input: 'x' }, 400], [{ model: 42, input: 'x' }, 400], [{ model: 'nope', input: 'x' }, 404]];
    for (const [b, status] of bad) {
      const res = await post(`${app.url}/api/paas/v4/embeddings`, b, { authorization: `Bearer ${vk}` });
      expect(res.status, JSON.stringify(b)).toBe(status);
      const err = (await json(res)).error;
      expect(typeof err.code, JSON.stringify(b)).toBe('string');
      expect(typeof err.message).toBe('string');
    }
    const notJson = await fetch(`${app.url}/api/paas/v4/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${vk}` }, body: '{"model":' });
    expect(notJson.status).toBe(400);
    expect(typeof (await json(notJson)).error.code).toBe('string');
    expect(up.requests.length).toBe(before); // none of them reached the provider
  });

  it('ends a GLM stream that fails upstream with a GLM error the openai SDK raises', async () => {
    const glm = new OpenAI({ apiKey: vk, baseURL: `${app.url}/api/paas/v4`, maxRetries: 0 });
    for (const model of ['cut-openai', 'cut-gemini']) {
      let text = '';
      const err = await (async () => {
        for await (const c of await glm.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], stream: true })) text += c.choices[0]?.delta.content ?? '';
      })().then(() => null, (e: unknown) => e);
      expect(err, model).toBeInstanceOf(OpenAI.APIError);
      expect((err as InstanceType<typeof OpenAI.APIError>).message).toContain('upstream stream failed');
      expect(text).toMatch(/^w0 w1/);
    }
    const raw = await post(`${app.url}/api/paas/v4/chat/completions`, { model: 'cut-openai', stream: true, messages: [{ role: 'user', content: 'x' }] }, { authorization: `Bearer ${vk}` });
    const last = (await raw.text()).trim().split('\n\n').at(-1)!;
    expect(JSON.parse(last.slice('data: '.length))).toEqual({ error: { code: '1234', message: expect.stringContaining('upstream stream failed') } });
  });

  it('renders GLM errors with string codes, including unknown models and paths', async () => {
    const missing = await glmChat(`Bearer ${vk}`, 'nope');
    expect(missing.status).toBe(404);
    expect((await json(missing)).error).toMatchObject({ code: '1211' });
    const path = await fetch(`${app.url}/api/paas/v4/files`, { headers: { authorization: `Bearer ${vk}` } });
    expect(path.status).toBe(404);
    expect(typeof (await json(path)).error.code).toBe('string');
  });
});
