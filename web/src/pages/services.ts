// /services — private and catalog APIs reachable through the service proxy, with a routing card
// per service showing the nodes it is bound to, with their priorities (bound when the service is added).
import { del, get, items, whenServed } from '../api.ts';
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
  has_credential?: boolean;
  nodes?: { node_id: string; priority: number; weight?: number }[];
}

interface CatalogEntry {
  slug: string;
  label?: string;
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
        c.label ?? c.name ?? c.slug, h('code', null, c.endpoint_url ?? ''), c.auth_method ?? '',
        h('a', { href: `/cli/add-credential?slug=${encodeURIComponent(c.slug)}` }, 'Add'),
      ]), 'The catalog is empty.'));
  },
};

function routingCard(s: Service, nodes: { id: string; name: string; status?: string }[], err: ReturnType<typeof errorBox>, reload: () => Promise<void>): HTMLElement {
  const nameOf = (id: string) => nodes.find((n) => n.id === id);
  const bound = [...(s.nodes ?? [])].sort((a, b) => a.priority - b.priority);
  const remove = h('button', {
    type: 'button', class: 'danger small', 'aria-label': `Delete ${s.slug}`,
    onclick: async () => {
      if (!confirm(`Delete service ${s.slug}? Its proxy URL stops working.`)) return;
      err.clear();
      try {
        await del(`/api/v1/keys/${s.id}`);
        await reload();
      } catch (e) {
        err.show((e as Error).message);
      }
    },
  }, 'Delete');
  return h('section', { class: 'card service' },
    h('h2', null, s.label ?? s.slug, ' ', h('code', null, s.slug)),
    h('p', null, 'Proxy: ', h('code', null, s.proxy_url ?? `/api/v1/proxy/s/${s.slug}`), s.endpoint_url ? [' → ', h('code', null, s.endpoint_url)] : null),
    h('h3', null, 'Routing'),
    bound.length
      ? table(['Node', 'Status', 'Priority', 'Weight'], bound.map((b) => [nameOf(b.node_id)?.name ?? b.node_id, nameOf(b.node_id)?.status ?? '—', b.priority, b.weight ?? 1]), '')
      : h('p', { class: 'hint' }, `Direct from the appliance (${s.auth_method ?? 'no'} auth${s.has_credential ? ', credential stored encrypted' : ''}).`),
    h('div', { class: 'actions' }, remove));
}
