// SCIM over HTTP: errors in RFC 7644 §3.12's schema, `application/scim+json` in and out, and Bearer
// authentication with nx_scim_ tokens (§2). The control-plane routes this surface also serves
// (/api/v1/scim/tokens, /api/v1/groups) render the control plane's `{error:{code,message}}`.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, renderControlError, toAppError } from '../../core/errors/errors.ts';
import { installJsonParser } from '../../core/http/validation.ts';
import { URN } from './schemas.ts';

export const SCIM_CONTENT_TYPE = 'application/scim+json; charset=utf-8';

export function renderScimError(err: AppError) {
  let scimType = err.details?.scimType as string | undefined;
  if (!scimType && err.code === 'invalid_json') scimType = 'invalidSyntax';
  if (!scimType && err.code === 'conflict') scimType = 'uniqueness';
  if (!scimType && err.code === 'validation_failed') scimType = 'invalidValue';
  return { schemas: [URN.error], status: String(err.status), ...(scimType ? { scimType } : {}), detail: err.message };
}

export function sendScimError(err: unknown, req: FastifyRequest, reply: FastifyReply) {
  const appErr = toAppError(err);
  if (appErr.status >= 500) req.log.error({ err: (err as FastifyError) ?? appErr }, 'request failed');
  if (appErr.status === 401) reply.header('www-authenticate', 'Bearer realm="nexus-scim"');
  return reply.code(appErr.status).type(SCIM_CONTENT_TYPE).send(renderScimError(appErr));
}

/** One error handler for the surface's scope: SCIM paths speak SCIM, the rest the control plane. */
export function sendSurfaceError(err: unknown, req: FastifyRequest, reply: FastifyReply) {
  if (req.url.startsWith('/scim/')) return sendScimError(err, req, reply);
  const appErr = toAppError(err);
  if (appErr.status >= 500) req.log.error({ err: (err as FastifyError) ?? appErr }, 'request failed');
  return reply.code(appErr.status).type('application/json; charset=utf-8').send(renderControlError(appErr));
}

/** RFC 7644 §3.1: clients send application/scim+json; plain application/json is accepted too. */
export function installScimParser(app: FastifyInstance): void {
  installJsonParser(app, ['application/scim+json']);
}

export function sendScim(reply: FastifyReply, status: number, body: unknown) {
  return reply.code(status).type(SCIM_CONTENT_TYPE).send(body);
}

/** `If-Match` (RFC 7644 §3.14, RFC 7232 §3.1): weak comparison; `*` matches anything. */
export function checkIfMatch(header: string | string[] | undefined, etag: string): void {
  if (header === undefined) return;
  const raw = Array.isArray(header) ? header.join(',') : header;
  const strip = (t: string) => t.trim().replace(/^W\//i, '');
  const tags = raw.split(',').map(strip).filter(Boolean);
  if (tags.includes('*') || tags.includes(strip(etag))) return;
  throw new AppError('precondition_failed', 'the resource has changed (If-Match does not match its ETag)');
}

export const etagOf = (version: number) => `W/"${version}"`;
