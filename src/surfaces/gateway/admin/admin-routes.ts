// The gateway's control-plane API (DESIGN.md §3): providers, models, virtual keys, usage. Rendered
// in the control plane's `{error:{code,message}}` shape like the rest of /api/v1.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../../../core/context.ts';
import { AppError, renderControlError, toAppError } from '../../../core/errors/errors.ts';
import { actorOf, requireAdmin, requireUser } from '../../../core/http/auth.ts';
import type { Catalog, NewModel, NewProvider } from '../catalog/catalog.ts';
import { PROVIDER_TYPES } from '../catalog/catalog-store.ts';
import type { NewVirtualKey, VirtualKeys } from '../keys/virtual-keys.ts';
import type { UsageRecorder } from '../usage/usage-recorder.ts';
import { USAGE_GROUPS, type UsageGroup } from '../usage/usage-store.ts';

export function sendAdminError(err: unknown, req: FastifyRequest, reply: FastifyReply) {
  const appErr = toAppError(err);
  if (appErr.status >= 500) req.log.error({ err }, 'request failed');
  if (appErr.retryAfter !== undefined) reply.header('retry-after', String(appErr.retryAfter));
  return reply.code(appErr.status).type('application/json; charset=utf-8').send(renderControlError(appErr));
}

const ID_PARAMS = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } } as const;
const NAME = { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\x00-\\x1f]+$' } as const;
const MODEL_NAME = { type: 'string', minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9][A-Za-z0-9._/@+-]*$' } as const;

const providerBody = {
  type: 'object',
  required: ['name', 'type'],
  additionalProperties: false,
  properties: {
    name: { ...NAME, maxLength: 100 },
    type: { type: 'string', enum: [...PROVIDER_TYPES] },
    base_url: { type: 'string', minLength: 1, maxLength: 2000 },
    api_key: { type: 'string', minLength: 1, maxLength: 8192 },
    api_version: { type: 'string', minLength: 1, maxLength: 50, pattern: '^[A-Za-z0-9._-]+$' },
    node_id: { type: 'string', minLength: 1, maxLength: 64 },
  },
} as const;

const modelBody = {
  type: 'object',
  required: ['name', 'deployments'],
  additionalProperties: false,
  properties: {
    name: MODEL_NAME,
    deployments: {
      type: 'array',
      minItems: 1,
      maxItems: 50,
      items: {
        type: 'object',
        required: ['provider_id', 'upstream_model'],
        additionalProperties: false,
        properties: {
          provider_id: { type: 'string', minLength: 1, maxLength: 64 },
          upstream_model: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\x00-\\x1f]+$' },
          weight: { type: 'integer', minimum: 0, maximum: 1000 },
          priority: { type: 'integer', minimum: 0, maximum: 1000 },
        },
      },
    },
    input_price_per_mtok: { type: 'number', minimum: 0, maximum: 1e6 },
    output_price_per_mtok: { type: 'number', minimum: 0, maximum: 1e6 },
  },
} as const;

const keyBody = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    name: NAME,
    models: { type: 'array', maxItems: 500, items: MODEL_NAME },
    max_budget_usd: { type: 'number', minimum: 0, maximum: 1e9 },
    rpm: { type: 'integer', minimum: 1, maximum: 10_000_000 },
    tpm: { type: 'integer', minimum: 1, maximum: 10_000_000_000 },
    expires_at: { type: 'string', format: 'date-time' },
    user_id: { type: 'string', minLength: 1, maxLength: 64 },
    format: { type: 'string', enum: ['standard', 'id_secret'] },
  },
} as const;

const usageQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    group_by: { type: 'string', maxLength: 100, pattern: `^(${USAGE_GROUPS.join('|')})(,(${USAGE_GROUPS.join('|')}))*$` },
    since: { type: 'string', format: 'date-time' },
    until: { type: 'string', format: 'date-time' },
    key_id: { type: 'string', maxLength: 64 },
    user_id: { type: 'string', maxLength: 64 },
    model: { type: 'string', maxLength: 200 },
    limit: { type: 'integer', minimum: 1, maximum: 10_000 },
  },
} as const;

interface UsageQs {
  group_by?: string;
  since?: string;
  until?: string;
  key_id?: string;
  user_id?: string;
  model?: string;
  limit?: number;
}

export function adminRoutes(app: FastifyInstance, ctx: AppContext, deps: { catalog: Catalog; keys: VirtualKeys; usage: UsageRecorder }) {
  const { catalog, keys, usage } = deps;
  const admin = { preHandler: requireAdmin(ctx) };
  const user = { preHandler: requireUser(ctx) };
  const audit = (req: FastifyRequest, action: string, target_type: string, target_id: string, details?: Record<string, unknown>) =>
    ctx.audit.record({ ...actorOf(req), action, target_type, target_id, outcome: 'success', details: details ?? null });

  // ---- providers (admin) ----
  app.post<{ Body: NewProvider }>('/api/v1/providers', { ...admin, schema: { body: providerBody } }, async (req, reply) => {
    const p = catalog.createProvider(req.body);
    audit(req, 'gateway.provider.create', 'provider', p.id, { name: p.name, type: p.type, node_id: p.node_id });
    return reply.code(201).send(p);
  });
  app.get('/api/v1/providers', admin, async () => ({ items: catalog.listProviders() }));
  app.get<{ Params: { id: string } }>('/api/v1/providers/:id', { ...admin, schema: { params: ID_PARAMS } }, async (req) => catalog.getProvider(req.params.id));
  app.delete<{ Params: { id: string } }>('/api/v1/providers/:id', { ...admin, schema: { params: ID_PARAMS } }, async (req, reply) => {
    catalog.deleteProvider(req.params.id);
    audit(req, 'gateway.provider.delete', 'provider', req.params.id);
    return reply.code(204).send();
  });

  // ---- models (admin writes, any signed-in user reads) ----
  app.post<{ Body: NewModel }>('/api/v1/models', { ...admin, schema: { body: modelBody } }, async (req, reply) => {
    const m = catalog.createModel(req.body);
    audit(req, 'gateway.model.create', 'model', m.id, { name: m.name });
    return reply.code(201).send(m);
  });
  app.get('/api/v1/models', user, async () => ({ items: catalog.listModels() }));
  app.get<{ Params: { id: string } }>('/api/v1/models/:id', { ...user, schema: { params: ID_PARAMS } }, async (req) => catalog.getModel(req.params.id));
  app.delete<{ Params: { id: string } }>('/api/v1/models/:id', { ...admin, schema: { params: ID_PARAMS } }, async (req, reply) => {
    catalog.deleteModel(req.params.id);
    audit(req, 'gateway.model.delete', 'model', req.params.id);
    return reply.code(204).send();
  });

  // ---- virtual keys (members manage their own; admins anyone's) ----
  const visible = (req: FastifyRequest, id: string) => {
    const k = keys.get(id);
    // Others' keys look nonexistent to members.
    if (k.user_id !== req.principal!.userId && req.principal!.role !== 'admin') throw new AppError('not_found', 'virtual key not found');
    return k;
  };
  app.post<{ Body: NewVirtualKey }>('/api/v1/virtual-keys', { ...user, schema: { body: keyBody } }, async (req, reply) => {
    const p = req.principal!;
    const userId = req.body.user_id ?? p.userId;
    if (userId !== p.userId && p.role !== 'admin') throw new AppError('forbidden', 'only admins may create keys for other users');
    const { key, record } = keys.create({ ...req.body, user_id: userId });
    audit(req, 'gateway.virtual_key.create', 'virtual_key', record.id, { name: record.name, user_id: userId, format: record.format });
    return reply.code(201).send({ ...record, key });
  });
  app.get<{ Querystring: { user_id?: string } }>('/api/v1/virtual-keys', { ...user, schema: { querystring: { type: 'object', additionalProperties: false, properties: { user_id: { type: 'string', maxLength: 64 } } } } }, async (req) => {
    const p = req.principal!;
    return { items: keys.list(p.role === 'admin' ? (req.query.user_id ?? null) : p.userId) };
  });
  app.get<{ Params: { id: string } }>('/api/v1/virtual-keys/:id', { ...user, schema: { params: ID_PARAMS } }, async (req) => visible(req, req.params.id));
  app.delete<{ Params: { id: string } }>('/api/v1/virtual-keys/:id', { ...user, schema: { params: ID_PARAMS } }, async (req, reply) => {
    visible(req, req.params.id);
    keys.revoke(req.params.id);
    audit(req, 'gateway.virtual_key.revoke', 'virtual_key', req.params.id);
    return reply.code(204).send();
  });

  // ---- usage (members see their own) ----
  app.get<{ Querystring: UsageQs }>('/api/v1/usage', { ...user, schema: { querystring: usageQuery } }, async (req) => {
    const p = req.principal!;
    const q = req.query;
    const groupBy = [...new Set((q.group_by ?? 'key,model,day').split(','))] as UsageGroup[];
    const items = usage.aggregate({
      groupBy,
      ...(q.since ? { since: new Date(q.since).toISOString() } : {}),
      ...(q.until ? { until: new Date(q.until).toISOString() } : {}),
      ...(q.key_id ? { keyId: q.key_id } : {}),
      ...(p.role === 'admin' ? (q.user_id ? { userId: q.user_id } : {}) : { userId: p.userId }),
      ...(q.model ? { model: q.model } : {}),
      limit: q.limit ?? 1000,
    });
    return { group_by: groupBy, items };
  });
}
