// Discovery (RFC 7644 §4): ServiceProviderConfig, ResourceTypes, Schemas. GET only; any other
// method gets 405 in the SCIM error schema.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../../core/context.ts';
import { AppError } from '../../../core/errors/errors.ts';
import { sendScim } from '../http.ts';
import { listResponse } from '../list.ts';
import { resourceTypeDocs, schemaDocs, serviceProviderConfig } from '../schemas.ts';
import { scimPaths } from './paths.ts';

const OTHER_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE'] as const;

export function discoveryRoutes(app: FastifyInstance, ctx: AppContext) {
  const base = () => `${ctx.publicUrl()}/scim/v2`;
  const notAllowed = async () => {
    throw new AppError('method_not_allowed', 'discovery endpoints are read-only (GET)');
  };
  const docs = {
    ServiceProviderConfig: () => serviceProviderConfig(base()),
    ResourceTypes: () => {
      const list = resourceTypeDocs(base());
      return listResponse(list.length, 1, list);
    },
    Schemas: () => {
      const list = schemaDocs(base());
      return listResponse(list.length, 1, list);
    },
  };
  for (const [name, build] of Object.entries(docs)) {
    for (const url of scimPaths(`/${name}`)) {
      app.get(url, async (_req, reply) => sendScim(reply, 200, build()));
      app.route({ method: [...OTHER_METHODS], url, handler: notAllowed });
    }
  }
  for (const url of scimPaths('/ResourceTypes/:id')) {
    app.get<{ Params: { id: string } }>(url, async (req, reply) => {
      const doc = resourceTypeDocs(base()).find((d) => d.id.toLowerCase() === req.params.id.toLowerCase());
      if (!doc) throw new AppError('not_found', `resource type ${req.params.id} not found`);
      return sendScim(reply, 200, doc);
    });
    app.route({ method: [...OTHER_METHODS], url, handler: notAllowed });
  }
  for (const url of scimPaths('/Schemas/:id')) {
    app.get<{ Params: { id: string } }>(url, async (req, reply) => {
      const doc = schemaDocs(base()).find((d) => d.id.toLowerCase() === req.params.id.toLowerCase());
      if (!doc) throw new AppError('not_found', `schema ${req.params.id} not found`);
      return sendScim(reply, 200, doc);
    });
    app.route({ method: [...OTHER_METHODS], url, handler: notAllowed });
  }
}
