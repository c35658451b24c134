// Schema validation. Bodies are validated strictly (no type coercion: `"username": 42` is an error,
// not "42"); querystrings and params come as strings and are coerced. Unknown fields are reported,
// never silently dropped.
import { Ajv, type Options } from 'ajv';
import formatsPlugin from 'ajv-formats';
import type { FastifyInstance } from 'fastify';

const addFormats = formatsPlugin as unknown as (ajv: Ajv) => Ajv;

function make(opts: Options): Ajv {
  const ajv = new Ajv({ removeAdditional: false, useDefaults: true, allErrors: false, strict: false, ...opts });
  addFormats(ajv);
  return ajv;
}

export function installValidation(app: FastifyInstance): void {
  const strict = make({ coerceTypes: false });
  const coercing = make({ coerceTypes: 'array' });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema));
}

/**
 * JSON bodies: an empty body counts as no body (many clients send Content-Type on DELETE), a
 * malformed one is an `invalid_json` error.
 */
export function installJsonParser(app: FastifyInstance, types: string[] = ['application/json']): void {
  for (const t of types) app.removeContentTypeParser(t);
  app.addContentTypeParser(types, { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string;
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      const err = new Error('request body is not valid JSON') as Error & { statusCode: number; code: string };
      err.statusCode = 400;
      err.code = 'FST_ERR_CTP_INVALID_JSON_BODY';
      done(err, undefined);
    }
  });
}
