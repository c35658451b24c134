// /services — private and catalog APIs reachable through the service proxy, with a routing card
// per service that binds nodes with priorities.
import { get, items, put, whenServed } from '../api.ts';
import type { Page } from '../app.ts';
import { errorBox, h, replace, table } from '../dom.ts';
import { unavailable } from './common.ts';

interface Service {
  id: string;
  slug: string;
  label?: string | null;
  endpoint_url?: string;
  auth_method?: string;
  proxy_url?: string;
  nodes?: { node_id: string; priority: number }[];
}

interface CatalogEntry {
  slug: string;
  name?: string;
  endpoint_url?: string;
  auth_method?: string;
}

export const servicesPage: Page = {
  title: 'Services',
  async render(main) {
    const first = await whenServed<unknown>('services_list', '/api/v1/keys');
    if (first === null) return unavailable(main, 'Services', 'Services');
    const err = errorBox();
    const catalog = items<CatalogEntry>(await whenServed('catalog', '/api/v1/catalog').catch(() => null));
    const nodes = items<{ id: string; name: string; status?: string }>(await whenServed('nodes', '/api/v1/nodes').catch(() => null));
    const list = h('div');
    const load = async () => {
      const services = items<Service>(await get('/api/v1/keys'));
      replace(list, services.length
        ? services.map((s) => routingCard(s, nodes, err, load))
        : h('p', { class: 'empty' }, 'No services yet. Add one from the catalog below or run nexus service add.'));
    };
    await load();
    replace(main, h('h1', null, 'Services'), err.el, list,
      h('p', null, h('a', { class: 'button', href: '/cli/add-credential?custom=1' }, 'Add a custom service')),
      h('h2', null, 'Catalog'),
      table(['Service', 'Endpoint', 'Auth', ''], catalog.map((c) => [
        c.name ?? c.slug, h('code', null, c.endpoint_url ?? ''), c.auth_method ?? '',
        h('a', { href: `/cli/add-credential?slug=${encodeURIComponent(c.slug)}` }, 'Add'),
      ]), 'The catalog is empty.'));
  },
};

function routingCard(s: Service, nodes: { id: string; name: string }[], err: ReturnType<typeof errorBox>, reload: () => Promise<void>): HTMLElement {
  const bound = new Map((s.nodes ?? []).map((n) => [n.node_id, n.priority]));
  const rows = nodes.map((n) => {
    const on = h('input', { type: 'checkbox', checked: bound.has(n.id), 'aria-label': `Route ${s.slug} through ${n.name}` });
    const prio = h('input', { type: 'number', min: 1, max: 100, value: bound.get(n.id) ?? 1, class: 'narrow', 'aria-label': `Priority of ${n.name}` });
    return { n, on, prio };
  });
  const save = h('button', {
    type: 'button', class: 'secondary small',
    onclick: async () => {
      err.clear();
      try {
        await put(`/api/v1/keys/${s.id}/nodes`, { nodes: rows.filter((r) => r.on.checked).map((r) => ({ node_id: r.n.id, priority: Number(r.prio.value) })) });
        await reload();
      } catch (e) {
        err.show((e as Error).message);
      }
    },
  }, 'Save routing');
  return h('section', { class: 'card service' },
    h('h2', null, s.label ?? s.slug, ' ', h('code', null, s.slug)),
    h('p', null, 'Proxy: ', h('code', null, s.proxy_url ?? `/api/v1/proxy/s/${s.slug}`), s.endpoint_url ? [' → ', h('code', null, s.endpoint_url)] : null),
    h('h3', null, 'Routing'),
    rows.length
      ? h('ul', { class: 'routing' }, rows.map((r) => h('li', null, h('label', null, r.on, ' ', r.n.name), ' priority ', r.prio)), h('li', null, save))
      : h('p', { class: 'hint' }, (s.nodes ?? []).length ? 'Routed through nodes.' : 'Direct from the appliance.'));
}
