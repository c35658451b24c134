// Bearer secrets: recognisable prefix + 32 random bytes (base64url), stored only as SHA-256,
// compared in constant time (DESIGN.md §4).
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

export const TOKEN_PREFIX = {
  pat: 'nx_pat_',
  vk: 'nx_vk_',
  nodeRegistration: 'nx_nreg_',
  nodeAuth: 'nx_nauth_',
  scim: 'nx_scim_',
  setup: 'nx_setup_',
  cliCode: 'nx_cli_',
} as const;

export type TokenPrefix = (typeof TOKEN_PREFIX)[keyof typeof TOKEN_PREFIX];

export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

export function mintToken(prefix: TokenPrefix): string {
  return prefix + randomToken(32);
}

export function hashToken(token: string): string {
  return hash('sha256', token, 'hex'); // one-shot: no Hash object per call (every gateway request hashes its key)
}

/** Constant-time comparison of two strings of any length (length itself is not secret here). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

/** True when `token` hashes to `storedHash`; the comparison of the hex digests is constant-time. */
export function tokenMatches(token: string, storedHash: string): boolean {
  return safeEqual(hashToken(token), storedHash);
}

/** A short, non-secret hint shown in listings: prefix plus the last 4 characters. */
export function tokenHint(token: string): string {
  const m = /^(nx_[a-z]+_)/.exec(token);
  return `${m ? m[1] : ''}…${token.slice(-4)}`;
}
