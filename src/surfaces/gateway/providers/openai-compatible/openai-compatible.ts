// Any server that speaks OpenAI's API at a base URL: vLLM, Ollama (/v1), LM Studio, llama.cpp.
import { openAiShaped } from '../openai-base/openai-base.ts';

export const openaiCompatible = openAiShaped(['chat', 'completions', 'embeddings', 'responses']);
