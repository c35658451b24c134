import { describe, expect, it } from 'vitest';
import { cleanValidationMessage, toAppError } from './errors.ts';

describe('validation messages', () => {
  it('dots the field path and leaves patterns and values as they are', () => {
    expect(cleanValidationMessage('body/name must match pattern "^[A-Za-z0-9][A-Za-z0-9._/@+-]*$"'))
      .toBe('body.name must match pattern "^[A-Za-z0-9][A-Za-z0-9._/@+-]*$"');
    expect(cleanValidationMessage('body/deployments/0/provider_id must be string, body/x must be equal to constant a/b'))
      .toBe('body.deployments.0.provider_id must be string, body.x must be equal to constant a/b');
    expect(cleanValidationMessage("body must have required property 'name'")).toBe("body must have required property 'name'");
    expect(cleanValidationMessage('params/id must match format "uuid"')).toBe('params.id must match format "uuid"');
  });

  it('names the field in param and says what a format looks like', () => {
    const err = toAppError({
      validation: [{ instancePath: '/since', keyword: 'format', params: { format: 'date-time-or-date' } }],
      validationContext: 'querystring',
      message: 'querystring/since must match format "date-time-or-date"',
    });
    expect(err.code).toBe('validation_failed');
    expect(err.details).toEqual({ param: 'since' });
    expect(err.message).toBe('querystring.since must match format "date-time-or-date" (a date such as 2026-12-01 or an RFC 3339 time such as 2026-12-01T09:30:00Z)');
    const pattern = toAppError({
      validation: [{ instancePath: '/name', keyword: 'pattern', params: { pattern: '^[a/b]+$' } }],
      message: 'body/name must match pattern "^[a/b]+$"',
    });
    expect([pattern.message, pattern.details]).toEqual(['body.name must match pattern "^[a/b]+$"', { param: 'name' }]);
  });
});
