// A few lines instead of a framework: h() builds elements from data, never from HTML strings, so
// nothing a server or a user typed can become markup (and the CSP can forbid inline script).
export type Child = Node | string | number | null | undefined | false | Child[];
type Handler = (ev: Event) => void;
export type Attrs = Record<string, string | number | boolean | Handler | null | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs | null = null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, '').toLowerCase(), v);
    else if (k === 'value' && 'value' in el) (el as HTMLInputElement).value = String(v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

export function append(parent: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(parent, c);
    else parent.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

export function replace(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}

let ids = 0;
export const uid = (p: string) => `${p}-${++ids}`;

/** A labelled input with room for an inline error below it. */
export function field(label: string, input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string): HTMLElement {
  input.id ||= uid('f');
  const hintEl = hint ? h('p', { class: 'hint', id: `${input.id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: input.id }, label), input, hintEl);
}

/** A region that shows one error (role=alert so screen readers announce it) or nothing. */
export function errorBox(): { el: HTMLElement; show(msg: string): void; clear(): void } {
  const el = h('p', { class: 'error', role: 'alert', hidden: true });
  return {
    el,
    show(msg) {
      el.textContent = msg;
      el.hidden = false;
    },
    clear() {
      el.textContent = '';
      el.hidden = true;
    },
  };
}

/**
 * What the server said with a write it accepted (`warnings`: e.g. a key naming a model no configured
 * model answers to, a service endpoint the proxy refuses until configured), one line each, or nothing.
 */
export function warningNotes(warnings: readonly string[] | undefined): HTMLElement | null {
  if (!warnings?.length) return null;
  return h('div', { class: 'warnings', role: 'status' }, warnings.map((w) => h('p', { class: 'hint warn' }, `Warning: ${w}`)));
}

/** A secret shown once, with a copy button. */
export function secretBox(label: string, value: string): HTMLElement {
  const code = h('code', { class: 'secret', 'data-testid': 'secret' }, value);
  const status = h('span', { class: 'copied', 'aria-live': 'polite' });
  const copy = h('button', {
    type: 'button',
    class: 'secondary',
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(value);
        status.textContent = 'Copied';
      } catch {
        const range = document.createRange();
        range.selectNodeContents(code);
        getSelection()?.removeAllRanges();
        getSelection()?.addRange(range);
        status.textContent = 'Selected — press Ctrl+C';
      }
    },
  }, 'Copy');
  return h('div', { class: 'secret-box' }, h('p', { class: 'label' }, label), h('div', { class: 'secret-row' }, code, copy, status),
    h('p', { class: 'hint' }, 'This is shown only once. Store it now.'));
}

export function snippet(title: string, text: string): HTMLElement {
  return h('details', { class: 'snippet', open: true }, h('summary', null, title), h('pre', null, h('code', null, text)));
}

export function table(headers: string[], rows: Child[][], empty: string): HTMLElement {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('table', null,
    h('thead', null, h('tr', null, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', null, rows.map((r) => h('tr', null, r.map((c) => h('td', null, c))))));
}

export function fmtTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** Runs an async submit with the button disabled and errors shown inline. */
export function onSubmit(form: HTMLFormElement, err: ReturnType<typeof errorBox>, fn: () => Promise<void>): void {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.clear();
    const buttons = Array.from(form.querySelectorAll('button'));
    buttons.forEach((b) => (b.disabled = true));
    try {
      await fn();
    } catch (e) {
      err.show((e as Error).message);
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  });
}
