// The gateway's control-plane API (DESIGN.md §3): providers, models, virtual keys, usage. Rendered
// in the control plane's `{error:{code,message}}` shape like the rest of /api/v1.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../../../core/context.ts';
import { AppError, renderControlError, toAppError } from '../../../core/errors/errors.ts';
import { actorOf, requireAdmin, requireUser } from '../../../core/http/auth.ts';
import { TIME_QUERY, queryTime } from '../../../core/http/validation.ts';
import type { Catalog, ModelPatch, NewModel, NewProvider, ProviderPatch } from '../catalog/catalog.ts';
import { PROVIDER_TYPES, ROUTING_STRATEGIES } from '../catalog/catalog-store.ts';
import type { Router } from '../engine/router.ts';
import type { NewVirtualKey, VirtualKeyPatch, VirtualKeys } from '../keys/virtual-keys.ts';
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
// A model is addressed by its id or its public name (URL-encoded when it holds a "/").
const MODEL_PARAMS = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 200 } } } as const;
const MODEL_NAME = { type: 'string', minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9][A-Za-z0-9._/@+-]*$' } as const;

// Field schemas are shared by each POST and its PATCH; a PATCH may also send null to clear an optional
// field, must name at least one field, and (like the POST) refuses unknown ones.
const orNull = <T extends { type: string }>(s: T) => ({ ...s, type: [s.type, 'null'] });

const providerFields = {
  name: { ...NAME, maxLength: 100 },
  base_url: { type: 'string', minLength: 1, maxLength: 2000 },
  api_key: { type: 'string', minLength: 1, maxLength: 8192 },
  api_version: { type: 'string', minLength: 1, maxLength: 50, pattern: '^[A-Za-z0-9._-]+$' },
  node_id: { type: 'string', minLength: 1, maxLength: 64 },
} as const;

const providerBody = {
  type: 'object',
  required: ['name', 'type'],
  additionalProperties: false,
  properties: { ...providerFields, type: { type: 'string', enum: [...PROVIDER_TYPES] } },
} as const;

const providerPatch = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    name: providerFields.name,
    base_url: providerFields.base_url,
    api_key: orNull(providerFields.api_key),
    api_version: orNull(providerFields.api_version),
    node_id: orNull(providerFields.node_id),
  },
} as const;

const PRICE = { type: 'number', minimum: 0, maximum: 1e6 } as const;

const modelFields = {
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
  input_price_per_mtok: PRICE,
  output_price_per_mtok: PRICE,
  cached_input_price_per_mtok: orNull(PRICE),
  audio_input_price_per_minute: orNull(PRICE),
  tts_price_per_mchar: orNull(PRICE),
  cache_ttl_seconds: orNull({ type: 'integer', minimum: 1, maximum: 30 * 24 * 3600 }),
  routing_strategy: { type: 'string', enum: ROUTING_STRATEGIES },
} as const;

const modelBody = {
  type: 'object',
  required: ['name', 'deployments'],
  additionalProperties: false,
  properties: { name: MODEL_NAME, ...modelFields },
} as const;

const modelPatch = { type: 'object', additionalProperties: false, minProperties: 1, properties: modelFields } as const;

const keyFields = {
  name: NAME,
  models: { type: 'array', maxItems: 500, items: MODEL_NAME },
  max_budget_usd: { type: 'number', minimum: 0, maximum: 1e9 },
  budget_period: { type: 'string', enum: ['day', 'week', 'month'] },
  rpm: { type: 'integer', minimum: 1, maximum: 10_000_000 },
  tpm: { type: 'integer', minimum: 1, maximum: 10_000_000_000 },
  expires_at: { type: 'string', format: 'date-time' },
  // The group the key's calls are charged to as well, by id or name (virtual-keys.ts checks membership).
  group_id: { type: 'string', minLength: 1, maxLength: 256 },
} as const;

const keyBody = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    ...keyFields,
    user_id: { type: 'string', minLength: 1, maxLength: 64 },
    format: { type: 'string', enum: ['standard', 'id_secret'] },
  },
} as const;

const keyPatch = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    name: keyFields.name,
    models: orNull(keyFields.models),
    max_budget_usd: orNull(keyFields.max_budget_usd),
    budget_period: { type: ['string', 'null'], enum: [...keyFields.budget_period.enum, null] },
    rpm: orNull(keyFields.rpm),
    tpm: orNull(keyFields.tpm),
    expires_at: orNull(keyFields.expires_at),
    group_id: orNull(keyFields.group_id),
  },
} as const;

const rotateBody = {
  type: 'object',
  additionalProperties: false,
  properties: { grace_seconds: { type: 'integer', minimum: 0, maximum: 7 * 24 * 3600 } },
} as const;

/** What an edit changed, for the audit log: old and new values of the named fields, never a secret. */
function changes(before: object, after: object, fields: string[]): Record<string, { from: unknown; to: unknown }> {
  const out: Record<string, { from: unknown; to: unknown }> = {};
  const b = before as Record<string, unknown>;
  const a = after as Record<string, unknown>;
  for (const f of fields) if (JSON.stringify(b[f]) !== JSON.stringify(a[f])) out[f] = { from: b[f] ?? null, to: a[f] ?? null };
  return out;
}

const usageQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    group_by: { type: 'string', maxLength: 100, pattern: `^(${USAGE_GROUPS.join('|')})(,(${USAGE_GROUPS.join('|')}))*$` },
    since: TIME_QUERY,
    until: TIME_QUERY,
    key_id: { type: 'string', maxLength: 64 },
    user_id: { type: 'string', maxLength: 64 },
    group_id: { type: 'string', maxLength: 64 },
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
  group_id?: string;
  model?: string;
  limit?: number;
}

export function adminRoutes(app: FastifyInstance, ctx: AppContext, deps: { catalog: Catalog; keys: VirtualKeys; usage: UsageRecorder; router: Pick<Router, 'stats'> }) {
  const { catalog, keys, usage } = deps;
  const admin = { preHandler: requireAdmin(ctx) };
  const user = { preHandler: requireUser(ctx) };
  const audit = (req: FastifyRequest, action: string, target_type: string, target_id: string, details?: Record<string, unknown>) =>
    ctx.audit.record({ ...actorOf(req), action, target_type, target_id, outcome: 'success', details: details ?? null });

  // ---- providers (admin) ----
  // A provider's node must exist (an unknown id would leave its calls failing as "offline" forever);
  // the CLI turns a node's name into its id before sending it.
  const nodeExists = ctx.db.prepare('SELECT 1 FROM nodes WHERE id = ?').pluck();
  const knownNode = (nodeId: string | null | undefined) => {
    if (typeof nodeId === 'string' && !nodeExists.get(nodeId)) {
      throw new AppError('validation_failed', `no node with id "${nodeId.slice(0, 64)}"; see GET /api/v1/nodes (the CLI's --node also takes a node's name)`, { details: { param: 'node_id' } });
    }
  };
  app.post<{ Body: NewProvider }>('/api/v1/providers', { ...admin, schema: { body: providerBody } }, async (req, reply) => {
    knownNode(req.body.node_id);
    const p = catalog.createProvider(req.body);
    audit(req, 'gateway.provider.create', 'provider', p.id, { name: p.name, type: p.type, node_id: p.node_id });
    return reply.code(201).send(p);
  });
  app.get('/api/v1/providers', admin, async () => ({ items: catalog.listProviders() }));
  app.get<{ Params: { id: string } }>('/api/v1/providers/:id', { ...admin, schema: { params: ID_PARAMS } }, async (req) => catalog.getProvider(req.params.id));
  app.patch<{ Params: { id: string }; Body: ProviderPatch }>('/api/v1/providers/:id', { ...admin, schema: { params: ID_PARAMS, body: providerPatch } }, async (req) => {
    knownNode(req.body.node_id);
    const { before, after } = catalog.updateProvider(req.params.id, req.body);
    audit(req, 'gateway.provider.update', 'provider', after.id, {
      name: after.name,
      fields: Object.keys(req.body),
      changes: changes(before, after, Object.keys(req.body).filter((f) => f !== 'api_key')),
    });
    return after;
  });
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
  app.get<{ Params: { id: string } }>('/api/v1/models/:id', { ...user, schema: { params: MODEL_PARAMS } }, async (req) => {
    // With what the router knows of each deployment now: calls in flight, time to answer, cooldown.
    const m = catalog.getModel(req.params.id);
    return { ...m, deployments: m.deployments.map((d) => ({ ...d, live: deps.router.stats(d.id) })) };
  });
  app.patch<{ Params: { id: string }; Body: ModelPatch }>('/api/v1/models/:id', { ...admin, schema: { params: MODEL_PARAMS, body: modelPatch } }, async (req) => {
    const { before, after } = catalog.updateModel(req.params.id, req.body);
    audit(req, 'gateway.model.update', 'model', after.id, {
      name: after.name,
      fields: Object.keys(req.body),
      changes: changes(before, after, Object.keys(req.body).filter((f) => f !== 'deployments')),
      ...(req.body.deployments ? { deployments: after.deployments.map((d) => ({ provider_id: d.provider_id, upstream_model: d.upstream_model })) } : {}),
    });
    return after;
  });
  app.delete<{ Params: { id: string } }>('/api/v1/models/:id', { ...admin, schema: { params: MODEL_PARAMS } }, async (req, reply) => {
    const m = catalog.getModel(req.params.id);
    catalog.deleteModel(m.id);
    audit(req, 'gateway.model.delete', 'model', m.id, { name: m.name });
    return reply.code(204).send();
  });

  // ---- virtual keys (members manage their own; admins anyone's) ----
  // A key may name models configured later (201 all the same), but a name no model answers to is
  // most often a typo that would leave the key unable to reach it: said with the answer.
  const unknownModels = (models: readonly string[] | null | undefined) => {
    const unknown = (models ?? []).filter((m) => !catalog.resolve(m));
    return unknown.length ? { warnings: unknown.map((m) => `model "${m}" is not configured (yet): this key cannot use it until a model of that name exists`) } : {};
  };
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
    const { key, record } = keys.create({ ...req.body, user_id: userId }, p.role === 'admin');
    audit(req, 'gateway.virtual_key.create', 'virtual_key', record.id, { name: record.name, user_id: userId, format: record.format, ...(record.group_id ? { group_id: record.group_id } : {}) });
    return reply.code(201).send({ ...record, key, ...unknownModels(req.body.models) });
  });
  app.get<{ Querystring: { user_id?: string } }>('/api/v1/virtual-keys', { ...user, schema: { querystring: { type: 'object', additionalProperties: false, properties: { user_id: { type: 'string', maxLength: 64 } } } } }, async (req) => {
    const p = req.principal!;
    return { items: keys.list(p.role === 'admin' ? (req.query.user_id ?? null) : p.userId) };
  });
  app.get<{ Params: { id: string } }>('/api/v1/virtual-keys/:id', { ...user, schema: { params: ID_PARAMS } }, async (req) => visible(req, req.params.id));
  // The owner may edit their own key as freely as they could have created it (the POST's rule).
  app.patch<{ Params: { id: string }; Body: VirtualKeyPatch }>('/api/v1/virtual-keys/:id', { ...user, schema: { params: ID_PARAMS, body: keyPatch } }, async (req) => {
    visible(req, req.params.id);
    const { before, after } = keys.update(req.params.id, req.body, req.principal!.role === 'admin');
    audit(req, 'gateway.virtual_key.update', 'virtual_key', after.id, { name: after.name, user_id: after.user_id, fields: Object.keys(req.body), changes: changes(before, after, Object.keys(req.body)) });
    return { ...after, ...unknownModels(req.body.models) };
  });
  // A leaked or aging key gets a new secret without losing its settings, spend or usage history; the
  // old secret can keep working for a grace period while callers switch (at most a week).
  app.post<{ Params: { id: string }; Body: { grace_seconds?: number } | undefined }>('/api/v1/virtual-keys/:id/rotate', {
    ...user,
    // No body at all means no grace (the schema then checks an empty object).
    preValidation: (req, _reply, done) => {
      req.body ??= {};
      done();
    },
    schema: { params: ID_PARAMS, body: rotateBody },
  }, async (req) => {
    visible(req, req.params.id);
    const grace = req.body?.grace_seconds ?? 0;
    const { key, record } = keys.rotate(req.params.id, grace);
    audit(req, 'gateway.virtual_key.rotate', 'virtual_key', record.id, { name: record.name, user_id: record.user_id, grace_seconds: grace, previous_valid_until: record.previous_valid_until });
    return { ...record, key };
  });
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
    // A member's usage is their own; asking for someone else's is refused, not quietly answered with theirs.
    if (p.role !== 'admin' && q.user_id && q.user_id !== p.userId) throw new AppError('forbidden', 'only admins may read other users\' usage');
    const groupBy = [...new Set((q.group_by ?? 'key,model,day').split(','))] as UsageGroup[];
    const items = usage.aggregate({
      groupBy,
      ...(q.since ? { since: queryTime(q.since) } : {}),
      ...(q.until ? { until: queryTime(q.until) } : {}),
      ...(q.key_id ? { keyId: q.key_id } : {}),
      ...(q.group_id ? { groupId: q.group_id } : {}),
      ...(p.role === 'admin' ? (q.user_id ? { userId: q.user_id } : {}) : { userId: p.userId }),
      ...(q.model ? { model: q.model } : {}),
      limit: q.limit ?? 1000,
    });
    return { group_by: groupBy, items };
  });
}
