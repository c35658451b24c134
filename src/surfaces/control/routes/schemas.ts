export const USERNAME_SCHEMA = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[^\\s\\x00-\\x1f]+$' } as const;
export const NAME_SCHEMA = { type: 'string', minLength: 1, maxLength: 200 } as const;
export const ID_PARAMS = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 64 } },
} as const;
