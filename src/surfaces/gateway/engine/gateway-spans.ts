// The gateway's spans: one CLIENT span per attempt at a deployment (retries and failover show as
// sibling attempts under the request's SERVER span), after OpenTelemetry's GenAI semantic conventions
// (https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/), with Nexus's own figures
// (virtual key id, cost, deployment) as nexus.* attributes. No prompt, completion, header or key
// is ever set; an error is its stable code, never an upstream's message.
import { injectTraceHeaders, type TraceContext } from '../../../core/telemetry/trace-context.ts';
import { Span, SpanKind, type Tracing } from '../../../core/telemetry/tracing.ts';
import type { Deployment, ProviderType } from '../catalog/catalog.ts';
import type { ResolvedKey } from '../keys/virtual-keys.ts';
import type { Operation, Usage } from '../providers/types.ts';

/** gen_ai.provider.name: the conventions' well-known values where there is one. */
const PROVIDER_NAME: Record<ProviderType, string> = {
  openai: 'openai',
  'openai-compatible': 'openai-compatible',
  azure: 'azure.ai.openai',
  gemini: 'gcp.gemini',
  anthropic: 'anthropic',
  glm: 'zhipu',
};

/** gen_ai.operation.name: well-known values for inference and embeddings; Nexus's operation otherwise. */
function operationName(op: Operation, provider: ProviderType): string {
  if (op === 'chat' || op === 'responses') return provider === 'gemini' ? 'generate_content' : 'chat';
  if (op === 'completions') return 'text_completion';
  return op;
}

const hosts = new Map<string, string>();
/** The provider's host (server.address); never the URL, which may carry a query credential. */
function hostOf(baseUrl: string): string {
  let h = hosts.get(baseUrl);
  if (h === undefined) {
    try {
      h = new URL(baseUrl).hostname;
    } catch {
      h = '';
    }
    if (hosts.size > 1000) hosts.clear();
    hosts.set(baseUrl, h);
  }
  return h;
}

/**
 * Before an attempt is sent: its CLIENT span (while exporting) and the `traceparent` naming it as the
 * upstream's parent. Without export, `parent` is the caller's own context, passed on as it came.
 */
export function beginAttempt(tracing: Tracing, parent: TraceContext, call: { op: Operation; stream: boolean; key: ResolvedKey }, modelName: string, d: Deployment, attempt: number, headers: Record<string, string>): Span | null {
  if (!(parent instanceof Span)) {
    if (tracing.propagate) injectTraceHeaders(headers, parent);
    return null;
  }
  const op = operationName(call.op, d.provider.type);
  const provider = PROVIDER_NAME[d.provider.type] ?? d.provider.type;
  const span = tracing.start(`${op} ${d.upstreamModel}`, SpanKind.CLIENT, parent);
  span
    .set('gen_ai.operation.name', op)
    .set('gen_ai.provider.name', provider)
    .set('gen_ai.system', provider)
    .set('gen_ai.request.model', d.upstreamModel)
    .set('server.address', hostOf(d.provider.baseUrl))
    .set('nexus.model', modelName)
    .set('nexus.stream', call.stream)
    .set('nexus.attempt', attempt)
    .set('nexus.provider.id', d.provider.id)
    .set('nexus.provider.name', d.provider.name)
    .set('nexus.deployment.id', d.id)
    .set('nexus.virtual_key.id', call.key.id)
    .set('nexus.routed_via', d.provider.nodeId ? 'node' : 'direct')
    .set('nexus.node_id', d.provider.nodeId);
  if (tracing.propagate) injectTraceHeaders(headers, span);
  return span;
}

/** An attempt that failed and gave way to the next deployment (or to the client's error). */
export function attemptFailed(span: Span | null, code: string, status?: number): void {
  if (!span) return;
  span.set('http.response.status_code', status).fail(code).finish();
}

export interface CallOutcome {
  status: number;
  errorCode: string | null;
  usage: Usage | null;
  /** performance.now() when the first byte went to the client, or null. */
  firstByteAt: number | null;
  responseModel: string | null;
}

/**
 * When the call is over (a stream: after its last event, so usage is known): the last attempt's span
 * gets the usage, cost and outcome; the request's SERVER span learns whose key it was.
 */
export function endCall(server: TraceContext | null | undefined, span: Span | null, key: ResolvedKey, o: CallOutcome, costUsd: number): void {
  if (server instanceof Span) server.set('user.id', key.userId).set('nexus.virtual_key.id', key.id);
  if (!span) return;
  const u = o.usage;
  if (u) {
    span
      .set('gen_ai.usage.input_tokens', u.input)
      .set('gen_ai.usage.output_tokens', u.output)
      .set('gen_ai.usage.cache_read.input_tokens', u.cached)
      .set('gen_ai.usage.reasoning.output_tokens', u.reasoning);
  }
  span
    .set('gen_ai.response.model', o.responseModel)
    .set('nexus.cost_usd', costUsd)
    .set('http.response.status_code', o.status);
  if (o.firstByteAt !== null && span.attributes['nexus.stream'] === true) span.set('gen_ai.response.time_to_first_chunk', Math.max(0, o.firstByteAt - span.start) / 1000);
  if (o.status >= 500 || o.errorCode) span.fail(o.errorCode ?? String(o.status));
  span.finish();
}
