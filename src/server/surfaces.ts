// Every surface the appliance serves, in registration order. The one list server/app.ts reads.
import type { Surface } from '../core/surface.ts';
import { controlSurface } from '../surfaces/control/index.ts';
import { scimSurface } from '../surfaces/scim/index.ts';

export const SURFACES: Surface[] = [controlSurface, scimSurface];
