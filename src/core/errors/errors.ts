// One error type for the whole process. Each surface renders it in its own wire format
// (STYLE.md habit 3); `code` is stable and documented in docs/errors.md.

export type ErrorCode =
  | 'invalid_json'
  | 'validation_failed'
  | 'unsupported_media_type'
  | 'payload_too_large'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'conflict'
  | 'setup_complete'
  | 'rate_limited'
  | 'precondition_failed'
  | 'bad_gateway'
  | 'upstream_timeout'
  | 'unavailable'
  | 'internal';

const STATUS: Record<ErrorCode, number> = {
  invalid_json: 400,
  validation_failed: 400,
  unsupported_media_type: 415,
  payload_too_large: 413,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  setup_complete: 409,
  rate_limited: 429,
  precondition_failed: 412,
  bad_gateway: 502,
  upstream_timeout: 504,
  unavailable: 503,
  internal: 500,
};

export interface AppErrorOptions {
  status?: number;
  /** Numeric protocol code where a surface has them (hub: 8002 node offline, 8003 registration failed). */
  numericCode?: number;
  /** Seconds, sent as Retry-After. */
  retryAfter?: number;
  /** false: trying again (soon) cannot succeed — a spent budget. The gateway then sends
   *  `x-should-retry: false`, which the OpenAI and Anthropic SDKs obey instead of retrying a 429. */
  retryable?: boolean;
  /** Extra fields a surface may render (e.g. which limit was hit, SCIM scimType). */
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class AppError extends Error {
  override name = 'AppError';
  readonly code: ErrorCode;
  readonly status: number;
  readonly numericCode: number | undefined;
  readonly retryAfter: number | undefined;
  readonly retryable: boolean | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, opts: AppErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.status = opts.status ?? STATUS[code];
    this.numericCode = opts.numericCode;
    this.retryAfter = opts.retryAfter;
    this.retryable = opts.retryable;
    this.details = opts.details;
  }
}

export const notFound = (what: string) => new AppError('not_found', `${what} not found`);
export const badRequest = (message: string, details?: Record<string, unknown>) =>
  new AppError('validation_failed', message, details ? { details } : {});
export const unauthorized = (message = 'authentication required') => new AppError('unauthorized', message);
export const forbidden = (message = 'not allowed') => new AppError('forbidden', message);
export const conflict = (message: string) => new AppError('conflict', message);

interface FastifyLikeError {
  statusCode?: number;
  code?: string;
  message?: string;
  validation?: unknown;
  validationContext?: string;
}

/**
 * Turns anything thrown inside a request into an AppError. Fastify's own errors (body parsing,
 * validation, limits) become stable codes; anything unknown becomes `internal` with a message
 * that reveals nothing of the process.
 */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = (err ?? {}) as FastifyLikeError;
  if (e.validation) {
    const first = (e.validation as Array<{ instancePath?: string; keyword?: string; params?: Record<string, unknown> }>)[0];
    const extra = first?.params?.additionalProperty;
    if (typeof extra === 'string') {
      const where = `${e.validationContext ?? 'body'}${(first?.instancePath ?? '').replaceAll('/', '.')}`;
      return new AppError('validation_failed', `${where} has unknown field "${extra}"`, { details: { param: extra } });
    }
    // The field at fault, as `param` (dotted, like the unknown-field case), and for an enum the
    // values it takes: "must be equal to one of the allowed values" alone leaves the caller guessing.
    const missing = first?.params?.missingProperty;
    const path = [...(first?.instancePath ?? '').split('/').filter(Boolean), ...(typeof missing === 'string' ? [missing] : [])].join('.');
    const allowed = first?.params?.allowedValues;
    let message = cleanValidationMessage(e.message ?? 'invalid request');
    if (Array.isArray(allowed)) message += `: ${allowed.map(String).join(', ')}`;
    const format = first?.keyword === 'format' ? FORMAT_EXAMPLES[String(first.params?.format)] : undefined;
    if (format) message += ` (${format})`;
    return new AppError('validation_failed', message, path ? { details: { param: path } } : {});
  }
  switch (e.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError('invalid_json', e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY'
        ? 'request body is empty but Content-Type is application/json'
        : 'request body is not valid JSON');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError('unsupported_media_type', 'unsupported Content-Type; send application/json');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('payload_too_large', 'request body is larger than the configured limit');
    case 'FST_ERR_NOT_FOUND':
      return new AppError('not_found', 'no such route');
  }
  if (e.statusCode === 413) return new AppError('payload_too_large', 'request body is larger than the configured limit');
  if (e.statusCode === 415) return new AppError('unsupported_media_type', 'unsupported Content-Type; send application/json');
  if (typeof e.message === 'string' && e.statusCode === 400 && /JSON/i.test(e.message)) {
    return new AppError('invalid_json', 'request body is not valid JSON');
  }
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
    return new AppError('validation_failed', e.message ?? 'bad request', { status: e.statusCode });
  }
  return new AppError('internal', 'internal error', { cause: err });
}

/** What a value of a named format looks like, for formats whose name alone says little. */
const FORMAT_EXAMPLES: Record<string, string> = {
  'date-time-or-date': 'a date such as 2026-12-01 or an RFC 3339 time such as 2026-12-01T09:30:00Z',
  'date-time': 'an RFC 3339 time such as 2026-12-01T09:30:00Z',
  date: 'a date such as 2026-12-01',
  uri: 'an absolute URL',
};

/**
 * fastify writes ajv's errors as "body/deployments/0/provider_id must be string" (several joined by
 * ", "). Callers read dotted paths, so the path before the first space of each becomes
 * `body.deployments.0.provider_id`; the rest (a pattern, an allowed value) is left as ajv said it.
 */
export function cleanValidationMessage(msg: string): string {
  return msg.replace(/(^|, )(body|querystring|params|headers)(\/\S*)?(?= )/g, (_all, lead: string, part: string, path: string | undefined) =>
    `${lead}${part}${(path ?? '').replaceAll('/', '.')}`);
}

/** Control-plane rendering: `{error:{code,message}}` (numeric hub codes go in `code`). */
export function renderControlError(err: AppError): { error: Record<string, unknown> } {
  return {
    error: {
      code: err.numericCode ?? err.code,
      message: err.message,
      ...(err.details ?? {}),
    },
  };
}
