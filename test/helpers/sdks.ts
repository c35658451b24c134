// The official client SDKs pointed at an appliance with one virtual key, as the gateway tests use them.
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import OpenAI from 'openai';
import type { Appliance } from './appliance.ts';

export function sdkClients(app: Pick<Appliance, 'url'>, key: string): { openai: OpenAI; anthropic: Anthropic; genai: GoogleGenAI } {
  return {
    openai: new OpenAI({ apiKey: key, baseURL: `${app.url}/v1`, maxRetries: 0 }),
    anthropic: new Anthropic({ apiKey: key, baseURL: app.url, maxRetries: 0 }),
    genai: new GoogleGenAI({ apiKey: key, httpOptions: { baseUrl: app.url } }),
  };
}
