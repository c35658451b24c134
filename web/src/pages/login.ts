// /login — password sign-in, and single sign-on when an identity provider is configured. In
// SSO-only mode the password form stays available behind a disclosure for the break-glass admin.
import { get, post } from '../api.ts';
import type { Page } from '../app.ts';
import { errorBox, field, h, onSubmit, replace } from '../dom.ts';

interface OidcInfo {
  enabled: boolean;
  sso_only: boolean;
  display_name: string;
}

/** Only same-origin paths; "//host" and "/\host" would leave the site. */
export function safeReturn(raw: string | null): string {
  if (!raw || !raw.startsWith('/') || raw.startsWith('//') || raw.startsWith('/\\')) return '/';
  return raw;
}

export const loginPage: Page = {
  title: 'Sign in',
  bare: true,
  public: true,
  async render(main, app) {
    const params = new URLSearchParams(location.search);
    const returnTo = safeReturn(params.get('return_to'));
    const oidc = await get<OidcInfo>('/api/v1/auth/oidc/config').catch(() => ({ enabled: false, sso_only: false, display_name: '' }));
    const err = errorBox();
    if (params.get('error')) err.show(params.get('error')!);
    const username = h('input', { name: 'username', required: true, autocomplete: 'username' });
    const password = h('input', { name: 'password', type: 'password', required: true, autocomplete: 'current-password' });
    const form = h('form', { novalidate: true }, field('Username', username), field('Password', password), h('button', { type: 'submit' }, 'Sign in'));
    onSubmit(form, err, async () => {
      if (!username.value.trim() || !password.value) throw new Error('Enter your username and password.');
      await post('/api/v1/auth/login', { username: username.value.trim(), password: password.value });
      await app.refreshMe();
      app.navigate(returnTo, true);
    });
    const sso = oidc.enabled
      ? h('a', { class: 'button sso', href: `/api/v1/auth/oidc/start?return_to=${encodeURIComponent(returnTo)}` }, `Sign in with ${oidc.display_name || 'single sign-on'}`)
      : null;
    const passwordPart = oidc.sso_only
      ? h('details', { class: 'break-glass' }, h('summary', null, 'Break-glass administrator sign-in'), form)
      : form;
    replace(main, h('section', { class: 'card narrow' }, h('h1', null, 'Sign in to Nexus'), err.el, sso, sso && !oidc.sso_only ? h('p', { class: 'or' }, 'or') : null, passwordPart));
  },
};
