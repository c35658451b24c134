export const USERNAME_SCHEMA = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[^\\s\\x00-\\x1f]+$' } as const;
// A name people read in lists, the audit log and its CSV: no control characters (a NUL or a newline
// there is never meant), as the gateway's names.
export const NAME_SCHEMA = { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\x00-\\x1f]+$' } as const;
export const ID_PARAMS = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 64 } },
} as const;
