// SCIM bearer tokens: minted in the control plane (nx_scim_…), shown once, stored as SHA-256,
// revocable. Every /scim/v2 request presents one.
import { randomUUID } from 'node:crypto';
import type { AppContext } from '../../core/context.ts';
import { hashToken, mintToken, tokenHint, TOKEN_PREFIX } from '../../core/crypto/tokens.ts';
import { createScimTokensStore, type ScimToken } from './tokens-store.ts';

const TOUCH_EVERY_MS = 60_000;

export function createTokensService(ctx: AppContext) {
  const store = createScimTokensStore(ctx.db);
  const lastTouch = new Map<string, number>();
  return {
    mint(name: string, createdBy: string | null): { token: string; record: ScimToken } {
      const token = mintToken(TOKEN_PREFIX.scim);
      const record = store.create({ id: randomUUID(), name, tokenHash: hashToken(token), hint: tokenHint(token), createdBy });
      return { token, record };
    },
    list: () => store.list(),
    get: (id: string) => store.get(id),
    revoke: (id: string) => store.revoke(id),
    /** The live token record for a presented secret, or null. Looked up by hash, so revocation is immediate. */
    verify(secret: string): ScimToken | null {
      if (!secret.startsWith(TOKEN_PREFIX.scim) || secret.length > 100) return null;
      const record = store.getByHash(hashToken(secret));
      if (!record || record.revoked_at) return null;
      const now = Date.now();
      if ((lastTouch.get(record.id) ?? 0) + TOUCH_EVERY_MS < now) {
        lastTouch.set(record.id, now);
        store.touch(record.id, new Date(now).toISOString());
      }
      return record;
    },
  };
}

export type TokensService = ReturnType<typeof createTokensService>;
