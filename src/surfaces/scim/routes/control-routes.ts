// Control-plane routes this surface owns (admin only, `{error:{code,message}}`):
// SCIM tokens (DESIGN.md §3: POST /api/v1/scim/tokens {name} → {id, token}) and the mapping of
// groups to a role, to the models their members' virtual keys may use, and to a budget across the
// virtual keys charged to the group (Nexus's own fields: SCIM's PUT and PATCH never touch them).
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../../core/context.ts';
import { AppError } from '../../../core/errors/errors.ts';
import { actorOf, requireAdmin } from '../../../core/http/auth.ts';
import type { Group, GroupMapping } from '../../../core/identity/groups.ts';
import type { TokensService } from '../tokens-service.ts';

const ID_PARAMS = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } } as const;

const tokenBody = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  // Shown in the console and as the actor of every SCIM write in the audit log: no control characters.
  properties: { name: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\x00-\\x1f]+$' } },
} as const;

const mappingBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    role: { type: ['string', 'null'], enum: ['admin', 'member', null] },
    models: { type: ['array', 'null'], maxItems: 1000, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 200 } },
    // The AI gateway budget across the keys charged to the group (as a user's budget); null removes it.
    max_budget_usd: { type: ['number', 'null'], minimum: 0, maximum: 1e9 },
    budget_period: { type: ['string', 'null'], enum: ['day', 'week', 'month', null] },
  },
} as const;

const BUDGET_FIELDS = ['max_budget_usd', 'budget_period'] as const;

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
  /** A group with its budget's spend in the current period (counted by the AI gateway). */
  const withBudget = (g: Group) => ({ ...g, ...groups.budgetStatus(g) });
  const view = (id: string) => {
    const g = groups.store.get(id);
    if (!g) throw new AppError('not_found', 'group not found');
    return { ...withBudget(g), member_count: groups.store.memberIds(id).length };
  };

  app.get<{ Querystring: { limit?: number; after?: string; user_id?: string } }>('/api/v1/groups', {
    ...admin,
    schema: {
      querystring: {
        type: 'object',
        properties: { limit: { type: 'integer', minimum: 1, maximum: 500 }, after: { type: 'string', maxLength: 300 }, user_id: { type: 'string', minLength: 1, maxLength: 64 } },
      },
    },
  }, async (req) => {
    // One user's groups (the groups a key of theirs may be charged to), all of them at once.
    if (req.query.user_id) return { items: groups.store.groupsOfUser(req.query.user_id).map(withBudget), next_cursor: null };
    const limit = req.query.limit ?? 100;
    const items = groups.store.list({ limit, ...(req.query.after ? { after: req.query.after } : {}) });
    return { items: items.map(withBudget), next_cursor: items.length === limit ? items.at(-1)!.display_name : null };
  });

  app.get<{ Params: { id: string } }>('/api/v1/groups/:id', { ...admin, schema: { params: ID_PARAMS } }, async (req) => view(req.params.id));

  app.patch<{ Params: { id: string }; Body: GroupMapping }>(
    '/api/v1/groups/:id',
    { ...admin, schema: { params: ID_PARAMS, body: mappingBody } },
    async (req) => {
      const before = view(req.params.id);
      const after = groups.setMapping(req.params.id, req.body)!;
      const budgetChanged = BUDGET_FIELDS.some((f) => f in req.body);
      ctx.audit.record({ ...actorOf(req), action: 'group.mapping.update', target_type: 'group', target_id: req.params.id, outcome: 'success', details: {
        ...req.body,
        ...(budgetChanged ? { budget: { from: { max_budget_usd: before.max_budget_usd, budget_period: before.budget_period }, to: { max_budget_usd: after.max_budget_usd, budget_period: after.budget_period } } } : {}),
      } });
      return view(req.params.id);
    },
  );
}
