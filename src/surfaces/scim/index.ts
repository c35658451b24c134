// SCIM 2.0 (RFC 7643/7644) at /scim/v2 for Okta and Entra ID, plus the control-plane routes that
// mint SCIM tokens and map groups to roles and models.
import type { FastifyRequest } from 'fastify';
import { AppError, toAppError } from '../../core/errors/errors.ts';
import type { Surface } from '../../core/surface.ts';
import { auditScim, type ScimActor } from './actor.ts';
import { createGroupsService } from './groups-service.ts';
import { installScimParser, renderScimError, sendScimError, sendSurfaceError, SCIM_CONTENT_TYPE } from './http.ts';
import { controlRoutes } from './routes/control-routes.ts';
import { discoveryRoutes } from './routes/discovery-routes.ts';
import { resourceRoutes } from './routes/resource-routes.ts';
import { createTokensService } from './tokens-service.ts';
import { createUsersService } from './users-service.ts';

const WRITE_VERBS: Record<string, string> = { POST: 'create', PUT: 'replace', PATCH: 'patch', DELETE: 'delete' };

export const scimSurface: Surface = {
  name: 'scim',
  async register(app, ctx) {
    app.setErrorHandler(sendSurfaceError);
    const tokens = createTokensService(ctx);
    controlRoutes(app, ctx, tokens);

    await app.register(async (scim) => {
      installScimParser(scim);
      const actors = new WeakMap<FastifyRequest, ScimActor>();
      // Refused writes are audited too: an IdP retrying a bad request shows up in the log.
      scim.setErrorHandler((err, req, reply) => {
        const actor = actors.get(req);
        const verb = WRITE_VERBS[req.method];
        const m = /^\/scim\/v2\/(users|groups)(?:\/([^/?.][^/?]*))?(?:[?]|$)/i.exec(req.url);
        if (actor && verb && m) {
          const type = m[1]!.toLowerCase() === 'users' ? 'user' : 'group';
          const e = toAppError(err);
          auditScim(ctx, actor, `scim.${type}.${verb}`, { type, id: m[2] ?? null }, { status: e.status, error: e.message.slice(0, 200) }, 'failure');
        }
        return sendScimError(err, req, reply);
      });
      scim.addHook('onRequest', async (req) => {
        const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
        const token = m ? tokens.verify(m[1]!) : null;
        if (!token) throw new AppError('unauthorized', 'send a valid SCIM token as Authorization: Bearer nx_scim_…');
        actors.set(req, { tokenId: token.id, tokenName: token.name, ip: req.ip });
      });
      const actorOf = (req: FastifyRequest) => actors.get(req)!;
      const users = createUsersService(ctx);
      discoveryRoutes(scim, ctx);
      resourceRoutes(scim, '/Users', users, actorOf);
      resourceRoutes(scim, '/Groups', createGroupsService(ctx, users.store), actorOf);
    });
  },
  notFound: {
    match: (url) => url.startsWith('/scim/'),
    send: (_req, reply) => reply.code(404).type(SCIM_CONTENT_TYPE).send(renderScimError(new AppError('not_found', 'no such SCIM endpoint'))),
  },
};
