// vitest globalSetup for e2e: builds the console (web/dist) once before any appliance starts, so
// every test serves the current SPA. esbuild takes well under a second.
import { buildWeb } from '../../scripts/build-web.ts';

export default async function setup(): Promise<void> {
  await buildWeb({ quiet: true });
}
