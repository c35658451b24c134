// Every surface the appliance serves, in registration order. The one list server/app.ts reads.
// The gateway comes first so its 404 renderer claims /api/paas/* ahead of control's /api/*.
// The console goes last: its catch-all serves the SPA for every path no API surface claims.
import type { Surface } from '../core/surface.ts';
import { consoleSurface } from '../surfaces/console/index.ts';
import { controlSurface } from '../surfaces/control/index.ts';
import { gatewaySurface } from '../surfaces/gateway/index.ts';
import { hubSurface } from '../surfaces/hub/index.ts';
import { scimSurface } from '../surfaces/scim/index.ts';

export const SURFACES: Surface[] = [gatewaySurface, controlSurface, scimSurface, hubSurface, consoleSurface];
