// /scim — bearer tokens for Okta / Entra ID provisioning, with the tenant URL to paste there.
import { del, get, items, post, whenServed } from '../api.ts';
import type { Page } from '../app.ts';
import { errorBox, field, fmtTime, h, onSubmit, replace, secretBox, table } from '../dom.ts';
import { publicBase, unavailable } from './common.ts';

interface ScimToken {
  id: string;
  name: string;
  hint?: string;
  created_at?: string;
  last_used_at?: string | null;
  revoked_at?: string | null;
}

export const scimPage: Page = {
  title: 'SCIM',
  adminOnly: true,
  async render(main) {
    const first = await whenServed<unknown>('scim_tokens', '/api/v1/scim/tokens');
    if (first === null) return unavailable(main, 'SCIM provisioning', 'SCIM tokens');
    const settings = await get<{ public_url: string | null; detected_public_url: string }>('/api/v1/settings').catch(() => null);
    const tenant = `${publicBase(settings)}/scim/v2`;
    const err = errorBox();
    const list = h('div');
    const shown = h('div');
    const load = async () => {
      const tokens = items<ScimToken>(await get('/api/v1/scim/tokens'));
      replace(list, table(['Name', 'Token', 'Created', 'Last used', ''], tokens.map((t) => [
        t.name, h('code', null, t.hint ?? t.id), fmtTime(t.created_at), fmtTime(t.last_used_at),
        t.revoked_at ? h('span', { class: 'muted' }, 'revoked') : h('button', {
          type: 'button', class: 'danger small', 'aria-label': `Revoke ${t.name}`,
          onclick: async () => {
            try {
              await del(`/api/v1/scim/tokens/${t.id}`);
              await load();
            } catch (e) {
              err.show((e as Error).message);
            }
          },
        }, 'Revoke'),
      ]), 'No SCIM tokens yet.'));
    };
    const name = h('input', { name: 'name', required: true, placeholder: 'Okta' });
    const formErr = errorBox();
    const form = h('form', { class: 'inline', novalidate: true }, field('Name', name), formErr.el, h('button', { type: 'submit' }, 'Create SCIM token'));
    onSubmit(form, formErr, async () => {
      if (!name.value.trim()) throw new Error('Give the token a name.');
      const created = await post<{ token: string }>('/api/v1/scim/tokens', { name: name.value.trim() });
      replace(shown, secretBox('SCIM bearer token', created.token));
      form.reset();
      await load();
    });
    await load();
    // Each identity provider names the two fields differently (docs/scim.md, "Connecting an identity provider").
    replace(main, h('h1', null, 'SCIM provisioning'),
      h('dl', { class: 'facts' }, h('dt', null, 'Tenant URL'), h('dd', null, h('code', { 'data-testid': 'tenant-url' }, tenant)),
        h('dt', null, 'Authentication'), h('dd', null, 'A SCIM token from below, sent as a Bearer token')),
      h('ul', { class: 'hint' },
        h('li', null, 'Okta: SCIM connector base URL is the tenant URL; unique identifier field for users: userName; authentication mode HTTP Header, with the token. Turn on Push New Users, Push Profile Updates, Push Groups and Deactivate Users.'),
        h('li', null, 'Entra ID: Provisioning, mode Automatic; the tenant URL and the token as Secret Token. The default attribute mappings work as they are.'),
        h('li', null, 'Pushed groups appear under Groups, where each can grant a role and limit the models its members may use.')),
      form, shown, err.el, list);
  },
};
