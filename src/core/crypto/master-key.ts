import { randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, readFileSync, writeSync, fsyncSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Reads DIR/master.key, creating it (32 random bytes, mode 0600) on first start. O_EXCL makes two
 * racing first starts agree on one key instead of each writing its own.
 */
export function loadOrCreateMasterKey(dataDir: string): Buffer {
  const path = join(dataDir, 'master.key');
  try {
    const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      writeSync(fd, randomBytes(32));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const key = readFileSync(path);
  if (key.length !== 32) {
    throw new Error(`${path} is ${key.length} bytes, expected 32: restore it from backup (stored secrets need it)`);
  }
  return key;
}
