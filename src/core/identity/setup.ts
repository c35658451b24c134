// First start: while no admin exists, a one-time setup token (nx_setup_…) is written to
// DIR/setup-token (0600) and its hash kept in settings. POST /api/v1/setup consumes it.
import { readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { hashToken, mintToken, tokenMatches, TOKEN_PREFIX } from '../crypto/tokens.ts';
import type { SettingsStore } from '../settings/settings-store.ts';

const KEY = 'setup.token_hash';

export interface SetupTokens {
  /** Returns the token to show (existing or new), or null when setup is already complete. */
  ensure(hasAdmin: boolean): string | null;
  verify(token: string): boolean;
  consume(): void;
  path: string;
}

export function createSetupTokens(dataDir: string, settings: SettingsStore): SetupTokens {
  const path = join(dataDir, 'setup-token');
  return {
    path,
    ensure(hasAdmin) {
      if (hasAdmin) {
        settings.delete(KEY);
        rmSync(path, { force: true });
        return null;
      }
      const stored = settings.get<string>(KEY);
      try {
        const existing = readFileSync(path, 'utf8').trim();
        if (stored && tokenMatches(existing, stored)) return existing;
      } catch {
        /* no file yet */
      }
      const token = mintToken(TOKEN_PREFIX.setup);
      rmSync(path, { force: true });
      writeFileSync(path, token + '\n', { mode: 0o600, flag: 'wx' });
      chmodSync(path, 0o600);
      settings.set(KEY, hashToken(token));
      return token;
    },
    verify(token) {
      const stored = settings.get<string>(KEY);
      return typeof token === 'string' && !!stored && tokenMatches(token, stored);
    },
    consume() {
      settings.delete(KEY);
      rmSync(path, { force: true });
    },
  };
}
