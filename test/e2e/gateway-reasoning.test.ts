// Reasoning ("thinking") across wire formats: the official SDKs (openai, @google/genai,
// @anthropic-ai/sdk) against a reasoning model of every provider type, streamed and not. The
// reasoning arrives in the client's shape before the answer, its tokens are recorded, the request's
// reasoning control reaches each provider in that provider's terms (or not at all when thinking is
// off), earlier thinking goes back only to the model that gave it (GLM's reasoning as
// reasoning_content for its preserved thinking, Gemini's text signatures on their part), and
// malformed controls are refused in the caller's format before anything is sent.
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI, type Part } from '@google/genai';
import { SignJWT } from 'jose';
import OpenAI, { AzureOpenAI } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAppliance, type Appliance } from '../helpers/appliance.ts';
import { authed, json, post, setupAdmin, type Admin } from '../helpers/api.ts';
import { createKey, PROVIDER_TYPES, providerPerType, simpleModel, type ProviderType } from '../helpers/gateway.ts';
import { sdkClients } from '../helpers/sdks.ts';
import { startLlmUpstream, THOUGHT_SIGNATURE, THOUGHTS, type LlmUpstream, type RecordedRequest } from '../helpers/llm-upstream.ts';

let app: Appliance;
let admin: Admin;
let up: LlmUpstream;
let vk: string;
let keyId: string;
let openai: OpenAI;
let anthropic: Anthropic;
let genai: GoogleGenAI;
let glmKey: string;
let glmKeyId: string;

const THOUGHT = THOUGHTS.join('');
/** Reasoning tokens recorded: as reported, or for Anthropic (which reports none apart) the thinking text at ~4 characters a token. */
const REASONING_TOKENS = (t: ProviderType) => (t === 'anthropic' ? Math.ceil(THOUGHT.length / 4) : THOUGHTS.length);

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

beforeAll(async () => {
  [app, up] = await Promise.all([startAppliance(), startLlmUpstream()]);
  admin = await setupAdmin(app);
  const ids = await providerPerType(app, admin, up.url);
  for (const type of PROVIDER_TYPES) await simpleModel(app, admin, ids[type], `t-${type}`, 'up-think');
  await simpleModel(app, admin, ids['openai-compatible'], 't-field', 'up-think-field');
  await simpleModel(app, admin, ids.gemini, 'g3', 'gemini-3-flash-preview');
  ({ key: vk, id: keyId } = await createKey(app, admin.token));
  ({ key: glmKey, id: glmKeyId } = await createKey(app, admin.token, { format: 'id_secret' }));
  ({ openai, anthropic, genai } = sdkClients(app, vk));
});
afterAll(async () => {
  await app?.stop();
  await up?.close();
});

const last = (): RecordedRequest => up.requests.at(-1)!;

/** Reasoning tokens recorded so far for a model under a key (the test's key unless named). */
async function recorded(model: string, key = keyId): Promise<number> {
  const usage = await json(await fetch(`${app.url}/api/v1/usage?group_by=model&key_id=${key}`, authed(admin.token)));
  return (usage.items as Array<{ model: string; reasoning_tokens: number }>).find((r) => r.model === model)?.reasoning_tokens ?? 0;
}

/** What the provider was asked, as far as reasoning goes, in its own terms. */
function reasoningSent(type: ProviderType, body: Json): unknown {
  if (type === 'anthropic') return body.thinking;
  if (type === 'gemini') return body.generationConfig?.thinkingConfig;
  if (type === 'glm') {
    expect(body).not.toHaveProperty('reasoning_effort');
    return body.thinking;
  }
  return body.reasoning_effort;
}

describe('OpenAI chat clients', () => {
  it.each(PROVIDER_TYPES)('→ %s: reasoning_content before the answer, streamed and not', async (type) => {
    const model = `t-${type}`;
    const before = await recorded(model);
    const res = await openai.chat.completions.create({ model, reasoning_effort: 'low', max_tokens: 200, messages: [{ role: 'user', content: 'one two' }] });
    const msg = res.choices[0]!.message as OpenAI.ChatCompletionMessage & { reasoning_content?: string };
    expect(msg.reasoning_content).toBe(THOUGHT);
    expect(msg.content).toBe('echo: one two');
    expect(res.usage!.completion_tokens_details?.reasoning_tokens).toBe(REASONING_TOKENS(type));
    const sent = last().body!;
    if (type === 'anthropic') {
      expect(sent.thinking).toEqual({ type: 'enabled', budget_tokens: 1024 });
      expect(sent.max_tokens).toBe(1224); // raised above the budget, keeping the client's 200 for the answer
    } else if (type === 'gemini') {
      expect(sent.generationConfig).toEqual({ maxOutputTokens: 200, thinkingConfig: { thinkingBudget: 1024, includeThoughts: true } });
    } else {
      expect(reasoningSent(type, sent)).toEqual(type === 'glm' ? { type: 'enabled' } : 'low');
    }
    expect(await recorded(model)).toBe(before + REASONING_TOKENS(type));

    const stream = await openai.chat.completions.create({ model, reasoning_effort: 'low', messages: [{ role: 'user', content: 'three four' }], stream: true, stream_options: { include_usage: true } });
    const order: string[] = [];
    let reasoning = '';
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const c of stream) {
      const d = c.choices[0]?.delta as (OpenAI.ChatCompletionChunk.Choice.Delta & { reasoning_content?: string }) | undefined;
      if (d?.reasoning_content) {
        reasoning += d.reasoning_content;
        order.push('reasoning');
      }
      if (d?.content) {
        text += d.content;
        order.push('text');
      }
      usage = c.usage ?? usage;
    }
    expect(reasoning).toBe(THOUGHT);
    expect(text).toBe('echo: three four');
    expect(order.indexOf('text')).toBe(order.lastIndexOf('reasoning') + 1); // all reasoning, then all text
    expect(order.filter((o) => o === 'reasoning').length).toBeGreaterThan(1); // as it came, not at the end
    expect(usage?.completion_tokens_details?.reasoning_tokens).toBe(REASONING_TOKENS(type));
    expect(await recorded(model)).toBe(before + 2 * REASONING_TOKENS(type));
  });

  it('a server that names it `reasoning` reaches translated clients as reasoning', async () => {
    const msg = await anthropic.messages.create({ model: 't-field', max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: [{ role: 'user', content: 'x' }] });
    expect(msg.content[0]).toEqual({ type: 'thinking', thinking: THOUGHT, signature: '' });
    const stream = anthropic.messages.stream({ model: 't-field', max_tokens: 2048, messages: [{ role: 'user', content: 'x' }] });
    expect((await stream.finalMessage()).content[0]).toEqual({ type: 'thinking', thinking: THOUGHT, signature: '' });
  });

  it.each(['anthropic', 'gemini'] as const)('reasoning_effort "none" → %s is asked for no reasoning', async (type) => {
    const res = await openai.chat.completions.create({ model: `t-${type}`, reasoning_effort: 'none', messages: [{ role: 'user', content: 'x' }] });
    expect(reasoningSent(type, last().body!)).toBeUndefined();
    expect((res.choices[0]!.message as { reasoning_content?: string }).reasoning_content).toBeUndefined();
  });
});

describe('Azure and GLM clients (OpenAI-shaped)', () => {
  it.each(['anthropic', 'gemini'] as const)('→ %s: reasoning_content, streamed and not', async (type) => {
    const clients = [
      new AzureOpenAI({ endpoint: app.url, apiKey: vk, apiVersion: '2024-10-21', maxRetries: 0 }),
      new OpenAI({ apiKey: vk, baseURL: `${app.url}/api/paas/v4`, maxRetries: 0 }),
    ];
    for (const client of clients) {
      const res = await client.chat.completions.create({ model: `t-${type}`, reasoning_effort: 'high', messages: [{ role: 'user', content: 'x' }] });
      expect((res.choices[0]!.message as { reasoning_content?: string }).reasoning_content).toBe(THOUGHT);
      expect(reasoningSent(type, last().body!)).toEqual(type === 'anthropic' ? { type: 'enabled', budget_tokens: 16384 } : { thinkingBudget: 16384, includeThoughts: true });
      let reasoning = '';
      for await (const c of await client.chat.completions.create({ model: `t-${type}`, reasoning_effort: 'high', messages: [{ role: 'user', content: 'x' }], stream: true })) {
        reasoning += (c.choices[0]?.delta as { reasoning_content?: string } | undefined)?.reasoning_content ?? '';
      }
      expect(reasoning).toBe(THOUGHT);
    }
  });
});

describe('/v1/responses through chat', () => {
  it.each(['anthropic', 'gemini', 'glm', 'openai-compatible'] as const)('→ %s: a reasoning item with the summary, streamed and not', async (type) => {
    const res = await openai.responses.create({ model: `t-${type}`, input: 'one two', reasoning: { effort: 'medium' } });
    expect(res.output.map((o) => o.type)).toEqual(['reasoning', 'message']);
    expect(res.output[0]).toMatchObject({ type: 'reasoning', summary: [{ type: 'summary_text', text: THOUGHT }] });
    expect(res.output_text).toBe('echo: one two');
    expect(res.usage!.output_tokens_details.reasoning_tokens).toBe(REASONING_TOKENS(type));
    expect(reasoningSent(type, last().body!)).toEqual(type === 'anthropic' ? { type: 'enabled', budget_tokens: 4096 } : type === 'gemini' ? { thinkingBudget: 4096, includeThoughts: true } : type === 'glm' ? { type: 'enabled' } : 'medium');

    const types: string[] = [];
    let summary = '';
    let final: OpenAI.Responses.Response | undefined;
    for await (const e of await openai.responses.create({ model: `t-${type}`, input: 'one two', reasoning: { effort: 'medium' }, stream: true })) {
      types.push(e.type);
      if (e.type === 'response.reasoning_summary_text.delta') summary += e.delta;
      if (e.type === 'response.completed') final = e.response;
    }
    expect(summary).toBe(THOUGHT);
    expect(types.indexOf('response.reasoning_summary_text.done')).toBeLessThan(types.indexOf('response.output_text.delta'));
    expect(final!.output.map((o) => o.type)).toEqual(['reasoning', 'message']);
  });
});

describe('Anthropic clients', () => {
  const thinking = { type: 'enabled', budget_tokens: 2048 } as const;
  it.each(PROVIDER_TYPES)('→ %s: a thinking block before the text, streamed and not', async (type) => {
    const model = `t-${type}`;
    const before = await recorded(model);
    const signature = type === 'anthropic' ? THOUGHT_SIGNATURE : '';
    const res = await anthropic.messages.create({ model, max_tokens: 4096, thinking, messages: [{ role: 'user', content: 'one two' }] });
    expect(res.content).toEqual([{ type: 'thinking', thinking: THOUGHT, signature }, { type: 'text', text: 'echo: one two' }]);
    const sent = last().body!;
    if (type === 'anthropic') expect(sent.thinking).toEqual(thinking); // passed through as sent
    else if (type === 'gemini') expect(sent.generationConfig).toEqual({ maxOutputTokens: 4096, thinkingConfig: { thinkingBudget: 2048, includeThoughts: true } });
    else if (type === 'glm') expect(reasoningSent(type, sent)).toEqual({ type: 'enabled' });
    else {
      expect(sent.reasoning_effort).toBe('medium');
      expect(sent).not.toHaveProperty('thinking');
    }
    // An Anthropic answer passed through is not looked into: Anthropic reports no thinking tokens apart.
    const tokens = type === 'anthropic' ? 0 : REASONING_TOKENS(type);
    expect(await recorded(model)).toBe(before + tokens);

    const stream = anthropic.messages.stream({ model, max_tokens: 4096, thinking, messages: [{ role: 'user', content: 'three four' }] });
    const deltas: string[] = [];
    const starts: string[] = [];
    stream.on('thinking', (d) => deltas.push(d));
    stream.on('streamEvent', (e) => {
      if (e.type === 'content_block_start') starts.push(e.content_block.type);
    });
    const final = await stream.finalMessage();
    expect(deltas.join('')).toBe(THOUGHT);
    expect(deltas.length).toBeGreaterThan(1);
    expect(starts).toEqual(['thinking', 'text']);
    expect(final.content).toEqual([{ type: 'thinking', thinking: THOUGHT, signature }, { type: 'text', text: 'echo: three four' }]);
    expect(await recorded(model)).toBe(before + 2 * tokens);
  });

  it.each(['openai', 'gemini'] as const)('thinking disabled → nothing asked of %s', async (type) => {
    const res = await anthropic.messages.create({ model: `t-${type}`, max_tokens: 100, thinking: { type: 'disabled' }, messages: [{ role: 'user', content: 'x' }] });
    expect(reasoningSent(type, last().body!)).toBeUndefined();
    if (type === 'gemini') expect(res.content.map((b) => b.type)).toEqual(['text']); // Gemini sends thoughts only when asked
  });

  it('earlier thinking goes to no provider but Anthropic, and never as text', async () => {
    const history: Anthropic.MessageParam[] = [
      { role: 'user', content: 'first' },
      { role: 'assistant', content: [{ type: 'thinking', thinking: 'private chain of thought', signature: 'sig-x' }, { type: 'text', text: 'answer one' }] },
      { role: 'user', content: 'second' },
    ];
    for (const type of ['openai', 'gemini'] as const) {
      await anthropic.messages.create({ model: `t-${type}`, max_tokens: 4096, thinking, messages: history });
      expect(JSON.stringify(last().body)).not.toContain('private chain of thought');
      expect(JSON.stringify(last().body)).toContain('answer one');
    }
  });
});

describe('Gemini clients', () => {
  const config = { thinkingConfig: { thinkingBudget: 2048, includeThoughts: true } };
  const split = (parts: Part[] | undefined) => ({ thought: (parts ?? []).filter((p) => p.thought).map((p) => p.text).join(''), text: (parts ?? []).filter((p) => !p.thought).map((p) => p.text ?? '').join('') });

  it.each(PROVIDER_TYPES)('→ %s: thought parts before the answer, streamed and not', async (type) => {
    const model = `t-${type}`;
    const before = await recorded(model);
    const res = await genai.models.generateContent({ model, contents: 'one two', config });
    const parts = res.candidates![0]!.content!.parts!;
    expect(parts[0]).toMatchObject({ text: THOUGHT, thought: true });
    expect(split(parts)).toEqual({ thought: THOUGHT, text: 'echo: one two' });
    expect(res.usageMetadata?.thoughtsTokenCount).toBe(REASONING_TOKENS(type));
    const sent = last().body!;
    if (type === 'gemini') expect(sent.generationConfig).toEqual(config); // passed through as sent
    else if (type === 'anthropic') expect(sent).toMatchObject({ thinking: { type: 'enabled', budget_tokens: 2048 }, max_tokens: 4096 });
    else expect(reasoningSent(type, sent)).toEqual(type === 'glm' ? { type: 'enabled' } : 'medium');
    expect(await recorded(model)).toBe(before + REASONING_TOKENS(type));

    const order: string[] = [];
    let thought = '';
    let text = '';
    for await (const c of await genai.models.generateContentStream({ model, contents: 'three four', config })) {
      const s = split(c.candidates?.[0]?.content?.parts);
      if (s.thought) order.push('thought');
      if (s.text) order.push('text');
      thought += s.thought;
      text += s.text;
    }
    expect(thought).toBe(THOUGHT);
    expect(text).toBe('echo: three four');
    expect(order.indexOf('text')).toBe(order.lastIndexOf('thought') + 1);
    expect(await recorded(model)).toBe(before + 2 * REASONING_TOKENS(type));
  });

  it.each(['openai', 'anthropic'] as const)('no thought parts for %s unless includeThoughts, as Gemini does', async (type) => {
    const res = await genai.models.generateContent({ model: `t-${type}`, contents: 'x', config: { thinkingConfig: { thinkingBudget: 2048 } } });
    expect(res.candidates![0]!.content!.parts!.some((p) => p.thought)).toBe(false);
    expect(reasoningSent(type, last().body!)).toEqual(type === 'anthropic' ? { type: 'enabled', budget_tokens: 2048 } : 'medium');
    await genai.models.generateContent({ model: `t-${type}`, contents: 'x', config: { thinkingConfig: { thinkingBudget: 0, includeThoughts: true } } });
    expect(reasoningSent(type, last().body!)).toBeUndefined();
  });
});

describe('an OpenAI client\'s tool loop on an Anthropic model with thinking', () => {
  const tools: OpenAI.ChatCompletionTool[] = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
  it('gives back the signed thinking block, or goes on without thinking', async () => {
    const ask: OpenAI.ChatCompletionMessageParam = { role: 'user', content: 'weather in Paris?' };
    const first = await openai.chat.completions.create({ model: 't-anthropic', reasoning_effort: 'low', tools, messages: [ask] });
    const msg = first.choices[0]!.message as OpenAI.ChatCompletionMessage & { reasoning_content?: string; thinking_blocks?: Json[] };
    expect(msg.tool_calls?.[0]).toMatchObject({ function: { name: 'get_weather' } });
    expect(msg.reasoning_content).toBe(THOUGHT);
    expect(msg.thinking_blocks).toEqual([{ type: 'thinking', thinking: THOUGHT, signature: THOUGHT_SIGNATURE }]);
    const result: OpenAI.ChatCompletionMessageParam = { role: 'tool', tool_call_id: msg.tool_calls![0]!.id, content: 'sunny' };

    // The whole message back (as LiteLLM clients do): the signed block leads the assistant turn.
    await openai.chat.completions.create({ model: 't-anthropic', reasoning_effort: 'low', tools, messages: [ask, msg as OpenAI.ChatCompletionMessageParam, result] });
    expect(last().body!.thinking).toEqual({ type: 'enabled', budget_tokens: 1024 });
    expect(last().body!.messages[1].content[0]).toEqual({ type: 'thinking', thinking: THOUGHT, signature: THOUGHT_SIGNATURE });

    // Only the text of the reasoning back: it is not sent, and thinking is off for the turn rather than refused.
    const { thinking_blocks: _b, ...bare } = msg;
    const res = await openai.chat.completions.create({ model: 't-anthropic', reasoning_effort: 'low', tools, messages: [ask, bare as OpenAI.ChatCompletionMessageParam, result] });
    expect(res.choices[0]!.message.content).toBe('tool said: sunny');
    expect(last().body).not.toHaveProperty('thinking');
    expect(JSON.stringify(last().body)).not.toContain(THOUGHT);
  });
});

describe('GLM\'s own thinking switch', () => {
  /** A Zhipu JWT for the id.secret key (HS256, millisecond timestamps), as Zhipu's SDKs sign one. */
  async function zhipuJwt(): Promise<string> {
    const [id, secret] = glmKey.split('.') as [string, string];
    const now = Date.now();
    return new SignJWT({ api_key: id, exp: now + 600_000, timestamp: now }).setProtectedHeader({ alg: 'HS256', sign_type: 'SIGN' } as never).sign(new TextEncoder().encode(secret));
  }
  /** The openai SDK at the GLM base URL with a Zhipu JWT as its key, as Zhipu's docs suggest. */
  const zhipu = async () => new OpenAI({ apiKey: await zhipuJwt(), baseURL: `${app.url}/api/paas/v4`, maxRetries: 0 });
  type GlmParams = OpenAI.ChatCompletionCreateParamsNonStreaming & { thinking?: unknown };
  /** The reasoning and text of a chat answer, whole and streamed (each asked once). */
  async function both(client: OpenAI, params: GlmParams): Promise<Array<{ reasoning: string; text: string; tokens: number | undefined }>> {
    const res = await client.chat.completions.create(params);
    const msg = res.choices[0]!.message as OpenAI.ChatCompletionMessage & { reasoning_content?: string };
    const whole = { reasoning: msg.reasoning_content ?? '', text: msg.content ?? '', tokens: res.usage?.completion_tokens_details?.reasoning_tokens };
    const sentWhole = last().body!;
    let reasoning = '';
    let text = '';
    let tokens: number | undefined;
    for await (const c of await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } })) {
      const d = c.choices[0]?.delta as { reasoning_content?: string; content?: string } | undefined;
      reasoning += d?.reasoning_content ?? '';
      text += d?.content ?? '';
      tokens = c.usage?.completion_tokens_details?.reasoning_tokens ?? tokens;
    }
    const controls = (b: Json) => [b.thinking, b.reasoning_effort, b.generationConfig?.thinkingConfig];
    expect(controls(last().body!)).toEqual(controls(sentWhole)); // the same controls streamed
    return [whole, { reasoning, text, tokens }];
  }

  it('a Zhipu client\'s thinking passes through unchanged (with its JWT), streamed and not', async () => {
    const before = await recorded('t-glm', glmKeyId);
    const thinking = { type: 'enabled', clear_thinking: false };
    const on = await both(await zhipu(), { model: 't-glm', messages: [{ role: 'user', content: 'one two' }], thinking } as GlmParams);
    expect(on).toEqual([{ reasoning: THOUGHT, text: 'echo: one two', tokens: THOUGHTS.length }, { reasoning: THOUGHT, text: 'echo: one two', tokens: THOUGHTS.length }]);
    expect(last().body!.thinking).toEqual(thinking);
    expect(last().headers.authorization).toBe('Bearer key-glm');
    expect(await recorded('t-glm', glmKeyId)).toBe(before + 2 * THOUGHTS.length);

    const off = await both(await zhipu(), { model: 't-glm', messages: [{ role: 'user', content: 'x' }], thinking: { type: 'disabled' } } as GlmParams);
    expect(off.map((a) => a.reasoning)).toEqual(['', '']);
    expect(off.map((a) => a.text)).toEqual(['echo: x', 'echo: x']);
    expect(last().body!.thinking).toEqual({ type: 'disabled' });
    expect(await recorded('t-glm', glmKeyId)).toBe(before + 2 * THOUGHTS.length);

    // GLM's switch reaches Anthropic and Gemini models too, leaving them to choose how much.
    for (const type of ['anthropic', 'gemini'] as const) {
      const [whole, streamed] = await both(await zhipu(), { model: `t-${type}`, messages: [{ role: 'user', content: 'x' }], thinking: { type: 'enabled' } } as GlmParams);
      expect([whole!.reasoning, streamed!.reasoning]).toEqual([THOUGHT, THOUGHT]);
      expect(reasoningSent(type, last().body!)).toEqual(type === 'anthropic' ? { type: 'enabled', budget_tokens: 4096 } : { thinkingBudget: 4096, includeThoughts: true });
    }

    // The switch decides over an effort beside it, which GLM does not take.
    await both(await zhipu(), { model: 't-glm', messages: [{ role: 'user', content: 'x' }], thinking: { type: 'disabled' }, reasoning_effort: 'high' } as GlmParams);
    expect(reasoningSent('glm', last().body!)).toEqual({ type: 'disabled' });
  });

  it.each([
    ['none', { type: 'disabled' }], ['minimal', { type: 'disabled' }], ['low', { type: 'enabled' }], ['high', { type: 'enabled' }],
  ] as const)('reasoning_effort %s from OpenAI and Zhipu clients → thinking %j', async (effort, thinking) => {
    for (const client of [openai, await zhipu()]) {
      const answers = await both(client, { model: 't-glm', reasoning_effort: effort, messages: [{ role: 'user', content: 'x' }] });
      expect(reasoningSent('glm', last().body!)).toEqual(thinking);
      expect(answers.map((a) => a.reasoning)).toEqual(thinking.type === 'enabled' ? [THOUGHT, THOUGHT] : ['', '']);
      expect(answers.map((a) => a.text)).toEqual(['echo: x', 'echo: x']);
    }
  });

  it('Anthropic thinking disabled → GLM told so; no thinking block, streamed and not', async () => {
    const before = await recorded('t-glm');
    const res = await anthropic.messages.create({ model: 't-glm', max_tokens: 100, thinking: { type: 'disabled' }, messages: [{ role: 'user', content: 'x' }] });
    expect(reasoningSent('glm', last().body!)).toEqual({ type: 'disabled' });
    expect(res.content.map((b) => b.type)).toEqual(['text']);
    const final = await anthropic.messages.stream({ model: 't-glm', max_tokens: 100, thinking: { type: 'disabled' }, messages: [{ role: 'user', content: 'x' }] }).finalMessage();
    expect(reasoningSent('glm', last().body!)).toEqual({ type: 'disabled' });
    expect(final.content.map((b) => b.type)).toEqual(['text']);
    await anthropic.messages.create({ model: 't-glm', max_tokens: 2048, thinking: { type: 'adaptive' } as never, messages: [{ role: 'user', content: 'x' }] });
    expect(reasoningSent('glm', last().body!)).toEqual({ type: 'enabled' });
    expect(await recorded('t-glm')).toBe(before + THOUGHTS.length);
  });

  it.each([
    [{ thinkingBudget: 0, includeThoughts: true }, { type: 'disabled' }],
    [{ thinkingBudget: -1, includeThoughts: true }, { type: 'enabled' }],
    [{ thinkingBudget: 512, includeThoughts: true }, { type: 'enabled' }],
    [{ thinkingLevel: 'LOW', includeThoughts: true }, { type: 'enabled' }],
  ])('Gemini thinkingConfig %j → thinking %j, thought parts only when on', async (thinkingConfig, thinking) => {
    const split = (parts: Part[] | undefined) => (parts ?? []).filter((p) => p.thought).map((p) => p.text).join('');
    const res = await genai.models.generateContent({ model: 't-glm', contents: 'x', config: { thinkingConfig } as never });
    expect(reasoningSent('glm', last().body!)).toEqual(thinking);
    const want = thinking.type === 'enabled' ? THOUGHT : '';
    expect(split(res.candidates![0]!.content!.parts)).toBe(want);
    expect(res.usageMetadata?.thoughtsTokenCount).toBe(want ? THOUGHTS.length : undefined);
    let streamed = '';
    for await (const c of await genai.models.generateContentStream({ model: 't-glm', contents: 'x', config: { thinkingConfig } as never })) streamed += split(c.candidates?.[0]?.content?.parts);
    expect(reasoningSent('glm', last().body!)).toEqual(thinking);
    expect(streamed).toBe(want);
  });

  it('Responses reasoning.effort minimal → thinking off, no reasoning item', async () => {
    const res = await openai.responses.create({ model: 't-glm', input: 'x', reasoning: { effort: 'minimal' } });
    expect(reasoningSent('glm', last().body!)).toEqual({ type: 'disabled' });
    expect(res.output.map((o) => o.type)).toEqual(['message']);
  });

  it.each([
    [{ thinking: { type: 'sometimes' } }, 'thinking'],
    [{ thinking: { type: 5 } }, 'thinking'],
    [{ thinking: 'enabled' }, 'thinking'],
    [{ thinking: ['enabled'] }, 'thinking'],
    [{ thinking: {} }, 'thinking'],
    [{ thinking: { type: 'enabled', clear_thinking: 'no' } }, 'thinking'],
    [{ thinking: { type: 'enabled', budget_tokens: 100 } }, 'thinking'],
    [{ reasoning_effort: 7 }, 'reasoning_effort'],
    [{ reasoning_effort: 'max please' }, 'reasoning_effort'],
    [{ thinking: { type: 'disabled' }, reasoning_effort: ['high'] }, 'reasoning_effort'],
  ])('%j → 400 in the caller\'s shape, nothing sent', async (extra, param) => {
    const sent = up.requests.length;
    const body = { model: 't-glm', messages: [{ role: 'user', content: 'x' }], ...extra };
    const viaGlm = await post(`${app.url}/api/paas/v4/chat/completions`, body, { authorization: await zhipuJwt() });
    expect(viaGlm.status).toBe(400);
    expect(await json(viaGlm)).toEqual({ error: { code: '1214', message: expect.stringContaining(param) } });
    for (const stream of [false, true]) {
      const viaOpenAi = await post(`${app.url}/v1/chat/completions`, { ...body, stream }, { authorization: `Bearer ${vk}` });
      expect(viaOpenAi.status).toBe(400);
      expect((await json(viaOpenAi)).error).toMatchObject({ type: 'invalid_request_error', param });
    }
    expect(up.requests.length).toBe(sent);
  });
});

describe('malformed reasoning controls', () => {
  it.each([
    [{ reasoning_effort: 5 }, 'reasoning_effort'],
    [{ reasoning_effort: 'ultra' }, 'reasoning_effort'],
    [{ reasoning_effort: ['low'] }, 'reasoning_effort'],
  ])('OpenAI %j → 400 in OpenAI\'s shape, nothing sent', async (extra, param) => {
    for (const model of ['t-anthropic', 't-gemini', 't-glm']) {
      const sent = up.requests.length;
      const res = await post(`${app.url}/v1/chat/completions`, { model, messages: [{ role: 'user', content: 'x' }], ...extra }, { authorization: `Bearer ${vk}` });
      expect(res.status).toBe(400);
      expect((await json(res)).error).toMatchObject({ type: 'invalid_request_error', param });
      expect(up.requests.length).toBe(sent);
    }
  });

  it.each([
    { type: 'enabled', budget_tokens: -1 },
    { type: 'enabled', budget_tokens: 1500.5 },
    { type: 'enabled', budget_tokens: '2048' },
    { type: 'enabled', budget_tokens: 512 },
    { type: 'enabled', budget_tokens: 9000 }, // not below max_tokens
    { type: 'enabled' },
    { type: 'deep' },
    'enabled',
  ])('Anthropic thinking %j → 400 in Anthropic\'s shape, nothing sent', async (thinking) => {
    for (const model of ['t-openai', 't-gemini', 't-glm']) {
      const sent = up.requests.length;
      const res = await post(`${app.url}/v1/messages`, { model, max_tokens: 4096, thinking, messages: [{ role: 'user', content: 'x' }] }, { 'x-api-key': vk, 'anthropic-version': '2023-06-01' });
      expect(res.status).toBe(400);
      expect(await json(res)).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringMatching(/thinking/) } });
      expect(up.requests.length).toBe(sent);
    }
  });

  it.each([
    { thinkingBudget: 'lots' },
    { thinkingBudget: -7 },
    { thinkingBudget: 10.5 },
    { thinkingLevel: 'extreme' },
    { includeThoughts: 'yes' },
    'on',
  ])('Gemini thinkingConfig %j → 400 in Gemini\'s shape, nothing sent', async (thinkingConfig) => {
    for (const model of ['t-openai', 't-anthropic', 't-glm']) {
      const sent = up.requests.length;
      const res = await post(`${app.url}/v1beta/models/${model}:generateContent`, { contents: [{ role: 'user', parts: [{ text: 'x' }] }], generationConfig: { thinkingConfig } }, { 'x-goog-api-key': vk });
      expect(res.status).toBe(400);
      expect((await json(res)).error).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT', message: expect.stringMatching(/thinking/) });
      expect(up.requests.length).toBe(sent);
    }
  });
});

describe('GLM\'s preserved thinking from another format\'s history', () => {
  const thinking = { type: 'enabled', budget_tokens: 2048 } as const;
  /** The assistant turns GLM received, and its thinking switch. */
  const glmGot = () => ({ assistant: (last().body!.messages as Json[]).filter((m) => m.role === 'assistant'), thinking: last().body!.thinking });

  it.each([false, true])('Anthropic thinking blocks go back as reasoning_content, clear_thinking off (stream: %s)', async (stream) => {
    const ask: Anthropic.MessageCreateParamsNonStreaming = { model: 't-glm', max_tokens: 4096, thinking, messages: [{ role: 'user', content: 'one two' }] };
    const first = stream ? await anthropic.messages.stream(ask).finalMessage() : await anthropic.messages.create(ask);
    expect(first.content.map((b) => b.type)).toEqual(['thinking', 'text']);
    const messages: Anthropic.MessageParam[] = [...ask.messages, { role: 'assistant', content: first.content }, { role: 'user', content: 'three' }];
    const next = stream ? await anthropic.messages.stream({ ...ask, messages }).finalMessage() : await anthropic.messages.create({ ...ask, messages });
    expect(next.content.at(-1)).toMatchObject({ type: 'text', text: 'echo: three' });
    expect(glmGot()).toEqual({ assistant: [{ role: 'assistant', content: 'echo: one two', reasoning_content: THOUGHT }], thinking: { type: 'enabled', clear_thinking: false } });
    // The same history to a provider that takes no reasoning back: left out.
    await anthropic.messages.create({ ...ask, model: 't-openai-compatible', messages });
    expect(JSON.stringify(last().body)).not.toContain(THOUGHT);
  });

  it('sends no Claude-signed, redacted or user-turn thinking to GLM; malformed blocks → 400 in Anthropic\'s shape', async () => {
    await anthropic.messages.create({ model: 't-glm', max_tokens: 4096, thinking, messages: [
      { role: 'user', content: [{ type: 'thinking', thinking: 'smuggled in a user turn', signature: '' } as never, { type: 'text', text: 'first' }] },
      { role: 'assistant', content: [{ type: 'thinking', thinking: 'Claude thought', signature: 'EqQBCkYIBxgC' }, { type: 'redacted_thinking', data: 'EmwKAhgBEgy' }, { type: 'text', text: 'answer one' }] },
      { role: 'user', content: 'second' },
    ] });
    expect(glmGot()).toEqual({ assistant: [{ role: 'assistant', content: 'answer one' }], thinking: { type: 'enabled' } });
    expect(JSON.stringify(last().body)).not.toMatch(/smuggled|Claude thought|EmwKAhgBEgy/);
    for (const block of [{ type: 'thinking', thinking: 5, signature: '' }, { type: 'thinking', thinking: 'x', signature: ['s'] }, { type: 'redacted_thinking', data: { x: 1 } }]) {
      const sent = up.requests.length;
      const res = await post(`${app.url}/v1/messages`, { model: 't-glm', max_tokens: 64, messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: [block, { type: 'text', text: 'b' }] }, { role: 'user', content: 'c' }] }, { 'x-api-key': vk, 'anthropic-version': '2023-06-01' });
      expect(res.status).toBe(400);
      expect(await json(res)).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringMatching(/messages\.1\.content\.0\.(thinking|signature|data)/) } });
      expect(up.requests.length).toBe(sent);
    }
  });

  it.each([false, true])('Gemini thought parts go back as reasoning_content (stream: %s)', async (stream) => {
    const config = { thinkingConfig: { includeThoughts: true } };
    let parts: Part[] = [];
    if (stream) for await (const c of await genai.models.generateContentStream({ model: 't-glm', contents: 'one two', config })) parts.push(...(c.candidates?.[0]?.content?.parts ?? []));
    else parts = (await genai.models.generateContent({ model: 't-glm', contents: 'one two', config })).candidates![0]!.content!.parts!;
    expect(parts.some((p) => p.thought)).toBe(true);
    await genai.models.generateContent({ model: 't-glm', config, contents: [{ role: 'user', parts: [{ text: 'one two' }] }, { role: 'model', parts }, { role: 'user', parts: [{ text: 'three' }] }] });
    expect(glmGot()).toEqual({ assistant: [{ role: 'assistant', content: 'echo: one two', reasoning_content: THOUGHT }], thinking: { type: 'enabled', clear_thinking: false } });
  });

  it.each([false, true])('a Responses reasoning item goes back as reasoning_content; an encrypted one does not (stream: %s)', async (stream) => {
    let output: OpenAI.Responses.ResponseOutputItem[] = [];
    if (stream) {
      for await (const e of await openai.responses.create({ model: 't-glm', input: 'one two', reasoning: { effort: 'medium' }, stream: true })) if (e.type === 'response.completed') output = e.response.output;
    } else output = (await openai.responses.create({ model: 't-glm', input: 'one two', reasoning: { effort: 'medium' } })).output;
    expect(output.map((o) => o.type)).toEqual(['reasoning', 'message']);
    const input = [{ role: 'user', content: 'one two' }, ...output, { role: 'user', content: 'three' }] as OpenAI.Responses.ResponseInput;
    const res = await openai.responses.create({ model: 't-glm', input, reasoning: { effort: 'medium' } });
    expect(res.output_text).toBe('echo: three');
    expect(glmGot()).toEqual({ assistant: [{ role: 'assistant', content: 'echo: one two', reasoning_content: THOUGHT }], thinking: { type: 'enabled', clear_thinking: false } });
    // OpenAI's own reasoning items (encrypted_content) are opaque, and their summary is not GLM's text.
    const sealed = input.map((i) => ('type' in i && i.type === 'reasoning' ? { ...i, encrypted_content: 'gAAAAB-opaque' } : i)) as OpenAI.Responses.ResponseInput;
    await openai.responses.create({ model: 't-glm', input: sealed, reasoning: { effort: 'medium' } });
    expect(glmGot()).toEqual({ assistant: [{ role: 'assistant', content: 'echo: one two' }], thinking: { type: 'enabled' } });
  });
});

describe('Gemini thought signatures on text across turns', () => {
  type SignedMessage = OpenAI.ChatCompletionMessage & { extra_content?: { google?: { thought_signature?: string } } };
  /** The signature on the text part of the model turn the last upstream request replayed. */
  const replayedText = () => (last().body!.contents as Json[])[1]!.parts.find((p: Json) => typeof p.text === 'string');

  it.each([false, true])('OpenAI chat: extra_content.google.thought_signature, as Google\'s endpoint gives it, and back on the text (stream: %s)', async (stream) => {
    const ask: OpenAI.ChatCompletionMessageParam = { role: 'user', content: 'one two' };
    let msg: SignedMessage;
    if (stream) {
      let content = '';
      let extra: SignedMessage['extra_content'];
      for await (const c of await openai.chat.completions.create({ model: 'g3', messages: [ask], stream: true })) {
        const d = c.choices[0]?.delta as (OpenAI.ChatCompletionChunk.Choice.Delta & Pick<SignedMessage, 'extra_content'>) | undefined;
        content += d?.content ?? '';
        extra = d?.extra_content ?? extra;
      }
      msg = { role: 'assistant', content, refusal: null, extra_content: extra };
    } else msg = (await openai.chat.completions.create({ model: 'g3', messages: [ask] })).choices[0]!.message;
    expect(msg.content).toBe('echo: one two');
    const sig = msg.extra_content?.google?.thought_signature;
    expect(up.thoughtSignatures.has(sig!)).toBe(true);
    const res = await openai.chat.completions.create({ model: 'g3', messages: [ask, msg as OpenAI.ChatCompletionMessageParam, { role: 'user', content: 'three' }] });
    expect(res.choices[0]!.message.content).toBe('echo: three');
    expect(replayedText()).toEqual({ text: 'echo: one two', thoughtSignature: sig });
  });

  it('OpenAI chat: a tool call\'s signature in extra_content is enough (a client that keeps its own ids)', async () => {
    const tools: OpenAI.ChatCompletionTool[] = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    const ask: OpenAI.ChatCompletionMessageParam = { role: 'user', content: 'weather?' };
    const msg = (await openai.chat.completions.create({ model: 'g3', tools, messages: [ask] })).choices[0]!.message;
    const call = msg.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall & { extra_content?: { google: { thought_signature: string } } };
    const sig = call.extra_content!.google.thought_signature;
    expect(up.thoughtSignatures.has(sig)).toBe(true);
    const mine = { ...call, id: 'my_call_1' };
    const res = await openai.chat.completions.create({ model: 'g3', tools, messages: [ask, { ...msg, tool_calls: [mine] } as OpenAI.ChatCompletionMessageParam, { role: 'tool', tool_call_id: 'my_call_1', content: 'sunny' }] });
    expect(res.choices[0]!.message.content).toBe('tool said: {"content":"sunny"}');
    expect(last().body!.contents[1].parts[0].thoughtSignature).toBe(sig); // not the stand-in
  });

  it.each([false, true])('Anthropic with thinking on: a redacted_thinking block marked gemini:, and back on the text (stream: %s)', async (stream) => {
    const ask: Anthropic.MessageCreateParamsNonStreaming = { model: 'g3', max_tokens: 4096, thinking: { type: 'enabled', budget_tokens: 2048 }, messages: [{ role: 'user', content: 'one two' }] };
    const first = stream ? await anthropic.messages.stream(ask).finalMessage() : await anthropic.messages.create(ask);
    expect(first.content.map((b) => b.type)).toEqual(['text', 'redacted_thinking']);
    const data = (first.content[1] as Anthropic.RedactedThinkingBlock).data;
    expect(data.startsWith('gemini:')).toBe(true);
    expect(up.thoughtSignatures.has(data.slice('gemini:'.length))).toBe(true);
    const messages: Anthropic.MessageParam[] = [...ask.messages, { role: 'assistant', content: first.content }, { role: 'user', content: 'three' }];
    const next = await anthropic.messages.create({ ...ask, messages });
    expect(next.content[0]).toMatchObject({ type: 'text', text: 'echo: three' });
    expect(replayedText()).toEqual({ text: 'echo: one two', thoughtSignature: data.slice('gemini:'.length) });
    // Moving to a Claude model: the block Anthropic could not check is left out, the rest goes on.
    await anthropic.messages.create({ ...ask, model: 't-anthropic', messages });
    expect(last().body!.messages[1].content).toEqual([{ type: 'text', text: 'echo: one two' }]);
    // Without thinking the client gets the text alone, as Anthropic answers.
    const plain = await anthropic.messages.create({ model: 'g3', max_tokens: 64, messages: [{ role: 'user', content: 'one' }] });
    expect(plain.content.map((b) => b.type)).toEqual(['text']);
  });

  it.each([false, true])('Responses asking for reasoning.encrypted_content: a reasoning item marked gemini:, and back on the text (stream: %s)', async (stream) => {
    const ask = { model: 'g3', input: 'one two', include: ['reasoning.encrypted_content'] } as const;
    let output: OpenAI.Responses.ResponseOutputItem[] = [];
    if (stream) {
      for await (const e of await openai.responses.create({ ...ask, include: [...ask.include], stream: true })) if (e.type === 'response.completed') output = e.response.output;
    } else output = (await openai.responses.create({ ...ask, include: [...ask.include] })).output;
    expect(output.map((o) => o.type)).toEqual(['message', 'reasoning']);
    const item = output[1] as OpenAI.Responses.ResponseReasoningItem;
    expect(item.summary).toEqual([]);
    const sig = item.encrypted_content!.slice('gemini:'.length);
    expect(item.encrypted_content!.startsWith('gemini:') && up.thoughtSignatures.has(sig)).toBe(true);
    const res = await openai.responses.create({ model: 'g3', input: [{ role: 'user', content: 'one two' }, ...output, { role: 'user', content: 'three' }] as OpenAI.Responses.ResponseInput });
    expect(res.output_text).toBe('echo: three');
    expect(replayedText()).toEqual({ text: 'echo: one two', thoughtSignature: sig });
    // Not asked for: the message alone, as OpenAI answers.
    expect((await openai.responses.create({ model: 'g3', input: 'one' })).output.map((o) => o.type)).toEqual(['message']);
  });

  it.each([
    ['a number', 42, 'must be a string'],
    ['an object', { sig: 'x' }, 'must be a string'],
    ['oversized', 'A'.repeat((1 << 20) + 4), 'longer than'],
  ])('OpenAI: a thought_signature that is %s → 400 in OpenAI\'s shape, nothing sent', async (_what, sig, message) => {
    const sent = up.requests.length;
    for (const stream of [false, true]) {
      const res = await post(`${app.url}/v1/chat/completions`, { model: 'g3', stream, messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b', extra_content: { google: { thought_signature: sig } } }, { role: 'user', content: 'c' }] }, { authorization: `Bearer ${vk}` });
      expect(res.status).toBe(400);
      expect((await json(res)).error).toMatchObject({ type: 'invalid_request_error', message: expect.stringContaining(message) });
    }
    expect(up.requests.length).toBe(sent);
  });

  it('drops carriers that are not base64, in either format, and still answers, the good ones beside them carried', async () => {
    const sig = ((await openai.chat.completions.create({ model: 'g3', messages: [{ role: 'user', content: 'a' }] })).choices[0]!.message as SignedMessage).extra_content!.google!.thought_signature!;
    const texts = () => (last().body!.contents as Json[]).filter((c) => c.role === 'model').map((c) => c.parts[0]);
    const res = await post(`${app.url}/v1/chat/completions`, { model: 'g3', messages: [
      { role: 'user', content: 'a' }, { role: 'assistant', content: 'b', extra_content: { google: { thought_signature: sig } } },
      { role: 'user', content: 'c' }, { role: 'assistant', content: 'd', extra_content: { google: { thought_signature: '%%not base64%%' } } }, { role: 'user', content: 'e' },
    ] }, { authorization: `Bearer ${vk}` });
    expect(res.status).toBe(200);
    expect(texts()).toEqual([{ text: 'b', thoughtSignature: sig }, { text: 'd' }]);
    await anthropic.messages.create({ model: 'g3', max_tokens: 64, messages: [
      { role: 'user', content: 'a' }, { role: 'assistant', content: [{ type: 'text', text: 'b' }, { type: 'redacted_thinking', data: `gemini:${sig}` }] },
      { role: 'user', content: 'c' }, { role: 'assistant', content: [{ type: 'text', text: 'd' }, { type: 'redacted_thinking', data: 'gemini:%%' }] }, { role: 'user', content: 'e' },
    ] });
    expect(texts()).toEqual([{ text: 'b', thoughtSignature: sig }, { text: 'd' }]);
  });
});
