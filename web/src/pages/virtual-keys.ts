// /virtual-keys — keys (nx_vk_…) callers use with the OpenAI, Gemini, Azure and GLM SDKs: create
// (shown once with ready-to-paste snippets), edit (name, models, budget, limits; never the key), rotate
// (a new secret shown once; the old one stops now or after a grace period), revoke, usage. A key may
// be charged to one of its owner's groups, whose budget then applies to it as well.
import { del, get, items, patch, post, whenServed, type GroupRef, type Me } from '../api.ts';
import type { Page } from '../app.ts';
import { errorBox, field, fmtTime, h, onSubmit, replace, secretBox, snippet, table, uid, warningNotes } from '../dom.ts';
import { MODEL_PLACEHOLDER, snippetModel, snippets } from '../snippets.ts';
import { budgetPeriodSelect, unavailable } from './common.ts';

/** A key as POST and PATCH answer it: `warnings` names models no configured model answers to. */
type Written = { warnings?: string[] };

interface VirtualKey {
  id: string;
  name: string;
  user_id?: string;
  group_id?: string | null;
  hint?: string;
  models?: string[] | null;
  max_budget_usd?: number | null;
  budget_period?: 'day' | 'week' | 'month' | null;
  budget_resets_at?: string | null;
  spent_usd?: number | null;
  rpm?: number | null;
  tpm?: number | null;
  expires_at?: string | null;
  revoked_at?: string | null;
  created_at?: string;
}

export const virtualKeysPage: Page = {
  title: 'Virtual keys',
  async render(main, app) {
    const first = await whenServed<unknown>('virtual_keys', '/api/v1/virtual-keys');
    if (first === null) return unavailable(main, 'Virtual keys', 'Virtual keys');
    // The signed-in user's groups, fresh (membership arrives by SCIM at any time).
    const me = await get<Me>('/api/v1/me').catch(() => app.me);
    const myGroups: GroupRef[] = me?.groups ?? [];
    /** The groups a key of this owner may be charged to: the owner's (an admin asks for another user's). */
    const groupsOf = async (userId: string | undefined): Promise<GroupRef[]> =>
      !userId || userId === me?.user.id ? myGroups : items<GroupRef>(await get(`/api/v1/groups?user_id=${encodeURIComponent(userId)}`).catch(() => []));
    const groupSelect = (name: string, groups: GroupRef[], current: string | null | undefined) => h('select', { name },
      h('option', { value: '', selected: !current }, 'No group'),
      // A group the owner has left still shows, so the form says where the key is charged now.
      ...(current && !groups.some((g) => g.id === current) ? [h('option', { value: current, selected: true }, `${current} (owner not a member)`)] : []),
      ...groups.map((g) => h('option', { value: g.id, selected: g.id === current }, g.display_name)));
    const groupName = (id: string | null | undefined) => (id ? (myGroups.find((g) => g.id === id)?.display_name ?? id) : '—');
    const base = me?.public_url ?? location.origin;
    const err = errorBox();
    const list = h('div');
    const shown = h('div');
    const editor = h('div');
    // The snippets name a model the key can call (GET /api/v1/models lists the configured ones).
    const configuredModels = async () => items<{ name: string }>(await whenServed('models', '/api/v1/models').catch(() => null)).map((m) => m.name);
    const placeholderNote = (model: string) => (model === MODEL_PLACEHOLDER
      ? h('p', { class: 'hint warn', role: 'note' }, `No model is configured yet: replace ${MODEL_PLACEHOLDER} in the snippets with a model name from Providers & models.`)
      : null);
    const splitModels = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);
    // An empty box clears that scope or limit (PATCH takes null for "none").
    const orNull = (v: string) => (v.trim() ? Number(v) : null);
    const periodSelect = (name: string, current: string | null | undefined) => budgetPeriodSelect(name, current, 'key');
    // What the last create or edit was warned of; the next one's answer replaces it.
    let note: HTMLElement | null = null;
    const warned = (warnings: string[] | undefined) => {
      note?.remove();
      return (note = warningNotes(warnings));
    };
    const edit = async (k: VirtualKey) => {
      const heading = uid('edit');
      const eGroup = groupSelect('edit_group', await groupsOf(k.user_id), k.group_id);
      const eErr = errorBox();
      const eName = h('input', { name: 'edit_name', required: true, maxlength: 200, value: k.name });
      const eModels = h('input', { name: 'edit_models', value: (k.models ?? []).join(', ') });
      const eBudget = h('input', { name: 'edit_budget', type: 'number', min: 0, step: 'any', value: k.max_budget_usd ?? '' });
      const ePeriod = periodSelect('edit_budget_period', k.budget_period);
      const eRpm = h('input', { name: 'edit_rpm', type: 'number', min: 1, step: 1, value: k.rpm ?? '' });
      const eTpm = h('input', { name: 'edit_tpm', type: 'number', min: 1, step: 1, value: k.tpm ?? '' });
      const form = h('form', { class: 'inline', novalidate: true, 'aria-labelledby': heading },
        h('h2', { id: heading }, `Edit ${k.name}`),
        field('Name', eName), field('Models', eModels, 'Comma-separated; empty allows every model.'),
        field('Budget (USD)', eBudget, 'Empty for no budget.'),
        field('Budget renews', ePeriod, 'Changing this counts the key\'s spend from the start of the new period.'),
        field('Requests per minute', eRpm), field('Tokens per minute', eTpm),
        field('Charged to group', eGroup, 'The group\'s budget applies to this key as well.'),
        eErr.el, h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save changes'),
          h('button', { type: 'button', class: 'secondary', onclick: () => replace(editor) }, 'Cancel')));
      onSubmit(form, eErr, async () => {
        if (!eName.value.trim()) throw new Error('Give the key a name.');
        const modelList = splitModels(eModels.value);
        const saved = await patch<Written>(`/api/v1/virtual-keys/${k.id}`, {
          name: eName.value.trim(),
          models: modelList.length ? modelList : null,
          max_budget_usd: orNull(eBudget.value),
          budget_period: (ePeriod.value || null) as VirtualKey['budget_period'],
          rpm: orNull(eRpm.value),
          tpm: orNull(eTpm.value),
          ...(eGroup.value !== (k.group_id ?? '') ? { group_id: eGroup.value || null } : {}),
        });
        replace(editor, warned(saved.warnings));
        await load();
      });
      replace(editor, form);
      eName.focus();
    };
    const rotateForm = (k: VirtualKey) => {
      const heading = uid('rotate');
      const rErr = errorBox();
      const grace = h('select', { name: 'grace_seconds' },
        ([['0', 'Stops at once'], ['3600', 'Keeps working for 1 hour'], ['86400', 'Keeps working for 24 hours'], ['604800', 'Keeps working for 7 days']] as const)
          .map(([value, label]) => h('option', { value }, label)));
      const form = h('form', { class: 'inline', novalidate: true, 'aria-labelledby': heading },
        h('h2', { id: heading }, `Rotate ${k.name}`),
        h('p', null, 'A new secret replaces this key\'s; its models, limits, spend and usage stay. Callers must switch to the new key.'),
        field('The old key', grace),
        rErr.el, h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Rotate key'),
          h('button', { type: 'button', class: 'secondary', onclick: () => replace(editor) }, 'Cancel')));
      onSubmit(form, rErr, async () => {
        const rotated = await post<{ key: string; previous_valid_until: string | null }>(`/api/v1/virtual-keys/${k.id}/rotate`, { grace_seconds: Number(grace.value) });
        const model = snippetModel(k.models, await configuredModels());
        const s = snippets(base, rotated.key, model);
        replace(editor);
        replace(shown, secretBox('New virtual key', rotated.key), placeholderNote(model),
          h('p', { role: 'status' }, rotated.previous_valid_until ? `The old key keeps working until ${fmtTime(rotated.previous_valid_until)}.` : 'The old key no longer works.'),
          snippet('openai SDK (Node)', s.openai), snippet('curl', s.curlChat));
        await load();
      });
      replace(editor, form);
      grace.focus();
    };
    const load = async () => {
      const keys = items<VirtualKey>(await get('/api/v1/virtual-keys'));
      replace(list, table(['Name', 'Key', 'Models', 'Spend / budget', 'Limits', 'Group', 'Expires', ''], keys.map((k) => [
        k.name, h('code', null, k.hint ?? k.id), k.models?.length ? k.models.join(', ') : 'all',
        k.budget_period
          ? h('span', { title: `renews ${fmtTime(k.budget_resets_at)}` }, `$${(k.spent_usd ?? 0).toFixed(4)}${k.max_budget_usd != null ? ` / $${k.max_budget_usd}` : ''} per ${k.budget_period}`)
          : `$${(k.spent_usd ?? 0).toFixed(4)}${k.max_budget_usd != null ? ` / $${k.max_budget_usd}` : ''}`,
        [k.rpm ? `${k.rpm} rpm` : '', k.tpm ? `${k.tpm} tpm` : ''].filter(Boolean).join(', ') || '—',
        groupName(k.group_id),
        fmtTime(k.expires_at),
        k.revoked_at ? h('span', { class: 'muted' }, 'revoked') : [h('button', {
          type: 'button', class: 'secondary small', 'aria-label': `Edit ${k.name}`, onclick: () => void edit(k),
        }, 'Edit'), ' ', h('button', {
          type: 'button', class: 'secondary small', 'aria-label': `Rotate ${k.name}`, onclick: () => rotateForm(k),
        }, 'Rotate'), ' ', h('button', {
          type: 'button', class: 'danger small', 'aria-label': `Revoke ${k.name}`,
          onclick: async () => {
            err.clear();
            try {
              await del(`/api/v1/virtual-keys/${k.id}`);
              await load();
            } catch (e) {
              err.show((e as Error).message);
            }
          },
        }, 'Revoke')],
      ]), 'No virtual keys yet.'));
    };
    const name = h('input', { name: 'name', required: true, maxlength: 200 });
    // The example names models this appliance has, never ones it may not (a key scoped to them would call nothing).
    const configured = await configuredModels();
    const models = h('input', { name: 'models', placeholder: configured.length ? configured.slice(0, 2).join(', ') : 'model names, comma-separated' });
    const budget = h('input', { name: 'max_budget_usd', type: 'number', min: 0, step: 'any' });
    const period = periodSelect('budget_period', null);
    const rpm = h('input', { name: 'rpm', type: 'number', min: 1, step: 1 });
    const tpm = h('input', { name: 'tpm', type: 'number', min: 1, step: 1 });
    const expires = h('input', { name: 'expires_at', type: 'date' });
    const group = groupSelect('group_id', myGroups, null);
    const formErr = errorBox();
    const form = h('form', { class: 'inline', novalidate: true }, field('Name', name), field('Models', models, 'Comma-separated; empty allows every model.'),
      field('Budget (USD)', budget), field('Budget renews', period), field('Requests per minute', rpm), field('Tokens per minute', tpm), field('Expires', expires),
      ...(myGroups.length ? [field('Charged to group', group, 'The group\'s budget applies to this key as well.')] : []),
      formErr.el, h('button', { type: 'submit' }, 'Create virtual key'));
    onSubmit(form, formErr, async () => {
      if (!name.value.trim()) throw new Error('Give the key a name.');
      const modelList = splitModels(models.value);
      const created = await post<Written & { id: string; key: string }>('/api/v1/virtual-keys', {
        name: name.value.trim(),
        ...(modelList.length ? { models: modelList } : {}),
        ...(budget.value ? { max_budget_usd: Number(budget.value) } : {}),
        ...(period.value ? { budget_period: period.value } : {}),
        ...(rpm.value ? { rpm: Number(rpm.value) } : {}),
        ...(tpm.value ? { tpm: Number(tpm.value) } : {}),
        ...(expires.value ? { expires_at: new Date(`${expires.value}T23:59:59Z`).toISOString() } : {}),
        ...(group.value ? { group_id: group.value } : {}),
      });
      const model = snippetModel(modelList, await configuredModels());
      const s = snippets(base, created.key, model);
      replace(shown, secretBox('New virtual key', created.key), warned(created.warnings), placeholderNote(model),
        snippet('openai SDK (Node)', s.openai), snippet('@google/genai', s.genai), snippet('@anthropic-ai/sdk', s.anthropic), snippet('curl', s.curlChat));
      form.reset();
      await load();
    });
    await load();
    replace(main, h('h1', null, 'Virtual keys'), form, shown, err.el, list, editor);
  },
};
