import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../../core/context.ts';
import { AppError } from '../../../core/errors/errors.ts';
import { SESSION_COOKIE, cookieOf, requireUser } from '../../../core/http/auth.ts';
import { createFailureLimiter } from '../../../core/http/rate-limit.ts';
import { PASSWORD_MAX } from '../../../core/identity/identity.ts';
import { SETTING } from '../../../core/settings/settings-store.ts';
import { USERNAME_SCHEMA } from './schemas.ts';

const loginBody = {
  type: 'object',
  required: ['username', 'password'],
  additionalProperties: false,
  properties: { username: USERNAME_SCHEMA, password: { type: 'string', minLength: 1, maxLength: PASSWORD_MAX } },
} as const;

export function authRoutes(app: FastifyInstance, ctx: AppContext) {
  const { maxFailures, windowSeconds } = ctx.config.loginRateLimit;
  // Two limits: per (username, ip) stops guessing one account; per ip stops spraying many accounts.
  const perAccount = createFailureLimiter(maxFailures, windowSeconds);
  const perIp = createFailureLimiter(maxFailures * 5, windowSeconds);

  app.post<{ Body: { username: string; password: string } }>('/api/v1/auth/login', { schema: { body: loginBody } }, async (req, reply) => {
    const accountKey = `${req.body.username.toLowerCase()}|${req.ip}`;
    const wait = Math.max(perAccount.blockedFor(accountKey), perIp.blockedFor(req.ip));
    if (wait > 0) {
      ctx.audit.record({ actor_type: 'anonymous', actor_name: req.body.username, action: 'auth.login', outcome: 'denied', source_ip: req.ip, details: { reason: 'rate limited' } });
      throw new AppError('rate_limited', 'too many failed sign-in attempts; try again later', { retryAfter: wait });
    }
    const user = await ctx.identity.verifyLogin(req.body.username, req.body.password);
    if (!user) {
      perAccount.fail(accountKey);
      perIp.fail(req.ip);
      ctx.audit.record({ actor_type: 'anonymous', actor_name: req.body.username, action: 'auth.login', outcome: 'failure', source_ip: req.ip });
      throw new AppError('unauthorized', 'username or password is wrong');
    }
    perAccount.reset(accountKey);
    const session = ctx.identity.createSession(user.id, { sourceIp: req.ip, userAgent: req.headers['user-agent'] });
    reply.setCookie(SESSION_COOKIE, session.token, {
      path: '/',
      httpOnly: true,
      sameSite: 'lax',
      secure: req.protocol === 'https',
      expires: new Date(session.expiresAt),
    });
    ctx.audit.record({ actor_type: 'user', actor_id: user.id, actor_name: user.username, action: 'auth.login', outcome: 'success', source_ip: req.ip });
    return { user, expires_at: session.expiresAt };
  });

  app.post('/api/v1/auth/logout', async (req, reply) => {
    const token = cookieOf(req, SESSION_COOKIE);
    if (token) {
      const p = ctx.identity.resolveSession(token);
      ctx.identity.endSession(token);
      if (p) ctx.audit.record({ actor_type: 'user', actor_id: p.userId, actor_name: p.username, action: 'auth.logout', outcome: 'success', source_ip: req.ip });
    }
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.code(204).send();
  });

  app.get('/api/v1/me', { preHandler: requireUser(ctx) }, async (req) => {
    const user = ctx.identity.users.get(req.principal!.userId);
    // The user's groups: what their virtual keys may be charged to (POST /api/v1/virtual-keys group_id).
    const groups = ctx.identity.groups.store.groupsOfUser(req.principal!.userId).map((g) => ({ id: g.id, display_name: g.display_name }));
    // Where SDKs and agents reach the appliance, for the console's snippets: the configured public URL,
    // else what this request came in on (members may not read /api/v1/settings).
    const public_url = ctx.settings.get<string>(SETTING.publicUrl) ?? ctx.config.publicUrl ?? `${req.protocol}://${req.host}`;
    return { user, auth: req.principal!.kind, groups, public_url };
  });
}
