import { parseArgs } from 'node:util';
import { enroll } from '../../agent/enroll.ts';
import { agentHome } from '../../agent/home.ts';
import { readCaFile } from '../../agent/tls.ts';

export async function agentEnrollCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { url: { type: 'string' }, token: { type: 'string' }, profile: { type: 'string' }, force: { type: 'boolean' }, ca: { type: 'string' } },
    strict: true,
  });
  if (!values.url || !values.token) {
    process.stderr.write('nexus agent enroll: --url ws(s)://HOST/ws and --token nx_nreg_… are required\n');
    return 2;
  }
  const home = agentHome(values.profile);
  const ca = values.ca === undefined ? undefined : readCaFile(values.ca);
  const id = await enroll(home, values.url, values.token, { force: values.force ?? false, ...(ca ? { ca } : {}) });
  // The node's auth token and signing secret are shown once, to a person at a terminal. Output that
  // is not a terminal often lands in provisioning logs (cloud-init, CI), where they would let anyone
  // reading the log connect as this node: there they are not printed (the agent reads its state).
  const shown = process.stdout.isTTY
    ? ['These credentials are shown once; the agent needs nothing else:', `  auth token:     ${id.authToken}`, `  signing secret: ${id.signingSecret}`]
    : ['(Its auth token and signing secret are printed only to a terminal, never to a log.)'];
  process.stdout.write([
    `Enrolled as node ${id.nodeId}${home.profile ? ` (profile ${home.profile})` : ''}.`,
    '',
    `Its credentials are stored encrypted in ${home.dir} (mode 0600).`,
    ...shown,
    '',
    `Next: nexus agent credentials add --service SLUG --url URL --header Authorization --secret-format bearer${home.profile ? ` --profile ${home.profile}` : ''}`,
    `      nexus agent start${home.profile ? ` --profile ${home.profile}` : ''}`,
    '',
  ].join('\n'));
  return 0;
}
