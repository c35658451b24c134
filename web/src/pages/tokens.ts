// /tokens — the signed-in user's personal API tokens (nx_pat_…): create (shown once), revoke.
import { del, get, post } from '../api.ts';
import type { Page } from '../app.ts';
import { errorBox, field, fmtTime, h, onSubmit, replace, secretBox, table } from '../dom.ts';

interface Token {
  id: string;
  name: string;
  hint: string;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
}

export const tokensPage: Page = {
  title: 'Personal tokens',
  async render(main) {
    const list = h('div');
    const shown = h('div');
    const err = errorBox();
    const load = async () => {
      const { items } = await get<{ items: Token[] }>('/api/v1/tokens');
      replace(list, table(['Name', 'Token', 'Created', 'Last used', 'Status', ''], items.map((t) => [
        t.name, h('code', null, t.hint), fmtTime(t.created_at), fmtTime(t.last_used_at),
        t.revoked_at ? h('span', { class: 'muted' }, 'revoked') : 'active',
        t.revoked_at ? '' : h('button', {
          type: 'button', class: 'danger small', 'aria-label': `Revoke ${t.name}`,
          onclick: async () => {
            err.clear();
            try {
              await del(`/api/v1/tokens/${t.id}`);
              await load();
            } catch (e) {
              err.show((e as Error).message);
            }
          },
        }, 'Revoke'),
      ]), 'No personal tokens yet.'));
    };
    const name = h('input', { name: 'name', required: true, maxlength: 200 });
    const formErr = errorBox();
    const form = h('form', { class: 'inline', novalidate: true }, field('Name', name, 'What the token is for, e.g. "laptop CLI".'), formErr.el, h('button', { type: 'submit' }, 'Create token'));
    onSubmit(form, formErr, async () => {
      if (!name.value.trim()) throw new Error('Give the token a name.');
      const created = await post<{ token: string }>('/api/v1/tokens', { name: name.value.trim() });
      replace(shown, secretBox('New personal token', created.token));
      form.reset();
      await load();
    });
    await load();
    replace(main, h('h1', null, 'Personal tokens'),
      h('p', { class: 'hint' }, 'Use a personal token as Authorization: Bearer or X-API-Key on the API and the service proxy.'),
      form, shown, err.el, list);
  },
};
