// Reasoning ("thinking") controls across the three families, through the pivot. The pivot speaks
// OpenAI's `reasoning_effort` (https://platform.openai.com/docs/api-reference/chat/create) and, where
// the client named an exact budget, LiteLLM's `thinking: {type: "enabled", budget_tokens}` beside it
// (Anthropic's shape, https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking), so an
// Anthropic budget reaches Gemini's `thinkingBudget` unrounded and the other way round. Answers carry
// the reasoning text as `reasoning_content` on the message and on stream deltas (the field DeepSeek,
// vLLM, GLM and Qwen use, and LiteLLM's convention for every provider).
import { AppError } from '../../../core/errors/errors.ts';
import { isObject, type Json } from './types.ts';

/** Effort levels a client may ask for; `none` asks for no reasoning. */
const EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max'] as const;
export type Effort = (typeof EFFORTS)[number];

/** Anthropic's smallest thinking budget. */
const MIN_BUDGET = 1024;

/** Token budget per effort, for providers that take a budget (Anthropic, Gemini). Anthropic's
 *  smallest budget is 1024, so minimal and low meet there. */
export const EFFORT_BUDGET: Record<Exclude<Effort, 'none'>, number> = {
  minimal: 1024,
  low: 1024,
  medium: 4096,
  high: 16384,
  xhigh: 32768,
  max: 32768,
};

/** A budget as the effort OpenAI-shaped providers understand: the levels' geometric midpoints are the thresholds. */
export function effortOfBudget(budget: number): 'low' | 'medium' | 'high' {
  if (budget < 2048) return 'low';
  if (budget < 8192) return 'medium';
  return 'high';
}

/** What a request asks for: an effort, and the exact budget when the client named one. */
export interface ReasoningAsk {
  effort: Exclude<Effort, 'none'>;
  budget: number;
}

export const askOf = (effort: ReasoningAsk['effort']): ReasoningAsk => ({ effort, budget: EFFORT_BUDGET[effort] });

const invalid = (message: string, param: string) => new AppError('validation_failed', message, { details: { param } });

/**
 * A pivot (OpenAI-shaped) request's reasoning ask, validated: `reasoning_effort`, and LiteLLM's
 * `thinking` beside it, or GLM's (`{type: "enabled"}` with no budget: the model chooses how much,
 * https://docs.bigmodel.cn/cn/guide/capabilities/thinking-mode). Null when the request asks for none.
 */
export function reasoningAsk(body: Json): ReasoningAsk | null {
  const effort = body.reasoning_effort;
  let ask: ReasoningAsk | null = null;
  if (effort !== undefined && effort !== null) {
    if (typeof effort !== 'string' || !(EFFORTS as readonly string[]).includes(effort)) {
      throw invalid(`reasoning_effort must be one of ${EFFORTS.join(', ')}`, 'reasoning_effort');
    }
    if (effort !== 'none') ask = askOf(effort as ReasoningAsk['effort']);
  }
  const thinking = body.thinking;
  if (thinking !== undefined && thinking !== null) {
    const glmOn = isObject(thinking) && thinking.type === 'enabled' && thinking.budget_tokens === undefined;
    const budget = glmOn ? null : thinkingBudget(thinking, 'thinking');
    if (budget === 0) return null;
    ask = budget === null ? (ask ?? askOf('medium')) : { effort: ask?.effort ?? effortOfBudget(budget), budget };
  }
  return ask;
}

/**
 * Anthropic's `thinking` object, validated as Anthropic does: `enabled` with an integer
 * budget_tokens of at least 1024 → that budget; `disabled` → 0; `adaptive` (the model chooses how
 * much) → null. Any other type is refused: it has no counterpart elsewhere.
 */
export function thinkingBudget(thinking: unknown, param: string): number | null {
  if (!isObject(thinking)) throw invalid(`${param}: must be an object`, param);
  if (thinking.type === 'disabled') return 0;
  if (thinking.type === 'adaptive') return null;
  if (thinking.type !== 'enabled') throw invalid(`${param}.type: must be "enabled", "disabled" or "adaptive"`, param);
  const b = thinking.budget_tokens;
  if (typeof b !== 'number' || !Number.isInteger(b) || b < MIN_BUDGET) throw invalid(`${param}.budget_tokens: must be an integer of at least 1024`, param);
  return b;
}

/** The pivot's reasoning fields for an ask: none when the client asked nothing, LiteLLM's
 *  `thinking: {type: "disabled"}` when it turned reasoning off (for providers that think unless told
 *  not to: GLM). A Gemini budget below Anthropic's smallest is raised to it. */
export function pivotReasoning(ask: ReasoningAsk | 'off' | null): Json {
  if (ask === 'off') return { thinking: { type: 'disabled' } };
  return ask ? { reasoning_effort: ask.effort, thinking: { type: 'enabled', budget_tokens: Math.max(MIN_BUDGET, ask.budget) } } : {};
}

/** Reasoning text of an OpenAI-shaped message or delta: `reasoning_content`, or `reasoning` as some servers name it. */
export function reasoningText(m: Json): string {
  if (typeof m.reasoning_content === 'string') return m.reasoning_content;
  if (typeof m.reasoning === 'string') return m.reasoning;
  return '';
}

/**
 * A message or delta from an OpenAI-shaped provider with its reasoning under `reasoning_content`
 * (some servers say `reasoning`); the same object when there is nothing to rename.
 */
export function withReasoningContent(m: Json): Json {
  if (typeof m.reasoning !== 'string' || typeof m.reasoning_content === 'string') return m;
  const { reasoning, ...rest } = m;
  return { ...rest, reasoning_content: reasoning };
}

/** Reasoning tokens for a provider that reports none apart (Anthropic counts thinking in output_tokens):
 *  about 4 characters a token, never more than the output. */
export function estimateReasoningTokens(text: string, output: number): number {
  return text ? Math.min(output, Math.ceil(text.length / 4)) : 0;
}

/**
 * A pivot request without the earlier reasoning its assistant turns carry (`reasoning_content` put
 * there from another format's history), for providers that do not take it back: OpenAI refuses
 * unknown message fields, and DeepSeek-style servers refuse reasoning in input. The same object when
 * there is none.
 */
export function withoutHistoryReasoning(body: Json): Json {
  const messages = body.messages;
  if (!Array.isArray(messages) || !messages.some((m) => isObject(m) && m.role === 'assistant' && m.reasoning_content !== undefined)) return body;
  return {
    ...body,
    messages: messages.map((m) => {
      if (!isObject(m) || m.role !== 'assistant' || m.reasoning_content === undefined) return m;
      const { reasoning_content: _r, ...rest } = m;
      return rest;
    }),
  };
}
