import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../../core/context.ts';
import { AppError } from '../../../core/errors/errors.ts';
import { actorOf, requireUser } from '../../../core/http/auth.ts';
import { createFailureLimiter } from '../../../core/http/rate-limit.ts';
import { CLOSE } from '../../../protocol/version.ts';
import type { Hub } from '../hub.ts';

const ID_PARAMS = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } } as const;

export function nodesRoutes(app: FastifyInstance, ctx: AppContext, hub: Hub) {
  const auth = { preHandler: requireUser(ctx) };

  app.post<{ Body: { name: string; ttl_seconds?: number } }>('/api/v1/nodes', {
    ...auth,
    schema: {
      body: {
        type: 'object',
        required: ['name'],
        additionalProperties: false,
        properties: { name: { type: 'string', minLength: 1, maxLength: 200 }, ttl_seconds: { type: 'integer', minimum: 1 } },
      },
    },
  }, async (req, reply) => {
    const node = hub.nodes.register(req.principal!, req.body.name, req.body.ttl_seconds);
    ctx.audit.record({ ...actorOf(req), action: 'node.register', target_type: 'node', target_id: node.id, outcome: 'success', details: { name: node.name } });
    return reply.code(201).send(node);
  });

  app.get('/api/v1/nodes', auth, async (req) => {
    const p = req.principal!;
    return hub.nodes.store.list(p.role === 'admin' ? undefined : p.userId).map((n) => hub.nodeView(n));
  });

  app.get<{ Params: { id: string } }>('/api/v1/nodes/:id', { ...auth, schema: { params: ID_PARAMS } }, async (req) =>
    hub.nodeView(hub.nodes.visible(req.principal!, req.params.id)));

  app.post<{ Params: { id: string } }>('/api/v1/nodes/:id/rotate', { ...auth, schema: { params: ID_PARAMS } }, async (req) => {
    const node = hub.nodes.visible(req.principal!, req.params.id);
    const creds = hub.nodes.rotate(node.id);
    hub.registry.disconnect(node.id, CLOSE.credentialsRotated, 'node credentials were rotated');
    ctx.audit.record({ ...actorOf(req), action: 'node.rotate', target_type: 'node', target_id: node.id, outcome: 'success' });
    return creds;
  });

  // Enroll again (a new host, or after a rotation): a fresh single-use token for the same node.
  app.post<{ Params: { id: string }; Body: { ttl_seconds?: number } | undefined }>('/api/v1/nodes/:id/registration-token', {
    ...auth,
    schema: { params: ID_PARAMS, body: { type: ['object', 'null'], additionalProperties: false, properties: { ttl_seconds: { type: 'integer', minimum: 1 } } } },
  }, async (req, reply) => {
    const node = hub.nodes.visible(req.principal!, req.params.id);
    const issued = hub.nodes.reissueRegistration(node, req.body?.ttl_seconds);
    ctx.audit.record({ ...actorOf(req), action: 'node.registration_token', target_type: 'node', target_id: node.id, outcome: 'success', details: { name: node.name } });
    return reply.code(201).send(issued);
  });

  app.delete<{ Params: { id: string } }>('/api/v1/nodes/:id', { ...auth, schema: { params: ID_PARAMS } }, async (req, reply) => {
    const node = hub.nodes.visible(req.principal!, req.params.id);
    hub.nodes.store.delete(node.id);
    hub.registry.disconnect(node.id, CLOSE.revoked, 'node was deleted');
    ctx.audit.record({ ...actorOf(req), action: 'node.delete', target_type: 'node', target_id: node.id, outcome: 'success' });
    return reply.code(204).send();
  });

  // Enrollment: the agent trades its single-use registration token for long-lived credentials.
  const failures = createFailureLimiter(20, 600);
  app.post<{ Body: { registration_token: string } }>('/api/internal/things/enroll', {
    schema: { body: { type: 'object', required: ['registration_token'], additionalProperties: false, properties: { registration_token: { type: 'string', minLength: 1, maxLength: 200 } } } },
  }, async (req) => {
    const wait = failures.blockedFor(req.ip);
    if (wait) throw new AppError('rate_limited', 'too many failed enrollments; try again later', { retryAfter: wait });
    try {
      const creds = hub.nodes.enroll(req.body.registration_token);
      // A node enrolling again (a new host): a session still open on its old credentials ends here.
      hub.registry.disconnect(creds.node_id, CLOSE.credentialsRotated, 'node enrolled again');
      ctx.audit.record({ actor_type: 'node', actor_id: creds.node_id, action: 'node.enroll', target_type: 'node', target_id: creds.node_id, outcome: 'success', source_ip: req.ip });
      return creds;
    } catch (err) {
      failures.fail(req.ip);
      ctx.audit.record({ actor_type: 'anonymous', action: 'node.enroll', outcome: 'denied', source_ip: req.ip });
      throw err;
    }
  });
}
