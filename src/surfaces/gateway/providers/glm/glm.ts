// Zhipu GLM (https://open.bigmodel.cn/dev/api): OpenAI-shaped under /api/paas/v4, Bearer key.
// GLM reports usage in the last stream chunk by itself, so stream_options is not sent.
import { openAiShaped } from '../openai-base/openai-base.ts';
import type { ProviderAdapter } from '../types.ts';
import { glmPreservedThinking, glmThinking } from './glm-thinking.ts';

// Image generation (CogView) is /images/generations as well.
export const glm: ProviderAdapter = { ...openAiShaped(['chat', 'embeddings', 'images'], false), reasoningControls: glmThinking, preservedThinking: glmPreservedThinking };
