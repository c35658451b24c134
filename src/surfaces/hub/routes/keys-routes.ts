import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../../core/context.ts';
import { AppError } from '../../../core/errors/errors.ts';
import { actorOf, requireUser } from '../../../core/http/auth.ts';
import { AUTH_METHODS } from '../../../protocol/credentials.ts';
import { CATALOG, catalogEntry } from '../catalog.ts';
import type { Hub } from '../hub.ts';
import type { CreateServiceInput, UpdateServiceInput } from '../services.ts';

const field = {
  label: { type: 'string', minLength: 1, maxLength: 200 },
  endpoint_url: { type: 'string', minLength: 1, maxLength: 2048 },
  auth_method: { type: 'string', enum: AUTH_METHODS },
  auth_key_name: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$' },
  credential: { type: 'string', minLength: 1, maxLength: 16384 },
  nodes: {
    type: 'array',
    maxItems: 32,
    items: {
      type: 'object',
      required: ['node_id'],
      additionalProperties: false,
      properties: {
        node_id: { type: 'string', minLength: 1, maxLength: 64 },
        priority: { type: 'integer', minimum: 0, maximum: 1000 },
        weight: { type: 'integer', minimum: 1, maximum: 1000 },
      },
    },
  },
} as const;

const createBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    catalog: { type: 'string', maxLength: 64 },
    slug: { type: 'string', minLength: 1, maxLength: 64 },
    ...field,
  },
} as const;

/** The slug (and so the proxy URL) never changes; null clears label, auth_key_name and credential. */
const orNull = <T extends { type: string }>(s: T) => ({ ...s, type: [s.type, 'null'] });
const updateBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    ...field,
    label: orNull(field.label),
    auth_key_name: orNull(field.auth_key_name),
    credential: orNull(field.credential),
  },
} as const;

/** The largest valid update is a credential and 32 bindings; nothing legitimate comes near this. */
const UPDATE_BODY_LIMIT = 64 * 1024;

const ID_PARAMS = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } } as const;

/** `warnings` only when there is something to say, as on virtual keys. */
const said = (warnings: string[]) => (warnings.length ? { warnings } : {});

export function keysRoutes(app: FastifyInstance, ctx: AppContext, hub: Hub) {
  const auth = { preHandler: requireUser(ctx) };

  app.post<{ Body: CreateServiceInput }>('/api/v1/keys', { ...auth, schema: { body: createBody } }, async (req, reply) => {
    const { service: svc, warnings } = hub.services.create(req.principal!, req.body ?? {});
    ctx.audit.record({ ...actorOf(req), action: 'service.create', target_type: 'service', target_id: svc.id, outcome: 'success', routed_via: svc.routed_via, details: { slug: svc.slug } });
    return reply.code(201).send({ ...svc, ...said(warnings) });
  });

  app.get('/api/v1/keys', auth, async (req) => ({ items: hub.services.list(req.principal!) }));

  app.get<{ Params: { id: string } }>('/api/v1/keys/:id', { ...auth, schema: { params: ID_PARAMS } }, async (req) =>
    hub.services.view(hub.services.get(req.principal!, req.params.id)));

  app.patch<{ Params: { id: string }; Body: UpdateServiceInput }>('/api/v1/keys/:id', {
    ...auth,
    bodyLimit: UPDATE_BODY_LIMIT,
    schema: { params: ID_PARAMS, body: updateBody },
  }, async (req) => {
    const { service, fields, credential, warnings } = hub.services.update(req.principal!, req.params.id, req.body);
    ctx.audit.record({
      ...actorOf(req), action: 'service.update', target_type: 'service', target_id: service.id, outcome: 'success', routed_via: service.routed_via,
      details: { slug: service.slug, fields, sealed: credential, nodes: service.nodes.map((n) => n.node_id) },
    });
    return { ...service, ...said(warnings) };
  });

  app.delete<{ Params: { id: string } }>('/api/v1/keys/:id', { ...auth, schema: { params: ID_PARAMS } }, async (req, reply) => {
    const svc = hub.services.get(req.principal!, req.params.id);
    hub.services.store.delete(svc.id);
    ctx.audit.record({ ...actorOf(req), action: 'service.delete', target_type: 'service', target_id: svc.id, outcome: 'success', details: { slug: svc.slug } });
    return reply.code(204).send();
  });

  app.get('/api/v1/catalog', auth, async () => ({ items: CATALOG }));
  app.get<{ Params: { slug: string } }>('/api/v1/catalog/:slug', auth, async (req) => {
    const entry = catalogEntry(req.params.slug);
    if (!entry) throw new AppError('not_found', 'catalog entry not found');
    return entry;
  });
}
