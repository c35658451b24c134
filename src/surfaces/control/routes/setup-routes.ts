import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../../core/context.ts';
import { AppError } from '../../../core/errors/errors.ts';
import { PASSWORD_MAX, PASSWORD_MIN, SETUP_PASSWORD_PLACEHOLDER } from '../../../core/identity/identity.ts';
import { USERNAME_SCHEMA } from './schemas.ts';

const setupBody = {
  type: 'object',
  required: ['setup_token', 'username', 'password'],
  additionalProperties: false,
  properties: {
    setup_token: { type: 'string', maxLength: 200 },
    username: USERNAME_SCHEMA,
    password: { type: 'string', minLength: PASSWORD_MIN, maxLength: PASSWORD_MAX },
    email: { type: 'string', format: 'email', maxLength: 254 },
  },
} as const;

export function setupRoutes(app: FastifyInstance, ctx: AppContext) {
  app.get('/api/v1/setup/status', async () => ({ setup_required: !ctx.identity.hasAdmin() }));

  /** Once an admin exists, every setup request gets this answer, recorded as denied. */
  const refuseWhenSetUp = (ip: string) => {
    if (!ctx.identity.hasAdmin()) return;
    ctx.audit.record({ actor_type: 'anonymous', action: 'setup.complete', source_ip: ip, outcome: 'denied', details: { reason: 'already complete' } });
    throw new AppError('setup_complete', 'setup is already complete; sign in instead');
  };

  // Creates the first admin. Single use: the token is consumed in the same transaction that checks
  // no admin exists, so two racing requests cannot both succeed. "Already set up" is answered in
  // onRequest, before the body is parsed or validated, so it comes first whatever the body (a
  // short password, malformed JSON); the handler asks again for a setup that finished meanwhile.
  app.post<{ Body: { setup_token: string; username: string; password: string; email?: string } }>(
    '/api/v1/setup',
    { schema: { body: setupBody }, onRequest: async (req) => refuseWhenSetUp(req.ip) },
    async (req, reply) => {
      const audit = { actor_type: 'anonymous' as const, action: 'setup.complete', source_ip: req.ip };
      refuseWhenSetUp(req.ip);
      if (req.body.password === SETUP_PASSWORD_PLACEHOLDER) {
        throw new AppError('validation_failed', 'replace <at least 10 characters> in the setup command with the password you want', { details: { param: 'password' } });
      }
      if (!ctx.setup.verify(req.body.setup_token)) {
        ctx.audit.record({ ...audit, outcome: 'denied', details: { reason: 'bad setup token' } });
        // The file's path stays on the appliance's console and log: this caller is not signed in.
        throw new AppError('unauthorized', 'setup token is not valid; it is in the file setup-token in the appliance\'s data dir, and printed when it started');
      }
      // Hash outside the transaction (scrypt is async), then claim atomically.
      const pending = await ctx.identity.createUser({ username: req.body.username, email: req.body.email ?? null, password: req.body.password, role: 'member', active: false });
      const won = ctx.db.transaction(() => {
        if (ctx.identity.hasAdmin() || !ctx.setup.verify(req.body.setup_token)) return false;
        ctx.identity.users.update(pending.id, { role: 'admin', active: true });
        ctx.setup.consume();
        return true;
      })();
      if (!won) {
        ctx.identity.users.delete(pending.id);
        throw new AppError('setup_complete', 'setup is already complete; sign in instead');
      }
      ctx.audit.record({ ...audit, actor_type: 'user', actor_id: pending.id, actor_name: pending.username, outcome: 'success', target_type: 'user', target_id: pending.id });
      const user = ctx.identity.users.get(pending.id)!;
      return reply.code(201).send({ user });
    },
  );
}
