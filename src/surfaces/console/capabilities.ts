// Which APIs this appliance serves, so the console shows only pages that work (and never probes
// with requests that 404 in the browser's console). Answered from fastify's router, which all
// surfaces share; a match on the console's own root catch-all (`/*`, whose wildcard then holds
// the whole path) does not count.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../core/context.ts';
import { requireUser } from '../../core/http/auth.ts';

const PROBES: Record<string, [method: string, url: string]> = {
  providers: ['GET', '/api/v1/providers'],
  models: ['GET', '/api/v1/models'],
  virtual_keys: ['GET', '/api/v1/virtual-keys'],
  usage: ['GET', '/api/v1/usage'],
  nodes: ['GET', '/api/v1/nodes'],
  services: ['POST', '/api/v1/keys'],
  services_list: ['GET', '/api/v1/keys'],
  catalog: ['GET', '/api/v1/catalog'],
  scim_tokens: ['GET', '/api/v1/scim/tokens'],
  groups: ['GET', '/api/v1/groups'],
  gateway: ['GET', '/v1/models'],
};

export function capabilitiesRoutes(app: FastifyInstance, ctx: AppContext) {
  let cached: Record<string, boolean> | null = null;
  app.get('/api/v1/console/capabilities', { preHandler: requireUser(ctx) }, async () => {
    cached ??= Object.fromEntries(Object.entries(PROBES).map(([name, [method, url]]) => {
      const route = app.findRoute({ method: method as 'GET', url });
      const params = (route?.params ?? {}) as Record<string, string>;
      return [name, !!route && params['*'] !== url.slice(1)];
    }));
    return cached;
  });
}
