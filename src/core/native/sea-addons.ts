// Native modules inside the single executable. Under `node` each package resolves its own prebuilt
// file. In dist/nexus the build stores the .node files as SEA assets; we write each once to a cache
// directory (0700, atomic rename, named by content hash) and load it with a real `require`, because
// the SEA's own `require` only loads built-in modules.
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { getAsset, isSea } from 'node:sea';
import { cacheDirFromEnv } from '../config/config.ts';

/** Asset names the build stores, and the package file each comes from. */
export const NATIVE_ASSETS = {
  'better_sqlite3.node': 'better-sqlite3/prebuilds/linux-x64.node',
  // ws masks and unmasks every frame; in C this runs ~30× faster than ws's JavaScript fallback.
  'bufferutil.node': 'bufferutil/prebuilds/linux-x64/bufferutil.node',
} as const;

export type NativeAsset = keyof typeof NATIVE_ASSETS;

export function isSingleExecutable(): boolean {
  return isSea();
}

const loaded = new Map<string, object>();

/** Writes a native addon stored in the executable to the cache directory (once) and returns its path. */
export function seaAddonFile(asset: NativeAsset, cacheDir: string = cacheDirFromEnv()): string {
  if (!isSea()) throw new Error(`${asset} is only stored inside the single executable`);
  const bytes = Buffer.from(getAsset(asset));
  const digest = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
  chmodSync(cacheDir, 0o700);
  const target = join(cacheDir, `${asset.replace(/\.node$/, '')}-${digest}.node`);
  if (!existsSync(target)) {
    const tmp = `${target}.${process.pid}.tmp`;
    writeFileSync(tmp, bytes, { mode: 0o700 });
    renameSync(tmp, target);
  }
  return target;
}

/** Loads a native addon stored in the executable; throws outside an SEA or when it cannot load. */
export function loadSeaAddon(asset: NativeAsset, cacheDir: string = cacheDirFromEnv()): object {
  const done = loaded.get(asset);
  if (done) return done;
  const addon = createRequire(process.execPath)(seaAddonFile(asset, cacheDir)) as object;
  loaded.set(asset, addon);
  return addon;
}

/** better-sqlite3's `nativeBinding`: the loaded addon inside an SEA, undefined under `node`. */
export function loadNativeBinding(cacheDir: string): object | undefined {
  return isSea() ? loadSeaAddon('better_sqlite3.node', cacheDir) : undefined;
}
