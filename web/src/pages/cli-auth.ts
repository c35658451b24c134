// /cli-auth — `nexus login` opens this page. After an explicit click it mints a one-time code for
// the signed-in user and sends the browser to the CLI's loopback callback; the CLI exchanges the
// code for a personal token, so no long-lived secret ever appears in a URL. Without a port (the
// CLI's --no-browser mode) the code is shown for pasting instead.
import { post } from '../api.ts';
import type { Page } from '../app.ts';
import { errorBox, h, replace, secretBox } from '../dom.ts';

export function cliParams(params: URLSearchParams): { port: number; state: string } | null | 'invalid' {
  const port = params.get('port');
  const state = params.get('state');
  if (port === null && state === null) return null;
  if (!port || !/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) return 'invalid';
  if (!state || !/^[0-9a-f]{32}$/.test(state)) return 'invalid';
  return { port: Number(port), state };
}

export function callbackUrl(port: number, query: Record<string, string> | string[][]): string {
  return `http://127.0.0.1:${port}/callback?${new URLSearchParams(query).toString()}`;
}

export const cliAuthPage: Page = {
  title: 'Authorize the CLI',
  bare: true,
  render(main, app) {
    const cli = cliParams(new URLSearchParams(location.search));
    if (cli === 'invalid') {
      replace(main, h('section', { class: 'card narrow' }, h('h1', null, 'Invalid CLI request'),
        h('p', { class: 'error', role: 'alert' }, 'This link is missing a valid port or state. Run nexus login again.')));
      return;
    }
    const err = errorBox();
    const out = h('div');
    const authorize = h('button', {
      type: 'button',
      onclick: async () => {
        err.clear();
        authorize.disabled = true;
        try {
          const { code } = await post<{ code: string }>('/api/v1/cli/codes', {});
          if (cli) {
            replace(out, h('p', null, 'Authorized. Returning to your terminal…'));
            location.href = callbackUrl(cli.port, { state: cli.state, code });
          } else {
            replace(out, secretBox('Paste this one-time code into your terminal', code), h('p', { class: 'hint' }, 'It works once and expires in 5 minutes.'));
          }
        } catch (e) {
          authorize.disabled = false;
          err.show((e as Error).message);
        }
      },
    }, 'Authorize');
    replace(main, h('section', { class: 'card narrow' },
      h('h1', null, 'Authorize the Nexus CLI'),
      h('p', null, 'A Nexus command line on your computer asks for a personal token for ', h('strong', null, app.me!.user.username), '.'),
      h('p', { class: 'hint' }, 'Only continue if you just ran nexus login yourself.'),
      err.el, h('div', { class: 'actions' }, authorize), out));
  },
};
