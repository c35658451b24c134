// Where better-sqlite3 finds its native module. Under `node` it resolves its own prebuilt file; inside
// the single executable the build registers the .node file as an SEA asset, and we write it once to a
// cache directory (0700, atomic rename) and pass it as `nativeBinding`.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync, chmodSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';

const ASSET = 'better_sqlite3.node';

interface SeaModule {
  isSea(): boolean;
  getAsset(key: string): ArrayBuffer;
}

function seaModule(): SeaModule | null {
  try {
    const req = createRequire(import.meta.url);
    const sea = req('node:sea') as SeaModule;
    return sea.isSea() ? sea : null;
  } catch {
    return null;
  }
}

export function isSingleExecutable(): boolean {
  return seaModule() !== null;
}

export function defaultCacheDir(xdgCacheHome: string | undefined): string {
  return join(xdgCacheHome || join(homedir(), '.cache'), 'nexus');
}

/** Returns the path to pass as better-sqlite3's `nativeBinding`, or undefined when not in an SEA. */
export function nativeBindingPath(cacheDir: string): string | undefined {
  const sea = seaModule();
  if (!sea) return undefined;
  const bytes = Buffer.from(sea.getAsset(ASSET));
  const digest = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
  chmodSync(cacheDir, 0o700);
  const target = join(cacheDir, `better_sqlite3-${digest}.node`);
  if (!existsSync(target)) {
    const tmp = `${target}.${process.pid}.tmp`;
    writeFileSync(tmp, bytes, { mode: 0o700 });
    renameSync(tmp, target);
  }
  return target;
}
