// /audit — the audit log with filters (actor, action, routed via, node, outcome, since), cursor
// paging and CSV export of everything the filters match.
import { get } from '../api.ts';
import type { Page } from '../app.ts';
import { errorBox, field, fmtTime, h, onSubmit, replace, table } from '../dom.ts';

interface Entry {
  id: number;
  ts: string;
  actor_type: string;
  actor_name: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  outcome: string;
  source_ip: string | null;
  routed_via: string | null;
  node_id: string | null;
  status: number | null;
  details: unknown;
}

const COLUMNS: (keyof Entry)[] = ['id', 'ts', 'actor_type', 'actor_name', 'action', 'target_type', 'target_id', 'outcome', 'source_ip', 'routed_via', 'node_id', 'status', 'details'];
const EXPORT_MAX = 50_000;

/** RFC 4180 CSV; cells that a spreadsheet would run as a formula get a leading quote. */
export function toCsv(rows: Entry[]): string {
  const cell = (v: unknown) => {
    let s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
    return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  return [COLUMNS.join(','), ...rows.map((r) => COLUMNS.map((c) => cell(r[c])).join(','))].join('\r\n') + '\r\n';
}

export const auditPage: Page = {
  title: 'Audit log',
  adminOnly: true,
  async render(main) {
    const actor = h('input', { name: 'actor', maxlength: 200 });
    const action = h('input', { name: 'action', maxlength: 100, placeholder: 'e.g. auth.login or token.*' });
    const routed = h('select', { name: 'routed_via' }, h('option', { value: '' }, 'any'), h('option', { value: 'direct' }, 'direct'), h('option', { value: 'node' }, 'node'));
    const node = h('input', { name: 'node_id', maxlength: 64 });
    const outcome = h('select', { name: 'outcome' }, ['', 'success', 'failure', 'denied'].map((o) => h('option', { value: o }, o || 'any')));
    const since = h('input', { name: 'since', type: 'date' });
    const err = errorBox();
    const list = h('div');
    const more = h('div');
    let rows: Entry[] = [];

    const query = (cursor?: string) => {
      const q = new URLSearchParams();
      if (actor.value.trim()) q.set('actor', actor.value.trim());
      if (action.value.trim()) q.set('action', action.value.trim());
      if (routed.value) q.set('routed_via', routed.value);
      if (node.value.trim()) q.set('node_id', node.value.trim());
      if (outcome.value) q.set('outcome', outcome.value);
      if (since.value) q.set('since', new Date(`${since.value}T00:00:00Z`).toISOString());
      if (cursor) q.set('cursor', cursor);
      return q;
    };
    const draw = (next: string | null) => {
      replace(list, table(['Time', 'Actor', 'Action', 'Target', 'Outcome', 'Via', 'Source IP'], rows.map((e) => [
        fmtTime(e.ts), `${e.actor_name ?? '—'} (${e.actor_type})`, h('code', null, e.action),
        e.target_type ? `${e.target_type} ${e.target_id ?? ''}` : '—', h('span', { class: `badge ${e.outcome}` }, e.outcome),
        e.routed_via ? `${e.routed_via}${e.node_id ? ` ${e.node_id}` : ''}` : '—', e.source_ip ?? '—',
      ]), 'No entries match these filters.'));
      replace(more, next ? h('button', { type: 'button', class: 'secondary', onclick: () => load(next) }, 'Load more') : null);
    };
    const load = async (cursor?: string) => {
      const q = query(cursor);
      q.set('limit', '100');
      const page = await get<{ items: Entry[]; next_cursor: string | null }>(`/api/v1/audit?${q}`);
      rows = cursor ? [...rows, ...page.items] : page.items;
      draw(page.next_cursor);
    };
    const exportCsv = async () => {
      err.clear();
      try {
        const all: Entry[] = [];
        let cursor: string | undefined;
        do {
          const q = query(cursor);
          q.set('limit', '1000');
          const page = await get<{ items: Entry[]; next_cursor: string | null }>(`/api/v1/audit?${q}`);
          all.push(...page.items);
          cursor = page.next_cursor ?? undefined;
        } while (cursor && all.length < EXPORT_MAX);
        const url = URL.createObjectURL(new Blob([toCsv(all)], { type: 'text/csv' }));
        const a = h('a', { href: url, download: `nexus-audit-${new Date().toISOString().slice(0, 10)}.csv` });
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10_000);
      } catch (e) {
        err.show((e as Error).message);
      }
    };
    const form = h('form', { class: 'filters', novalidate: true, 'aria-label': 'Filters' },
      field('Actor', actor), field('Action', action), field('Routed via', routed), field('Node', node), field('Outcome', outcome), field('Since', since),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Apply'), h('button', { type: 'button', class: 'secondary', onclick: exportCsv }, 'Export CSV')));
    onSubmit(form, err, () => load());
    await load();
    replace(main, h('h1', null, 'Audit log'), form, err.el, list, more);
  },
};
