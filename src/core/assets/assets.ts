// Files that ship inside the single executable (console assets, templates). Under `node` they are
// read from the repository; in dist/nexus the build stored them as SEA assets under the same
// repository-relative key (scripts/build.ts bundles every file under the ASSET_DIRS below).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

export const ASSET_DIRS = ['web/dist', 'nginx', 'appliance', 'first-boot/templates'];

interface SeaModule {
  isSea(): boolean;
  getAsset(key: string): ArrayBuffer;
  getAssetKeys?(): string[];
}

let sea: SeaModule | null | undefined;
function seaModule(): SeaModule | null {
  if (sea === undefined) {
    try {
      const s = createRequire(import.meta.url)('node:sea') as SeaModule;
      sea = s.isSea() ? s : null;
    } catch {
      sea = null;
    }
  }
  return sea;
}

const REPO_ROOT = resolve(import.meta.dirname, '../../..');

/** Reads a shipped file by its repository-relative path (e.g. "web/dist/index.html"); null if absent. */
export function readAsset(key: string): Buffer | null {
  const s = seaModule();
  if (s) {
    try {
      return Buffer.from(s.getAsset(key));
    } catch {
      return null;
    }
  }
  try {
    return readFileSync(join(REPO_ROOT, key));
  } catch {
    return null;
  }
}
