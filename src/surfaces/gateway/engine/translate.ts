// For one (ingress family, provider, operation): the upstream request body, and how to turn the
// upstream's answer back into the client's shape. Same family → pass-through (only the model name
// changes, plus include_usage on OpenAI streams); different families → through the OpenAI pivot.
// OpenAI's completions and Responses API pass through to providers that have them and go through
// the chat pivot to every other provider.
import { AppError } from '../../../core/errors/errors.ts';
import { anthropicRequestToOpenAi, anthropicWantsThinking, openAiResponseToAnthropic, withoutForeignThinking } from '../providers/anthropic/anthropic-ingress.ts';
import { anthropicResponseToOpenAi, anthropicStreamToOpenAi, anthropicUsage, openAiRequestToAnthropic } from '../providers/anthropic/anthropic-messages.ts';
import {
  geminiRequestToOpenAi, geminiResponseToOpenAi, geminiStreamToOpenAi, geminiUsage, geminiWantsThoughts, openAiRequestToGemini, openAiResponseToGemini,
} from '../providers/gemini/gemini-chat.ts';
import { withoutSignatures } from '../providers/gemini/thought-signature.ts';
import {
  geminiEmbeddingsToOpenAi, geminiEmbedRequestToOpenAi, openAiEmbeddingsToGemini, openAiEmbedRequestToGemini, type GeminiEmbedMethod,
} from '../providers/gemini/gemini-embeddings.ts';
import { chatToTextCompletion, completionsRequestToChat } from '../providers/openai-base/completions-chat.ts';
import { openAiUsage, transcriptUsage, withModel } from '../providers/openai-base/openai-base.ts';
import { chatToResponse, responsesRequestToChat } from '../providers/openai-base/responses-chat.ts';
import type { StreamDecoder } from '../providers/pivot.ts';
import { reasoningAsk, withoutHistoryReasoning, withReasoningContent } from '../providers/reasoning.ts';
import { isObject, type Json, type Operation, type ProviderAdapter, type Usage, type WireFamily } from '../providers/types.ts';
import type { IngressFormat } from '../ingress/wire-format.ts';

/** The wire family a client speaks (Azure and GLM are OpenAI-shaped). */
export type IngressFamily = WireFamily;

export function familyOf(ingress: IngressFormat): IngressFamily {
  return ingress === 'gemini' || ingress === 'anthropic' ? ingress : 'openai';
}

export interface TranslateInput {
  family: IngressFamily;
  op: Operation;
  /** Public model name (what translated answers report). */
  model: string;
  body: Json;
  stream: boolean;
  geminiMethod?: string;
  /** Estimated prompt tokens (Gemini embeddings report none). */
  estInput: number;
}

export interface Plan {
  body: Json;
  /** What the upstream is asked for when it differs from the client's operation (chat, for translated ones). */
  upstreamOp?: Operation;
  passthrough: boolean;
  /** OpenAI pass-through stream: the usage chunk was requested by us, not the client. */
  stripUsage: boolean;
  /** Non-stream: the upstream's JSON to the client's JSON, with usage. */
  response(json: Json): { out: Json | null; usage: Usage | null };
  /** Translated streams: upstream events → pivot chunks. */
  decoder(): StreamDecoder;
  /** A non-streamed answer that need not be JSON (audio, text transcripts): passed on with the
   *  upstream's Content-Type, and looked into for usage only when it is JSON. */
  raw?: boolean;
}

export function nativeUsage(family: WireFamily, json: Json): Usage | null {
  if (family === 'gemini') return geminiUsage(json.usageMetadata);
  if (family === 'anthropic') return anthropicUsage(json.usage);
  return openAiUsage(json.usage);
}

export function clientAskedUsage(body: Json): boolean {
  return isObject(body.stream_options) && body.stream_options.include_usage === true;
}

/** An OpenAI-shaped completion or chunk with its choices' `message`/`delta` reasoning named `reasoning_content`. */
function reasoningNamed(c: Json, key: 'message' | 'delta'): Json {
  if (!Array.isArray(c.choices) || !c.choices.some((ch) => isObject(ch) && isObject(ch[key]) && typeof ch[key].reasoning === 'string')) return c;
  return { ...c, choices: c.choices.map((ch) => (isObject(ch) && isObject(ch[key]) ? { ...ch, [key]: withReasoningContent(ch[key]) } : ch)) };
}

/** OpenAI-family upstream events (data: {...} / data: [DONE]) as pivot chunks. */
function openAiDecoder(): StreamDecoder {
  return {
    push(data) {
      if (data === '[DONE]') return [];
      const c = JSON.parse(data) as Json;
      if (isObject(c.error)) throw new AppError('bad_gateway', `upstream stream failed: ${String(c.error.message ?? 'error')}`);
      return [reasoningNamed(c, 'delta')];
    },
    end: () => [],
  };
}

function decoderFor(family: WireFamily, model: string): StreamDecoder {
  if (family === 'gemini') return geminiStreamToOpenAi(model);
  if (family === 'anthropic') return anthropicStreamToOpenAi(model);
  return openAiDecoder();
}

/** Upstream non-stream chat JSON → pivot completion. */
function chatToPivot(family: WireFamily, json: Json, model: string): Json {
  if (family === 'gemini') return geminiResponseToOpenAi(json, model);
  if (family === 'anthropic') return anthropicResponseToOpenAi(json, model);
  return reasoningNamed(json, 'message');
}

/** A pivot request's reasoning as an effort alone (validated). */
function withoutBudget(pivot: Json): Json {
  reasoningAsk(pivot);
  const { thinking: _t, ...rest } = pivot;
  return rest;
}

/** A pivot (OpenAI chat) request in the provider family's shape. */
function pivotToUpstream(pivot: Json, adapter: ProviderAdapter, upstreamModel: string, stream: boolean): Json {
  if (adapter.family === 'gemini') return openAiRequestToGemini(pivot, upstreamModel);
  // Gemini's thought signatures ride in tool call ids (thought-signature.ts); other providers get the bare ids.
  pivot = withoutSignatures(pivot);
  if (adapter.family === 'anthropic') return openAiRequestToAnthropic(pivot, upstreamModel, stream);
  // OpenAI-shaped providers take the effort (or their own switch); the exact budget (LiteLLM's `thinking`) is not theirs.
  let rest = adapter.reasoningControls ? adapter.reasoningControls(pivot) : withoutBudget(pivot);
  // Earlier reasoning from another format's history goes only to a provider that takes it back (GLM).
  rest = adapter.preservedThinking ? adapter.preservedThinking(rest) : withoutHistoryReasoning(rest);
  if (stream && !adapter.streamUsageOption) delete rest.stream_options;
  return rest;
}

/** Operations only OpenAI-shaped providers have, passed through to those that offer them. */
const OPENAI_ONLY: ReadonlySet<Operation> = new Set(['moderations', 'images', 'transcriptions', 'translations', 'speech']);
const AUDIO: ReadonlySet<Operation> = new Set(['transcriptions', 'translations', 'speech']);

const unsupported = (what: string) => new AppError('validation_failed', what, { details: { code: 'unsupported_operation' } });

export function plan(t: TranslateInput, adapter: ProviderAdapter, upstreamModel: string): Plan {
  const pf = adapter.family;
  const same = (t.family as WireFamily) === pf;
  const noStream = () => {
    throw new Error('not a streaming plan');
  };

  if (t.op === 'chat') {
    if (same) {
      // Gemini names the model in the URL; the others in the body.
      // OpenAI caps tool call ids at 40 characters: a conversation begun with a Gemini model loses the signatures it carried.
      let body = t.family === 'gemini' ? t.body : withModel(t.family === 'openai' ? withoutSignatures(t.body) : t.family === 'anthropic' ? withoutForeignThinking(t.body) : t.body, upstreamModel);
      // A provider with its own reasoning switch (GLM) gets the client's reasoning fields in its terms.
      if (adapter.reasoningControls) body = adapter.reasoningControls(body);
      const strip = t.family === 'openai' && t.stream && adapter.streamUsageOption && !clientAskedUsage(t.body);
      // Ask for usage on every OpenAI-shaped stream, so streamed requests are accounted like others.
      if (strip) body = { ...body, stream_options: { ...(isObject(body.stream_options) ? body.stream_options : {}), include_usage: true } };
      return {
        body,
        passthrough: true,
        stripUsage: strip,
        response: (json) => ({ out: null, usage: nativeUsage(pf, json) }),
        decoder: () => decoderFor(pf, t.model),
      };
    }
    const pivot = t.family === 'gemini'
      ? geminiRequestToOpenAi(t.body, upstreamModel, t.stream)
      : t.family === 'anthropic' ? anthropicRequestToOpenAi(t.body, upstreamModel, t.stream) : withModel(t.body, upstreamModel);
    return {
      body: pivotToUpstream(pivot, adapter, upstreamModel, t.stream),
      passthrough: false,
      stripUsage: false,
      response(json) {
        const p = chatToPivot(pf, json, t.model);
        const usage = openAiUsage(p.usage);
        const out = t.family === 'gemini' ? openAiResponseToGemini(p, t.model, geminiWantsThoughts(t.body)) : t.family === 'anthropic' ? openAiResponseToAnthropic(p, t.model, anthropicWantsThinking(t.body)) : p;
        return { out, usage };
      },
      decoder: () => decoderFor(pf, t.model),
    };
  }

  if (t.op === 'embeddings') {
    const method = (t.geminiMethod ?? 'batchEmbedContents') as GeminiEmbedMethod;
    if (same && pf === 'openai') {
      return { body: withModel(t.body, upstreamModel), passthrough: true, stripUsage: false, response: (json) => ({ out: null, usage: openAiUsage(json.usage) }), decoder: noStream };
    }
    if (same) {
      // Gemini → Gemini: always batchEmbedContents upstream; one embedContent answer is its first vector.
      const name = `models/${upstreamModel.replace(/^models\//, '')}`;
      const requests = method === 'embedContent' ? [t.body] : Array.isArray(t.body.requests) ? t.body.requests : [];
      return {
        body: { requests: requests.map((r) => ({ ...(isObject(r) ? r : {}), model: name })) },
        passthrough: false,
        stripUsage: false,
        response: (json) => {
          const list = Array.isArray(json.embeddings) ? json.embeddings : [];
          return { out: method === 'embedContent' ? { embedding: list[0] ?? { values: [] } } : json, usage: { input: t.estInput, output: 0, cached: 0, reasoning: 0 } };
        },
        decoder: noStream,
      };
    }
    if (t.family === 'gemini') {
      return {
        body: geminiEmbedRequestToOpenAi(method, t.body, upstreamModel),
        passthrough: false,
        stripUsage: false,
        response: (json) => ({ out: openAiEmbeddingsToGemini(method, json), usage: openAiUsage(json.usage) }),
        decoder: noStream,
      };
    }
    const base64 = t.body.encoding_format === 'base64';
    return {
      body: openAiEmbedRequestToGemini(t.body, upstreamModel),
      passthrough: false,
      stripUsage: false,
      response: (json) => ({ out: geminiEmbeddingsToOpenAi(json, t.model, base64, t.estInput), usage: { input: t.estInput, output: 0, cached: 0, reasoning: 0 } }),
      decoder: noStream,
    };
  }

  if (t.op === 'count_tokens') {
    if (!same) throw unsupported('counting tokens needs a model served in the same family (Gemini or Anthropic)');
    return { body: t.family === 'anthropic' ? withModel(t.body, upstreamModel) : t.body, passthrough: true, stripUsage: false, response: () => ({ out: null, usage: null }), decoder: noStream };
  }

  if (OPENAI_ONLY.has(t.op)) {
    // OpenAI-family operations with no counterpart elsewhere: to a provider that has them, unchanged
    // but for the model (canServe keeps the others out). Images and audio report token usage
    // (gpt-image-1, gpt-4o-transcribe, gpt-4o-mini-tts) or none (dall-e, whisper-1, tts-1).
    if (!same || !adapter.operations.has(t.op)) throw unsupported(`${t.op} needs a model served by an OpenAI-shaped provider that offers it`);
    const usageOf = t.op === 'transcriptions' || t.op === 'translations' ? transcriptUsage : (json: Json) => openAiUsage(json.usage);
    return { body: withModel(t.body, upstreamModel), passthrough: true, stripUsage: false, response: (json) => ({ out: null, usage: usageOf(json) }), decoder: noStream, raw: AUDIO.has(t.op) };
  }

  // completions and responses are OpenAI operations; Gemini's and Anthropic's ingress never ask for them.
  if (t.family !== 'openai') throw unsupported(`${t.op} is not an operation of the ${t.family} API`);
  if (!same || !adapter.operations.has(t.op)) {
    // Through chat. OpenAI-shaped upstreams are asked for the usage chunk, which the client encoder
    // folds into response.completed (or drops, for completions clients that did not ask).
    const askUsage = pf === 'openai' && adapter.streamUsageOption;
    const pivot = t.op === 'responses'
      ? responsesRequestToChat(t.body, upstreamModel, t.stream, askUsage)
      : completionsRequestToChat(t.body, upstreamModel, t.stream, askUsage);
    return {
      body: pivotToUpstream(pivot, adapter, upstreamModel, t.stream),
      upstreamOp: 'chat',
      passthrough: false,
      stripUsage: false,
      response(json) {
        const p = chatToPivot(pf, json, t.model);
        return { out: t.op === 'responses' ? chatToResponse(p, t.model, t.body) : chatToTextCompletion(p, t.model), usage: openAiUsage(p.usage) };
      },
      decoder: () => decoderFor(pf, t.model),
    };
  }
  const strip = t.stream && t.op === 'completions' && adapter.streamUsageOption && !clientAskedUsage(t.body);
  const body = withModel(t.body, upstreamModel);
  if (strip) body.stream_options = { ...(isObject(t.body.stream_options) ? t.body.stream_options : {}), include_usage: true };
  return {
    body,
    passthrough: true,
    stripUsage: strip,
    response: (json) => ({ out: null, usage: openAiUsage(json.usage) }),
    decoder: noStream,
  };
}

/** Whether a provider can serve this ingress family's operation at all. */
export function canServe(family: IngressFamily, op: Operation, adapter: ProviderAdapter): boolean {
  if (op === 'chat') return adapter.operations.has('chat');
  if (op === 'embeddings') return adapter.operations.has('embeddings');
  if (op === 'count_tokens') return family !== 'openai' && adapter.family === family;
  if (OPENAI_ONLY.has(op)) return family === 'openai' && adapter.operations.has(op);
  // completions and responses: natively, or through chat on any provider.
  return family === 'openai' && (adapter.operations.has(op) || adapter.operations.has('chat'));
}
