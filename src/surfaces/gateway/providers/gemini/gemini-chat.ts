// Gemini generateContent ⇄ OpenAI chat completions, requests, responses and streams
// (https://ai.google.dev/api/generate-content). Used in both directions: Gemini clients reaching
// OpenAI/Anthropic-served models, and OpenAI clients reaching Gemini-served models.
import { AppError } from '../../../../core/errors/errors.ts';
import {
  chunkOf, contentText, messagesOf, newId, nowSeconds, openAiUsageOf, parseArguments, parseDataUrl, toolResultObject,
  type FinishReason, type StreamDecoder, type ToolCall,
} from '../pivot.ts';
import { askOf, effortOfBudget, pivotReasoning, reasoningAsk, reasoningText, type ReasoningAsk } from '../reasoning.ts';
import { isObject, num, type Json, type Usage } from '../types.ts';
import { thinkingConfigFor } from './gemini-thinking.ts';
import { extraContent, isSignature, SKIP_SIGNATURE, signatureOfExtra, splitSignature, withSignature } from './thought-signature.ts';

export function geminiUsage(meta: unknown): Usage | null {
  if (!isObject(meta)) return null;
  return {
    input: num(meta.promptTokenCount),
    output: num(meta.candidatesTokenCount) + num(meta.thoughtsTokenCount),
    cached: num(meta.cachedContentTokenCount),
    reasoning: num(meta.thoughtsTokenCount),
  };
}

function usageMetadataOf(usage: unknown): Json | undefined {
  if (!isObject(usage)) return undefined;
  const prompt = num(usage.prompt_tokens);
  const completion = num(usage.completion_tokens);
  const meta: Json = { promptTokenCount: prompt, candidatesTokenCount: completion, totalTokenCount: prompt + completion };
  const cached = isObject(usage.prompt_tokens_details) ? num(usage.prompt_tokens_details.cached_tokens) : 0;
  const reasoning = isObject(usage.completion_tokens_details) ? num(usage.completion_tokens_details.reasoning_tokens) : 0;
  if (cached) meta.cachedContentTokenCount = cached;
  if (reasoning) meta.thoughtsTokenCount = reasoning;
  return meta;
}

const FINISH_FROM_GEMINI: Record<string, FinishReason> = {
  STOP: 'stop',
  MAX_TOKENS: 'length',
  SAFETY: 'content_filter',
  RECITATION: 'content_filter',
  BLOCKLIST: 'content_filter',
  PROHIBITED_CONTENT: 'content_filter',
  SPII: 'content_filter',
  IMAGE_SAFETY: 'content_filter',
};

function finishFromGemini(reason: unknown, hadCalls: boolean): FinishReason {
  if (hadCalls) return 'tool_calls';
  return FINISH_FROM_GEMINI[String(reason)] ?? 'stop';
}

function finishToGemini(reason: unknown): string {
  switch (reason) {
    case 'length':
      return 'MAX_TOKENS';
    case 'content_filter':
      return 'SAFETY';
    default:
      return 'STOP'; // Gemini reports function calls with STOP
  }
}

/** JSON Schema type names are lowercase in OpenAI tools; Gemini's Schema uses OBJECT/STRING/…. */
function lowerTypes(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(lowerTypes);
  if (!isObject(schema)) return schema;
  const out: Json = {};
  for (const [k, v] of Object.entries(schema)) out[k] = k === 'type' && typeof v === 'string' ? v.toLowerCase() : lowerTypes(v);
  return out;
}

function partsOf(content: unknown): Json[] {
  if (!isObject(content)) return [];
  const parts = content.parts;
  return Array.isArray(parts) ? parts.filter(isObject) : [];
}

function textOfParts(parts: Json[]): string {
  return parts.map((p) => (typeof p.text === 'string' && p.thought !== true ? p.text : '')).join('');
}

/** The model's thought summaries (parts marked `thought: true`). */
function thoughtsOfParts(parts: Json[]): string {
  return parts.map((p) => (typeof p.text === 'string' && p.thought === true ? p.text : '')).join('');
}

/**
 * Thought text a client sent back in a model turn that no Gemini model signed: reasoning another
 * provider gave through the gateway (GLM's, for its preserved thinking). Signed thought parts are
 * Gemini's own and mean nothing to another model.
 */
function unsignedThoughts(parts: Json[]): string {
  return parts.map((p) => (typeof p.text === 'string' && p.thought === true && p.thoughtSignature === undefined ? p.text : '')).join('');
}

/** The signature on the parts of an answer other than its function calls (Gemini 3 signs the last part), or null. */
function textSignature(parts: Json[]): string | null {
  const sig = parts.filter((p) => !isObject(p.functionCall) && isSignature(p.thoughtSignature)).at(-1)?.thoughtSignature;
  return isSignature(sig) ? sig : null;
}

const LEVELS = new Set(['minimal', 'low', 'medium', 'high']);
const invalid = (message: string) => new AppError('validation_failed', message, { details: { param: 'generationConfig.thinkingConfig' } });

/**
 * generationConfig.thinkingConfig (https://ai.google.dev/gemini-api/docs/thinking) as a reasoning
 * ask: a thinkingBudget (0 turns thinking off, -1 lets the model choose), or a thinkingLevel; asking
 * only for the thoughts (includeThoughts) asks for thinking at the medium level. Null: nothing asked.
 */
function geminiReasoningAsk(gc: Json): ReasoningAsk | 'off' | null {
  const tc = gc.thinkingConfig;
  if (tc === undefined || tc === null) return null;
  if (!isObject(tc)) throw invalid('generationConfig.thinkingConfig must be an object');
  if (tc.includeThoughts !== undefined && typeof tc.includeThoughts !== 'boolean') throw invalid('thinkingConfig.includeThoughts must be a boolean');
  const budget = tc.thinkingBudget;
  if (budget !== undefined && budget !== null) {
    if (typeof budget !== 'number' || !Number.isInteger(budget) || budget < -1) throw invalid('thinkingConfig.thinkingBudget must be an integer of at least -1');
    if (budget === 0) return 'off';
    return budget === -1 ? askOf('medium') : { effort: effortOfBudget(budget), budget };
  }
  const level = tc.thinkingLevel;
  if (level !== undefined && level !== null) {
    const l = typeof level === 'string' ? level.toLowerCase() : '';
    if (!LEVELS.has(l)) throw invalid('thinkingConfig.thinkingLevel must be minimal, low, medium or high');
    return askOf(l as ReasoningAsk['effort']);
  }
  return tc.includeThoughts === true ? askOf('medium') : null;
}

/** Whether a Gemini request asked for the model's thoughts in the answer, as Gemini returns them only then. */
export function geminiWantsThoughts(body: Json): boolean {
  const gc = isObject(body.generationConfig) ? body.generationConfig : {};
  return isObject(gc.thinkingConfig) && gc.thinkingConfig.includeThoughts === true;
}

// ---- requests ----------------------------------------------------------------------------------

/** A Gemini generateContent request as an OpenAI chat request. */
export function geminiRequestToOpenAi(body: Json, model: string, stream: boolean): Json {
  const messages: Json[] = [];
  const system = body.systemInstruction ?? body.system_instruction;
  if (system !== undefined) {
    const text = typeof system === 'string' ? system : textOfParts(partsOf(system));
    if (text) messages.push({ role: 'system', content: text });
  }
  const contents = body.contents;
  if (!Array.isArray(contents) || !contents.every(isObject)) {
    throw new AppError('validation_failed', 'contents must be an array of Content objects', { details: { param: 'contents' } });
  }
  const pending: ToolCall[] = [];
  for (const c of contents as Json[]) {
    const parts = partsOf(c);
    if (c.role === 'model') {
      const calls = parts.filter((p) => isObject(p.functionCall)).map((p) => {
        const fc = p.functionCall as Json;
        const call = { id: typeof fc.id === 'string' ? fc.id : newId('call_'), name: String(fc.name ?? ''), arguments: JSON.stringify(fc.args ?? {}) };
        pending.push(call);
        return { id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } };
      });
      const msg: Json = { role: 'assistant', content: textOfParts(parts) || null };
      const thoughts = unsignedThoughts(parts);
      if (thoughts) msg.reasoning_content = thoughts;
      if (calls.length) msg.tool_calls = calls;
      messages.push(msg);
      continue;
    }
    const userParts: Json[] = [];
    for (const p of parts) {
      if (isObject(p.functionResponse)) {
        const fr = p.functionResponse;
        let id = typeof fr.id === 'string' ? fr.id : undefined;
        const at = pending.findIndex((t) => (id ? t.id === id : t.name === fr.name));
        if (at >= 0) id ??= pending.splice(at, 1)[0]!.id;
        messages.push({ role: 'tool', tool_call_id: id ?? newId('call_'), content: JSON.stringify(fr.response ?? {}) });
      } else if (typeof p.text === 'string') {
        userParts.push({ type: 'text', text: p.text });
      } else if (isObject(p.inlineData)) {
        userParts.push({ type: 'image_url', image_url: { url: `data:${String(p.inlineData.mimeType)};base64,${String(p.inlineData.data)}` } });
      } else if (isObject(p.fileData)) {
        userParts.push({ type: 'image_url', image_url: { url: String(p.fileData.fileUri) } });
      }
    }
    if (userParts.length) {
      const onlyText = userParts.every((p) => p.type === 'text');
      messages.push({ role: 'user', content: onlyText ? userParts.map((p) => p.text).join('') : userParts });
    }
  }

  const out: Json = { model, messages };
  const gc = isObject(body.generationConfig) ? body.generationConfig : {};
  if (gc.temperature !== undefined) out.temperature = gc.temperature;
  if (gc.topP !== undefined) out.top_p = gc.topP;
  if (gc.maxOutputTokens !== undefined) out.max_tokens = gc.maxOutputTokens;
  if (Array.isArray(gc.stopSequences)) out.stop = gc.stopSequences;
  if (gc.candidateCount !== undefined) out.n = gc.candidateCount;
  if (gc.seed !== undefined) out.seed = gc.seed;
  if (gc.presencePenalty !== undefined) out.presence_penalty = gc.presencePenalty;
  if (gc.frequencyPenalty !== undefined) out.frequency_penalty = gc.frequencyPenalty;
  Object.assign(out, pivotReasoning(geminiReasoningAsk(gc)));
  if (gc.responseMimeType === 'application/json') {
    const schema = gc.responseJsonSchema ?? gc.responseSchema;
    out.response_format = schema ? { type: 'json_schema', json_schema: { name: 'response', schema: lowerTypes(schema) } } : { type: 'json_object' };
  }

  const decls = (Array.isArray(body.tools) ? body.tools : []).flatMap((t) =>
    isObject(t) && Array.isArray(t.functionDeclarations) ? t.functionDeclarations.filter(isObject) : [],
  ) as Json[];
  if (decls.length) {
    out.tools = decls.map((d) => ({
      type: 'function',
      function: { name: d.name, ...(d.description ? { description: d.description } : {}), parameters: lowerTypes(d.parametersJsonSchema ?? d.parameters ?? { type: 'object', properties: {} }) },
    }));
  }
  const fcc = isObject(body.toolConfig) && isObject(body.toolConfig.functionCallingConfig) ? body.toolConfig.functionCallingConfig : null;
  if (fcc) {
    const names = Array.isArray(fcc.allowedFunctionNames) ? fcc.allowedFunctionNames : [];
    if (fcc.mode === 'NONE') out.tool_choice = 'none';
    else if (fcc.mode === 'ANY') out.tool_choice = names.length === 1 ? { type: 'function', function: { name: names[0] } } : 'required';
    else if (fcc.mode === 'AUTO') out.tool_choice = 'auto';
  }
  if (stream) {
    out.stream = true;
    out.stream_options = { include_usage: true };
  }
  return out;
}

function userPartsOf(content: unknown): Json[] {
  if (typeof content === 'string') return [{ text: content }];
  if (!Array.isArray(content)) return [];
  const parts: Json[] = [];
  for (const p of content) {
    if (!isObject(p)) continue;
    if (p.type === 'text' && typeof p.text === 'string') parts.push({ text: p.text });
    else if (p.type === 'image_url' && isObject(p.image_url) && typeof p.image_url.url === 'string') {
      const data = parseDataUrl(p.image_url.url);
      parts.push(data ? { inlineData: data } : { fileData: { fileUri: p.image_url.url } });
    }
  }
  return parts;
}

/**
 * An OpenAI chat request as a Gemini generateContent request for `upstreamModel` (which bounds the
 * thinking budget, gemini-thinking.ts). A tool call's thought signature, carried in its id, goes back
 * on its functionCall part; the first call of a model turn without one gets Google's stand-in, so
 * Gemini 3 takes history that another model (or a client) wrote.
 */
export function openAiRequestToGemini(body: Json, upstreamModel = ''): Json {
  const messages = messagesOf(body);
  const system: string[] = [];
  const contents: Json[] = [];
  const names = new Map<string, string>();
  const push = (role: 'user' | 'model', parts: Json[]) => {
    const last = contents.at(-1);
    // Consecutive tool results belong in one user turn, answering one model turn's calls.
    if (last && last.role === role && role === 'user' && parts.every((p) => p.functionResponse) && (last.parts as Json[]).every((p) => p.functionResponse)) {
      (last.parts as Json[]).push(...parts);
    } else contents.push({ role, parts });
  };
  messages.forEach((m, i) => {
    if (m.role === 'system' || m.role === 'developer') {
      system.push(contentText(m.content));
    } else if (m.role === 'assistant') {
      const parts: Json[] = [];
      const text = contentText(m.content);
      const calls = Array.isArray(m.tool_calls) ? m.tool_calls.filter(isObject) : [];
      // The signature Gemini put on the answer's text (or on its last, empty, part) goes back on the text.
      const textSig = signatureOfExtra(m, `messages.${i}`);
      if (text || (textSig && !calls.length)) parts.push({ text, ...(textSig ? { thoughtSignature: textSig } : {}) });
      let first = true;
      calls.forEach((tc, j) => {
        const fn = isObject(tc.function) ? tc.function : {};
        const id = String(tc.id);
        const { id: bare, signature } = splitSignature(id);
        names.set(id, String(fn.name)).set(bare, String(fn.name));
        // Parallel calls: Gemini signs the first of a step's calls only, and looks for a signature only there.
        const sig = signatureOfExtra(tc, `messages.${i}.tool_calls.${j}`) ?? signature ?? (first ? SKIP_SIGNATURE : null);
        parts.push({ functionCall: { name: fn.name, args: parseArguments(fn.arguments) }, ...(sig ? { thoughtSignature: sig } : {}) });
        first = false;
      });
      push('model', parts.length ? parts : [{ text: '' }]);
    } else if (m.role === 'tool') {
      const id = String(m.tool_call_id);
      const name = names.get(id) ?? names.get(splitSignature(id).id) ?? String(m.name ?? 'tool');
      push('user', [{ functionResponse: { name, response: toolResultObject(m.content) } }]);
    } else {
      push('user', userPartsOf(m.content));
    }
  });
  const out: Json = { contents };
  if (system.length) out.systemInstruction = { parts: [{ text: system.join('\n') }] };
  const gc: Json = {};
  if (body.temperature !== undefined) gc.temperature = body.temperature;
  if (body.top_p !== undefined) gc.topP = body.top_p;
  const max = body.max_completion_tokens ?? body.max_tokens;
  if (max !== undefined) gc.maxOutputTokens = max;
  if (body.stop !== undefined) gc.stopSequences = Array.isArray(body.stop) ? body.stop : [body.stop];
  if (body.n !== undefined) gc.candidateCount = body.n;
  if (body.seed !== undefined) gc.seed = body.seed;
  if (body.presence_penalty !== undefined) gc.presencePenalty = body.presence_penalty;
  if (body.frequency_penalty !== undefined) gc.frequencyPenalty = body.frequency_penalty;
  if (isObject(body.response_format)) {
    if (body.response_format.type === 'json_object') gc.responseMimeType = 'application/json';
    if (body.response_format.type === 'json_schema' && isObject(body.response_format.json_schema)) {
      gc.responseMimeType = 'application/json';
      gc.responseJsonSchema = body.response_format.json_schema.schema;
    }
  }
  const ask = reasoningAsk(body);
  // An OpenAI client asking for reasoning gets it back (as reasoning_content): Gemini sends thoughts only when asked.
  if (ask) gc.thinkingConfig = thinkingConfigFor(upstreamModel, ask);
  if (Object.keys(gc).length) out.generationConfig = gc;
  const tools = Array.isArray(body.tools) ? body.tools.filter((t) => isObject(t) && isObject(t.function)) : [];
  if (tools.length) {
    out.tools = [{
      functionDeclarations: tools.map((t) => {
        const fn = (t as Json).function as Json;
        return { name: fn.name, ...(fn.description ? { description: fn.description } : {}), ...(fn.parameters ? { parametersJsonSchema: fn.parameters } : {}) };
      }),
    }];
  }
  const tc = body.tool_choice;
  if (tc === 'none') out.toolConfig = { functionCallingConfig: { mode: 'NONE' } };
  else if (tc === 'required') out.toolConfig = { functionCallingConfig: { mode: 'ANY' } };
  else if (tc === 'auto') out.toolConfig = { functionCallingConfig: { mode: 'AUTO' } };
  else if (isObject(tc) && isObject(tc.function)) out.toolConfig = { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: [tc.function.name] } };
  return out;
}

// ---- responses ---------------------------------------------------------------------------------

/**
 * A functionCall part as an OpenAI tool call: Gemini's id (or a new one) carrying the part's thought
 * signature, which also goes in `extra_content` as Google's OpenAI-compatible endpoint gives it.
 */
function toolCallOf(part: Json): Json {
  const fc = part.functionCall as Json;
  const sig = part.thoughtSignature;
  const call: Json = { id: withSignature(typeof fc.id === 'string' && fc.id ? fc.id : newId('call_'), sig), type: 'function', function: { name: fc.name, arguments: JSON.stringify(fc.args ?? {}) } };
  if (isSignature(sig)) call.extra_content = extraContent(sig);
  return call;
}

/** A Gemini generateContent response as an OpenAI chat completion. */
export function geminiResponseToOpenAi(res: Json, model: string): Json {
  const candidates = Array.isArray(res.candidates) ? res.candidates.filter(isObject) : [];
  const choices = candidates.map((cand, i) => {
    const parts = partsOf(cand.content);
    const calls = parts.filter((p) => isObject(p.functionCall)).map(toolCallOf);
    const text = textOfParts(parts);
    const message: Json = { role: 'assistant', content: text || (calls.length ? null : ''), refusal: null };
    const thoughts = thoughtsOfParts(parts);
    if (thoughts) message.reasoning_content = thoughts;
    if (calls.length) message.tool_calls = calls;
    const sig = textSignature(parts);
    if (sig) message.extra_content = extraContent(sig);
    return { index: typeof cand.index === 'number' ? cand.index : i, message, logprobs: null, finish_reason: finishFromGemini(cand.finishReason, calls.length > 0) };
  });
  const usage = geminiUsage(res.usageMetadata);
  return {
    id: typeof res.responseId === 'string' ? `chatcmpl-${res.responseId}` : newId('chatcmpl-'),
    object: 'chat.completion',
    created: nowSeconds(),
    model,
    choices,
    ...(usage ? { usage: openAiUsageOf(usage) } : {}),
  };
}

/**
 * A provider's tool call arguments as Gemini's `args` object. Text that is not JSON (a model cut off
 * mid-call) is the provider's fault: a 502, never the caller's 400 that parseArguments raises for
 * arguments a client sent.
 */
function upstreamArgs(args: unknown): Json {
  try {
    return parseArguments(args);
  } catch {
    throw new AppError('bad_gateway', 'the provider answered with function call arguments that are not valid JSON', { details: { code: 'upstream_invalid' } });
  }
}

function modelParts(message: Json, thoughts: boolean): Json[] {
  const parts: Json[] = [];
  const reasoning = thoughts ? reasoningText(message) : '';
  if (reasoning) parts.push({ text: reasoning, thought: true });
  const text = contentText(message.content);
  if (text) parts.push({ text });
  for (const tc of Array.isArray(message.tool_calls) ? message.tool_calls.filter(isObject) : []) {
    const fn = isObject(tc.function) ? tc.function : {};
    parts.push({ functionCall: { id: tc.id, name: fn.name, args: upstreamArgs(fn.arguments) } });
  }
  return parts.length ? parts : [{ text: '' }];
}

/** An OpenAI chat completion as a Gemini generateContent response; reasoning becomes a thought part when `thoughts` were asked for. */
export function openAiResponseToGemini(res: Json, model: string, thoughts = false): Json {
  const choices = Array.isArray(res.choices) ? res.choices.filter(isObject) : [];
  const out: Json = {
    candidates: choices.map((ch, i) => ({
      content: { role: 'model', parts: modelParts(isObject(ch.message) ? ch.message : {}, thoughts) },
      finishReason: finishToGemini(ch.finish_reason),
      index: typeof ch.index === 'number' ? ch.index : i,
    })),
    modelVersion: model,
    responseId: typeof res.id === 'string' ? res.id : newId(''),
  };
  const meta = usageMetadataOf(res.usage);
  if (meta) out.usageMetadata = meta;
  return out;
}

// ---- streams -----------------------------------------------------------------------------------

/** Gemini SSE frames (alt=sse) as OpenAI chunks; usage goes out as a final choices-less chunk. */
export function geminiStreamToOpenAi(model: string): StreamDecoder {
  const id = newId('chatcmpl-');
  const created = nowSeconds();
  const roleSent = new Set<number>();
  const toolIndex = new Map<number, number>();
  let usage: Usage | null = null;
  return {
    push(data) {
      const frame = JSON.parse(data) as Json;
      if (isObject(frame.error)) throw new AppError('bad_gateway', `upstream stream failed: ${String(frame.error.message ?? 'error')}`);
      const out: Json[] = [];
      const candidates = Array.isArray(frame.candidates) ? frame.candidates.filter(isObject) : [];
      for (const cand of candidates) {
        const index = typeof cand.index === 'number' ? cand.index : 0;
        const parts = partsOf(cand.content);
        const delta: Json = {};
        if (!roleSent.has(index)) {
          roleSent.add(index);
          delta.role = 'assistant';
        }
        const thoughts = thoughtsOfParts(parts);
        if (thoughts) delta.reasoning_content = thoughts;
        const text = textOfParts(parts);
        if (text) delta.content = text;
        // Google's OpenAI-compatible endpoint streams a text signature the same way, on the delta.
        const sig = textSignature(parts);
        if (sig) delta.extra_content = extraContent(sig);
        const calls = parts.filter((p) => isObject(p.functionCall)).map((p) => {
          const n = toolIndex.get(index) ?? 0;
          toolIndex.set(index, n + 1);
          return { index: n, ...toolCallOf(p) };
        });
        if (calls.length) delta.tool_calls = calls;
        if (Object.keys(delta).length) out.push(chunkOf(id, created, model, [{ index, delta, logprobs: null, finish_reason: null }]));
        if (cand.finishReason) {
          out.push(chunkOf(id, created, model, [{ index, delta: {}, logprobs: null, finish_reason: finishFromGemini(cand.finishReason, toolIndex.has(index)) }]));
        }
      }
      usage = geminiUsage(frame.usageMetadata) ?? usage;
      return out;
    },
    end() {
      return usage ? [chunkOf(id, created, model, [], openAiUsageOf(usage))] : [];
    },
  };
}

/**
 * OpenAI chunks as Gemini frames. Text (and reasoning, as thought parts, when the client asked for
 * thoughts) goes out as it comes; tool calls (whose arguments OpenAI
 * streams in pieces) and the finish reason go out in one last frame with usageMetadata, the way
 * Gemini itself ends a stream.
 */
export function openAiStreamToGemini(model: string, thoughts = false) {
  const responseId = newId('');
  const calls = new Map<number, { id: string; name: string; args: string }>();
  let finish: unknown = null;
  let usage: unknown = null;
  return {
    chunk(c: Json): Json[] {
      if (isObject(c.usage)) usage = c.usage;
      const frames: Json[] = [];
      for (const ch of Array.isArray(c.choices) ? c.choices.filter(isObject) : []) {
        const delta = isObject(ch.delta) ? ch.delta : {};
        const reasoning = thoughts ? reasoningText(delta) : '';
        if (reasoning) frames.push({ candidates: [{ content: { role: 'model', parts: [{ text: reasoning, thought: true }] }, index: 0 }], modelVersion: model, responseId });
        if (typeof delta.content === 'string' && delta.content) {
          frames.push({ candidates: [{ content: { role: 'model', parts: [{ text: delta.content }] }, index: 0 }], modelVersion: model, responseId });
        }
        for (const tc of Array.isArray(delta.tool_calls) ? delta.tool_calls.filter(isObject) : []) {
          const i = typeof tc.index === 'number' ? tc.index : 0;
          const fn = isObject(tc.function) ? tc.function : {};
          const cur = calls.get(i) ?? { id: '', name: '', args: '' };
          if (typeof tc.id === 'string') cur.id = tc.id;
          if (typeof fn.name === 'string') cur.name += fn.name;
          if (typeof fn.arguments === 'string') cur.args += fn.arguments;
          calls.set(i, cur);
        }
        if (ch.finish_reason) finish = ch.finish_reason;
      }
      return frames;
    },
    end(): Json[] {
      const parts = [...calls.values()].map((t) => ({ functionCall: { ...(t.id ? { id: t.id } : {}), name: t.name, args: upstreamArgs(t.args) } }));
      const frame: Json = {
        candidates: [{ content: { role: 'model', parts: parts.length ? parts : [{ text: '' }] }, finishReason: finishToGemini(finish), index: 0 }],
        modelVersion: model,
        responseId,
      };
      const meta = usageMetadataOf(usage);
      if (meta) frame.usageMetadata = meta;
      return [frame];
    },
  };
}
