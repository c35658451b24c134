// /Users and /Groups share one shape (RFC 7644 §3): list/search, create, get, replace, patch, delete.
// Successful PATCH answers 200 with the resource (§3.5.2 allows 200 or 204; Okta reads the resource).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../../core/errors/errors.ts';
import type { ScimActor } from '../actor.ts';
import { scimError } from '../errors.ts';
import { sendScim } from '../http.ts';
import { attrList, type ListQuery } from '../list.ts';
import { URN } from '../schemas.ts';
import type { Projection } from '../users-service.ts';
import { scimPaths } from './paths.ts';

type Rendered = { body: unknown; etag: string };
type Maybe<T> = T | Promise<T>;

export interface ResourceService {
  get(id: string, p: Projection): Rendered;
  list(q: ListQuery & Projection): unknown;
  create(body: unknown, actor: ScimActor, p: Projection): Rendered & { location: string };
  replace(id: string, body: unknown, ifMatch: string | string[] | undefined, actor: ScimActor, p: Projection): Maybe<Rendered>;
  patch(id: string, body: unknown, ifMatch: string | string[] | undefined, actor: ScimActor, p: Projection): Maybe<Rendered>;
  delete(id: string, ifMatch: string | string[] | undefined, actor: ScimActor): void;
}

type Query = Record<string, unknown>;

/** Query parameter names are matched case-insensitively too (`startindex`, `Filter`). */
function param(q: Query, name: string, fromBody = false): unknown {
  const key = Object.keys(q).find((k) => k.toLowerCase() === name.toLowerCase());
  const v = key === undefined ? undefined : q[key];
  // A repeated query parameter arrives as an array; a SearchRequest body may hold real arrays.
  if (!fromBody && Array.isArray(v)) throw scimError('invalidValue', `${name} is given more than once`);
  return v;
}

function projection(q: Query, fromBody = false): Projection {
  return { attributes: attrList(param(q, 'attributes', fromBody)), excludedAttributes: attrList(param(q, 'excludedAttributes', fromBody)) };
}

function listQuery(q: Query, fromBody = false): ListQuery & Projection {
  return {
    filter: param(q, 'filter', fromBody),
    sortBy: param(q, 'sortBy', fromBody),
    sortOrder: param(q, 'sortOrder', fromBody),
    startIndex: param(q, 'startIndex', fromBody),
    count: param(q, 'count', fromBody),
    ...projection(q, fromBody),
  };
}

export function resourceRoutes(app: FastifyInstance, endpoint: '/Users' | '/Groups', service: ResourceService, actorOf: (req: FastifyRequest) => ScimActor) {
  const ok = (reply: FastifyReply, status: number, r: Rendered) => {
    reply.header('etag', r.etag);
    return sendScim(reply, status, r.body);
  };
  const idParams = { schema: { params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } } } } };

  for (const url of scimPaths(endpoint)) {
    app.get<{ Querystring: Query }>(url, async (req, reply) => sendScim(reply, 200, service.list(listQuery(req.query))));
    app.post<{ Querystring: Query }>(url, async (req, reply) => {
      const r = service.create(req.body, actorOf(req), projection(req.query));
      reply.header('location', r.location);
      return ok(reply, 201, r);
    });
  }
  for (const url of scimPaths(`${endpoint}/.search`)) {
    // §3.4.3: POST /.search carries the query in a SearchRequest body.
    app.post(url, async (req, reply) => {
      const body = (req.body ?? {}) as Query;
      if (typeof body !== 'object' || Array.isArray(body)) throw scimError('invalidSyntax', 'the body must be a SearchRequest object');
      const schemas = param(body, 'schemas', true);
      if (schemas !== undefined && !(Array.isArray(schemas) && schemas.includes(URN.search))) throw scimError('invalidSyntax', `schemas must contain ${URN.search}`);
      return sendScim(reply, 200, service.list(listQuery(body, true)));
    });
  }
  for (const url of scimPaths(`${endpoint}/:id`)) {
    app.get<{ Params: { id: string }; Querystring: Query }>(url, idParams, async (req, reply) => {
      const r = service.get(req.params.id, projection(req.query));
      // RFC 7232 §3.2 via RFC 7644 §3.14: a matching If-None-Match means the client's copy is current.
      const inm = req.headers['if-none-match'];
      if (typeof inm === 'string' && inm.split(',').some((t) => t.trim().replace(/^W\//, '') === r.etag.replace(/^W\//, ''))) {
        return reply.code(304).header('etag', r.etag).send();
      }
      return ok(reply, 200, r);
    });
    app.put<{ Params: { id: string }; Querystring: Query }>(url, idParams, async (req, reply) =>
      ok(reply, 200, await service.replace(req.params.id, req.body, req.headers['if-match'], actorOf(req), projection(req.query))));
    app.patch<{ Params: { id: string }; Querystring: Query }>(url, idParams, async (req, reply) =>
      ok(reply, 200, await service.patch(req.params.id, req.body, req.headers['if-match'], actorOf(req), projection(req.query))));
    app.delete<{ Params: { id: string } }>(url, idParams, async (req, reply) => {
      service.delete(req.params.id, req.headers['if-match'], actorOf(req));
      return reply.code(204).send();
    });
    app.post(url, async () => {
      throw new AppError('method_not_allowed', `POST is not allowed on a single resource; use PUT or PATCH`);
    });
  }
}
