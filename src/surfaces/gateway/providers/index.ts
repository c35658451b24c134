// Provider types by name: declarative adapters (STYLE.md: Portkey's one folder per provider).
import type { ProviderType } from '../catalog/catalog.ts';
import { anthropic } from './anthropic/anthropic.ts';
import { azure } from './azure/azure.ts';
import { gemini } from './gemini/gemini.ts';
import { glm } from './glm/glm.ts';
import { openaiCompatible } from './openai-compatible/openai-compatible.ts';
import { openai } from './openai/openai.ts';
import type { ProviderAdapter } from './types.ts';

export const ADAPTERS: Record<ProviderType, ProviderAdapter> = {
  openai,
  azure,
  gemini,
  glm,
  anthropic,
  'openai-compatible': openaiCompatible,
};
