// The console's API routes (settings, CLI codes, SSO) answer in the control-plane format,
// `{error:{code,message}}`, like every /api/v1 path.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { renderControlError, toAppError } from '../../core/errors/errors.ts';

export function sendApiError(err: unknown, req: FastifyRequest, reply: FastifyReply) {
  const appErr = toAppError(err);
  if (appErr.status >= 500) req.log.error({ err: (err as FastifyError) ?? appErr }, 'request failed');
  if (appErr.retryAfter !== undefined) reply.header('retry-after', String(appErr.retryAfter));
  return reply.code(appErr.status).type('application/json; charset=utf-8').send(renderControlError(appErr));
}
