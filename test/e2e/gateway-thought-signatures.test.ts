// Gemini thought signatures through the gateway: a Gemini 3 model (the mock upstream's `gemini-3`
// mode signs its function calls and refuses a replayed call of the current turn without its
// signature, as Google's API does) behind unmodified OpenAI (chat and Responses), Anthropic and
// Google SDKs, in two-turn tool loops, streamed and not. The signature rides in the tool call id and
// comes back on the right functionCall part; history from another model gets Google's stand-in;
// forged carriers are judged upstream and refused in the client's format; providers other than
// Gemini see bare ids.
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI, type Content, type Part } from '@google/genai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAppliance, type Appliance } from '../helpers/appliance.ts';
import { post, setupAdmin, type Admin } from '../helpers/api.ts';
import { createKey, createProvider, simpleModel } from '../helpers/gateway.ts';
import { sdkClients } from '../helpers/sdks.ts';
import { startLlmUpstream, type LlmUpstream, type RecordedRequest } from '../helpers/llm-upstream.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let app: Appliance;
let admin: Admin;
let up: LlmUpstream;
let vk: string;
let openai: OpenAI;
let anthropic: Anthropic;
let genai: GoogleGenAI;

const SEP = '__thought__';
const STAND_IN = 'skip_thought_signature_validator';
const MISSING = /^Function call is missing a thought_signature in functionCall parts\. .*`default_api:get_weather` , position 2\./;

beforeAll(async () => {
  [app, up] = await Promise.all([startAppliance(), startLlmUpstream()]);
  admin = await setupAdmin(app);
  const gemini = await createProvider(app, admin, { name: 'g', type: 'gemini', api_key: 'key-g', base_url: up.url });
  const oai = await createProvider(app, admin, { name: 'o', type: 'openai', api_key: 'key-o', base_url: `${up.url}/v1` });
  const claude = await createProvider(app, admin, { name: 'a', type: 'anthropic', api_key: 'key-a', base_url: up.url });
  await simpleModel(app, admin, gemini.id, 'g3', 'gemini-3-flash-preview');
  await simpleModel(app, admin, oai.id, 'oa', 'up-openai');
  await simpleModel(app, admin, claude.id, 'cl', 'up-anthropic');
  ({ key: vk } = await createKey(app, admin.token));
  ({ openai, anthropic, genai } = sdkClients(app, vk));
});
afterAll(async () => {
  await app?.stop();
  await up?.close();
});

const last = (): RecordedRequest => up.requests.at(-1)!;

/** The signature a gateway tool call id carries, as Gemini sent it (standard base64). */
function carried(id: string): string {
  expect(id).toMatch(/^[A-Za-z0-9_-]+$/); // Anthropic's tool_use id pattern: no + / =
  const at = id.indexOf(SEP);
  expect(at).toBeGreaterThan(0);
  const sig = Buffer.from(id.slice(at + SEP.length), 'base64url').toString('base64');
  expect(up.thoughtSignatures.has(sig)).toBe(true);
  expect(sig).toMatch(/[+/]/); // the mock's signatures exercise both alphabets' differences
  return sig;
}

/** The functionCall part the last upstream request replayed in the model turn (contents[1]). */
const replayed = (): Json => last().body!.contents[1].parts.find((p: Json) => p.functionCall);

const chatTools: OpenAI.ChatCompletionTool[] = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
const ask: OpenAI.ChatCompletionMessageParam = { role: 'user', content: 'weather in Paris?' };

describe('OpenAI chat clients on a Gemini 3 model', () => {
  it('round-trips the signature in the tool call id, not streamed', async () => {
    const first = await openai.chat.completions.create({ model: 'g3', tools: chatTools, messages: [ask] });
    const msg = first.choices[0]!.message;
    const call = msg.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call.function).toEqual({ name: 'get_weather', arguments: '{"city":"Paris"}' });
    const sig = carried(call.id);
    // The assistant message back as the SDK gave it, and the tool result under the same id.
    const res = await openai.chat.completions.create({ model: 'g3', tools: chatTools, messages: [ask, msg, { role: 'tool', tool_call_id: call.id, content: 'sunny' }] });
    expect(res.choices[0]!.message.content).toBe('tool said: {"content":"sunny"}');
    expect(replayed()).toEqual({ functionCall: { name: 'get_weather', args: { city: 'Paris' } }, thoughtSignature: sig });
    expect(last().body!.contents[2].parts[0].functionResponse.name).toBe('get_weather');
  });

  it('round-trips it streamed', async () => {
    const calls = new Map<number, { id: string; name: string; args: string }>();
    for await (const c of await openai.chat.completions.create({ model: 'g3', tools: chatTools, messages: [ask], stream: true })) {
      for (const tc of c.choices[0]?.delta.tool_calls ?? []) {
        const cur = calls.get(tc.index) ?? { id: '', name: '', args: '' };
        cur.id ||= tc.id ?? '';
        cur.name += tc.function?.name ?? '';
        cur.args += tc.function?.arguments ?? '';
        calls.set(tc.index, cur);
      }
    }
    const call = calls.get(0)!;
    const sig = carried(call.id);
    const msg: OpenAI.ChatCompletionMessageParam = { role: 'assistant', content: null, tool_calls: [{ id: call.id, type: 'function', function: { name: call.name, arguments: call.args } }] };
    let text = '';
    for await (const c of await openai.chat.completions.create({ model: 'g3', tools: chatTools, messages: [ask, msg, { role: 'tool', tool_call_id: call.id, content: 'sunny' }], stream: true })) {
      text += c.choices[0]?.delta.content ?? '';
    }
    expect(text).toBe('tool said: {"content":"sunny"}');
    expect(replayed().thoughtSignature).toBe(sig);
  });

  it('gives history from another model Google\'s stand-in signature, on the first of parallel calls only', async () => {
    const history: OpenAI.ChatCompletionMessageParam[] = [
      ask,
      { role: 'assistant', content: null, tool_calls: [
        { id: 'call_elsewhere1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } },
        { id: 'call_elsewhere2', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Rome"}' } },
      ] },
      { role: 'tool', tool_call_id: 'call_elsewhere1', content: 'sunny' },
      { role: 'tool', tool_call_id: 'call_elsewhere2', content: 'rainy' },
    ];
    const res = await openai.chat.completions.create({ model: 'g3', tools: chatTools, messages: history });
    expect(res.choices[0]!.message.content).toBe('tool said: {"content":"sunny"}');
    expect(last().body!.contents[1].parts.map((p: Json) => p.thoughtSignature)).toEqual([STAND_IN, undefined]);
  });
});

describe('OpenAI Responses clients on a Gemini 3 model', () => {
  const tools: OpenAI.Responses.Tool[] = [{ type: 'function', name: 'get_weather', strict: false, parameters: { type: 'object', properties: { city: { type: 'string' } } } }];
  const input: OpenAI.Responses.ResponseInputItem = { role: 'user', content: 'weather in Paris?' };

  it.each([false, true])('round-trips the signature in call_id (stream: %s)', async (stream) => {
    let call: OpenAI.Responses.ResponseFunctionToolCall | undefined;
    if (stream) {
      for await (const e of await openai.responses.create({ model: 'g3', tools, input: [input], stream: true })) {
        if (e.type === 'response.output_item.done' && e.item.type === 'function_call') call = e.item;
      }
    } else {
      const res = await openai.responses.create({ model: 'g3', tools, input: [input] });
      call = res.output.find((o): o is OpenAI.Responses.ResponseFunctionToolCall => o.type === 'function_call');
    }
    const sig = carried(call!.call_id);
    const next = await openai.responses.create({
      model: 'g3', tools,
      input: [input, { type: 'function_call', call_id: call!.call_id, name: call!.name, arguments: call!.arguments }, { type: 'function_call_output', call_id: call!.call_id, output: 'sunny' }],
    });
    expect(next.output_text).toBe('tool said: {"content":"sunny"}');
    expect(replayed().thoughtSignature).toBe(sig);
  });
});

describe('Anthropic clients on a Gemini 3 model', () => {
  const tools: Anthropic.Tool[] = [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }];
  const user: Anthropic.MessageParam = { role: 'user', content: 'weather in Paris?' };

  it.each([false, true])('round-trips the signature in the tool_use id (stream: %s)', async (stream) => {
    const first = stream
      ? await anthropic.messages.stream({ model: 'g3', max_tokens: 256, tools, messages: [user] }).finalMessage()
      : await anthropic.messages.create({ model: 'g3', max_tokens: 256, tools, messages: [user] });
    const use = first.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use')!;
    expect(use).toMatchObject({ name: 'get_weather', input: { city: 'Paris' } });
    const sig = carried(use.id);
    const res = await anthropic.messages.create({
      model: 'g3', max_tokens: 256, tools,
      messages: [user, { role: 'assistant', content: first.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny' }] }],
    });
    expect(res.content).toEqual([{ type: 'text', text: 'tool said: {"content":"sunny"}' }]);
    expect(replayed().thoughtSignature).toBe(sig);
  });
});

describe('Gemini clients on a Gemini 3 model (pass-through)', () => {
  const config = { tools: [{ functionDeclarations: [{ name: 'get_weather', parametersJsonSchema: { type: 'object', properties: { city: { type: 'string' } } } }] }] };
  const user: Content = { role: 'user', parts: [{ text: 'weather in Paris?' }] };
  const answer: Content = { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { forecast: 'sunny' } } }] };

  it.each([false, true])('keeps the signatures untouched (stream: %s)', async (stream) => {
    let parts: Part[] = [];
    if (stream) {
      for await (const c of await genai.models.generateContentStream({ model: 'g3', contents: [user], config })) parts.push(...(c.candidates?.[0]?.content?.parts ?? []));
    } else {
      parts = (await genai.models.generateContent({ model: 'g3', contents: [user], config })).candidates![0]!.content!.parts!;
    }
    const call = parts.find((p) => p.functionCall)!;
    expect(up.thoughtSignatures.has(call.thoughtSignature!)).toBe(true);
    const res = await genai.models.generateContent({ model: 'g3', contents: [user, { role: 'model', parts }, answer], config });
    expect(res.text).toBe('tool said: {"forecast":"sunny"}');
    expect(replayed().thoughtSignature).toBe(call.thoughtSignature);
  });

  it('relays Gemini\'s refusal of a call replayed without its signature, in Gemini\'s shape', async () => {
    const res = await post(`${app.url}/v1beta/models/g3:generateContent`, {
      contents: [user, { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: { city: 'Paris' } } }] }, answer], ...config,
    }, { 'x-goog-api-key': vk });
    expect(res.status).toBe(400);
    const err = (await res.json()).error;
    expect(err).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT' });
    expect(err.message).toMatch(/^upstream rejected the request: /);
    expect(err.message.replace(/^upstream rejected the request: /, '')).toMatch(MISSING);
  });
});

describe('forged and garbled carriers', () => {
  const history = (id: string): OpenAI.ChatCompletionMessageParam[] => [
    ask,
    { role: 'assistant', content: null, tool_calls: [{ id, type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
    { role: 'tool', tool_call_id: id, content: 'sunny' },
  ];
  const forged = `call_x${SEP}${Buffer.from('a signature Gemini never minted').toString('base64url')}`;

  it('sends a well-formed forged signature on for Gemini to judge: refused in the OpenAI client\'s format', async () => {
    const err = await openai.chat.completions.create({ model: 'g3', tools: chatTools, messages: history(forged) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).error).toMatchObject({ code: 'upstream_rejected', message: 'upstream rejected the request: Corrupted thought signature.' });
    expect(replayed().thoughtSignature).toBe(Buffer.from('a signature Gemini never minted').toString('base64'));
  });

  it('and in the Anthropic client\'s format', async () => {
    const err = await anthropic.messages.create({
      model: 'g3', max_tokens: 64,
      messages: [
        { role: 'user', content: 'weather?' },
        { role: 'assistant', content: [{ type: 'tool_use', id: forged, name: 'get_weather', input: { city: 'Paris' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: forged, content: 'sunny' }] },
      ],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    expect((err as InstanceType<typeof Anthropic.BadRequestError>).error).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: 'upstream rejected the request: Corrupted thought signature.' } });
  });

  it.each([
    ['not base64', `call_x${SEP}!!not*base64%%`],
    ['empty', `call_x${SEP}`],
    ['not ASCII', `call_x${SEP}ü€`],
  ])('treats a carrier that is %s as no signature: the stand-in, and an answer', async (_what, id) => {
    const res = await openai.chat.completions.create({ model: 'g3', tools: chatTools, messages: history(id) });
    expect(res.choices[0]!.message.content).toBe('tool said: {"content":"sunny"}');
    expect(replayed().thoughtSignature).toBe(STAND_IN);
    expect(JSON.stringify(last().body)).not.toContain(SEP);
  });
});

describe('a conversation begun on Gemini going on elsewhere', () => {
  it('reaches OpenAI and Anthropic providers with the bare ids', async () => {
    const first = await openai.chat.completions.create({ model: 'g3', tools: chatTools, messages: [ask] });
    const msg = first.choices[0]!.message;
    const id = msg.tool_calls![0]!.id;
    const bare = id.slice(0, id.indexOf(SEP));
    const messages: OpenAI.ChatCompletionMessageParam[] = [ask, msg, { role: 'tool', tool_call_id: id, content: 'sunny' }];

    await openai.chat.completions.create({ model: 'oa', tools: chatTools, messages }); // OpenAI → OpenAI: passed through
    expect(last().body!.messages[1].tool_calls[0].id).toBe(bare);
    expect(last().body!.messages[2].tool_call_id).toBe(bare);
    expect(bare.length).toBeLessThanOrEqual(40); // OpenAI's cap on tool call ids

    await openai.chat.completions.create({ model: 'cl', max_tokens: 64, tools: chatTools, messages }); // through the pivot
    expect(last().body!.messages[1].content[0]).toMatchObject({ type: 'tool_use', id: bare });
    expect(JSON.stringify(last().body)).not.toContain(SEP);
  });
});
