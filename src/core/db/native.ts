// How better-sqlite3 finds its native module. Under `node` it resolves its own prebuilt file. Inside
// the single executable the build stores the .node file as an SEA asset; we write it once to a cache
// directory (0700, atomic rename, named by content hash) and load it with a real `require`, because
// the SEA's own `require` only loads built-in modules.
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { getAsset, isSea } from 'node:sea';

export const NATIVE_ASSET = 'better_sqlite3.node';

export function isSingleExecutable(): boolean {
  return isSea();
}

export function defaultCacheDir(xdgCacheHome: string | undefined): string {
  return join(xdgCacheHome || join(homedir(), '.cache'), 'nexus');
}

/** The loaded addon to pass as better-sqlite3's `nativeBinding`, or undefined outside an SEA. */
export function loadNativeBinding(cacheDir: string): object | undefined {
  if (!isSea()) return undefined;
  const bytes = Buffer.from(getAsset(NATIVE_ASSET));
  const digest = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
  chmodSync(cacheDir, 0o700);
  const target = join(cacheDir, `better_sqlite3-${digest}.node`);
  if (!existsSync(target)) {
    const tmp = `${target}.${process.pid}.tmp`;
    writeFileSync(tmp, bytes, { mode: 0o700 });
    renameSync(tmp, target);
  }
  return createRequire(process.execPath)(target) as object;
}
