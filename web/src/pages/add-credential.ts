// /cli/add-credential — `nexus service add` opens this page pre-filled from its flags and the
// catalog, so the secret is typed only here, never in a terminal. It calls POST /api/v1/keys and
// sends the browser back to the CLI's loopback callback with the new service's id.
import { ApiError, capabilities, get, items, post, whenServed } from '../api.ts';
import type { Page } from '../app.ts';
import { AUTH_METHODS, CUSTOM_METHODS } from '../../../src/core/services/auth-methods.ts';
import { errorBox, field, h, onSubmit, replace, warningNotes } from '../dom.ts';
import { callbackUrl, cliParams } from './cli-auth.ts';

interface CatalogEntry {
  slug: string;
  label?: string;
  name?: string;
  endpoint_url?: string;
  base_url?: string;
  auth_method?: string;
  auth_key_name?: string;
}

interface NodeRow {
  id: string;
  name: string;
  status?: string;
}

export const addCredentialPage: Page = {
  title: 'Add a service',
  bare: true,
  async render(main) {
    const q = new URLSearchParams(location.search);
    const cli = cliParams(q);
    if (cli === 'invalid') {
      replace(main, h('section', { class: 'card narrow' }, h('h1', null, 'Invalid CLI request'),
        h('p', { class: 'error', role: 'alert' }, 'This link is missing a valid port or state. Run nexus service add again.')));
      return;
    }
    const caps = await capabilities();
    if (!caps.services) {
      replace(main, h('section', { class: 'card narrow' }, h('h1', null, 'Services are not available'),
        h('p', null, 'This appliance does not serve the service API yet.')));
      return;
    }
    const slug = q.get('slug') ?? '';
    // `nexus service add --slug`: the new service's own slug (`slug` above names the catalog entry).
    const serviceSlug = q.get('service_slug') ?? '';
    const custom = q.get('custom') === '1' || q.get('custom') === 'true' || !slug;
    let entry: CatalogEntry | null = null;
    const err = errorBox();
    if (!custom && caps.catalog) {
      try {
        entry = await get<CatalogEntry>(`/api/v1/catalog/${encodeURIComponent(slug)}`);
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 404)) throw e;
        err.show(`"${slug}" is not in the catalog; fill in the endpoint yourself.`);
      }
    }
    const nodes = items<NodeRow>(await whenServed('nodes', '/api/v1/nodes').catch(() => null));

    const label = h('input', { name: 'label', value: q.get('label') ?? entry?.label ?? entry?.name ?? slug, maxlength: 200 });
    const endpoint = h('input', { name: 'endpoint_url', type: 'url', required: true, value: q.get('endpoint_url') ?? entry?.endpoint_url ?? entry?.base_url ?? '' });
    const methods = entry ? Object.keys(AUTH_METHODS) : CUSTOM_METHODS;
    const initialMethod = q.get('auth_method') ?? entry?.auth_method ?? 'bearer';
    const method = h('select', { name: 'auth_method' },
      [...new Set([initialMethod, ...methods])].filter((m) => Object.hasOwn(AUTH_METHODS, m)).map((m) => h('option', { value: m, selected: m === initialMethod }, m)));
    const keyName = h('input', { name: 'auth_key_name', value: q.get('auth_key_name') ?? entry?.auth_key_name ?? AUTH_METHODS[initialMethod]?.keyName ?? '' });
    let keyNameTouched = q.has('auth_key_name');
    keyName.addEventListener('input', () => (keyNameTouched = true));
    const credential = h('input', { name: 'credential', type: 'password', autocomplete: 'off', spellcheck: 'false' });
    const credentialField = field('Credential', credential);
    const viaNode = q.get('via_node') ?? '';
    const nodeSelect = h('select', { name: 'node' },
      h('option', { value: '' }, 'Direct from the appliance'),
      nodes.map((n) => h('option', { value: n.id, selected: n.id === viaNode }, `${n.name}${n.status ? ` (${n.status})` : ''}`)),
      viaNode && !nodes.some((n) => n.id === viaNode) ? h('option', { value: viaNode, selected: true }, viaNode) : null);

    const sync = () => {
      const m = AUTH_METHODS[method.value];
      const routedViaNode = nodeSelect.value !== '';
      const needsCredential = !!m?.label && !routedViaNode;
      credentialField.hidden = !needsCredential;
      credentialField.querySelector('label')!.textContent = m?.label ?? 'Credential';
      credential.required = needsCredential;
      if (!keyNameTouched) keyName.value = (method.value === entry?.auth_method ? entry?.auth_key_name : null) ?? m?.keyName ?? '';
    };
    method.addEventListener('change', sync);
    nodeSelect.addEventListener('change', sync);
    sync();

    const form = h('form', { novalidate: true },
      entry ? h('p', null, 'Service: ', h('strong', null, entry.label ?? entry.name ?? entry.slug), ' ', h('code', null, entry.slug)) : null,
      serviceSlug ? h('p', null, 'Slug: ', h('code', null, serviceSlug)) : null,
      field('Label', label),
      field('Endpoint URL', endpoint),
      field('Auth method', method),
      field('Auth key name', keyName, 'The header, query or body field that carries the credential.'),
      field('Route through', nodeSelect, 'Through a node, the credential stays on that node and is not asked here.'),
      credentialField,
      err.el,
      h('button', { type: 'submit' }, 'Save'));
    onSubmit(form, err, async () => {
      if (!endpoint.value.trim()) throw new Error('Enter the endpoint URL.');
      if (credential.required && !credential.value) throw new Error(`Enter the ${credentialField.querySelector('label')!.textContent}.`);
      const body: Record<string, unknown> = { endpoint_url: endpoint.value.trim(), auth_method: method.value };
      if (!custom && entry) body.catalog = entry.slug;
      if (serviceSlug) body.slug = serviceSlug;
      if (label.value.trim()) body.label = label.value.trim();
      if (keyName.value.trim() && AUTH_METHODS[method.value]?.keyName !== null) body.auth_key_name = keyName.value.trim();
      if (nodeSelect.value) body.nodes = [{ node_id: nodeSelect.value, priority: 1 }];
      else if (credential.required) body.credential = credential.value;
      const created = await post<{ id: string; slug: string; proxy_url: string; warnings?: string[] }>('/api/v1/keys', body);
      credential.value = '';
      if (cli) {
        // The terminal prints the appliance's warnings (one `warning` parameter each).
        location.href = callbackUrl(cli.port, [['state', cli.state], ['status', 'ok'], ['service_id', created.id], ['slug', created.slug], ['proxy_url', created.proxy_url],
          ...(created.warnings ?? []).map((w) => ['warning', w])]);
        return;
      }
      replace(main, h('section', { class: 'card narrow' }, h('h1', null, 'Service added'),
        h('p', null, 'Slug: ', h('code', null, created.slug)), h('p', null, 'Proxy: ', h('code', null, created.proxy_url)), warningNotes(created.warnings)));
    });
    const cancel = cli
      ? h('p', null, h('a', { href: callbackUrl(cli.port, { state: cli.state, status: 'cancelled' }) }, 'Cancel and return to the terminal'))
      : null;
    replace(main, h('section', { class: 'card narrow' }, h('h1', null, custom ? 'Add a custom service' : 'Add a service credential'),
      h('p', { class: 'hint' }, 'The secret you type here goes straight to the appliance, encrypted at rest; it never passes through the terminal.'),
      form, cancel));
  },
};
