// `nexus node list|register NAME`: nodes are the private hosts an agent connects from.
import { parseArgs } from 'node:util';
import { apiRequest, listItems } from '../api-client.ts';
import { CliError, resolveTarget } from '../cli-credentials.ts';
import { printJson, printTable, withCliErrors } from '../output.ts';

export const NODE_USAGE = `Usage:
  nexus node list [--json]
  nexus node register NAME [--json]    prints the single-use token and the enroll command

  --url URL    the appliance (default: the one nexus login stored)

On the private host the agent enrolls and runs: nexus agent enroll|credentials|start|daemon (nexus agent --help).
`;

interface NodeRow {
  id: string;
  name: string;
  status: string;
  last_seen: string | null;
}

/** ws(s)://HOST/ws for an http(s) appliance URL. */
export function hubUrl(base: string): string {
  const u = new URL(base);
  return `${u.protocol === 'https:' ? 'wss:' : 'ws:'}//${u.host}/ws`;
}

/** The agent's subcommands: typed after `nexus node`, they get a pointer to `nexus agent`. */
const AGENT_SUBCOMMANDS = new Set(['enroll', 'start', 'daemon', 'credentials']);

/** `nexus node register --token …`: the agent's enrollment, typed as the operator's command. */
const hasAgentFlag = (args: string[]) => args.some((a) => a === '--token' || a.startsWith('--token='));

export async function nodeCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== undefined && AGENT_SUBCOMMANDS.has(sub)) {
    process.stderr.write(`nexus node ${sub}: that runs on the private host: nexus agent ${sub} …\n`);
    return 2;
  }
  if (sub === 'register' && hasAgentFlag(rest)) {
    // The token is not echoed: it is a secret, and the user has it already.
    process.stderr.write('nexus node register: enrolling with a token runs on the private host: nexus agent enroll --url wss://HOST/ws --token …\n');
    return 2;
  }
  if (sub !== 'list' && sub !== 'register') {
    process.stdout.write(NODE_USAGE);
    return sub === '--help' || sub === '-h' ? 0 : 2;
  }
  const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, strict: true, options: { url: { type: 'string' }, json: { type: 'boolean' } } });
  return withCliErrors(`node ${sub}`, async () => {
    const target = resolveTarget(values.url);
    if (sub === 'list') {
      const data = await apiRequest<unknown>(target, 'GET', '/api/v1/nodes');
      if (values.json) return printJson(data), 0;
      printTable(['ID', 'NAME', 'STATUS', 'LAST SEEN'], listItems<NodeRow>(data).map((n) => [n.id, n.name, n.status, n.last_seen]), 'No nodes yet: nexus node register NAME');
      return 0;
    }
    const name = positionals[0];
    if (!name || positionals.length > 1) throw new CliError('usage: nexus node register NAME', 2);
    const created = await apiRequest<{ id: string; registration_token: string; expires_at: string }>(target, 'POST', '/api/v1/nodes', { name });
    if (values.json) return printJson(created), 0;
    process.stdout.write(`Node "${name}" registered (id ${created.id}). On the private host run, before ${created.expires_at}:\n\n` +
      `  nexus agent enroll --url ${hubUrl(target.url)} --token ${created.registration_token}\n  nexus agent start\n\n` +
      'The token works once and is not shown again.\n');
    return 0;
  });
}
