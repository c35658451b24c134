// Control plane: setup, sign-in, users, personal tokens, audit. Renders `{error:{code,message}}`.
import type { Surface } from '../../core/surface.ts';
import { sendControlError } from './http.ts';
import { auditRoutes } from './routes/audit-routes.ts';
import { authRoutes } from './routes/auth-routes.ts';
import { setupRoutes } from './routes/setup-routes.ts';
import { tokensRoutes } from './routes/tokens-routes.ts';
import { usersRoutes } from './routes/users-routes.ts';

export const controlSurface: Surface = {
  name: 'control',
  register(app, ctx) {
    app.setErrorHandler(sendControlError);
    setupRoutes(app, ctx);
    authRoutes(app, ctx);
    tokensRoutes(app, ctx);
    usersRoutes(app, ctx);
    auditRoutes(app, ctx);
  },
  notFound: {
    match: (url) => url.startsWith('/api/') || url.startsWith('/oauth/') || url.startsWith('/.well-known/'),
    send: (_req, reply) => reply.code(404).send({ error: { code: 'not_found', message: 'no such route' } }),
  },
};
