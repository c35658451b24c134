// Schema validation. Bodies are validated strictly (no type coercion: `"username": 42` is an error,
// not "42"); querystrings and params come as strings and are coerced. Unknown fields are reported,
// never silently dropped.
import { Ajv, type ErrorObject, type Options } from 'ajv';
import formatsPlugin from 'ajv-formats';
import type { FastifyInstance } from 'fastify';

const addFormats = formatsPlugin as unknown as (ajv: Ajv) => Ajv;

/**
 * A time filter in a query string (`since`, `until`): an RFC 3339 date-time, or a full-date alone
 * (`2026-12-07`), which is the start of that day in UTC. Read it with `queryTime`.
 */
export const TIME_QUERY = { type: 'string', format: 'date-time-or-date' } as const;

/**
 * A value TIME_QUERY accepted, as the ISO string the stores compare with. A date-only string is read
 * as UTC midnight (ECMA-262 §21.4.3.2, Date Time String Format).
 */
export const queryTime = (value: string): string => new Date(value).toISOString();

function make(opts: Options): Ajv {
  const ajv = new Ajv({ removeAdditional: false, useDefaults: true, allErrors: false, strict: false, ...opts });
  addFormats(ajv);
  const { date, 'date-time': dateTime } = ajv.formats as Record<string, { validate: (s: string) => boolean }>;
  // Date.parse as well: RFC 3339 allows a leap second (23:59:60), which Date cannot hold.
  ajv.addFormat(TIME_QUERY.format, {
    type: 'string',
    validate: (s) => (date!.validate(s) || dateTime!.validate(s)) && !Number.isNaN(Date.parse(s)),
  });
  return ajv;
}

type Validate = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

/**
 * An empty query parameter (`?routed_via=&since=`, as forms and copied templates send) means "not
 * given": it is dropped before validation, so it neither fails an enum or a format nor filters for
 * the empty string. Only declared parameters are dropped; an unknown one is still reported.
 */
function emptyMeansAbsent(schema: unknown, validate: Validate): Validate {
  const declared = Object.keys((schema as { properties?: Record<string, unknown> }).properties ?? {});
  if (!declared.length) return validate;
  const wrapped: Validate = (query) => {
    if (query && typeof query === 'object') {
      const q = query as Record<string, unknown>;
      for (const k of declared) if (q[k] === '') delete q[k];
    }
    const ok = validate(query);
    wrapped.errors = validate.errors; // fastify reads the errors from the function it called
    return ok;
  };
  return wrapped;
}

export function installValidation(app: FastifyInstance): void {
  const strict = make({ coerceTypes: false });
  const coercing = make({ coerceTypes: 'array' });
  app.setValidatorCompiler(({ schema, httpPart }) => {
    if (httpPart === 'body') return strict.compile(schema);
    const validate = coercing.compile(schema);
    return httpPart === 'querystring' ? emptyMeansAbsent(schema, validate) : validate;
  });
}

/**
 * A JSON request body as text → its value: an empty (or all-blank) body is no body (many clients
 * send Content-Type on DELETE), a malformed one throws the `invalid_json` error (a 400 that
 * errors.ts `toAppError` and every wire format render). Shared by the content-type parser below and
 * core/http/fast-lane.ts, so both read a body the same way.
 */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    const err = new Error('request body is not valid JSON') as Error & { statusCode: number; code: string };
    err.statusCode = 400;
    err.code = 'FST_ERR_CTP_INVALID_JSON_BODY';
    throw err;
  }
}

/** JSON bodies, read by parseJsonBody. */
export function installJsonParser(app: FastifyInstance, types: string[] = ['application/json']): void {
  for (const t of types) app.removeContentTypeParser(t);
  app.addContentTypeParser(types, { parseAs: 'string' }, (_req, body, done) => {
    let value: unknown;
    try {
      value = parseJsonBody(body as string);
    } catch (err) {
      return done(err as Error, undefined);
    }
    done(null, value);
  });
}
