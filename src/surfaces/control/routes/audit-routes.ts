import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../../core/context.ts';
import { AppError } from '../../../core/errors/errors.ts';
import { requireAdmin } from '../../../core/http/auth.ts';
import { TIME_QUERY, queryTime } from '../../../core/http/validation.ts';

const query = {
  type: 'object',
  additionalProperties: false,
  properties: {
    action: { type: 'string', maxLength: 100 },
    actor: { type: 'string', maxLength: 200 },
    routed_via: { type: 'string', enum: ['direct', 'node'] },
    node_id: { type: 'string', maxLength: 64 },
    outcome: { type: 'string', enum: ['success', 'failure', 'denied'] },
    since: TIME_QUERY,
    until: TIME_QUERY,
    cursor: { type: 'string', maxLength: 40 },
    limit: { type: 'integer', minimum: 1, maximum: 1000 },
  },
} as const;

interface AuditQs {
  action?: string;
  actor?: string;
  routed_via?: string;
  node_id?: string;
  outcome?: string;
  since?: string;
  until?: string;
  cursor?: string;
  limit?: number;
}

// Cursor: opaque base64url of the last id seen; pages go newest first and stay stable while new
// entries are appended (ids only grow).
const encodeCursor = (id: number) => Buffer.from(`a:${id}`).toString('base64url');
function decodeCursor(cursor: string): number {
  const m = /^a:(\d+)$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw new AppError('validation_failed', 'cursor is not valid', { details: { param: 'cursor' } });
  return Number(m[1]);
}

export function auditRoutes(app: FastifyInstance, ctx: AppContext) {
  app.get<{ Querystring: AuditQs }>('/api/v1/audit', { preHandler: requireAdmin(ctx), schema: { querystring: query } }, async (req) => {
    const { cursor, limit = 100, since, until, ...filters } = req.query;
    const items = ctx.audit.query({
      ...filters,
      ...(since ? { since: queryTime(since) } : {}),
      ...(until ? { until: queryTime(until) } : {}),
      ...(cursor ? { before: decodeCursor(cursor) } : {}),
      limit,
    });
    return { items, next_cursor: items.length === limit ? encodeCursor(items.at(-1)!.id) : null };
  });
}
