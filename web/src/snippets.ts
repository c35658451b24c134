/** What the snippets name when no configured model can be named: plainly not a model. */
export const MODEL_PLACEHOLDER = '<your model>';

/**
 * The model a key's snippets name, so that a copy-paste works: the first model of the key's scope that
 * is configured (else the first it names), or for a key without a scope the first configured model.
 */
export function snippetModel(scope: readonly string[] | null | undefined, configured: readonly string[]): string {
  if (scope?.length) return scope.find((m) => configured.includes(m)) ?? scope[0]!;
  return configured[0] ?? MODEL_PLACEHOLDER;
}

// Ready-to-paste client code for a virtual key: the official openai SDK, @google/genai,
// @anthropic-ai/sdk (and the two variables tools built on it read), curl.
export function snippets(baseUrl: string, key: string, model: string) {
  const base = baseUrl.replace(/\/+$/, '');
  return {
    curlModels: `curl ${base}/v1/models \\\n  -H "Authorization: Bearer ${key}"`,
    curlChat: `curl ${base}/v1/chat/completions \\\n  -H "Authorization: Bearer ${key}" \\\n  -H "Content-Type: application/json" \\\n  -d '{"model":"${model}","messages":[{"role":"user","content":"Hello"}]}'`,
    openai: `import OpenAI from 'openai';

const client = new OpenAI({ baseURL: '${base}/v1', apiKey: '${key}' });
const res = await client.chat.completions.create({
  model: '${model}',
  messages: [{ role: 'user', content: 'Hello' }],
});
console.log(res.choices[0].message.content);`,
    genai: `import { GoogleGenAI } from '@google/genai';

const ai = new GoogleGenAI({ apiKey: '${key}', httpOptions: { baseUrl: '${base}' } });
const res = await ai.models.generateContent({ model: '${model}', contents: 'Hello' });
console.log(res.text);`,
    anthropic: `import Anthropic from '@anthropic-ai/sdk';

// Tools built on Anthropic's SDKs: ANTHROPIC_BASE_URL=${base} ANTHROPIC_API_KEY=${key}
const client = new Anthropic({ baseURL: '${base}', apiKey: '${key}' });
const msg = await client.messages.create({
  model: '${model}',
  max_tokens: 1024,
  messages: [{ role: 'user', content: 'Hello' }],
});
console.log(msg.content[0].text);`,
  };
}
