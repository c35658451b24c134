// api.openai.com (https://platform.openai.com/docs/api-reference).
import { openAiShaped } from '../openai-base/openai-base.ts';

export const openai = openAiShaped(['chat', 'completions', 'embeddings', 'responses', 'moderations', 'images', 'transcriptions', 'translations', 'speech']);
