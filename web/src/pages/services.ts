// /services — private and catalog APIs reachable through the service proxy. Each service's card
// edits its endpoint URL and label, and has a routing card: the nodes it is bound to with priority
// (lower first) and weight (share within a priority); both save with PATCH /api/v1/keys/{id}; no
// nodes means direct.
import { agentCredentialLine } from '../../../src/core/services/auth-methods.ts';
import { del, get, items, patch, whenServed } from '../api.ts';
import type { Page } from '../app.ts';
import { errorBox, field, h, onSubmit, replace, table, uid, warningNotes } from '../dom.ts';
import { unavailable } from './common.ts';

export interface Binding {
  node_id: string;
  priority: number;
  weight: number;
}

interface Service {
  id: string;
  slug: string;
  label?: string | null;
  endpoint_url?: string;
  auth_method?: string;
  auth_key_name?: string | null;
  proxy_url?: string;
  has_credential?: boolean;
  routed_via?: 'direct' | 'node';
  nodes?: { node_id: string; priority: number; weight?: number }[];
  /** PATCH's answer only: a direct endpoint the proxy refuses until proxy.allowPrivateTargets is set. */
  warnings?: string[];
}

interface NodeRow {
  id: string;
  name: string;
  status?: string;
}

interface CatalogEntry {
  slug: string;
  label?: string;
  name?: string;
  endpoint_url?: string;
  auth_method?: string;
}

const LIMIT = 1000;

/**
 * The PATCH body for a routing card, or the first problem in words. Priority and weight are read
 * from the inputs as typed, so "1.5", "" and "-1" are caught here before the hub refuses them.
 */
export function routingBody(rows: Array<{ node_id: string; name: string; priority: string; weight: string }>, service: { auth_method?: string; routed_via?: string; has_credential?: boolean }, credential: string):
  { nodes: Binding[]; credential?: string } | string {
  const int = (v: string, min: number) => (/^\d+$/.test(v.trim()) && Number(v) >= min && Number(v) <= LIMIT ? Number(v) : null);
  const nodes: Binding[] = [];
  for (const r of rows) {
    const priority = int(r.priority, 0);
    if (priority === null) return `Priority for ${r.name} must be a whole number from 0 to ${LIMIT}.`;
    const weight = int(r.weight, 1);
    if (weight === null) return `Weight for ${r.name} must be a whole number from 1 to ${LIMIT}.`;
    nodes.push({ node_id: r.node_id, priority, weight });
  }
  if (nodes.length || service.auth_method === 'none') return { nodes };
  if (credential) return { nodes, credential };
  if (service.routed_via === 'direct' && service.has_credential) return { nodes };
  return 'Without nodes the appliance calls the service itself: enter the credential it should send, or add a node.';
}

/**
 * The PATCH body for the endpoint form: only what changed (an empty label clears it), or the
 * problem in words. The hub checks the rest of the URL's shape (no query, fragment or user:password@).
 */
export function endpointBody(service: { endpoint_url?: string; label?: string | null }, endpoint: string, label: string, credential: string):
  { endpoint_url?: string; label?: string | null; credential?: string } | string {
  const url = endpoint.trim();
  let parsed: URL | null = null;
  try {
    parsed = new URL(url);
  } catch { /* below */ }
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) return 'Enter the endpoint as an http:// or https:// URL.';
  const body: { endpoint_url?: string; label?: string | null; credential?: string } = {};
  if (url !== service.endpoint_url) body.endpoint_url = url;
  if ((label.trim() || null) !== (service.label ?? null)) body.label = label.trim() || null;
  if (credential) body.credential = credential;
  return Object.keys(body).length ? body : 'Nothing to save: the endpoint and the label are unchanged.';
}

export const servicesPage: Page = {
  title: 'Services',
  async render(main, app) {
    const first = await whenServed<unknown>('services_list', '/api/v1/keys');
    if (first === null) return unavailable(main, 'Services', 'Services');
    const err = errorBox();
    const catalog = items<CatalogEntry>(await whenServed('catalog', '/api/v1/catalog').catch(() => null));
    const isAdmin = app.me?.user.role === 'admin';
    const list = h('div');
    /** `saved`: the service and the part of its card just saved (and what the API warned of), to say so and put focus there. */
    const load: Reload = async (saved) => {
      const [services, nodes] = await Promise.all([get('/api/v1/keys').then((d) => items<Service>(d)), whenServed('nodes', '/api/v1/nodes').then((d) => items<NodeRow>(d))]);
      replace(list, services.length
        ? services.map((s) => serviceCard(s, nodes, isAdmin, err, load, s.id === saved?.id ? saved : null))
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

type Saved = 'endpoint' | 'label' | 'routing';
type SavedPart = { id: string; part: Saved; warnings?: string[] | undefined };
type Reload = (saved?: SavedPart) => Promise<void>;

function serviceCard(s: Service, nodes: NodeRow[], isAdmin: boolean, err: ReturnType<typeof errorBox>, reload: Reload, saved: SavedPart | null): HTMLElement {
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
  return h('section', { class: 'card service', 'aria-label': `Service ${s.slug}` },
    h('h2', null, s.label ?? s.slug, ' ', h('code', null, s.slug)),
    h('p', null, 'Proxy: ', h('code', null, s.proxy_url ?? `/api/v1/proxy/s/${s.slug}`), s.endpoint_url ? [' → ', h('code', null, s.endpoint_url)] : null),
    endpointEditor(s, reload, saved?.part === 'endpoint' || saved?.part === 'label' ? saved : null),
    routingEditor(s, nodes, isAdmin, reload, saved?.part === 'routing' ? saved : null),
    h('div', { class: 'actions' }, remove));
}

/**
 * "Edit endpoint": the endpoint URL and the label in place. A direct service's stored credential
 * does not follow its endpoint to another origin, so the form offers a new one (empty keeps it); a
 * service routed through nodes is told, once saved, the line that stores its credential on the node
 * under the new URL (an agent injects it only there and refuses requests elsewhere).
 */
function endpointEditor(s: Service, reload: Reload, saved: SavedPart | null): HTMLElement {
  const box = h('div', { class: 'endpoint' });
  const status = h('p', { class: 'ok', role: 'status', tabindex: -1 }, saved?.part === 'endpoint' ? 'Endpoint saved.' : saved ? 'Label saved.' : '');
  if (saved) setTimeout(() => status.focus(), 0);
  const viaNodes = s.routed_via === 'node';
  const agentLine = viaNodes && s.endpoint_url ? agentCredentialLine(s.slug, s.endpoint_url, s.auth_method ?? 'bearer', s.auth_key_name) : null;
  const agentHint = saved?.part === 'endpoint' && agentLine
    ? h('p', { class: 'hint warn' }, 'A node holding this service\'s credential refuses requests outside the URL it was stored with; store it again on each node\'s host: ',
      h('code', null, agentLine), '.')
    : null;
  const warned = warningNotes(saved?.warnings);
  const closed = () => replace(box, agentHint, h('div', { class: 'actions' },
    h('button', { type: 'button', class: 'secondary small', 'aria-label': `Edit endpoint of ${s.slug}`, onclick: open }, 'Edit endpoint'), status), warned);
  const open = () => {
    const err = errorBox();
    const url = h('input', { type: 'url', name: `endpoint-${s.id}`, required: true, maxlength: 2048, value: s.endpoint_url ?? '' });
    const label = h('input', { name: `label-${s.id}`, maxlength: 200, value: s.label ?? '' });
    const credential = h('input', { type: 'password', autocomplete: 'off', name: `endpoint-credential-${s.id}` });
    const asksCredential = !viaNodes && s.auth_method !== 'none';
    const form = h('form', { class: 'inline', novalidate: true, 'aria-label': `Endpoint of ${s.slug}` },
      field('Endpoint URL', url, viaNodes ? 'The node dials this URL.' : 'The appliance calls this URL itself.'),
      field('Label', label, 'Empty shows the slug.'),
      asksCredential ? field('New credential', credential, 'Needed when the endpoint moves to another scheme, host or port; empty keeps the stored one.') : null,
      err.el,
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save endpoint'),
        h('button', { type: 'button', class: 'secondary', onclick: closed }, 'Cancel')));
    onSubmit(form, err, async () => {
      const body = endpointBody(s, url.value, label.value, credential.value);
      if (typeof body === 'string') throw new Error(body);
      const answer = await patch<Service>(`/api/v1/keys/${s.id}`, body);
      credential.value = '';
      await reload({ id: s.id, part: body.endpoint_url !== undefined ? 'endpoint' : 'label', warnings: answer.warnings });
    });
    replace(box, form);
    url.focus();
  };
  closed();
  return box;
}

/** The routing card: bound nodes with priority and weight inputs, add/remove, save. */
function routingEditor(s: Service, nodes: NodeRow[], isAdmin: boolean, reload: Reload, saved: SavedPart | null): HTMLElement {
  const known = new Map(nodes.map((n) => [n.id, n]));
  const rows = [...(s.nodes ?? [])].sort((a, b) => a.priority - b.priority)
    .map((b) => ({ node_id: b.node_id, name: known.get(b.node_id)?.name ?? b.node_id, priority: String(b.priority), weight: String(b.weight ?? 1) }));
  const box = h('div', { class: 'routing' });
  const err = errorBox();
  const status = h('p', { class: 'ok', role: 'status', tabindex: -1 }, saved ? 'Routing saved.' : '');
  if (saved) setTimeout(() => status.focus(), 0);
  // What the API warned of on the last save; a new change makes it stale.
  let warned = warningNotes(saved?.warnings);
  const credential = h('input', { type: 'password', autocomplete: 'off', name: `credential-${s.id}` });
  let dirty = false;
  const heading = uid('routing');

  const draw = (focus?: 'add' | { row: string }) => {
    const badge = (id: string) => {
      const st = known.get(id)?.status ?? 'unknown';
      return h('span', { class: `badge ${st}` }, st);
    };
    const bound = rows.length
      ? h('table', { class: 'routing-table', 'aria-labelledby': heading },
        h('thead', null, h('tr', null, ['Node', 'Status', 'Priority', 'Weight', ''].map((x) => h('th', { scope: 'col' }, x)))),
        h('tbody', null, rows.map((r) => {
          const pr = h('input', { type: 'number', inputmode: 'numeric', min: 0, max: LIMIT, step: 1, value: r.priority, class: 'narrow', 'aria-label': `Priority for ${r.name}`,
            oninput: (e: Event) => { r.priority = (e.target as HTMLInputElement).value; touched(); } });
          const wt = h('input', { type: 'number', inputmode: 'numeric', min: 1, max: LIMIT, step: 1, value: r.weight, class: 'narrow', 'aria-label': `Weight for ${r.name}`,
            oninput: (e: Event) => { r.weight = (e.target as HTMLInputElement).value; touched(); } });
          const rm = h('button', { type: 'button', class: 'secondary small', 'aria-label': `Remove ${r.name} from ${s.slug}`,
            onclick: () => { rows.splice(rows.indexOf(r), 1); touched(); draw('add'); } }, 'Remove');
          if (typeof focus === 'object' && focus.row === r.node_id) queueMicrotask(() => pr.focus());
          return h('tr', null, h('td', null, r.name), h('td', null, badge(r.node_id)), h('td', null, pr), h('td', null, wt), h('td', null, rm));
        })))
      : h('p', { class: 'hint' }, `${s.routed_via === 'node' ? 'No nodes: once saved, the appliance calls' : 'Direct: the appliance calls'} ${s.endpoint_url ?? 'the endpoint'} itself (${
        s.auth_method === 'none' ? 'no credential' : `${s.auth_method} auth`}${s.routed_via === 'direct' && s.has_credential ? ', credential stored encrypted' : ''}).`);

    const free = nodes.filter((n) => !rows.some((r) => r.node_id === n.id));
    let adder: HTMLElement;
    if (!nodes.length) {
      adder = h('p', { class: 'empty' }, 'No nodes yet. ', isAdmin
        ? [h('a', { href: '/nodes', 'data-nav': true }, 'Register a node'), ' on a private host to route this service through it.']
        : ['Register one with ', h('code', null, 'nexus node register NAME'), ' to route this service through a private host.']);
    } else if (!free.length) {
      adder = h('p', { class: 'hint' }, 'Every node you have is bound.');
    } else {
      const select = h('select', { name: `add-node-${s.id}` }, free.map((n) => h('option', { value: n.id }, `${n.name} (${n.status ?? 'unknown'})`)));
      if (focus === 'add') queueMicrotask(() => select.focus());
      adder = h('div', { class: 'add-node' }, field(`Add a node to ${s.slug}`, select),
        h('button', { type: 'button', class: 'secondary', onclick: () => {
          const n = known.get(select.value);
          if (!n) return;
          const next = rows.length ? Math.max(...rows.map((r) => Number(r.priority) || 0)) + 1 : 0;
          rows.push({ node_id: n.id, name: n.name, priority: String(next), weight: '1' });
          touched();
          draw({ row: n.id });
        } }, 'Add node'));
    }

    // What saving will do to the credential, said before it happens.
    const wasDirect = s.routed_via !== 'node';
    let note: HTMLElement | null = null;
    if (!rows.length && s.auth_method !== 'none' && !(wasDirect && s.has_credential)) {
      note = field('Credential for direct access', credential, `Without nodes the appliance sends this ${s.auth_method} credential itself; stored encrypted, never shown again.`);
    } else if (rows.length && wasDirect && s.has_credential) {
      const line = s.endpoint_url ? agentCredentialLine(s.slug, s.endpoint_url, s.auth_method ?? 'bearer', s.auth_key_name) : null;
      note = h('p', { class: 'hint warn' }, 'Saving routes this service through nodes and deletes its credential from the appliance; add it on the node\'s host with ', h('code', null, line ?? 'nexus agent credentials add'), '.');
    }

    const save = h('button', { type: 'button', disabled: !dirty, onclick: async () => {
      err.clear();
      status.textContent = '';
      const body = routingBody(rows, s, credential.value);
      if (typeof body === 'string') return err.show(body);
      save.disabled = true;
      try {
        const answer = await patch<Service>(`/api/v1/keys/${s.id}`, body);
        credential.value = '';
        await reload({ id: s.id, part: 'routing', warnings: answer.warnings });
      } catch (e) {
        err.show((e as Error).message);
        save.disabled = false;
      }
    } }, 'Save routing');
    const touched = () => {
      dirty = true;
      save.disabled = false;
      status.textContent = '';
      warned?.remove();
      warned = null;
    };
    // Nothing to bind and nothing bound: no save button to confuse anyone.
    const nothing = !nodes.length && !rows.length && !dirty;
    replace(box, h('h3', { id: heading }, 'Routing'), bound, adder, note, err.el, nothing ? status : h('div', { class: 'actions' }, save, status), warned);
  };
  draw();
  return box;
}
