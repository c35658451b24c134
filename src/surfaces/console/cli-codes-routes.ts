// One-time codes for `nexus login`. The signed-in browser asks for a code (POST /api/v1/cli/codes)
// and hands it to the CLI, through the loopback callback or by the user pasting it; the CLI trades
// it once for a personal token (POST /api/v1/cli/codes/exchange). The long-lived token therefore
// never sits in a URL, browser history or a terminal's scrollback before the CLI stores it.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../core/context.ts';
import { hashToken, mintToken, TOKEN_PREFIX } from '../../core/crypto/tokens.ts';
import { AppError } from '../../core/errors/errors.ts';
import { actorOf, requireUser } from '../../core/http/auth.ts';
import { createFailureLimiter } from '../../core/http/rate-limit.ts';
import { createCliCodesStore } from './cli-codes-store.ts';

export const CLI_CODE_TTL_SECONDS = 300;

const exchangeBody = {
  type: 'object',
  required: ['code'],
  additionalProperties: false,
  properties: {
    code: { type: 'string', minLength: 1, maxLength: 200 },
    name: { type: 'string', minLength: 1, maxLength: 200 },
  },
} as const;

export function cliCodesRoutes(app: FastifyInstance, ctx: AppContext) {
  const codes = createCliCodesStore(ctx.db);
  const failures = createFailureLimiter(ctx.config.loginRateLimit.maxFailures * 5, ctx.config.loginRateLimit.windowSeconds);

  app.post('/api/v1/cli/codes', { preHandler: requireUser(ctx) }, async (req, reply) => {
    // Only a browser session may mint one: a code is how a browser sign-in reaches the CLI.
    if (req.principal!.kind !== 'session') throw new AppError('forbidden', 'one-time CLI codes are issued to browser sessions only');
    const code = mintToken(TOKEN_PREFIX.cliCode);
    const now = new Date();
    const expiresAt = new Date(now.getTime() + CLI_CODE_TTL_SECONDS * 1000).toISOString();
    codes.deleteExpired(now.toISOString());
    codes.create({ codeHash: hashToken(code), userId: req.principal!.userId, expiresAt });
    ctx.audit.record({ ...actorOf(req), action: 'cli.code.create', outcome: 'success' });
    return reply.code(201).send({ code, expires_at: expiresAt });
  });

  app.post<{ Body: { code: string; name?: string } }>('/api/v1/cli/codes/exchange', { schema: { body: exchangeBody } }, async (req, reply) => {
    const wait = failures.blockedFor(req.ip);
    if (wait > 0) throw new AppError('rate_limited', 'too many invalid codes; try again later', { retryAfter: wait });
    const found = req.body.code.startsWith(TOKEN_PREFIX.cliCode) ? codes.consume(hashToken(req.body.code), new Date().toISOString()) : undefined;
    const user = found && ctx.identity.users.get(found.user_id);
    if (!user || !user.active) {
      failures.fail(req.ip);
      ctx.audit.record({ actor_type: 'anonymous', action: 'cli.code.exchange', outcome: 'failure', source_ip: req.ip });
      throw new AppError('unauthorized', 'this code is not valid, was already used or has expired; run nexus login again');
    }
    const { token, record } = ctx.identity.createApiToken(user.id, req.body.name ?? 'nexus CLI', null);
    ctx.audit.record({ actor_type: 'user', actor_id: user.id, actor_name: user.username, source_ip: req.ip, action: 'token.create', target_type: 'api_token', target_id: record.id, outcome: 'success', details: { name: record.name, via: 'cli login' } });
    return reply.code(201).send({ token, token_id: record.id, user: { id: user.id, username: user.username, role: user.role } });
  });
}
