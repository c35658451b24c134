import { parseArgs } from 'node:util';
import { enroll } from '../../agent/enroll.ts';
import { agentHome } from '../../agent/home.ts';

export async function agentEnrollCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { url: { type: 'string' }, token: { type: 'string' }, profile: { type: 'string' }, force: { type: 'boolean' } },
    strict: true,
  });
  if (!values.url || !values.token) {
    process.stderr.write('nexus agent enroll: --url ws(s)://HOST/ws and --token nx_nreg_… are required\n');
    return 2;
  }
  const home = agentHome(values.profile);
  const id = await enroll(home, values.url, values.token, { force: values.force ?? false });
  // The node's auth token and signing secret are not printed: the agent reads them from its state,
  // and this output often lands in provisioning logs (cloud-init, CI), where they would let anyone
  // reading the log connect as this node.
  process.stdout.write([
    `Enrolled as node ${id.nodeId}${home.profile ? ` (profile ${home.profile})` : ''}.`,
    '',
    `Its credentials are stored encrypted in ${home.dir} (mode 0600); the agent needs nothing else.`,
    '',
    `Next: nexus agent credentials add --service SLUG --url URL --header Authorization --secret-format bearer${home.profile ? ` --profile ${home.profile}` : ''}`,
    `      nexus agent start${home.profile ? ` --profile ${home.profile}` : ''}`,
    '',
  ].join('\n'));
  return 0;
}
