import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../../core/context.ts';
import { AppError } from '../../../core/errors/errors.ts';
import { actorOf, requireUser } from '../../../core/http/auth.ts';
import { ID_PARAMS, NAME_SCHEMA } from './schemas.ts';

const createBody = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: NAME_SCHEMA, expires_at: { type: 'string', format: 'date-time' } },
} as const;

export function tokensRoutes(app: FastifyInstance, ctx: AppContext) {
  const auth = { preHandler: requireUser(ctx) };

  app.post<{ Body: { name: string; expires_at?: string } }>('/api/v1/tokens', { ...auth, schema: { body: createBody } }, async (req, reply) => {
    const expiresAt = req.body.expires_at ? new Date(req.body.expires_at).toISOString() : null;
    if (expiresAt && expiresAt <= new Date().toISOString()) throw new AppError('validation_failed', 'expires_at is in the past', { details: { param: 'expires_at' } });
    const { token, record } = ctx.identity.createApiToken(req.principal!.userId, req.body.name, expiresAt);
    ctx.audit.record({ ...actorOf(req), action: 'token.create', target_type: 'api_token', target_id: record.id, outcome: 'success', details: { name: record.name } });
    return reply.code(201).send({ ...record, token });
  });

  app.get('/api/v1/tokens', auth, async (req) => ({ items: ctx.identity.listApiTokens(req.principal!.userId) }));

  app.delete<{ Params: { id: string } }>('/api/v1/tokens/:id', { ...auth, schema: { params: ID_PARAMS } }, async (req, reply) => {
    const record = ctx.identity.getApiToken(req.params.id);
    // Admins may revoke anyone's token; members only their own. Others' ids look nonexistent.
    if (!record || (record.user_id !== req.principal!.userId && req.principal!.role !== 'admin')) {
      throw new AppError('not_found', 'token not found');
    }
    ctx.identity.revokeApiToken(record.id);
    ctx.audit.record({ ...actorOf(req), action: 'token.revoke', target_type: 'api_token', target_id: record.id, outcome: 'success' });
    return reply.code(204).send();
  });
}
