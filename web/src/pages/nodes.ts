// /nodes — agents on private hosts: register (token shown once with the exact enroll command),
// online state, last seen, a new token to enroll a node again (a new host, or after a rotation),
// removal (saying first which services and providers route through the node).
import { del, get, items, post, whenServed } from '../api.ts';
import type { Page } from '../app.ts';
import { errorBox, field, fmtTime, h, onSubmit, replace, secretBox, snippet, table } from '../dom.ts';
import { publicBase, unavailable } from './common.ts';
import type { Tls } from './settings.ts';

interface NodeRow {
  id: string;
  name: string;
  status: 'online' | 'offline' | 'pending';
  last_seen: string | null;
}

interface NodeUsage {
  services: Array<{ slug: string; last_node: boolean }>;
  other_services: number;
  providers: Array<{ name: string }>;
  other_providers: number;
}

/** What removing a node does to what routes through it, for the Remove dialog. */
export function removeMessage(name: string, used: NodeUsage | undefined): { text: string; force: boolean } {
  const only = used?.services.filter((s) => s.last_node).map((s) => s.slug) ?? [];
  const shared = used?.services.filter((s) => !s.last_node).map((s) => s.slug) ?? [];
  const providers = used?.providers.map((p) => p.name) ?? [];
  const lines = [`Remove node ${name}? Its agent is disconnected.`];
  if (only.length) lines.push(`Services with no other node: ${only.join(', ')}. They stay routed through nodes and answer 503 until you bind another node (never called directly).`);
  if (shared.length) lines.push(`Services that keep their other nodes: ${shared.join(', ')}.`);
  if (used?.other_services) lines.push(`${used.other_services} service(s) of other users also use it.`);
  if (providers.length) lines.push(`AI gateway providers routed through it: ${providers.join(', ')}. Their calls fail (503) until given another node.`);
  if (used?.other_providers) lines.push(`${used.other_providers} AI gateway provider(s) are routed through it; their calls fail (503) until given another node.`);
  return { text: lines.join('\n\n'), force: only.length > 0 || providers.length > 0 || (used?.other_services ?? 0) > 0 || (used?.other_providers ?? 0) > 0 };
}

/** The hub's WebSocket URL for a public base URL (https → wss). */
export function wsUrl(base: string): string {
  const u = new URL(base);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = '/ws';
  return u.toString().replace(/\/$/, '');
}

export const nodesPage: Page = {
  title: 'Nodes',
  adminOnly: true,
  async render(main) {
    const first = await whenServed<unknown>('nodes', '/api/v1/nodes');
    if (first === null) return unavailable(main, 'Nodes', 'Nodes');
    const settings = await get<{ public_url: string | null; detected_public_url: string }>('/api/v1/settings').catch(() => null);
    // Behind a self-signed certificate (a fresh appliance's) an agent must be given it: --ca.
    const cert = (await get<Tls>('/api/v1/settings/tls').catch(() => null))?.certificate ?? null;
    const ca = cert?.self_signed ? cert : null;
    const err = errorBox();
    const list = h('div');
    const shown = h('div');
    type Issued = { id: string; name: string; registration_token: string; expires_at: string };
    const showToken = (issued: Issued, again: boolean) =>
      replace(shown, secretBox(again ? `New registration token for ${issued.name} (single use)` : 'Registration token (single use)', issued.registration_token),
        snippet('Run on the private host', `nexus agent enroll --url ${wsUrl(publicBase(settings))} --token ${issued.registration_token}${ca ? ' --ca appliance.pem' : ''}${again ? ' --force' : ''}\nnexus agent start`),
        ...(ca ? [h('p', { class: 'hint' }, 'This appliance serves a self-signed certificate, so the agent is given it: ',
          h('a', { href: `data:application/x-pem-file;charset=utf-8,${encodeURIComponent(ca.pem)}`, download: 'appliance.pem' }, 'download appliance.pem'),
          ` and copy it to the host (SHA-256 ${ca.fingerprint_sha256}). With a certificate from a public CA (Settings, TLS), --ca is not needed.`)] : []),
        h('p', { class: 'hint' }, `The token expires ${fmtTime(issued.expires_at)}.${again ? ' Enrolling with it gives the node new credentials; an agent still using the old ones is disconnected.' : ''}`));
    const load = async () => {
      const nodes = items<NodeRow>(await get('/api/v1/nodes'));
      replace(list, table(['Name', 'ID', 'Status', 'Last seen', ''], nodes.map((n) => [
        n.name, h('code', null, n.id), h('span', { class: `badge ${n.status}` }, n.status), fmtTime(n.last_seen),
        h('span', null, h('button', {
          type: 'button', class: 'small', 'aria-label': `New token for ${n.name}`,
          onclick: async () => {
            err.clear();
            try {
              showToken(await post<Issued>(`/api/v1/nodes/${n.id}/registration-token`, {}), true);
            } catch (e) {
              err.show((e as Error).message);
            }
          },
        }, 'New token'), ' ', h('button', {
          type: 'button', class: 'danger small', 'aria-label': `Remove ${n.name}`,
          onclick: async () => {
            err.clear();
            try {
              const used = (await get<{ used_by?: NodeUsage }>(`/api/v1/nodes/${n.id}`)).used_by;
              const ask = removeMessage(n.name, used);
              if (!confirm(ask.text)) return;
              await del(`/api/v1/nodes/${n.id}${ask.force ? '?force=true' : ''}`);
              await load();
            } catch (e) {
              err.show((e as Error).message);
            }
          },
        }, 'Remove')),
      ]), 'No nodes yet. Register one to reach APIs on a private host.'));
    };
    const name = h('input', { name: 'name', required: true, maxlength: 200 });
    const formErr = errorBox();
    const form = h('form', { class: 'inline', novalidate: true }, field('Node name', name), formErr.el, h('button', { type: 'submit' }, 'Register node'));
    onSubmit(form, formErr, async () => {
      if (!name.value.trim()) throw new Error('Give the node a name.');
      showToken(await post<Issued>('/api/v1/nodes', { name: name.value.trim() }), false);
      form.reset();
      await load();
    });
    await load();
    replace(main, h('h1', null, 'Nodes'), form, shown, err.el, list);
  },
};
