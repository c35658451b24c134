// A local HTTP server that speaks the wire formats of OpenAI (and Azure, GLM, any OpenAI-compatible
// server), Gemini and Anthropic, for the gateway's tests and benchmark. Its behaviour is chosen by
// the upstream model name the gateway sends:
//   fail-<status>         answer that status        rate-429   answer 429 with Retry-After: 1 (retry-<s>: s)
//                         (401/403 echo the credential they were sent, as a careless provider might)
//   first-<status>        answer that status to the first request for this model name only
//   slow-<ms>             wait before the headers     tick-<ms>  wait between stream events
//   pertoken-<ms>         answer max_tokens words (max_completion_tokens; else 16), reported as the
//                         completion tokens, after <ms> for each before the headers
//   ttft-<ms>             a stream's headers at once, its first event <ms> later
//   chunks-<n>            stream n content events     cut-<n>    destroy the socket after n events
//                         (a JSON answer: after half its bytes)
//   hang                  never answer (the request is remembered until the client aborts)
//   big-<mb>              stream about <mb> MB of content
//   cached-<n>            report n of the prompt tokens as read from the provider's prompt cache
//   badargs               a tool call whose arguments stop mid-JSON (a model cut off mid-call)
//   think                 a reasoning model: its thoughts (THOUGHTS, one token a word) come before the
//                         answer — OpenAI shape: `reasoning_content` (`reasoning` with think-field) and
//                         completion_tokens_details.reasoning_tokens; Gemini: `thought: true` parts when
//                         thinkingConfig.includeThoughts is set, thoughtsTokenCount always; Anthropic:
//                         a signed thinking block (thinking_delta, signature_delta) when thinking is enabled;
//                         GLM (paths under /api/paas): unless `thinking.type` is "disabled" (Zhipu's
//                         default is on); its chat refuses (400, Zhipu's code 1214) a `reasoning_effort`,
//                         which GLM-4.5 to 4.7 do not document, and a `thinking` that is not GLM's switch
//   gemini-3              (Gemini) as Gemini 3 does with thought signatures: every functionCall part and
//                         the last text part carry a `thoughtSignature` (base64 with + / and =, minted
//                         per answer and remembered in `thoughtSignatures`); a request whose current turn
//                         (the contents after the last user text) replays a model step whose first
//                         functionCall has no signature is refused 400 INVALID_ARGUMENT with Gemini's
//                         message, and one with a signature it never minted (but Google's stand-ins)
//                         with "Corrupted thought signature."
// Every request is recorded (path, headers, body) for assertions.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Json | null;
}

export interface LlmUpstream {
  url: string;
  requests: RecordedRequest[];
  /** Requests whose client went away before the answer finished. */
  aborted: string[];
  server: Server;
  /** Thought signatures a `gemini-3` model handed out. */
  thoughtSignatures: Set<string>;
  close(): Promise<void>;
}

/** What Google documents as stand-ins for a signature history from elsewhere lacks (thought-signatures FAQ). */
const STAND_IN_SIGNATURES = new Set(['skip_thought_signature_validator', 'context_engineering_is_the_way_to_go']);

/**
 * Why Gemini 3 refuses this request's replayed function calls, or null. The current turn begins
 * after the last user content with text (function responses do not start one); each model step in
 * it needs a signature on its first functionCall. A signature anywhere must be one Gemini minted.
 */
function signatureRefusal(body: Json, minted: Set<string>): string | null {
  const contents: Json[] = Array.isArray(body.contents) ? body.contents : [];
  let turn = 0;
  contents.forEach((c, i) => {
    if (c.role === 'user' && (c.parts ?? []).some((p: Json) => typeof p.text === 'string')) turn = i;
  });
  for (const [i, c] of contents.entries()) {
    const parts: Json[] = c.parts ?? [];
    for (const p of parts) {
      if (p.thoughtSignature !== undefined && !minted.has(p.thoughtSignature) && !STAND_IN_SIGNATURES.has(p.thoughtSignature)) return 'Corrupted thought signature.';
    }
    const first = parts.find((p) => p.functionCall);
    if (i > turn && c.role === 'model' && first && first.thoughtSignature === undefined) {
      return `Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call \`default_api:${String(first.functionCall.name)}\` , position ${i + 1}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.`;
    }
  }
  return null;
}

/**
 * Why Zhipu's chat API refuses this request's reasoning controls, or null: GLM takes
 * `thinking: {type: "enabled" | "disabled"}` (https://docs.bigmodel.cn/cn/guide/capabilities/thinking-mode);
 * GLM-4.5 to 4.7 document no `reasoning_effort`, and this mock refuses it so that a request carrying one shows.
 */
function glmRefusal(body: Json): string | null {
  if (body.reasoning_effort !== undefined) return 'reasoning_effort is not a parameter of this API';
  const t = body.thinking;
  if (t === undefined) return null;
  if (typeof t !== 'object' || t === null || Array.isArray(t) || !['enabled', 'disabled'].includes(t.type)) return 'thinking.type must be enabled or disabled';
  if (t.clear_thinking !== undefined && typeof t.clear_thinking !== 'boolean') return 'thinking.clear_thinking must be a boolean';
  return null;
}

/** What a `think` model thinks, in the pieces it streams. */
export const THOUGHTS = ['Let ', 'me ', 'think ', 'it ', 'over. '];
export const THOUGHT_SIGNATURE = 'sig-mock-1';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const opt = (model: string, name: string) => {
  const m = new RegExp(`(?:^|[^a-z])${name}-(\\d+)`).exec(model);
  return m ? Number(m[1]) : null;
};

/** The last user text in any family's request shape. */
function lastUserText(body: Json): string {
  const msgs = body.messages ?? body.contents ?? [];
  for (let i = msgs.length - 1; i >= 0; i--) {
    const m = msgs[i];
    const c = m.content ?? m.parts;
    if (typeof c === 'string') return c;
    if (Array.isArray(c)) {
      const t = c.map((p: Json) => p.text ?? '').join('');
      if (t) return t;
    }
  }
  if (typeof body.input === 'string') return body.input;
  if (typeof body.prompt === 'string') return body.prompt;
  return '';
}

function promptTokens(body: Json): number {
  return Math.max(1, Math.ceil(JSON.stringify(body.messages ?? body.contents ?? body.input ?? body.prompt ?? '').length / 8));
}

/** A tool result at the end of the conversation, in any family's shape, or null. */
function toolResult(body: Json): string | null {
  const last = (body.messages ?? body.contents ?? []).at(-1);
  if (!last) return null;
  if (last.role === 'tool') return String(last.content);
  const parts = last.parts ?? (Array.isArray(last.content) ? last.content : []);
  for (const p of parts) {
    if (p.functionResponse) return JSON.stringify(p.functionResponse.response);
    if (p.type === 'tool_result') return typeof p.content === 'string' ? p.content : JSON.stringify(p.content);
  }
  return null;
}

const wantsTool = (body: Json) => Array.isArray(body.tools) && body.tools.length > 0 && toolResult(body) === null;

/** How many words `pertoken-<ms>` answers with. */
const wanted = (body: Json) => Number(body.max_tokens ?? body.max_completion_tokens ?? 16);

function words(body: Json, model: string): string[] {
  const n = opt(model, 'chunks') ?? (opt(model, 'pertoken') !== null ? wanted(body) : null);
  const big = opt(model, 'big');
  if (big !== null) return Array.from({ length: big * 16 }, () => 'x'.repeat(64 * 1024));
  if (n !== null) return Array.from({ length: n }, (_, i) => `w${i} `);
  const tr = toolResult(body);
  const text = tr !== null ? `tool said: ${tr}` : `echo: ${lastUserText(body)}`;
  return text.match(/\S+\s*/g) ?? [text];
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startLlmUpstream(opts: { port?: number; record?: boolean } = {}): Promise<LlmUpstream> {
  const requests: RecordedRequest[] = [];
  const aborted: string[] = [];
  const thoughtSignatures = new Set<string>();
  /** A signature as Gemini's look: opaque base64 of a few hundred bytes, here with + and / up front and = padding. */
  const mint = (what: string) => {
    const sig = Buffer.concat([Buffer.from([0xfb, 0xef, 0xff]), Buffer.from(`mock-thought:${what}:`), randomBytes(301)]).toString('base64');
    thoughtSignatures.add(sig);
    return sig;
  };
  const seen = new Set<string>();

  const server = createServer(async (req, res) => {
    const raw = await readBody(req);
    let body: Json | null = null;
    try {
      body = raw ? JSON.parse(raw) : null;
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"message":"bad json"}}');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    if (opts.record !== false) requests.push({ method: req.method ?? '', path: url.pathname + url.search, headers: req.headers, body });
    const b = body ?? {};
    const gemini = /\/models\/([^/:]+):(\w+)$/.exec(url.pathname);
    const azure = /\/openai\/deployments\/([^/]+)\//.exec(url.pathname);
    const model = decodeURIComponent(gemini?.[1] ?? azure?.[1] ?? String(b.model ?? ''));
    let done = false;
    res.on('close', () => {
      if (!done) aborted.push(model);
    });

    const first = !seen.has(model);
    seen.add(model);
    if (model.includes('hang')) return; // the client's abort ends it
    const slow = opt(model, 'slow');
    if (slow) await sleep(slow);
    const perToken = opt(model, 'pertoken');
    if (perToken) await sleep(perToken * wanted(b));
    const status = opt(model, 'fail') ?? (model.includes('rate-429') ? 429 : null) ?? (first ? opt(model, 'first') : null);
    if (status) {
      done = true;
      const h = req.headers;
      const detail = status === 401 || status === 403 ? `: key ${String(h.authorization ?? h['x-api-key'] ?? h['x-goog-api-key'] ?? h['api-key'] ?? '')} refused` : '';
      if (gemini) res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: status, message: `mock ${status}${detail}`, status: 'UNAVAILABLE' } }));
      else res.writeHead(status, { 'content-type': 'application/json', ...(status === 429 ? { 'retry-after': String(opt(model, 'retry') ?? 1) } : {}) })
        .end(JSON.stringify({ error: { message: `mock ${status}${detail}`, type: status === 429 ? 'rate_limit_error' : 'server_error' } }));
      return;
    }
    const tick = opt(model, 'tick') ?? 0;
    const cut = opt(model, 'cut');
    const pieces = words(b, model);
    const out = pieces.join('');
    const pt = promptTokens(b);
    const ct = pieces.length;
    const cachedTokens = Math.min(opt(model, 'cached') ?? 0, pt);
    const think = model.includes('think');
    const thought = THOUGHTS.join('');
    const rt = THOUGHTS.length;

    const stream = async (events: string[], contentType = 'text/event-stream') => {
      res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-cache' });
      const ttft = opt(model, 'ttft');
      if (ttft) {
        res.flushHeaders();
        await sleep(ttft);
      }
      let n = 0;
      for (const e of events) {
        if (res.destroyed) return;
        if (cut !== null && n === cut) {
          await new Promise((r) => res.write('', () => setTimeout(r, 20))); // let what was written reach the client
          res.destroy();
          return;
        }
        if (!res.write(e)) await new Promise((r) => res.once('drain', r));
        n++;
        if (tick) await sleep(tick);
      }
      done = true;
      res.end();
    };
    const json = (j: Json) => {
      const text = Buffer.from(JSON.stringify(j));
      if (cut !== null) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': text.length });
        res.write(text.subarray(0, text.length >> 1), () => setTimeout(() => res.destroy(), 20));
        return;
      }
      done = true;
      res.writeHead(200, { 'content-type': 'application/json' }).end(text);
    };

    // ---- Gemini ----
    if (gemini) {
      const method = gemini[2];
      const thoughtParts = think && b.generationConfig?.thinkingConfig?.includeThoughts === true;
      const usageMetadata = {
        promptTokenCount: pt, candidatesTokenCount: ct, totalTokenCount: pt + ct + (think ? rt : 0),
        ...(cachedTokens ? { cachedContentTokenCount: cachedTokens } : {}), ...(think ? { thoughtsTokenCount: rt } : {}),
      };
      if (method === 'countTokens') return json({ totalTokens: pt });
      if (method === 'batchEmbedContents') return json({ embeddings: (b.requests ?? []).map((_: unknown, i: number) => ({ values: [i, 0.5, -1] })) });
      const signs = model.includes('gemini-3');
      if (signs) {
        const refusal = signatureRefusal(b, thoughtSignatures);
        if (refusal) {
          done = true;
          res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 400, message: refusal, status: 'INVALID_ARGUMENT' } }));
          return;
        }
      }
      const signed = (part: Json, what: string) => (signs ? { ...part, thoughtSignature: mint(what) } : part);
      const tool = wantsTool(b) ? b.tools[0].functionDeclarations[0].name : null;
      const call = tool ? signed({ functionCall: { name: tool, args: { city: 'Paris' } } }, tool) : null;
      if (method === 'generateContent') {
        return json({
          candidates: [{ content: { role: 'model', parts: [...(thoughtParts ? [{ text: thought, thought: true }] : []), ...(call ? [call] : [signed({ text: out }, 'text')])] }, finishReason: 'STOP', index: 0 }],
          usageMetadata,
          modelVersion: model,
          responseId: 'gem-mock',
        });
      }
      const thoughtFrames: Json[] = !thoughtParts ? [] : THOUGHTS.map((t) => ({ candidates: [{ content: { role: 'model', parts: [{ text: t, thought: true }] }, index: 0 }], usageMetadata: { promptTokenCount: pt, totalTokenCount: pt } }));
      const frames = [...thoughtFrames, ...(call
        ? [{ candidates: [{ content: { role: 'model', parts: [call] }, finishReason: 'STOP', index: 0 }], usageMetadata }]
        : pieces.map((w, i) => ({
          candidates: [{ content: { role: 'model', parts: [i === pieces.length - 1 ? signed({ text: w }, 'text') : { text: w }] }, index: 0, ...(i === pieces.length - 1 ? { finishReason: 'STOP' } : {}) }],
          usageMetadata: i === pieces.length - 1 ? usageMetadata : { promptTokenCount: pt, totalTokenCount: pt },
        })))];
      return stream(frames.map((f) => `data: ${JSON.stringify(f)}\r\n\r\n`));
    }

    // ---- Anthropic ----
    if (url.pathname.endsWith('/v1/messages/count_tokens')) return json({ input_tokens: pt });
    if (url.pathname.endsWith('/v1/messages')) {
      const tool = wantsTool(b) ? b.tools[0].name : null;
      const thinks = think && b.thinking?.type === 'enabled';
      const ot = ct + (thinks ? rt : 0); // Anthropic counts thinking in output_tokens
      if (!b.stream) {
        return json({
          id: 'msg_mock', type: 'message', role: 'assistant', model,
          content: [
            ...(thinks ? [{ type: 'thinking', thinking: thought, signature: THOUGHT_SIGNATURE }] : []),
            ...(tool ? [{ type: 'text', text: 'calling' }, { type: 'tool_use', id: 'toolu_1', name: tool, input: { city: 'Paris' } }] : [{ type: 'text', text: out }]),
          ],
          stop_reason: tool ? 'tool_use' : 'end_turn', usage: { input_tokens: pt - cachedTokens, cache_read_input_tokens: cachedTokens, output_tokens: ot },
        });
      }
      const ev = (name: string, data: Json) => `event: ${name}\ndata: ${JSON.stringify({ type: name, ...data })}\n\n`;
      const events = [ev('message_start', { message: { id: 'msg_mock', type: 'message', role: 'assistant', model, content: [], usage: { input_tokens: pt, output_tokens: 1 } } })];
      const at = thinks ? 1 : 0;
      if (thinks) {
        events.push(ev('content_block_start', { index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } }));
        for (const t of THOUGHTS) events.push(ev('content_block_delta', { index: 0, delta: { type: 'thinking_delta', thinking: t } }));
        events.push(ev('content_block_delta', { index: 0, delta: { type: 'signature_delta', signature: THOUGHT_SIGNATURE } }));
        events.push(ev('content_block_stop', { index: 0 }));
      }
      if (tool) {
        events.push(ev('content_block_start', { index: at, content_block: { type: 'tool_use', id: 'toolu_1', name: tool, input: {} } }));
        events.push(ev('content_block_delta', { index: at, delta: { type: 'input_json_delta', partial_json: '{"city":' } }));
        if (!model.includes('badargs')) events.push(ev('content_block_delta', { index: at, delta: { type: 'input_json_delta', partial_json: '"Paris"}' } }));
      } else {
        events.push(ev('content_block_start', { index: at, content_block: { type: 'text', text: '' } }));
        for (const w of pieces) events.push(ev('content_block_delta', { index: at, delta: { type: 'text_delta', text: w } }));
      }
      events.push(ev('content_block_stop', { index: at }));
      events.push(ev('message_delta', { delta: { stop_reason: tool ? 'tool_use' : 'end_turn' }, usage: { output_tokens: ot } }));
      events.push(ev('message_stop', {}));
      return stream(events);
    }

    // ---- OpenAI shape (OpenAI, Azure, GLM, compatible) ----
    const glm = url.pathname.startsWith('/api/paas');
    const glmChat = glm && url.pathname.endsWith('/chat/completions');
    const refusal = glmChat ? glmRefusal(b) : null;
    if (refusal) {
      done = true;
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: '1214', message: refusal } }));
      return;
    }
    // GLM thinks unless told `thinking: {type: "disabled"}` (its default is on).
    const reasons = think && !(glmChat && b.thinking?.type === 'disabled');
    const oct = ct + (reasons ? rt : 0); // completion_tokens include the reasoning tokens
    const usage = {
      prompt_tokens: pt, completion_tokens: oct, total_tokens: pt + oct,
      ...(cachedTokens ? { prompt_tokens_details: { cached_tokens: cachedTokens } } : {}), ...(reasons ? { completion_tokens_details: { reasoning_tokens: rt } } : {}),
    };
    const reasoningField = model.includes('think-field') ? 'reasoning' : 'reasoning_content';
    if (url.pathname.endsWith('/embeddings')) {
      const inputs = Array.isArray(b.input) ? b.input : [b.input];
      const vec = [0.25, -0.5, 1];
      const enc = (v: number[]) => (b.encoding_format === 'base64' ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v);
      return json({ object: 'list', data: inputs.map((_: unknown, i: number) => ({ object: 'embedding', index: i, embedding: enc(vec) })), model, usage: { prompt_tokens: pt, total_tokens: pt } });
    }
    if (url.pathname.endsWith('/moderations')) {
      const inputs = Array.isArray(b.input) ? b.input : [b.input];
      return json({ id: 'modr-mock', model, results: inputs.map((x: unknown) => {
        const flagged = String(x).includes('violence');
        return { flagged, categories: { violence: flagged }, category_scores: { violence: flagged ? 0.97 : 0.01 } };
      }) });
    }
    if (url.pathname.endsWith('/images/generations')) {
      // gpt-image-* report token usage; dall-e-* report none.
      const imageUsage = model.includes('gpt-image') ? { usage: { input_tokens: pt, output_tokens: 272, total_tokens: pt + 272, input_tokens_details: { text_tokens: pt, image_tokens: 0 } } } : {};
      if (!b.stream) return json({ created: 1700000000, data: Array.from({ length: Number(b.n ?? 1) }, () => ({ b64_json: 'aW1hZ2U=' })), ...imageUsage });
      done = true;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`event: image_generation.partial_image\ndata: ${JSON.stringify({ type: 'image_generation.partial_image', b64_json: 'cGFydA==', partial_image_index: 0 })}\n\n`);
      res.end(`event: image_generation.completed\ndata: ${JSON.stringify({ type: 'image_generation.completed', b64_json: 'aW1hZ2U=', ...imageUsage })}\n\n`);
      return;
    }
    if (url.pathname.endsWith('/responses')) {
      const resp = { id: 'resp_mock', object: 'response', status: 'completed', model, output: [{ type: 'message', id: 'msg_1', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: out, annotations: [] }] }], usage: { input_tokens: pt, output_tokens: ct, total_tokens: pt + ct } };
      if (!b.stream) return json(resp);
      const ev = (type: string, data: Json, seq: number) => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq, ...data })}\n\n`;
      const events = [ev('response.created', { response: { ...resp, status: 'in_progress', output: [], usage: null } }, 0)];
      pieces.forEach((w, i) => events.push(ev('response.output_text.delta', { item_id: 'msg_1', output_index: 0, content_index: 0, delta: w }, i + 1)));
      events.push(ev('response.completed', { response: resp }, pieces.length + 1));
      return stream(events);
    }
    const completions = url.pathname.endsWith('/completions') && !url.pathname.endsWith('/chat/completions');
    const includeUsage = b.stream_options?.include_usage === true || glm;
    const base = { id: 'chatcmpl-mock', created: 1700000000, model };
    if (completions) {
      if (!b.stream) return json({ ...base, object: 'text_completion', choices: [{ index: 0, text: out, finish_reason: 'stop', logprobs: null }], usage });
      const events = pieces.map((w) => `data: ${JSON.stringify({ ...base, object: 'text_completion', choices: [{ index: 0, text: w, finish_reason: null, logprobs: null }] })}\n\n`);
      if (includeUsage) events.push(`data: ${JSON.stringify({ ...base, object: 'text_completion', choices: [], usage })}\n\n`);
      events.push('data: [DONE]\n\n');
      return stream(events);
    }
    const tool = wantsTool(b) ? b.tools[0].function.name : null;
    if (!b.stream) {
      const message = tool
        ? { role: 'assistant', content: null, tool_calls: [{ id: 'call_mock1', type: 'function', function: { name: tool, arguments: model.includes('badargs') ? '{"city":' : '{"city":"Paris"}' } }] }
        : { role: 'assistant', content: out };
      if (reasons) Object.assign(message, { [reasoningField]: thought });
      return json({ ...base, object: 'chat.completion', choices: [{ index: 0, message, finish_reason: tool ? 'tool_calls' : 'stop', logprobs: null }], usage });
    }
    const chunk = (delta: Json, finish: string | null, extra: Json = {}) =>
      `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }], ...(includeUsage && !glm ? { usage: null } : {}), ...extra })}\n\n`;
    const events = [chunk({ role: 'assistant', content: '' }, null)];
    if (reasons) for (const t of THOUGHTS) events.push(chunk({ [reasoningField]: t }, null));
    if (tool) {
      events.push(chunk({ tool_calls: [{ index: 0, id: 'call_mock1', type: 'function', function: { name: tool, arguments: '' } }] }, null));
      events.push(chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }, null));
      if (!model.includes('badargs')) events.push(chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }, null));
    } else for (const w of pieces) events.push(chunk({ content: w }, null));
    if (glm) events.push(chunk({}, tool ? 'tool_calls' : 'stop', { usage }));
    else {
      events.push(chunk({}, tool ? 'tool_calls' : 'stop'));
      if (includeUsage) events.push(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [], usage })}\n\n`);
    }
    events.push('data: [DONE]\n\n');
    return stream(events);
  });

  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(opts.port ?? 0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    aborted,
    server,
    thoughtSignatures,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}
