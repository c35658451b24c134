// `nexus login [--url URL] [--no-browser]`: signs the CLI in through the console. The browser
// (already signed in, or signing in there with password or SSO) authorizes on /cli-auth and hands
// back a one-time code, which the CLI exchanges for a personal token stored 0600 in the config dir.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { cliEnv } from '../../core/config/config.ts';
import { apiRequest } from '../api-client.ts';
import { openBrowser, startCallback } from '../browser-flow.ts';
import { CliError, normalizeBaseUrl, readCredentials, writeCredentials } from '../cli-credentials.ts';
import { withCliErrors } from '../output.ts';
import { promptLine } from '../prompt.ts';

export const LOGIN_USAGE = `Usage: nexus login [--url URL] [--no-browser]

  --url URL       the appliance (default: NEXUS_URL, else the last one signed in to)
  --no-browser    print the URL to open anywhere and paste the one-time code it shows
`;

interface Exchanged {
  token: string;
  user: { username: string; role: string };
}

export async function loginCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { url: { type: 'string' }, 'no-browser': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, strict: true });
  if (values.help) {
    process.stdout.write(LOGIN_USAGE);
    return 0;
  }
  return withCliErrors('login', async () => {
    const raw = values.url ?? cliEnv().url ?? readCredentials()?.url;
    if (!raw) throw new CliError('which appliance? pass --url https://YOUR-APPLIANCE', 2);
    const url = normalizeBaseUrl(raw);
    let code: string;
    if (values['no-browser']) {
      process.stderr.write(`Open this page in a browser, sign in and choose Authorize:\n\n  ${url}/cli-auth\n\n`);
      code = await promptLine('Paste the one-time code: ');
      if (!code) throw new CliError('no code entered');
    } else {
      const cb = await startCallback();
      const page = `${url}/cli-auth?port=${cb.port}&state=${cb.state}`;
      process.stderr.write(`Opening your browser to sign in. If it does not open, visit:\n\n  ${page}\n\nWaiting for the browser…\n`);
      openBrowser(page);
      const q = await cb.result;
      code = q.get('code') ?? '';
      if (!code) throw new CliError('the browser came back without a code; run nexus login again');
    }
    const done = await apiRequest<Exchanged>({ url }, 'POST', '/api/v1/cli/codes/exchange', { code, name: `nexus CLI on ${hostname()}`.slice(0, 200) });
    const path = writeCredentials({ url, token: done.token, username: done.user.username });
    process.stdout.write(`Signed in to ${url} as ${done.user.username} (${done.user.role}). Token stored in ${path}\n`);
    return 0;
  });
}
