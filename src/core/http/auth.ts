// Request authentication shared by the control plane and the service proxy: the console's session
// cookie, or a personal token as `Authorization: Bearer nx_pat_…` or `X-API-Key: nx_pat_…`.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import { AppError } from '../errors/errors.ts';
import type { Principal } from '../identity/identity.ts';

export const SESSION_COOKIE = 'nx_session';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export function bearerFrom(req: FastifyRequest): string | null {
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1]!;
  }
  const apiKey = req.headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey) return apiKey.trim();
  return null;
}

/** A request cookie, parsed on first use (the cookie plugin runs without a per-request hook). */
export function cookieOf(req: FastifyRequest, name: string): string | undefined {
  if (!req.cookies) {
    const header = req.headers.cookie;
    req.cookies = header ? req.server.parseCookie(header) : {};
  }
  return req.cookies[name];
}

export function authenticate(ctx: AppContext, req: FastifyRequest): Principal | null {
  const bearer = bearerFrom(req);
  if (bearer) return ctx.identity.resolveApiToken(bearer);
  const cookie = cookieOf(req, SESSION_COOKIE);
  if (cookie) return ctx.identity.resolveSession(cookie);
  return null;
}

/** preHandler: any signed-in user. A presented but invalid credential is 401, never anonymous. */
export function requireUser(ctx: AppContext) {
  return async (req: FastifyRequest, _reply: FastifyReply) => {
    const principal = authenticate(ctx, req);
    if (!principal) throw new AppError('unauthorized', 'sign in or send a valid personal token');
    req.principal = principal;
  };
}

export function requireAdmin(ctx: AppContext) {
  const user = requireUser(ctx);
  return async (req: FastifyRequest, reply: FastifyReply) => {
    await user(req, reply);
    if (req.principal?.role !== 'admin') throw new AppError('forbidden', 'this action needs the admin role');
  };
}

/** The audit actor fields for a request's principal. */
export function actorOf(req: FastifyRequest): { actor_type: 'user' | 'token' | 'anonymous'; actor_id: string | null; actor_name: string | null; source_ip: string } {
  const p = req.principal;
  if (!p) return { actor_type: 'anonymous', actor_id: null, actor_name: null, source_ip: req.ip };
  return { actor_type: p.kind === 'token' ? 'token' : 'user', actor_id: p.userId, actor_name: p.username, source_ip: req.ip };
}
