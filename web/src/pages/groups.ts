// /groups — groups (mostly SCIM-provisioned) mapped to a role and to the models their members'
// virtual keys may use, and a budget across the virtual keys charged to the group.
import { get, items, patch, whenServed } from '../api.ts';
import type { Page } from '../app.ts';
import { errorBox, fmtTime, h, replace, table } from '../dom.ts';
import { showBudgetForm, unavailable } from './common.ts';

interface Group {
  id: string;
  display_name?: string;
  displayName?: string;
  source?: string;
  member_count?: number;
  role?: string | null;
  models?: string[] | null;
  max_budget_usd?: number | null;
  budget_period?: 'day' | 'week' | 'month' | null;
  spent_usd?: number | null;
  budget_resets_at?: string | null;
}

export const groupsPage: Page = {
  title: 'Groups',
  adminOnly: true,
  async render(main) {
    const first = await whenServed<unknown>('groups', '/api/v1/groups');
    if (first === null) return unavailable(main, 'Groups', 'Groups');
    const err = errorBox();
    const list = h('div');
    const editor = h('div');
    const budgetText = (g: Group) => {
      if (g.max_budget_usd == null) return '—';
      const text = `$${(g.spent_usd ?? 0).toFixed(4)} / $${g.max_budget_usd}${g.budget_period ? ` per ${g.budget_period}` : ''}`;
      return g.budget_resets_at ? h('span', { title: `renews ${fmtTime(g.budget_resets_at)}` }, text) : text;
    };
    const budgetForm = (g: Group, name: string) => showBudgetForm(editor, {
      title: `Budget of ${name}`,
      explain: 'What all virtual keys charged to this group may spend together; each key\'s and each owner\'s own budget still applies.',
      periodHint: 'Changing this counts the group\'s spend from the start of the new period.',
      path: `/api/v1/groups/${g.id}`, whole: 'group', current: g, done: () => load(),
    });
    const load = async () => {
      const groups = items<Group>(await get('/api/v1/groups'));
      replace(list, table(['Group', 'Source', 'Members', 'Role', 'Models', 'Spend / budget', ''], groups.map((g) => {
        const name = g.display_name ?? g.displayName ?? g.id;
        const role = h('select', { 'aria-label': `Role for ${name}` }, ['', 'member', 'admin'].map((r) => h('option', { value: r, selected: (g.role ?? '') === r }, r || 'no mapping')));
        const models = h('input', { value: (g.models ?? []).join(', '), 'aria-label': `Models for ${name}`, placeholder: 'all models' });
        return [name, g.source === 'scim' ? h('span', { class: 'badge scim' }, 'SCIM') : g.source ?? 'local', g.member_count ?? '—', role, models, budgetText(g),
          h('div', { class: 'row-actions' }, h('button', {
            type: 'button', class: 'secondary small', 'aria-label': `Save mapping of ${name}`,
            onclick: async () => {
              err.clear();
              try {
                const list = models.value.split(',').map((s) => s.trim()).filter(Boolean);
                await patch(`/api/v1/groups/${g.id}`, { role: role.value || null, models: list.length ? list : null });
                await load();
              } catch (e) {
                err.show((e as Error).message);
              }
            },
          }, 'Save'), h('button', { type: 'button', class: 'secondary small', 'aria-label': `Budget of ${name}`, onclick: () => budgetForm(g, name) }, 'Budget'))];
      }), 'No groups yet. Groups arrive through SCIM provisioning.'));
    };
    await load();
    replace(main, h('h1', null, 'Groups'), err.el, list, editor);
  },
};
