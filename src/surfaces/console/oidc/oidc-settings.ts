// Single sign-on settings, kept in the settings table; the client secret is sealed with the
// master key (DESIGN.md §4) and never returned.
import type { AppContext } from '../../../core/context.ts';

const KEY = 'console.oidc';
const AAD = 'setting:console.oidc.client_secret';

export interface OidcSettings {
  enabled: boolean;
  issuer: string;
  client_id: string;
  /** Sealed; empty when the client is public (PKCE only). */
  client_secret_sealed: string;
  scopes: string;
  display_name: string;
  /** Create a user on first sign-in when none matches. */
  jit: boolean;
  /** Password sign-in only for the break-glass admin. */
  sso_only: boolean;
  break_glass_username: string;
}

export const DEFAULT_OIDC: OidcSettings = {
  enabled: false,
  issuer: '',
  client_id: '',
  client_secret_sealed: '',
  scopes: 'openid profile email',
  display_name: '',
  jit: false,
  sso_only: false,
  break_glass_username: '',
};

export function loadOidc(ctx: AppContext): OidcSettings {
  return { ...DEFAULT_OIDC, ...(ctx.settings.get<Partial<OidcSettings>>(KEY) ?? {}) };
}

export function saveOidc(ctx: AppContext, s: OidcSettings): void {
  ctx.settings.set(KEY, s);
}

export const sealSecret = (ctx: AppContext, secret: string) => (secret ? ctx.secretBox.seal(secret, AAD) : '');
export const openSecret = (ctx: AppContext, s: OidcSettings) => (s.client_secret_sealed ? ctx.secretBox.open(s.client_secret_sealed, AAD) : '');

export function redirectUri(ctx: AppContext): string {
  return `${ctx.publicUrl()}/api/v1/auth/oidc/callback`;
}

/** The admin-facing view: everything but the secret. */
export function publicView(ctx: AppContext, s: OidcSettings) {
  const { client_secret_sealed, ...rest } = s;
  return { ...rest, client_secret_set: client_secret_sealed !== '', redirect_uri: redirectUri(ctx) };
}
