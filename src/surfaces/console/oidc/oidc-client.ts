// The relying-party side of OpenID Connect Core 1.0: discovery (OIDC Discovery §4), the
// authorization code flow with PKCE (RFC 7636, S256), and ID token validation (Core §3.1.3.7)
// against the provider's JWKS with jose.
import { createHash } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { AppError } from '../../../core/errors/errors.ts';

export interface Discovery {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
  userinfo_endpoint?: string;
}

export interface Tokens {
  id_token: string;
  access_token?: string;
}

const TIMEOUT_MS = 10_000;
const DISCOVERY_TTL_MS = 10 * 60_000;

/** https only, except on loopback (a provider on the same host, as in tests). */
export function checkIssuerUrl(raw: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new AppError('validation_failed', 'issuer is not a URL', { details: { param: 'issuer' } });
  }
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(u.hostname);
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopback)) throw new AppError('validation_failed', 'issuer must be an https:// URL', { details: { param: 'issuer' } });
  if (u.search || u.hash || u.username || u.password) throw new AppError('validation_failed', 'issuer must not carry a query, fragment or credentials', { details: { param: 'issuer' } });
  return u;
}

export function pkceChallenge(verifier: string): string {
  return createHash('sha256').update(verifier).digest('base64url');
}

export interface OidcClient {
  discover(issuer: string): Promise<Discovery>;
  exchangeCode(d: Discovery, p: { clientId: string; clientSecret: string; code: string; redirectUri: string; codeVerifier: string }): Promise<Tokens>;
  verifyIdToken(d: Discovery, idToken: string, p: { clientId: string; nonce: string }): Promise<JWTPayload>;
  /** Claims from the UserInfo endpoint (Core §5.3), only when its sub is the ID token's. */
  userinfo(d: Discovery, accessToken: string, sub: string): Promise<Record<string, unknown>>;
}

export function createOidcClient(): OidcClient {
  const discoveries = new Map<string, { at: number; d: Discovery }>();
  const jwks = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

  return {
    async discover(issuer) {
      const key = issuer.replace(/\/+$/, '');
      const hit = discoveries.get(key);
      if (hit && Date.now() - hit.at < DISCOVERY_TTL_MS) return hit.d;
      let res: Response;
      try {
        res = await fetch(`${key}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'error' });
      } catch (err) {
        throw new AppError('bad_gateway', `identity provider discovery failed: ${(err as Error).message}`);
      }
      if (!res.ok) throw new AppError('bad_gateway', `identity provider discovery answered ${res.status}`);
      const d = (await res.json().catch(() => null)) as (Partial<Discovery> & Record<string, unknown>) | null;
      if (!d?.issuer || !d.authorization_endpoint || !d.token_endpoint || !d.jwks_uri) {
        throw new AppError('bad_gateway', 'identity provider discovery document is incomplete');
      }
      // OIDC Discovery §4.3: the issuer in the document must be the one we asked about.
      if (d.issuer.replace(/\/+$/, '') !== key) throw new AppError('bad_gateway', `identity provider reports issuer ${d.issuer}, expected ${issuer}`);
      const doc: Discovery = { issuer: d.issuer, authorization_endpoint: d.authorization_endpoint, token_endpoint: d.token_endpoint, jwks_uri: d.jwks_uri };
      if (typeof d.userinfo_endpoint === 'string') doc.userinfo_endpoint = d.userinfo_endpoint;
      discoveries.set(key, { at: Date.now(), d: doc });
      return doc;
    },

    async exchangeCode(d, p) {
      const body = new URLSearchParams({ grant_type: 'authorization_code', code: p.code, redirect_uri: p.redirectUri, code_verifier: p.codeVerifier });
      const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
      if (p.clientSecret) {
        // RFC 6749 §2.3.1: id and secret are form-encoded before Basic encoding.
        const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
        headers.authorization = `Basic ${Buffer.from(`${enc(p.clientId)}:${enc(p.clientSecret)}`).toString('base64')}`;
      } else {
        body.set('client_id', p.clientId);
      }
      let res: Response;
      try {
        res = await fetch(d.token_endpoint, { method: 'POST', headers, body, signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'error' });
      } catch (err) {
        throw new AppError('bad_gateway', `identity provider token request failed: ${(err as Error).message}`);
      }
      const json = (await res.json().catch(() => null)) as { id_token?: unknown; access_token?: unknown; error?: unknown; error_description?: unknown } | null;
      if (!res.ok || typeof json?.id_token !== 'string') {
        const why = typeof json?.error === 'string' ? `${json.error}${typeof json.error_description === 'string' ? `: ${json.error_description}` : ''}` : `status ${res.status}`;
        throw new AppError('unauthorized', `identity provider refused the sign-in (${why})`);
      }
      return { id_token: json.id_token, ...(typeof json.access_token === 'string' ? { access_token: json.access_token } : {}) };
    },

    async userinfo(d, accessToken, sub) {
      if (!d.userinfo_endpoint) return {};
      let res: Response;
      try {
        res = await fetch(d.userinfo_endpoint, { headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' }, signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'error' });
      } catch (err) {
        throw new AppError('bad_gateway', `identity provider userinfo request failed: ${(err as Error).message}`);
      }
      const info = (await res.json().catch(() => null)) as Record<string, unknown> | null;
      if (!res.ok || !info) throw new AppError('unauthorized', `identity provider userinfo answered ${res.status}`);
      // Core §5.3.2: the sub must match the ID token's, or the response must not be used.
      if (info.sub !== sub) throw new AppError('unauthorized', 'userinfo belongs to another subject');
      return info;
    },

    async verifyIdToken(d, idToken, p) {
      let set = jwks.get(d.jwks_uri);
      if (!set) jwks.set(d.jwks_uri, (set = createRemoteJWKSet(new URL(d.jwks_uri), { timeoutDuration: TIMEOUT_MS })));
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(idToken, set, { issuer: d.issuer, audience: p.clientId, clockTolerance: 60 }));
      } catch (err) {
        throw new AppError('unauthorized', `ID token rejected: ${(err as Error).message}`);
      }
      if (payload.nonce !== p.nonce) throw new AppError('unauthorized', 'ID token rejected: nonce does not match this sign-in');
      // Core §3.1.3.7 (4, 5): with several audiences, azp must name us.
      if (Array.isArray(payload.aud) && payload.aud.length > 1 && payload.azp !== p.clientId) {
        throw new AppError('unauthorized', 'ID token rejected: azp does not name this client');
      }
      if (typeof payload.sub !== 'string' || !payload.sub) throw new AppError('unauthorized', 'ID token rejected: no subject');
      return payload;
    },
  };
}
