// Files that ship inside the single executable (console assets, templates). Under `node` they are
// read from the repository; in dist/nexus the build stored them as SEA assets under the same
// repository-relative key (scripts/build.ts stores every file under ASSET_DIRS).
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { getAsset, isSea } from 'node:sea';

export const ASSET_DIRS = ['web/dist', 'nginx', 'appliance', 'first-boot/templates', 'packer'];

const REPO_ROOT = resolve(import.meta.dirname, '../../..');

/** Reads a shipped file by its repository-relative path (e.g. "web/dist/index.html"); null if absent. */
export function readAsset(key: string): Buffer | null {
  if (isSea()) {
    try {
      return Buffer.from(getAsset(key));
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
