import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createSecretBox } from './secret-box.ts';
import { hashToken, mintToken, safeEqual, tokenHint, tokenMatches, TOKEN_PREFIX } from './tokens.ts';
import { hashPassword, verifyPassword } from './passwords.ts';

describe('secret box', () => {
  const box = createSecretBox(randomBytes(32));
  it('round-trips and never returns the plaintext in the sealed form', () => {
    const sealed = box.seal('sk-live-123', 'provider:1');
    expect(sealed).not.toContain('sk-live');
    expect(box.open(sealed, 'provider:1')).toBe('sk-live-123');
  });
  it('refuses a ciphertext moved to another row (AAD) or tampered with', () => {
    const sealed = box.seal('secret', 'provider:1');
    expect(() => box.open(sealed, 'provider:2')).toThrow();
    const raw = Buffer.from(sealed.slice(3), 'base64url');
    raw[raw.length - 1]! ^= 1;
    expect(() => box.open('v1.' + raw.toString('base64url'), 'provider:1')).toThrow();
    expect(() => box.open('v1.AAAA')).toThrow(/truncated/);
  });
  it('refuses a different master key', () => {
    const other = createSecretBox(randomBytes(32));
    expect(() => other.open(box.seal('x'))).toThrow();
  });
});

describe('tokens', () => {
  it('mints prefixed tokens with at least 32 random bytes', () => {
    const t = mintToken(TOKEN_PREFIX.pat);
    expect(t.startsWith('nx_pat_')).toBe(true);
    expect(Buffer.from(t.slice(7), 'base64url').length).toBe(32);
    expect(mintToken(TOKEN_PREFIX.pat)).not.toBe(t);
  });
  it('matches only the right token, via its hash', () => {
    const t = mintToken(TOKEN_PREFIX.vk);
    expect(tokenMatches(t, hashToken(t))).toBe(true);
    expect(tokenMatches(t + 'x', hashToken(t))).toBe(false);
    expect(safeEqual('abc', 'abcd')).toBe(false);
    expect(tokenHint(t)).toMatch(/^nx_vk_….{4}$/);
  });
});

describe('passwords', () => {
  it('verifies the right password and rejects others and garbage hashes', async () => {
    const h = await hashPassword('correct horse battery');
    expect(h.startsWith('scrypt$')).toBe(true);
    expect(await verifyPassword('correct horse battery', h)).toBe(true);
    expect(await verifyPassword('wrong', h)).toBe(false);
    expect(await verifyPassword('x', 'not-a-hash')).toBe(false);
  });
});
