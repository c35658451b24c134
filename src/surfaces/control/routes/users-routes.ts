import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../../core/context.ts';
import { AppError } from '../../../core/errors/errors.ts';
import { actorOf, requireAdmin } from '../../../core/http/auth.ts';
import { PASSWORD_MAX, PASSWORD_MIN } from '../../../core/identity/identity.ts';
import type { Role } from '../../../core/identity/users-store.ts';
import { ID_PARAMS, USERNAME_SCHEMA } from './schemas.ts';

const userFields = {
  email: { type: ['string', 'null'], maxLength: 254 },
  display_name: { type: ['string', 'null'], maxLength: 200 },
  role: { type: 'string', enum: ['admin', 'member'] },
  password: { type: 'string', minLength: PASSWORD_MIN, maxLength: PASSWORD_MAX },
  // The AI gateway budget across all of the user's virtual keys; null removes it.
  max_budget_usd: { type: ['number', 'null'], minimum: 0, maximum: 1e9 },
  budget_period: { type: ['string', 'null'], enum: ['day', 'week', 'month', null] },
} as const;

const createBody = {
  type: 'object',
  required: ['username'],
  additionalProperties: false,
  properties: { username: USERNAME_SCHEMA, ...userFields },
} as const;

const patchBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { ...userFields, active: { type: 'boolean' } },
} as const;

interface UserBody {
  username: string;
  email?: string | null;
  display_name?: string | null;
  role?: Role;
  password?: string;
  active?: boolean;
  max_budget_usd?: number | null;
  budget_period?: 'day' | 'week' | 'month' | null;
}

export function usersRoutes(app: FastifyInstance, ctx: AppContext) {
  const admin = { preHandler: requireAdmin(ctx) };

  app.get<{ Querystring: { limit?: number; after?: string } }>('/api/v1/users', {
    ...admin,
    schema: { querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 500 }, after: { type: 'string', maxLength: 200 } } } },
  }, async (req) => {
    const limit = req.query.limit ?? 100;
    const items = ctx.identity.users.list({ limit, ...(req.query.after ? { after: req.query.after } : {}) });
    return { items, next_cursor: items.length === limit ? items.at(-1)!.username : null };
  });

  app.post<{ Body: UserBody }>('/api/v1/users', { ...admin, schema: { body: createBody } }, async (req, reply) => {
    const { max_budget_usd, budget_period, ...fields } = req.body;
    let user = await ctx.identity.createUser({ ...fields, source: 'local' });
    if (max_budget_usd != null || budget_period != null) user = await ctx.identity.updateUser(user.id, { max_budget_usd, budget_period });
    ctx.audit.record({ ...actorOf(req), action: 'user.create', target_type: 'user', target_id: user.id, outcome: 'success', details: { username: user.username, role: user.role } });
    return reply.code(201).send(user);
  });

  app.get<{ Params: { id: string } }>('/api/v1/users/:id', { ...admin, schema: { params: ID_PARAMS } }, async (req) => {
    const user = ctx.identity.users.get(req.params.id);
    if (!user) throw new AppError('not_found', 'user not found');
    return user;
  });

  app.patch<{ Params: { id: string }; Body: Partial<UserBody> }>('/api/v1/users/:id', { ...admin, schema: { params: ID_PARAMS, body: patchBody } }, async (req) => {
    const target = ctx.identity.users.get(req.params.id);
    if (!target) throw new AppError('not_found', 'user not found');
    // A SCIM user's role follows their groups (docs/scim.md) and is recomputed on the next group change,
    // which would undo a role set here without a word.
    if (target.source === 'scim' && req.body.role !== undefined && req.body.role !== target.role) {
      throw new AppError('conflict', `the role of ${target.username} follows their SCIM groups; map one of their groups to a role instead (PATCH /api/v1/groups/{id})`);
    }
    const demotesLastAdmin = target.role === 'admin' && target.active && (req.body.role === 'member' || req.body.active === false);
    if (demotesLastAdmin && ctx.identity.users.countAdmins() <= 1) {
      throw new AppError('conflict', 'the last active admin cannot be demoted or deactivated');
    }
    const user = await ctx.identity.updateUser(target.id, req.body);
    ctx.audit.record({ ...actorOf(req), action: 'user.update', target_type: 'user', target_id: user.id, outcome: 'success', details: {
      fields: Object.keys(req.body).filter((k) => k !== 'password'),
      password_changed: 'password' in req.body,
      ...('max_budget_usd' in req.body || 'budget_period' in req.body ? { budget: { from: { max_budget_usd: target.max_budget_usd, budget_period: target.budget_period }, to: { max_budget_usd: user.max_budget_usd, budget_period: user.budget_period } } } : {}),
    } });
    return user;
  });

  app.delete<{ Params: { id: string } }>('/api/v1/users/:id', { ...admin, schema: { params: ID_PARAMS } }, async (req, reply) => {
    const target = ctx.identity.users.get(req.params.id);
    if (!target) throw new AppError('not_found', 'user not found');
    if (target.role === 'admin' && target.active && ctx.identity.users.countAdmins() <= 1) {
      throw new AppError('conflict', 'the last active admin cannot be deleted');
    }
    ctx.identity.deleteUser(target.id);
    ctx.audit.record({ ...actorOf(req), action: 'user.delete', target_type: 'user', target_id: target.id, outcome: 'success', details: { username: target.username } });
    return reply.code(204).send();
  });
}
