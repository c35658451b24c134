// Pieces several resource pages share.
import { h, replace } from '../dom.ts';

/** What a page shows when its backend is not served by this appliance build. */
export function unavailable(main: HTMLElement, title: string, what: string): void {
  replace(main, h('h1', null, title), h('p', { class: 'empty' }, `${what} are not available on this appliance yet.`));
}

export function publicBase(settings: { public_url: string | null; detected_public_url: string } | null): string {
  return settings?.public_url ?? settings?.detected_public_url ?? location.origin;
}
