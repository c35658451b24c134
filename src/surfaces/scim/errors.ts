// SCIM errors (RFC 7644 §3.12): an AppError carrying the `scimType` the error schema reports.
import { AppError, type ErrorCode } from '../../core/errors/errors.ts';

export type ScimType =
  | 'invalidFilter'
  | 'tooMany'
  | 'uniqueness'
  | 'mutability'
  | 'invalidSyntax'
  | 'invalidPath'
  | 'noTarget'
  | 'invalidValue'
  | 'invalidVers'
  | 'sensitive';

export function scimError(scimType: ScimType, detail: string, code: ErrorCode = scimType === 'uniqueness' ? 'conflict' : 'validation_failed'): AppError {
  return new AppError(code, detail, { details: { scimType } });
}
