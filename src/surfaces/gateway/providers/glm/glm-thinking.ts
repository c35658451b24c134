// GLM's reasoning switch. GLM-4.5 and later take `thinking: {type: "enabled" | "disabled"}` (with
// `clear_thinking` for preserved thinking), not an effort level, and think unless told otherwise
// (https://docs.bigmodel.cn/cn/guide/capabilities/thinking-mode); the reasoning comes back as
// `reasoning_content`, which every client shape already takes (reasoning.ts).
import { AppError } from '../../../../core/errors/errors.ts';
import { reasoningAsk } from '../reasoning.ts';
import { isObject, type Json } from '../types.ts';

const invalid = (message: string) => new AppError('validation_failed', message, { details: { param: 'thinking' } });

/** GLM's own `thinking` (no budget): what a client that speaks GLM sends. */
function isGlmSwitch(thinking: unknown): thinking is Json {
  return isObject(thinking) && (thinking.type === 'enabled' || thinking.type === 'disabled') && thinking.budget_tokens === undefined;
}

/**
 * An OpenAI-shaped chat request (a client's, or the pivot) in GLM's terms: GLM's own `thinking`
 * passes on unchanged; otherwise the reasoning ask becomes the switch (an effort of `none` or
 * `minimal` turns thinking off, as GLM has no smaller setting; LiteLLM's `thinking` with a budget,
 * which the Anthropic and Gemini translations carry, decides over the effort beside it). A request
 * that asks nothing sends nothing, and the model thinks at its default. `reasoning_effort` is never sent.
 */
export function glmThinking(body: Json): Json {
  const { reasoning_effort: effort, thinking, ...rest } = body;
  const asked = (v: unknown) => v !== undefined && v !== null;
  if (!asked(effort) && !asked(thinking)) return rest;
  if (isGlmSwitch(thinking)) {
    if (thinking.clear_thinking !== undefined && typeof thinking.clear_thinking !== 'boolean') throw invalid('thinking.clear_thinking: must be a boolean');
    reasoningAsk({ reasoning_effort: effort }); // refused when malformed, though the switch decides
    return { ...rest, thinking };
  }
  const ask = reasoningAsk(body);
  const on = ask !== null && (asked(thinking) || ask.effort !== 'minimal');
  return { ...rest, thinking: { type: on ? 'enabled' : 'disabled' } };
}

/**
 * A translated request (GLM's switch already applied) whose history carries earlier reasoning, as
 * GLM's preserved thinking wants it (https://docs.bigmodel.cn/cn/guide/capabilities/thinking-mode):
 * the reasoning stays on its assistant turn as `reasoning_content`, unmodified, and `thinking` gets
 * `clear_thinking: false`, since GLM's standard endpoint otherwise drops the reasoning of earlier
 * turns. The client sending its earlier reasoning back (Anthropic thinking blocks, Gemini thought
 * parts, Responses reasoning items) is how those formats ask for it to be kept. A request that turns
 * thinking off for this turn keeps the reasoning in history but says nothing of clearing it (GLM's
 * turn-level thinking); one that set `clear_thinking` itself keeps its choice.
 */
export function glmPreservedThinking(body: Json): Json {
  const carries = Array.isArray(body.messages) && body.messages.some((m) => isObject(m) && m.role === 'assistant' && typeof m.reasoning_content === 'string' && m.reasoning_content);
  if (!carries) return body;
  const t = isObject(body.thinking) ? body.thinking : null;
  if (t?.type === 'disabled' || t?.clear_thinking !== undefined) return body;
  return { ...body, thinking: { type: 'enabled', clear_thinking: false } };
}
