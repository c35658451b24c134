// Any server that speaks OpenAI's API at a base URL: vLLM, Ollama (/v1), LM Studio, llama.cpp.
import { openAiShaped } from '../openai-base/openai-base.ts';

// Many such servers have no /responses (or an older one); the Responses API reaches them through chat.
// Moderations, image generation and audio pass through to those that have them (LocalAI, LiteLLM,
// vLLM and Speaches for audio, …).
export const openaiCompatible = openAiShaped(['chat', 'completions', 'embeddings', 'moderations', 'images', 'transcriptions', 'translations', 'speech']);
