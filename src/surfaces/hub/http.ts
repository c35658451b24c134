// Hub and proxy errors use the control plane's JSON shape, `{error:{code,message}}`, with the hub's
// numeric codes (8002 node offline, 8003 registration failed) in `code`.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { renderControlError, toAppError } from '../../core/errors/errors.ts';

export function sendHubError(err: unknown, req: FastifyRequest, reply: FastifyReply) {
  const appErr = toAppError(err);
  if (appErr.status >= 500 && appErr.code === 'internal') req.log.error({ err }, 'request failed');
  if (reply.sent || reply.raw.headersSent) {
    // Mid-stream: the status is gone; cutting the connection is the only honest signal left.
    reply.raw.destroy();
    return reply;
  }
  if (appErr.retryAfter !== undefined) reply.header('retry-after', String(appErr.retryAfter));
  return reply.code(appErr.status).type('application/json; charset=utf-8').send(renderControlError(appErr));
}
