// The thinkingConfig a translated request sends to a Gemini model (https://ai.google.dev/gemini-api/docs/thinking).
// The pivot's budgets (reasoning.ts: up to 32768) can be more than a model takes: Gemini 2.5 Pro
// thinks on 128–32768 tokens and cannot stop, 2.5 Flash on 0–24576, 2.5 Flash-Lite on 512–24576,
// and Gemini 3 takes a thinkingLevel rather than a budget (3 Pro: low or high; 3 Flash and the
// later Flash models: minimal, low, medium or high). A model recognised by its name gets a budget
// within its range, or its level; any other model (an alias, a tuned model) gets the budget as mapped.
import type { ReasoningAsk } from '../reasoning.ts';
import type { Json } from '../types.ts';

interface BudgetRange {
  min: number;
  max: number;
}

/** Budget ranges of the Gemini 2.5 family, most specific name first. */
const RANGES: ReadonlyArray<[RegExp, BudgetRange]> = [
  [/^gemini-2\.5-pro/, { min: 128, max: 32768 }],
  [/^gemini-2\.5-flash-lite/, { min: 512, max: 24576 }],
  [/^gemini-2\.5-flash/, { min: 0, max: 24576 }],
];

const GEMINI_3 = /^gemini-3(\.\d+)?-/;

/** An effort as a Gemini 3 thinkingLevel: Pro models take only low and high. */
function levelOf(model: string, effort: ReasoningAsk['effort']): string {
  const level = effort === 'xhigh' || effort === 'max' ? 'high' : effort;
  if (!/-pro/.test(model)) return level;
  return level === 'minimal' || level === 'low' ? 'low' : 'high';
}

/** The thinkingConfig for `ask` on `upstreamModel`; the thoughts are always asked for, as the client gets them back. */
export function thinkingConfigFor(upstreamModel: string, ask: ReasoningAsk): Json {
  const model = upstreamModel.replace(/^models\//, '').toLowerCase();
  if (GEMINI_3.test(model)) return { thinkingLevel: levelOf(model, ask.effort), includeThoughts: true };
  const range = RANGES.find(([re]) => re.test(model))?.[1];
  const budget = range ? Math.min(range.max, Math.max(range.min, ask.budget)) : ask.budget;
  return { thinkingBudget: budget, includeThoughts: true };
}
