// OIDC single sign-on for the console: settings (admin), the public "is SSO on?" probe for the
// sign-in page, and the browser flow /start → IdP → /callback. state and the PKCE verifier live
// in oidc_logins (single use, 10 minutes); the state is also bound to the browser by a cookie so
// a sign-in started elsewhere cannot be completed here (login CSRF, RFC 6749 §10.12).
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { AppContext } from '../../../core/context.ts';
import { hashToken, randomToken, safeEqual } from '../../../core/crypto/tokens.ts';
import { AppError } from '../../../core/errors/errors.ts';
import { SESSION_COOKIE, actorOf, cookieOf, requireAdmin } from '../../../core/http/auth.ts';
import { checkIssuerUrl, createOidcClient, pkceChallenge } from './oidc-client.ts';
import { createOidcLoginsStore } from './oidc-logins-store.ts';
import { loadOidc, openSecret, publicView, redirectUri, saveOidc, sealSecret, type OidcSettings } from './oidc-settings.ts';
import { userForClaims } from './oidc-users.ts';

const STATE_COOKIE = 'nx_oidc_state';
const COOKIE_PATH = '/api/v1/auth/oidc';
const PENDING_SECONDS = 600;

const settingsBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    enabled: { type: 'boolean' },
    issuer: { type: 'string', maxLength: 2048 },
    client_id: { type: 'string', maxLength: 512 },
    client_secret: { type: 'string', maxLength: 4096 },
    scopes: { type: 'string', maxLength: 512, pattern: '^[\\x21\\x23-\\x5b\\x5d-\\x7e ]*$' },
    display_name: { type: 'string', maxLength: 100 },
    jit: { type: 'boolean' },
    sso_only: { type: 'boolean' },
    break_glass_username: { type: 'string', maxLength: 128 },
  },
} as const;

type SettingsBody = Partial<Omit<OidcSettings, 'client_secret_sealed'>> & { client_secret?: string };

const callbackQuery = {
  type: 'object',
  properties: {
    code: { type: 'string', maxLength: 4096 },
    state: { type: 'string', maxLength: 512 },
    error: { type: 'string', maxLength: 512 },
    error_description: { type: 'string', maxLength: 2048 },
  },
} as const;

/** Same-origin paths only ("//host" or "/\host" would leave the site). */
export function safeReturnTo(raw: unknown): string {
  return typeof raw === 'string' && raw.startsWith('/') && !raw.startsWith('//') && !raw.startsWith('/\\') && raw.length <= 2048 ? raw : '/';
}

export function oidcRoutes(app: FastifyInstance, ctx: AppContext) {
  const client = createOidcClient();
  const logins = createOidcLoginsStore(ctx.db);

  // SSO-only: passwords work only for the named break-glass admin (checked after the password matched).
  ctx.identity.passwordLoginAllowed = (user) => {
    const s = loadOidc(ctx);
    if (!s.enabled || !s.sso_only) return true;
    return user.role === 'admin' && user.username.toLowerCase() === s.break_glass_username.toLowerCase();
  };

  const toLogin = (reply: FastifyReply, message: string) =>
    reply.redirect(`/login?error=${encodeURIComponent(message)}`, 303);

  app.get('/api/v1/auth/oidc/config', async () => {
    const s = loadOidc(ctx);
    return { enabled: s.enabled, sso_only: s.enabled && s.sso_only, display_name: s.display_name };
  });

  app.get('/api/v1/settings/oidc', { preHandler: requireAdmin(ctx) }, async () => publicView(ctx, loadOidc(ctx)));

  app.put<{ Body: SettingsBody }>('/api/v1/settings/oidc', { preHandler: requireAdmin(ctx), schema: { body: settingsBody } }, async (req) => {
    const { client_secret, ...rest } = req.body;
    const next: OidcSettings = { ...loadOidc(ctx), ...rest };
    if (client_secret !== undefined) next.client_secret_sealed = sealSecret(ctx, client_secret);
    next.issuer = next.issuer.trim().replace(/\/+$/, '');
    if (next.enabled) {
      if (!next.issuer || !next.client_id) throw new AppError('validation_failed', 'issuer and client_id are required to enable single sign-on', { details: { param: next.issuer ? 'client_id' : 'issuer' } });
      checkIssuerUrl(next.issuer);
      if (!/(^| )openid( |$)/.test(next.scopes)) throw new AppError('validation_failed', 'scopes must include openid', { details: { param: 'scopes' } });
      await client.discover(next.issuer); // refuse settings that cannot work
    }
    if (next.enabled && next.sso_only) {
      // Never lock everyone out: SSO-only needs a local admin who can still sign in with a password.
      const bg = next.break_glass_username ? ctx.identity.users.getByUsername(next.break_glass_username) : undefined;
      if (!bg || bg.role !== 'admin' || !bg.active || !ctx.identity.users.passwordHash(bg.id)) {
        throw new AppError('validation_failed', 'SSO-only mode needs break_glass_username to name an active local admin with a password', { details: { param: 'break_glass_username' } });
      }
    }
    saveOidc(ctx, next);
    ctx.audit.record({ ...actorOf(req), action: 'settings.oidc.update', target_type: 'settings', outcome: 'success',
      details: { enabled: next.enabled, issuer: next.issuer, sso_only: next.sso_only, jit: next.jit, secret_changed: client_secret !== undefined } });
    return publicView(ctx, next);
  });

  app.get<{ Querystring: { return_to?: string } }>('/api/v1/auth/oidc/start', {
    schema: { querystring: { type: 'object', properties: { return_to: { type: 'string', maxLength: 2048 } } } },
  }, async (req, reply) => {
    const s = loadOidc(ctx);
    if (!s.enabled) return toLogin(reply, 'Single sign-on is not configured.');
    let d;
    try {
      d = await client.discover(s.issuer);
    } catch (err) {
      req.log.warn({ err }, 'oidc discovery failed');
      return toLogin(reply, 'The identity provider cannot be reached right now.');
    }
    const state = randomToken(32);
    const nonce = randomToken(32);
    const verifier = randomToken(32); // 43 characters, RFC 7636 §4.1
    const now = new Date();
    logins.deleteExpired(now.toISOString());
    logins.create({ stateHash: hashToken(state), nonce, code_verifier: verifier, return_to: safeReturnTo(req.query.return_to),
      expiresAt: new Date(now.getTime() + PENDING_SECONDS * 1000).toISOString() });
    reply.setCookie(STATE_COOKIE, state, { path: COOKIE_PATH, httpOnly: true, sameSite: 'lax', secure: req.protocol === 'https', maxAge: PENDING_SECONDS });
    const url = new URL(d.authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: s.client_id,
      redirect_uri: redirectUri(ctx),
      scope: s.scopes,
      state,
      nonce,
      code_challenge: pkceChallenge(verifier),
      code_challenge_method: 'S256',
    }).toString();
    return reply.redirect(url.toString(), 302);
  });

  app.get<{ Querystring: { code?: string; state?: string; error?: string; error_description?: string } }>('/api/v1/auth/oidc/callback', {
    schema: { querystring: callbackQuery },
  }, async (req, reply) => {
    const { code, state, error } = req.query;
    const cookieState = cookieOf(req, STATE_COOKIE);
    reply.clearCookie(STATE_COOKIE, { path: COOKIE_PATH });
    const audit = { actor_type: 'anonymous' as const, action: 'auth.login', source_ip: req.ip };
    const fail = (reason: string, message: string) => {
      ctx.audit.record({ ...audit, outcome: 'failure', details: { method: 'oidc', reason } });
      return toLogin(reply, message);
    };
    if (!state || !cookieState || !safeEqual(state, cookieState)) return fail('state mismatch', 'This sign-in did not start in this browser; try again.');
    const pending = logins.consume(hashToken(state), new Date().toISOString());
    if (!pending) return fail('unknown or expired state', 'This sign-in expired or was already used; try again.');
    if (error) return fail(`provider error: ${error.slice(0, 100)}`, `The identity provider refused the sign-in (${error.slice(0, 100)}).`);
    if (!code) return fail('no code', 'The identity provider did not return a code; try again.');
    const s = loadOidc(ctx);
    if (!s.enabled) return fail('disabled', 'Single sign-on is not configured.');
    let user;
    try {
      const d = await client.discover(s.issuer);
      const tokens = await client.exchangeCode(d, { clientId: s.client_id, clientSecret: openSecret(ctx, s), code, redirectUri: redirectUri(ctx), codeVerifier: pending.code_verifier });
      const verified = await client.verifyIdToken(d, tokens.id_token, { clientId: s.client_id, nonce: pending.nonce });
      // Many providers put email/username only in UserInfo; the verified ID token's claims win.
      const extra = tokens.access_token ? await client.userinfo(d, tokens.access_token, verified.sub!) : {};
      const matched = await userForClaims(ctx, { ...extra, ...verified }, s.jit);
      user = matched.user;
      if (matched.created) {
        ctx.audit.record({ actor_type: 'system', actor_name: 'oidc', action: 'user.create', target_type: 'user', target_id: user.id, outcome: 'success', source_ip: req.ip, details: { username: user.username, via: 'oidc jit' } });
      }
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      req.log.warn({ reason: err.message }, 'oidc sign-in refused');
      return fail(err.message.slice(0, 200), err.message);
    }
    const session = ctx.identity.createSession(user.id, { sourceIp: req.ip, userAgent: req.headers['user-agent'] });
    reply.setCookie(SESSION_COOKIE, session.token, { path: '/', httpOnly: true, sameSite: 'lax', secure: req.protocol === 'https', expires: new Date(session.expiresAt) });
    ctx.audit.record({ actor_type: 'user', actor_id: user.id, actor_name: user.username, action: 'auth.login', outcome: 'success', source_ip: req.ip, details: { method: 'oidc' } });
    return reply.redirect(pending.return_to, 303);
  });
}
