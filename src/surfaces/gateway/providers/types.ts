// What every provider type declares: its wire family and how to address one operation upstream.
// Translation between families goes through OpenAI chat completions as the common shape (pivot.ts).
import type { Provider } from '../catalog/catalog.ts';

export type Json = Record<string, unknown>;
export type WireFamily = 'openai' | 'gemini' | 'anthropic';
export type Operation =
  | 'chat' | 'completions' | 'embeddings' | 'responses' | 'count_tokens' | 'moderations' | 'images'
  | 'transcriptions' | 'translations' | 'speech';

export interface UpstreamRequest {
  method: 'POST' | 'GET';
  url: string;
  headers: Record<string, string>;
  /** JSON text, or the client's own bytes when the gateway forwards them unchanged. */
  body: string | Buffer | null;
}

export interface ProviderAdapter {
  family: WireFamily;
  /** Operations the provider serves in its family's shape. */
  operations: ReadonlySet<Operation>;
  /** Whether an OpenAI-shaped stream honours stream_options.include_usage. */
  streamUsageOption: boolean;
  /** An OpenAI-shaped chat request's reasoning fields in the terms of a provider that has its own
   *  switch (GLM's `thinking`); without it, the provider takes `reasoning_effort`. */
  reasoningControls?(body: Json): Json;
  /** A translated OpenAI-shaped chat request whose assistant turns carry earlier reasoning
   *  (`reasoning_content`, from another format's history), in the terms of a provider that takes it
   *  back (GLM's preserved thinking); without it, that reasoning is left out of the request. */
  preservedThinking?(body: Json): Json;
  /** Builds the upstream request; `body` is already in the family's shape with the upstream model. */
  request(p: Provider, op: Operation, upstreamModel: string, body: string | Buffer | null, stream: boolean): UpstreamRequest;
}

export interface Usage {
  input: number;
  output: number;
  cached: number;
  reasoning: number;
  /** Seconds of input audio, when the provider says (whisper-1's `usage` of type duration). */
  audioSeconds?: number;
}

export const NO_USAGE: Usage = Object.freeze({ input: 0, output: 0, cached: 0, reasoning: 0 });

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}
