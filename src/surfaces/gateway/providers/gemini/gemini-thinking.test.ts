// Thinking budgets within each recognised Gemini model's range; Gemini 3 by level; others untouched.
import { describe, expect, it } from 'vitest';
import { askOf, type ReasoningAsk } from '../reasoning.ts';
import { openAiRequestToGemini } from './gemini-chat.ts';
import { thinkingConfigFor } from './gemini-thinking.ts';

const EFFORTS: ReasoningAsk['effort'][] = ['minimal', 'low', 'medium', 'high', 'xhigh', 'max'];
const budgets = (model: string) => EFFORTS.map((e) => thinkingConfigFor(model, askOf(e)).thinkingBudget);
const levels = (model: string) => EFFORTS.map((e) => thinkingConfigFor(model, askOf(e)).thinkingLevel);

describe('thinking budgets per Gemini model', () => {
  it('keeps the mapped budgets (1024 … 32768) within each 2.5 model\'s range', () => {
    expect(budgets('gemini-2.5-pro')).toEqual([1024, 1024, 4096, 16384, 32768, 32768]); // 128–32768
    expect(budgets('gemini-2.5-flash')).toEqual([1024, 1024, 4096, 16384, 24576, 24576]); // 0–24576
    expect(budgets('gemini-2.5-flash-lite')).toEqual([1024, 1024, 4096, 16384, 24576, 24576]); // 512–24576
    expect(budgets('models/gemini-2.5-flash-preview-09-2025')).toEqual([1024, 1024, 4096, 16384, 24576, 24576]);
    expect(budgets('Gemini-2.5-Flash-Lite-Preview-06-17')).toEqual([1024, 1024, 4096, 16384, 24576, 24576]);
  });

  it('raises an exact budget below a model\'s least, and lowers one above its most', () => {
    expect(thinkingConfigFor('gemini-2.5-pro', { effort: 'low', budget: 100 })).toEqual({ thinkingBudget: 128, includeThoughts: true });
    expect(thinkingConfigFor('gemini-2.5-flash-lite', { effort: 'low', budget: 300 })).toEqual({ thinkingBudget: 512, includeThoughts: true });
    expect(thinkingConfigFor('gemini-2.5-flash', { effort: 'high', budget: 30000 })).toEqual({ thinkingBudget: 24576, includeThoughts: true });
    expect(thinkingConfigFor('gemini-2.5-pro', { effort: 'high', budget: 60000 })).toEqual({ thinkingBudget: 32768, includeThoughts: true });
    expect(thinkingConfigFor('gemini-2.5-flash', { effort: 'medium', budget: 5000 })).toEqual({ thinkingBudget: 5000, includeThoughts: true });
  });

  it('asks Gemini 3 models for a level (Pro: low or high) instead of a budget', () => {
    expect(levels('gemini-3-flash-preview')).toEqual(['minimal', 'low', 'medium', 'high', 'high', 'high']);
    expect(levels('gemini-3.5-flash')).toEqual(['minimal', 'low', 'medium', 'high', 'high', 'high']);
    expect(levels('gemini-3-pro-preview')).toEqual(['low', 'low', 'high', 'high', 'high', 'high']);
    expect(levels('models/gemini-3.1-pro-preview')).toEqual(['low', 'low', 'high', 'high', 'high', 'high']);
    expect(thinkingConfigFor('gemini-3-flash-preview', askOf('high'))).toEqual({ thinkingLevel: 'high', includeThoughts: true });
  });

  it('leaves models it does not recognise with the budget as mapped', () => {
    for (const model of ['gemini-flash-latest', 'tunedModels/my-model', 'up-think', '', 'gemini-2.0-flash', 'gemini-30-pro']) {
      expect(budgets(model)).toEqual([1024, 1024, 4096, 16384, 32768, 32768]);
    }
  });

  it('is what an OpenAI request for a recognised model sends', () => {
    const messages = [{ role: 'user', content: 'hi' }];
    expect(openAiRequestToGemini({ messages, reasoning_effort: 'xhigh' }, 'gemini-2.5-flash').generationConfig).toEqual({ thinkingConfig: { thinkingBudget: 24576, includeThoughts: true } });
    expect(openAiRequestToGemini({ messages, reasoning_effort: 'xhigh' }, 'gemini-3-pro-preview').generationConfig).toEqual({ thinkingConfig: { thinkingLevel: 'high', includeThoughts: true } });
    expect(openAiRequestToGemini({ messages, reasoning_effort: 'xhigh' }, 'custom').generationConfig).toEqual({ thinkingConfig: { thinkingBudget: 32768, includeThoughts: true } });
  });
});
