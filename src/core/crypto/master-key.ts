import { randomBytes } from 'node:crypto';
import { closeSync, constants, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export class KeyFileError extends Error {
  override name = 'KeyFileError';
}

/**
 * Reads a 32-byte key file, creating it (random bytes, mode 0600) when absent. O_EXCL makes two
 * racing first starts agree on one key instead of each writing its own.
 */
export function loadOrCreateKeyFile(path: string, whenDamaged: string): Buffer {
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
  if (key.length !== 32) throw new KeyFileError(`${path} is damaged (${key.length} bytes, expected 32); ${whenDamaged}`);
  return key;
}

/** DIR/master.key: encrypts every secret the appliance stores. */
export function loadOrCreateMasterKey(dataDir: string): Buffer {
  return loadOrCreateKeyFile(join(dataDir, 'master.key'), 'restore it from backup (stored secrets need it)');
}
