// Client-side routing for the console. Every path the appliance does not claim for an API serves
// index.html, so deep links and reloads land here and are resolved by ROUTES.
import { get } from './api.ts';
import { frame, loadMe, type App, type Page } from './app.ts';
import { h, replace } from './dom.ts';
import { addCredentialPage } from './pages/add-credential.ts';
import { auditPage } from './pages/audit.ts';
import { cliAuthPage } from './pages/cli-auth.ts';
import { groupsPage } from './pages/groups.ts';
import { loginPage } from './pages/login.ts';
import { nodesPage } from './pages/nodes.ts';
import { overviewPage } from './pages/overview.ts';
import { providersPage } from './pages/providers.ts';
import { scimPage } from './pages/scim.ts';
import { servicesPage } from './pages/services.ts';
import { settingsPage } from './pages/settings.ts';
import { setupPage } from './pages/setup.ts';
import { tokensPage } from './pages/tokens.ts';
import { usersPage } from './pages/users.ts';
import { virtualKeysPage } from './pages/virtual-keys.ts';

const ROUTES: Record<string, Page> = {
  '/': overviewPage,
  '/setup': setupPage,
  '/login': loginPage,
  '/cli-auth': cliAuthPage,
  '/cli/add-credential': addCredentialPage,
  '/providers': providersPage,
  '/virtual-keys': virtualKeysPage,
  '/services': servicesPage,
  '/nodes': nodesPage,
  '/users': usersPage,
  '/groups': groupsPage,
  '/tokens': tokensPage,
  '/provisioning': scimPage,
  '/audit': auditPage,
  '/settings': settingsPage,
};

const notFoundPage: Page = {
  title: 'Not found',
  render(main) {
    replace(main, h('h1', null, 'Page not found'), h('p', null, h('a', { href: '/', 'data-nav': true }, 'Go to the overview')));
  },
};

const root = document.getElementById('app')!;
let renderSeq = 0;

const app: App = {
  me: null,
  navigate(path, replaceState = false) {
    if (replaceState) history.replaceState(null, '', path);
    else history.pushState(null, '', path);
    void render();
  },
  async refreshMe() {
    app.me = await loadMe();
    return app.me;
  },
};

async function render(): Promise<void> {
  const seq = ++renderSeq;
  const path = location.pathname.replace(/\/+$/, '') || '/';
  const page = ROUTES[path] ?? notFoundPage;
  try {
    if (path !== '/setup') {
      const status = await get<{ setup_required: boolean }>('/api/v1/setup/status');
      if (status.setup_required) return app.navigate('/setup', true);
    }
    if (!page.public) {
      await app.refreshMe();
      if (!app.me) {
        const back = location.pathname + location.search;
        return app.navigate(`/login?return_to=${encodeURIComponent(back)}`, true);
      }
    }
    if (seq !== renderSeq) return;
    document.title = `${page.title} · Nexus`;
    const main = h('main', { id: 'main', tabindex: '-1' });
    if (page.adminOnly && app.me?.user.role !== 'admin') {
      replace(main, h('h1', null, page.title), h('p', { class: 'empty' }, 'This page needs the admin role.'));
    } else {
      await page.render(main, app);
    }
    if (seq !== renderSeq) return;
    replace(root, page.bare || !app.me ? h('div', { class: 'bare' }, main) : frame(app, path, main));
    main.focus({ preventScroll: true });
  } catch (e) {
    if (seq !== renderSeq) return;
    replace(root, h('main', { class: 'bare' }, h('h1', null, 'Something went wrong'), h('p', { class: 'error', role: 'alert' }, (e as Error).message)));
  }
}

// Internal links navigate without a reload.
document.addEventListener('click', (ev) => {
  const a = (ev.target as Element).closest?.('a[data-nav]') as HTMLAnchorElement | null;
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
  ev.preventDefault();
  app.navigate(a.getAttribute('href')!);
});
window.addEventListener('popstate', () => void render());
void render();
