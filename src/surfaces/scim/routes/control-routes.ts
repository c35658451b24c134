// Control-plane routes this surface owns (admin only, `{error:{code,message}}`):
// SCIM tokens (DESIGN.md §3: POST /api/v1/scim/tokens {name} → {id, token}) and the mapping of
// groups to a role and to the models their members' virtual keys may use.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../../core/context.ts';
import { AppError } from '../../../core/errors/errors.ts';
import { actorOf, requireAdmin } from '../../../core/http/auth.ts';
import type { Role } from '../../../core/identity/users-store.ts';
import type { TokensService } from '../tokens-service.ts';

const ID_PARAMS = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } } as const;

const tokenBody = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: { type: 'string', minLength: 1, maxLength: 200 } },
} as const;

const mappingBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    role: { type: ['string', 'null'], enum: ['admin', 'member', null] },
    models: { type: ['array', 'null'], maxItems: 1000, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 200 } },
  },
} as const;

export function controlRoutes(app: FastifyInstance, ctx: AppContext, tokens: TokensService) {
  const admin = { preHandler: requireAdmin(ctx) };

  app.post<{ Body: { name: string } }>('/api/v1/scim/tokens', { ...admin, schema: { body: tokenBody } }, async (req, reply) => {
    const { token, record } = tokens.mint(req.body.name, req.principal!.userId);
    ctx.audit.record({ ...actorOf(req), action: 'scim.token.create', target_type: 'scim_token', target_id: record.id, outcome: 'success', details: { name: record.name } });
    return reply.code(201).send({ ...record, token });
  });

  app.get('/api/v1/scim/tokens', admin, async () => ({ items: tokens.list() }));

  app.delete<{ Params: { id: string } }>('/api/v1/scim/tokens/:id', { ...admin, schema: { params: ID_PARAMS } }, async (req, reply) => {
    if (!tokens.get(req.params.id)) throw new AppError('not_found', 'SCIM token not found');
    tokens.revoke(req.params.id);
    ctx.audit.record({ ...actorOf(req), action: 'scim.token.revoke', target_type: 'scim_token', target_id: req.params.id, outcome: 'success' });
    return reply.code(204).send();
  });

  const groups = ctx.identity.groups;
  const view = (id: string) => {
    const g = groups.store.get(id);
    if (!g) throw new AppError('not_found', 'group not found');
    return { ...g, member_count: groups.store.memberIds(id).length };
  };

  app.get<{ Querystring: { limit?: number; after?: string } }>('/api/v1/groups', {
    ...admin,
    schema: { querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 500 }, after: { type: 'string', maxLength: 300 } } } },
  }, async (req) => {
    const limit = req.query.limit ?? 100;
    const items = groups.store.list({ limit, ...(req.query.after ? { after: req.query.after } : {}) });
    return { items, next_cursor: items.length === limit ? items.at(-1)!.display_name : null };
  });

  app.get<{ Params: { id: string } }>('/api/v1/groups/:id', { ...admin, schema: { params: ID_PARAMS } }, async (req) => view(req.params.id));

  app.patch<{ Params: { id: string }; Body: { role?: Role | null; models?: string[] | null } }>(
    '/api/v1/groups/:id',
    { ...admin, schema: { params: ID_PARAMS, body: mappingBody } },
    async (req) => {
      view(req.params.id);
      groups.setMapping(req.params.id, req.body);
      ctx.audit.record({ ...actorOf(req), action: 'group.mapping.update', target_type: 'group', target_id: req.params.id, outcome: 'success', details: { ...req.body } });
      return view(req.params.id);
    },
  );
}
