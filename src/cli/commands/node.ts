// `nexus node list|register NAME`: nodes are the private hosts an agent connects from.
import { parseArgs } from 'node:util';
import { apiRequest, listItems } from '../api-client.ts';
import { CliError, resolveTarget } from '../cli-credentials.ts';
import { printJson, printTable, withCliErrors } from '../output.ts';

export const NODE_USAGE = `Usage:
  nexus node list [--json]
  nexus node register NAME [--json]    prints the single-use token and the enroll command

  --url URL    the appliance (default: the one nexus login stored)
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

export async function nodeCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
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
