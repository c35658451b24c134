import type { FastifyInstance } from 'fastify';
import type { Principal } from '../../../core/identity/identity.ts';
import type { AppContext } from '../../../core/context.ts';
import { AppError } from '../../../core/errors/errors.ts';
import { actorOf, requireUser } from '../../../core/http/auth.ts';
import { createFailureLimiter } from '../../../core/http/rate-limit.ts';
import { CLOSE } from '../../../protocol/version.ts';
import type { Hub } from '../hub.ts';

const ID_PARAMS = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } } as const;

/** What routes through a node: its services (`last_node`: it is their only node) and AI gateway providers. */
export interface NodeUsage {
  services: Array<{ id: string; slug: string; last_node: boolean }>;
  /** Bound services of other owners, which this caller may not see by name. */
  other_services: number;
  providers: Array<{ id: string; name: string }>;
  /** Providers through it, for a member (providers are an admin resource: counted, not named). */
  other_providers: number;
}

const list = (names: string[]) => names.map((n) => `"${n}"`).join(', ');

export function nodesRoutes(app: FastifyInstance, ctx: AppContext, hub: Hub) {
  const auth = { preHandler: requireUser(ctx) };

  // An admin sees every service bound to the node and every provider; its owner only its own
  // services by name (an admin may have bound one of theirs to it: counted) and providers as a count.
  const usage = (principal: Principal | null, nodeId: string): NodeUsage => {
    const bound = hub.services.store.usingNode(nodeId);
    const admin = !principal || principal.role === 'admin';
    const seen = bound.filter((s) => admin || s.owner_id === principal.userId);
    const providers = hub.nodes.store.providersUsing(nodeId);
    return {
      services: seen.map((s) => ({ id: s.id, slug: s.slug, last_node: s.nodes === 1 })),
      other_services: bound.length - seen.length,
      providers: admin ? providers : [],
      other_providers: admin ? 0 : providers.length,
    };
  };

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

  app.get<{ Params: { id: string } }>('/api/v1/nodes/:id', { ...auth, schema: { params: ID_PARAMS } }, async (req) => {
    const node = hub.nodes.visible(req.principal!, req.params.id);
    return { ...hub.nodeView(node), used_by: usage(req.principal!, node.id) };
  });

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

  // A node that is the last node of a service, or a provider's node, is deleted only with force=true:
  // those stay routed through nodes (never direct) and answer 503 (8002) until given another node.
  app.delete<{ Params: { id: string }; Querystring: { force?: boolean } }>('/api/v1/nodes/:id', {
    ...auth,
    schema: { params: ID_PARAMS, querystring: { type: 'object', additionalProperties: false, properties: { force: { type: 'boolean' } } } },
  }, async (req, reply) => {
    const node = hub.nodes.visible(req.principal!, req.params.id);
    const used = usage(req.principal!, node.id);
    const all = usage(null, node.id); // for the audit entry, which admins read
    const stranded = used.services.filter((s) => s.last_node);
    const hidden = all.services.filter((s) => s.last_node).length - stranded.length;
    if (!req.query.force && (stranded.length || hidden || used.providers.length || used.other_providers)) {
      const what = [
        ...(stranded.length ? [`the only node of service${stranded.length > 1 ? 's' : ''} ${list(stranded.map((s) => s.slug))}`] : []),
        ...(hidden ? [`the only node of ${hidden} service${hidden > 1 ? 's' : ''} of other users`] : []),
        ...(used.providers.length ? [`the node of provider${used.providers.length > 1 ? 's' : ''} ${list(used.providers.map((p) => p.name))}`] : []),
        ...(used.other_providers ? [`the node of ${used.other_providers} AI gateway provider${used.other_providers > 1 ? 's' : ''}`] : []),
      ];
      throw new AppError('conflict', `node "${node.name}" is ${what.join(' and ')}; bind them to another node first, or delete with force=true: they then stay routed through nodes and answer 503 (code 8002) until given one`, {
        details: { services: stranded.map((s) => s.slug), providers: used.providers.map((p) => p.name) },
      });
    }
    hub.nodes.store.delete(node.id);
    hub.registry.disconnect(node.id, CLOSE.revoked, 'node was deleted');
    ctx.audit.record({
      ...actorOf(req), action: 'node.delete', target_type: 'node', target_id: node.id, outcome: 'success',
      details: { name: node.name, ...(req.query.force ? { force: true } : {}), services: all.services, providers: all.providers },
    });
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
