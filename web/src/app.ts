// The shell: who is signed in, navigation between client routes, and the page frame.
import { ApiError, get, post, type Me } from './api.ts';
import { h, type Child } from './dom.ts';

export interface Page {
  title: string;
  /** Renders into `main`; may await the API. */
  render(main: HTMLElement, app: App): Promise<void> | void;
  /** Pages outside the signed-in frame (setup, sign-in). */
  bare?: boolean;
  /** Pages that work without a session. */
  public?: boolean;
  adminOnly?: boolean;
}

export interface App {
  me: Me | null;
  navigate(path: string, replaceState?: boolean): void;
  refreshMe(): Promise<Me | null>;
}

export const NAV: { path: string; label: string; admin?: boolean }[] = [
  { path: '/', label: 'Overview' },
  { path: '/providers', label: 'Providers & models', admin: true },
  { path: '/virtual-keys', label: 'Virtual keys' },
  { path: '/services', label: 'Services' },
  { path: '/nodes', label: 'Nodes', admin: true },
  { path: '/users', label: 'Users', admin: true },
  { path: '/groups', label: 'Groups', admin: true },
  { path: '/tokens', label: 'Personal tokens' },
  { path: '/provisioning', label: 'SCIM provisioning', admin: true },
  { path: '/audit', label: 'Audit log', admin: true },
  { path: '/settings', label: 'Settings', admin: true },
];

export async function loadMe(): Promise<Me | null> {
  try {
    return await get<Me>('/api/v1/me');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return null;
    throw e;
  }
}

export function frame(app: App, current: string, main: HTMLElement): HTMLElement {
  const me = app.me!;
  const link = (path: string, label: string): Child =>
    h('li', null, h('a', { href: path, 'aria-current': path === current ? 'page' : null, 'data-nav': true }, label));
  return h('div', { class: 'shell' },
    h('header', { class: 'top' },
      h('a', { class: 'brand', href: '/', 'data-nav': true }, 'Nexus'),
      h('div', { class: 'who' },
        h('span', null, `${me.user.username} · ${me.user.role}`),
        h('button', {
          type: 'button',
          class: 'link',
          onclick: async () => {
            await post('/api/v1/auth/logout', {}).catch(() => undefined);
            app.me = null;
            app.navigate('/login');
          },
        }, 'Sign out'))),
    h('nav', { 'aria-label': 'Main' }, h('ul', null, NAV.filter((n) => !n.admin || me.user.role === 'admin').map((n) => link(n.path, n.label)))),
    main);
}
