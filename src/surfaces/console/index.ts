// Console: the SPA (setup wizard, sign-in, pages, CLI browser pages) plus the API routes only the
// console needs — appliance settings, one-time CLI codes, OIDC single sign-on. Registered last
// (server/surfaces.ts) so its catch-all never hides another surface's route.
import type { Surface } from '../../core/surface.ts';
import { backupRoutes } from './backup-routes.ts';
import { capabilitiesRoutes } from './capabilities.ts';
import { cliCodesRoutes } from './cli-codes-routes.ts';
import { sendApiError } from './http.ts';
import { oidcRoutes } from './oidc/oidc-routes.ts';
import { settingsRoutes } from './settings-routes.ts';
import { spaRoutes } from './spa.ts';

export const consoleSurface: Surface = {
  name: 'console',
  register(app, ctx) {
    app.setErrorHandler(sendApiError);
    settingsRoutes(app, ctx);
    backupRoutes(app, ctx);
    cliCodesRoutes(app, ctx);
    oidcRoutes(app, ctx);
    capabilitiesRoutes(app, ctx);
    spaRoutes(app);
  },
};
