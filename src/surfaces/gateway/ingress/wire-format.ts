// Which wire format a request speaks, and errors rendered in it (STYLE.md habit 3):
//   OpenAI / Azure  {error:{message,type,param,code}}        platform.openai.com/docs/guides/error-codes
//   Gemini          {error:{code,message,status}}            ai.google.dev/gemini-api/docs/troubleshooting
//   Zhipu GLM       {error:{code:"1211",message}}            open.bigmodel.cn/dev/api/error-code/error-code-v4
//   Anthropic       {type:"error",error:{type,message}}      docs.anthropic.com/en/api/errors
// `/v1` is shared by OpenAI, Gemini and Anthropic (Gemini's stable API lives under
// /v1/models/{m}:method, Anthropic's under /v1/messages): a `:method` suffix, or GET /v1/models with
// a Gemini key header/parameter, means Gemini; /v1/messages, or GET /v1/models with an
// `anthropic-version` header (which every Anthropic SDK sends), means Anthropic.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError, toAppError } from '../../../core/errors/errors.ts';
import type { LaneReply, LaneRequest } from '../../../core/http/fast-lane.ts';

export type IngressFormat = 'openai' | 'azure' | 'gemini' | 'glm' | 'anthropic';

const GEMINI_METHOD = /^\/v1\/models\/[^?]*:[A-Za-z]+(\?|$)/;
const GEMINI_KEY_PARAM = /[?&]key=/;

export function isGatewayPath(url: string): boolean {
  return /^\/(v1|v1beta|openai|api\/paas)(\/|\?|$)/.test(url);
}

export function formatOf(url: string, headers: Record<string, unknown>): IngressFormat {
  if (url.startsWith('/v1beta')) return 'gemini';
  if (url.startsWith('/openai')) return 'azure';
  if (url.startsWith('/api/paas')) return 'glm';
  if (url.startsWith('/v1/models') && (GEMINI_METHOD.test(url) || headers['x-goog-api-key'] !== undefined || GEMINI_KEY_PARAM.test(url))) {
    return 'gemini';
  }
  if (url.startsWith('/v1/messages') || (url.startsWith('/v1/models') && headers['anthropic-version'] !== undefined)) return 'anthropic';
  return 'openai';
}

const GEMINI_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  405: 'INVALID_ARGUMENT',
  409: 'ALREADY_EXISTS',
  413: 'INVALID_ARGUMENT',
  415: 'INVALID_ARGUMENT',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
  500: 'INTERNAL',
  501: 'UNIMPLEMENTED',
  502: 'UNAVAILABLE',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

function openAiType(err: AppError): string {
  if (typeof err.details?.type === 'string') return err.details.type;
  if (err.status === 401) return 'invalid_request_error';
  if (err.status === 403) return 'permission_error';
  if (err.status === 429) return 'rate_limit_error';
  if (err.status >= 500) return 'server_error';
  return 'invalid_request_error';
}

function openAiCode(err: AppError): string | null {
  if (typeof err.details?.code === 'string') return err.details.code;
  if (err.numericCode !== undefined) return String(err.numericCode); // hub codes, e.g. 8002 node offline
  if (err.status === 401) return 'invalid_api_key';
  if (err.status === 404) return 'not_found';
  if (err.status === 429) return 'rate_limit_exceeded';
  if (err.status >= 500) return err.code;
  return err.code === 'validation_failed' ? 'invalid_value' : err.code;
}

/** Zhipu's documented numeric-string codes for the conditions the gateway reports. */
function glmCode(err: AppError): string {
  if (typeof err.details?.glm_code === 'string') return err.details.glm_code;
  switch (err.status) {
    case 401:
      return '1000';
    case 403:
      return '1220';
    case 404:
      return err.details?.code === 'model_not_found' ? '1211' : '1212';
    case 429:
      return err.details?.limit === 'budget' ? '1113' : '1302';
    case 400:
    case 413:
    case 415:
      return '1214';
  }
  return err.status >= 500 ? '1234' : '1214';
}

/** Anthropic's error types (https://docs.anthropic.com/en/api/errors), by status. */
function anthropicType(err: AppError): string {
  switch (err.status) {
    case 401:
      return 'authentication_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 529:
      return 'overloaded_error';
  }
  return err.status >= 500 ? 'api_error' : 'invalid_request_error';
}

export function errorBody(format: IngressFormat, err: AppError): Record<string, unknown> {
  // 5xx bodies never leak internals: `internal` errors carry a fixed message.
  const message = err.message;
  switch (format) {
    case 'gemini':
      return { error: { code: err.status, message, status: GEMINI_STATUS[err.status] ?? (err.status >= 500 ? 'INTERNAL' : 'INVALID_ARGUMENT') } };
    case 'glm':
      return { error: { code: glmCode(err), message } };
    case 'anthropic':
      return { type: 'error', error: { type: anthropicType(err), message } };
    default:
      return { error: { message, type: openAiType(err), param: (err.details?.param as string | undefined) ?? null, code: openAiCode(err) } };
  }
}

export function errorHeaders(err: AppError): Record<string, string> {
  const h: Record<string, string> = {};
  if (err.retryAfter !== undefined) h['retry-after'] = String(err.retryAfter);
  if (err.retryable === false) h['x-should-retry'] = 'false';
  if (typeof err.details?.limit === 'string') h['x-nexus-limit'] = err.details.limit;
  return h;
}

export function sendGatewayError(err: unknown, req: FastifyRequest, reply: FastifyReply) {
  const appErr = toAppError(err);
  if (appErr.status >= 500 && appErr.code === 'internal') req.log.error({ err }, 'gateway request failed');
  return reply
    .code(appErr.status)
    .headers(errorHeaders(appErr))
    .type('application/json; charset=utf-8')
    .send(errorBody(formatOf(req.url, req.headers), appErr));
}

/** sendGatewayError for the fast lane (core/http/fast-lane.ts): the same status, headers and body. */
export function sendGatewayLaneError(err: unknown, req: LaneRequest, reply: LaneReply): void {
  const appErr = toAppError(err);
  if (appErr.status >= 500 && appErr.code === 'internal') req.log.error({ err }, 'gateway request failed');
  const body = JSON.stringify(errorBody(formatOf(req.url, req.headers), appErr));
  const headers: Record<string, string | number> = reply.getHeaders();
  Object.assign(headers, errorHeaders(appErr));
  headers['content-type'] = 'application/json; charset=utf-8';
  headers['content-length'] = Buffer.byteLength(body);
  reply.raw.writeHead(appErr.status, headers).end(body);
}

export function sendGatewayNotFound(req: FastifyRequest, reply: FastifyReply) {
  return sendGatewayError(new AppError('not_found', `no such route: ${req.method} ${req.url.split('?')[0]}`), req, reply);
}
