// Every surface the appliance serves, in registration order. The one list server/app.ts reads.
// The console goes last: its catch-all serves the SPA for every path no API surface claims.
import type { Surface } from '../core/surface.ts';
import { consoleSurface } from '../surfaces/console/index.ts';
import { controlSurface } from '../surfaces/control/index.ts';
import { hubSurface } from '../surfaces/hub/index.ts';
import { scimSurface } from '../surfaces/scim/index.ts';

export const SURFACES: Surface[] = [controlSurface, scimSurface, hubSurface, consoleSurface];
