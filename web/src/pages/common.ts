// Pieces several resource pages share.
import { patch } from '../api.ts';
import { errorBox, field, h, onSubmit, replace, uid } from '../dom.ts';

/** What a page shows when its backend is not served by this appliance build. */
export function unavailable(main: HTMLElement, title: string, what: string): void {
  replace(main, h('h1', null, title), h('p', { class: 'empty' }, `${what} are not available on this appliance yet.`));
}

export function publicBase(settings: { public_url: string | null; detected_public_url: string } | null): string {
  return settings?.public_url ?? settings?.detected_public_url ?? location.origin;
}

/**
 * When a gateway budget renews: never (for the `whole` life of a key or user), or every UTC day, ISO
 * week or calendar month; the value is what the API takes in `budget_period` ('' for none).
 */
export function budgetPeriodSelect(name: string, current: string | null | undefined, whole: string): HTMLSelectElement {
  return h('select', { name },
    ([['', `Whole life of the ${whole}`], ['day', 'Every day (UTC)'], ['week', 'Every week (from Monday, UTC)'], ['month', 'Every month (UTC)']] as const)
      .map(([value, label]) => h('option', { value, selected: value === (current ?? '') }, label)));
}

/**
 * The Budget form of a user or a group (`max_budget_usd`, `budget_period`), shown in `editor` and saved
 * with a PATCH to `path`; `done` runs after a save (the page reloads its list).
 */
export function showBudgetForm(editor: HTMLElement, o: {
  title: string; explain: string; path: string; whole: string; periodHint?: string;
  current: { max_budget_usd?: number | null; budget_period?: string | null }; done: () => Promise<void>;
}): void {
  const heading = uid('budget');
  const bErr = errorBox();
  const amount = h('input', { name: 'max_budget_usd', type: 'number', min: 0, step: 'any', value: o.current.max_budget_usd ?? '' });
  const period = budgetPeriodSelect('budget_period', o.current.budget_period, o.whole);
  const form = h('form', { class: 'inline', novalidate: true, 'aria-labelledby': heading },
    h('h2', { id: heading }, o.title),
    h('p', null, o.explain),
    field('Budget (USD)', amount, 'Empty for no budget.'), o.periodHint ? field('Budget renews', period, o.periodHint) : field('Budget renews', period),
    bErr.el, h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save budget'),
      h('button', { type: 'button', class: 'secondary', onclick: () => replace(editor) }, 'Cancel')));
  onSubmit(form, bErr, async () => {
    await patch(o.path, { max_budget_usd: amount.value.trim() ? Number(amount.value) : null, budget_period: period.value || null });
    replace(editor);
    await o.done();
  });
  replace(editor, form);
  amount.focus();
}
