// /users — local, SCIM-provisioned and SSO users; create, change role, set the AI gateway budget
// across all of a user's virtual keys, deactivate, delete.
import { del, get, patch, post, type User } from '../api.ts';
import type { Page } from '../app.ts';
import { showBudgetForm } from './common.ts';
import { errorBox, field, fmtTime, h, onSubmit, replace, table } from '../dom.ts';

export const usersPage: Page = {
  title: 'Users',
  adminOnly: true,
  async render(main, app) {
    const list = h('div');
    const editor = h('div');
    const err = errorBox();
    const budgetText = (u: User) => (u.max_budget_usd != null ? `$${u.max_budget_usd}${u.budget_period ? ` per ${u.budget_period}` : ''}` : '—');
    const budgetForm = (u: User) => showBudgetForm(editor, {
      title: `Budget of ${u.username}`,
      explain: 'What all of this user\'s virtual keys may spend together; each key\'s own budget still applies.',
      path: `/api/v1/users/${u.id}`, whole: 'user', current: u, done: () => load(),
    });
    const load = async () => {
      const { items } = await get<{ items: User[] }>('/api/v1/users?limit=500');
      replace(list, table(['Username', 'Email', 'Role', 'Source', 'Status', 'Budget', 'Created', ''], items.map((u) => [
        u.username,
        u.email ?? '—',
        u.role,
        h('span', { class: `badge ${u.source}` }, u.source === 'scim' ? 'SCIM' : u.source === 'oidc' ? 'SSO' : 'local'),
        u.active ? 'active' : h('span', { class: 'muted' }, 'deactivated'),
        budgetText(u),
        fmtTime(u.created_at),
        u.id === app.me!.user.id ? h('span', { class: 'muted' }, 'you') : h('div', { class: 'row-actions' },
          h('button', { type: 'button', class: 'secondary small', 'aria-label': `Budget of ${u.username}`, onclick: () => budgetForm(u) }, 'Budget'),
          // A SCIM user's role follows their groups (the API refuses to set it here).
          u.source === 'scim'
            ? h('a', { href: '/groups', class: 'small', title: 'The role of a SCIM user follows the mapping of their groups.' }, 'Role from groups')
            : h('button', { type: 'button', class: 'secondary small', onclick: () => act(() => patch(`/api/v1/users/${u.id}`, { role: u.role === 'admin' ? 'member' : 'admin' })) },
              u.role === 'admin' ? 'Make member' : 'Make admin'),
          h('button', { type: 'button', class: 'secondary small', onclick: () => act(() => patch(`/api/v1/users/${u.id}`, { active: !u.active })) },
            u.active ? 'Deactivate' : 'Activate'),
          h('button', { type: 'button', class: 'danger small', onclick: () => confirm(`Delete ${u.username}?`) && act(() => del(`/api/v1/users/${u.id}`)) }, 'Delete')),
      ]), 'No users yet.'));
    };
    const act = async (fn: () => Promise<unknown>) => {
      err.clear();
      try {
        await fn();
        await load();
      } catch (e) {
        err.show((e as Error).message);
      }
    };
    const username = h('input', { name: 'username', required: true, autocomplete: 'off' });
    const email = h('input', { name: 'email', type: 'email' });
    const role = h('select', { name: 'role' }, h('option', { value: 'member' }, 'member'), h('option', { value: 'admin' }, 'admin'));
    const password = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', minlength: 10 });
    const formErr = errorBox();
    const form = h('form', { class: 'inline', novalidate: true }, field('Username', username), field('Email', email), field('Role', role),
      field('Password', password, 'Optional for users who sign in with SSO.'), formErr.el, h('button', { type: 'submit' }, 'Add user'));
    onSubmit(form, formErr, async () => {
      if (!username.value.trim()) throw new Error('Enter a username.');
      await post('/api/v1/users', {
        username: username.value.trim(),
        role: role.value,
        ...(email.value.trim() ? { email: email.value.trim() } : {}),
        ...(password.value ? { password: password.value } : {}),
      });
      form.reset();
      await load();
    });
    await load();
    replace(main, h('h1', null, 'Users'), h('p', { class: 'hint' }, 'Users marked SCIM are provisioned by your identity provider; change them there. Their role follows their groups (Groups).'),
      err.el, list, editor, h('h2', null, 'Add a user'), form);
  },
};
