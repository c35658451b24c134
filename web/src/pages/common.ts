// Pieces several resource pages share.
import { h, replace } from '../dom.ts';

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
