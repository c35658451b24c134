// / — health, agents online, and activity per day (gateway requests and tokens when the gateway
// reports usage; otherwise the audit log's own activity).
import { get, items, whenServed } from '../api.ts';
import type { Page } from '../app.ts';
import { barChart, lastDays } from '../chart.ts';
import { h, replace } from '../dom.ts';

interface UsageDay {
  day?: string;
  requests?: number;
  input_tokens?: number;
  output_tokens?: number;
}

export const overviewPage: Page = {
  title: 'Overview',
  async render(main, app) {
    const admin = app.me!.user.role === 'admin';
    const [health, ready, nodes, usage, audit] = await Promise.all([
      fetch('/healthz').then((r) => r.ok).catch(() => false),
      fetch('/ready').then((r) => r.ok).catch(() => false),
      admin ? whenServed<unknown>('nodes', '/api/v1/nodes').catch(() => null) : null,
      admin ? whenServed<unknown>('usage', '/api/v1/usage?group_by=day').catch(() => null) : null,
      admin ? get<{ items: { ts: string }[] }>('/api/v1/audit?limit=1000').catch(() => null) : null,
    ]);
    const nodeRows = nodes === null ? null : items<{ status?: string }>(nodes);
    const days = lastDays(7);
    const tiles = h('div', { class: 'tiles' },
      tile('Health', health ? 'OK' : 'Down', health ? 'ok' : 'bad'),
      tile('Ready', ready ? 'Ready' : 'Not ready', ready ? 'ok' : 'bad'),
      nodeRows ? tile('Agents online', `${nodeRows.filter((n) => n.status === 'online').length} / ${nodeRows.length}`, 'neutral') : null);
    const charts: Element[] = [];
    const usageRows = usage === null ? null : items<UsageDay>(usage);
    if (usageRows) {
      const by = new Map(usageRows.map((u) => [(u.day ?? '').slice(0, 10), u]));
      charts.push(h('figure', null, h('figcaption', null, 'Requests per day'), barChart('Requests per day', days.map((d) => ({ label: d.slice(5), value: by.get(d)?.requests ?? 0 })))));
      charts.push(h('figure', null, h('figcaption', null, 'Tokens per day'), barChart('Tokens per day', days.map((d) => ({ label: d.slice(5), value: (by.get(d)?.input_tokens ?? 0) + (by.get(d)?.output_tokens ?? 0) })))));
    }
    if (audit) {
      const counts = new Map<string, number>();
      for (const e of audit.items) counts.set(e.ts.slice(0, 10), (counts.get(e.ts.slice(0, 10)) ?? 0) + 1);
      charts.push(h('figure', null, h('figcaption', null, 'Audit events per day'), barChart('Audit events per day', days.map((d) => ({ label: d.slice(5), value: counts.get(d) ?? 0 })))));
    }
    replace(main, h('h1', null, 'Overview'), tiles,
      charts.length ? h('div', { class: 'charts' }, charts) : h('p', { class: 'empty' }, 'Activity charts appear here for administrators.'),
      usageRows === null && admin ? h('p', { class: 'hint' }, 'Request and token charts appear once the AI gateway reports usage.') : null);
  },
};

function tile(label: string, value: string, tone: string): HTMLElement {
  return h('div', { class: `tile ${tone}` }, h('p', { class: 'label' }, label), h('p', { class: 'value' }, value));
}
