// Zhipu's SDK authentication: `Authorization: <JWT>` (optionally `Bearer <JWT>`), HS256 with header
// `{"alg":"HS256","sign_type":"SIGN"}` and payload `{api_key: <id>, exp, timestamp}`, signed with the
// secret half of an `id.secret` key (https://open.bigmodel.cn/dev/api/http-call/http-auth).
// Zhipu documents exp/timestamp in milliseconds; zhipuai-sdk-nodejs-v4 sends microseconds; both
// (and seconds) are told apart by magnitude.
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface ZhipuClaims {
  apiKeyId: string;
  expMs: number;
  signed: string;
  signature: Buffer;
}

const JWT_SHAPE = /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/** Tokens may live at most this long past now: Zhipu's SDKs mint them for minutes, not days. */
const MAX_LIFETIME_MS = 24 * 3600 * 1000;
const CLOCK_SKEW_MS = 5 * 60 * 1000;

export function looksLikeJwt(s: string): boolean {
  return s.length < 4096 && JWT_SHAPE.test(s);
}

/** Seconds, milliseconds or microseconds since the epoch, told apart by magnitude, as ms. */
export function epochToMs(v: number): number {
  if (v >= 1e14) return v / 1000;
  if (v >= 1e11) return v;
  return v * 1000;
}

/** Parses without verifying. Returns a reason string when the token is malformed or expired. */
export function parseZhipuJwt(token: string, now: number): ZhipuClaims | string {
  const [h, p, s] = token.split('.') as [string, string, string];
  let header: Record<string, unknown>;
  let payload: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
    payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  } catch {
    return 'token is not a valid JWT';
  }
  if (!header || typeof header !== 'object' || header.alg !== 'HS256') return 'token must be signed with HS256';
  if (header.sign_type !== undefined && header.sign_type !== 'SIGN') return 'token sign_type must be SIGN';
  if (!payload || typeof payload !== 'object') return 'token payload is not an object';
  const { api_key: apiKeyId, exp, timestamp } = payload;
  if (typeof apiKeyId !== 'string' || !apiKeyId || apiKeyId.length > 200) return 'token payload lacks api_key';
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return 'token payload lacks a numeric exp';
  const expMs = epochToMs(exp);
  if (expMs <= now) return 'token has expired';
  if (expMs > now + MAX_LIFETIME_MS) return 'token exp is too far in the future';
  if (typeof timestamp === 'number' && Number.isFinite(timestamp) && epochToMs(timestamp) > now + CLOCK_SKEW_MS) {
    return 'token timestamp is in the future';
  }
  return { apiKeyId, expMs, signed: `${h}.${p}`, signature: Buffer.from(s, 'base64url') };
}

export function verifyZhipuSignature(claims: ZhipuClaims, secret: string): boolean {
  const expected = createHmac('sha256', secret).update(claims.signed).digest();
  return expected.length === claims.signature.length && timingSafeEqual(expected, claims.signature);
}
