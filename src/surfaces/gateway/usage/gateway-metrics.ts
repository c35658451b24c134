// The gateway's Prometheus metrics: calls, tokens, cost, seconds of audio transcribed or translated
// and characters of speech by public model and provider, call duration and time to first token by
// model, and upstream failures by provider. Labels are the names
// an administrator chose (models, providers) and small fixed sets, never keys or users, so the number
// of series stays bounded. Kept as plain numbers on the request path (one map lookup per call) and
// rendered when /metrics is scraped, like core/metrics.
import type { Registry } from 'prom-client';
import { Buckets, customMetric, type MetricValue } from '../../../core/metrics/metrics.ts';
import type { Usage } from '../providers/types.ts';

export type UpstreamFailure = 'unreachable' | 'timeout' | 'node_offline' | 'rate_limited' | 'server_error';

export interface CallFigures {
  model: string;
  /** The provider that answered or was tried last; null when none was (refused before routing). */
  provider: string | null;
  ingress: string;
  status: number;
  usage: Usage;
  costUsd: number;
  /** What an audio call was charged for (usage/audio-metering.ts); zeros for every other call. */
  audio: { seconds: number; characters: number };
  seconds: number;
  /** Streams only: time to the first byte sent to the client. */
  ttftSeconds: number | null;
}

export interface GatewayMetrics {
  call(f: CallFigures): void;
  upstreamFailure(provider: string, reason: UpstreamFailure): void;
  /** A response-cache lookup for `model`. */
  cache(model: string, hit: boolean): void;
}

// Model calls take from milliseconds (embeddings, cached answers) to minutes (long generations).
const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const TTFT_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30];

interface Series {
  labels: { model: string; provider: string; ingress: string; status: string };
  requests: number;
  input: number;
  output: number;
  cached: number;
  reasoning: number;
  costUsd: number;
  audioSeconds: number;
  ttsCharacters: number;
}

interface PerModel {
  duration: Buckets;
  ttft: Buckets;
}

const TOKEN_TYPES = ['input', 'output', 'cached', 'reasoning'] as const;

/** Sums series by the labels `pick` keeps (of those `only` admits). */
function rollUp(series: Iterable<Series>, pick: (s: Series) => Record<string, string>, value: (s: Series) => number, only: (s: Series) => boolean = () => true): MetricValue[] {
  const out = new Map<string, MetricValue>();
  for (const s of series) {
    if (!only(s)) continue;
    const labels = pick(s);
    const k = Object.values(labels).join('\u0000');
    const v = out.get(k);
    if (v) v.value += value(s);
    else out.set(k, { labels, value: value(s) });
  }
  return [...out.values()];
}

export function createGatewayMetrics(registry: Registry, cacheSize?: () => { entries: number; bytes: number }): GatewayMetrics {
  const series: Series[] = [];
  const index = new Map<string, Map<string, Map<string, Map<number, Series>>>>();
  const lookups = new Map<string, { labels: { model: string; result: 'hit' | 'miss' }; value: number }>();
  const models = new Map<string, PerModel>();
  const failures = new Map<string, { labels: { provider: string; reason: UpstreamFailure }; value: number }>();

  registry.registerMetric(customMetric('nexus_gateway_requests_total', 'AI gateway calls by public model, provider, ingress format and status', 'counter', () =>
    [...series.values()].map((s) => ({ labels: s.labels, value: s.requests }))));
  registry.registerMetric(customMetric('nexus_gateway_tokens_total', 'Tokens of AI gateway calls by public model, provider and type (input includes cached)', 'counter', () =>
    TOKEN_TYPES.flatMap((type) => rollUp(series.values(), (s) => ({ model: s.labels.model, provider: s.labels.provider, type }), (s) => s[type]))));
  registry.registerMetric(customMetric('nexus_gateway_cost_usd_total', 'Cost of AI gateway calls in USD, from the models\' prices, by public model and provider', 'counter', () =>
    rollUp(series.values(), (s) => ({ model: s.labels.model, provider: s.labels.provider }), (s) => s.costUsd)));
  // Only models that were ever charged for audio have these series (chat models would only add zeros).
  registry.registerMetric(customMetric('nexus_gateway_audio_seconds_total', 'Seconds of input audio of AI gateway transcriptions and translations, as charged (the provider\'s count, else the file\'s length), by public model and provider', 'counter', () =>
    rollUp(series.values(), (s) => ({ model: s.labels.model, provider: s.labels.provider }), (s) => s.audioSeconds, (s) => s.audioSeconds > 0)));
  registry.registerMetric(customMetric('nexus_gateway_tts_characters_total', 'Characters of input of AI gateway speech calls, as charged, by public model and provider', 'counter', () =>
    rollUp(series.values(), (s) => ({ model: s.labels.model, provider: s.labels.provider }), (s) => s.ttsCharacters, (s) => s.ttsCharacters > 0)));
  registry.registerMetric(customMetric('nexus_gateway_request_duration_seconds', 'AI gateway calls from admission to the last byte, by public model', 'histogram', () => {
    const out: MetricValue[] = [];
    for (const [model, m] of models) m.duration.render('nexus_gateway_request_duration_seconds', { model }, out);
    return out;
  }));
  registry.registerMetric(customMetric('nexus_gateway_time_to_first_token_seconds', 'Streamed AI gateway calls: time to the first byte of the answer, by public model', 'histogram', () => {
    const out: MetricValue[] = [];
    for (const [model, m] of models) m.ttft.render('nexus_gateway_time_to_first_token_seconds', { model }, out);
    return out;
  }));
  registry.registerMetric(customMetric('nexus_gateway_upstream_failures_total', 'Failed attempts at a provider (each one is retried on the next deployment when there is one), by provider and reason', 'counter', () =>
    [...failures.values()]));
  registry.registerMetric(customMetric('nexus_gateway_cache_lookups_total', 'Response-cache lookups by public model and result (hit: answered without a provider)', 'counter', () =>
    [...lookups.values()]));
  if (cacheSize) {
    registry.registerMetric(customMetric('nexus_gateway_cache_entries', 'Answers held by the response cache', 'gauge', () => [{ labels: {}, value: cacheSize().entries }]));
    registry.registerMetric(customMetric('nexus_gateway_cache_bytes', 'Bytes held by the response cache (bounded by gateway.cacheMaxBytes)', 'gauge', () => [{ labels: {}, value: cacheSize().bytes }]));
  }

  return {
    call(f) {
      const provider = f.provider ?? 'none';
      // Found through nested maps keyed by the label values themselves (the catalog's own strings,
      // whose hashes V8 keeps), not by a key string joined and hashed anew on every call.
      let byProvider = index.get(f.model);
      if (!byProvider) index.set(f.model, (byProvider = new Map()));
      let byIngress = byProvider.get(provider);
      if (!byIngress) byProvider.set(provider, (byIngress = new Map()));
      let byStatus = byIngress.get(f.ingress);
      if (!byStatus) byIngress.set(f.ingress, (byStatus = new Map()));
      let s = byStatus.get(f.status);
      if (!s) {
        byStatus.set(f.status, (s = { labels: { model: f.model, provider, ingress: f.ingress, status: String(f.status) }, requests: 0, input: 0, output: 0, cached: 0, reasoning: 0, costUsd: 0, audioSeconds: 0, ttsCharacters: 0 }));
        series.push(s);
      }
      s.requests++;
      s.input += f.usage.input;
      s.output += f.usage.output;
      s.cached += f.usage.cached;
      s.reasoning += f.usage.reasoning;
      s.costUsd += f.costUsd;
      s.audioSeconds += f.audio.seconds;
      s.ttsCharacters += f.audio.characters;
      let m = models.get(f.model);
      if (!m) models.set(f.model, (m = { duration: new Buckets(DURATION_BUCKETS), ttft: new Buckets(TTFT_BUCKETS) }));
      m.duration.observe(f.seconds);
      if (f.ttftSeconds !== null) m.ttft.observe(f.ttftSeconds);
    },
    upstreamFailure(provider, reason) {
      const k = `${provider}\u0000${reason}`;
      const e = failures.get(k);
      if (e) e.value++;
      else failures.set(k, { labels: { provider, reason }, value: 1 });
    },
    cache(model, hit) {
      const result = hit ? 'hit' : 'miss';
      const k = `${model}\u0000${result}`;
      const e = lookups.get(k);
      if (e) e.value++;
      else lookups.set(k, { labels: { model, result }, value: 1 });
    },
  };
}
