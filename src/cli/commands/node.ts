// `nexus node list|register|token|rotate|delete`: nodes are the private hosts an agent connects from.
import { parseArgs } from 'node:util';
import { apiRequest, listItems, type ApiTarget } from '../api-client.ts';
import { CliError, resolveTarget } from '../cli-credentials.ts';
import { printJson, printTable, withCliErrors } from '../output.ts';

export const NODE_USAGE = `Usage:
  nexus node list [--json]
  nexus node register NAME [--json]    prints the single-use token and the enroll command
  nexus node token NAME|ID [--json]    a new single-use token for an existing node (to enroll it
                                       again: a new host, or after its credentials were rotated)
  nexus node rotate NAME|ID            new credentials for the node, printed as JSON for its agent:
                                       nexus node rotate edge-1 | ssh HOST nexus agent rotate
  nexus node delete NAME|ID [--force]  --force: also when services or providers route only through it
                                       (they then answer 503 until given another node, never direct)

  --url URL    the appliance (default: the one nexus login stored)

On the private host the agent enrolls and runs: nexus agent enroll|credentials|start|daemon (nexus agent --help).
`;

interface NodeRow {
  id: string;
  name: string;
  status: string;
  last_seen: string | null;
}

interface NodeUsage {
  services: Array<{ id: string; slug: string; last_node: boolean }>;
  other_services: number;
  providers: Array<{ id: string; name: string }>;
}

/** A node named by its id or its name (one of the caller's: names are unique per owner). */
export async function resolveNode(target: ApiTarget, ref: string): Promise<NodeRow> {
  const nodes = listItems<NodeRow>(await apiRequest<unknown>(target, 'GET', '/api/v1/nodes'));
  const found = nodes.find((n) => n.id === ref) ?? nodes.filter((n) => n.name === ref);
  if (!Array.isArray(found)) return found;
  if (found.length > 1) throw new CliError(`more than one node is named "${ref}"; use its id (nexus node list)`);
  if (!found[0]) throw new CliError(`no node named "${ref}" or with that id (nexus node list)`);
  return found[0];
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
  if (sub !== 'list' && sub !== 'register' && sub !== 'token' && sub !== 'rotate' && sub !== 'delete') {
    process.stdout.write(NODE_USAGE);
    return sub === '--help' || sub === '-h' ? 0 : 2;
  }
  const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, strict: true, options: { url: { type: 'string' }, json: { type: 'boolean' }, force: { type: 'boolean' } } });
  return withCliErrors(`node ${sub}`, async () => {
    const target = resolveTarget(values.url);
    if (sub === 'list') {
      const data = await apiRequest<unknown>(target, 'GET', '/api/v1/nodes');
      if (values.json) return printJson(data), 0;
      printTable(['ID', 'NAME', 'STATUS', 'LAST SEEN'], listItems<NodeRow>(data).map((n) => [n.id, n.name, n.status, n.last_seen]), 'No nodes yet: nexus node register NAME');
      return 0;
    }
    const name = positionals[0];
    if (!name || positionals.length > 1) throw new CliError(`usage: nexus node ${sub} ${sub === 'register' ? 'NAME' : 'NAME|ID'}`, 2);
    if (values.force && sub !== 'delete') throw new CliError('--force goes with nexus node delete', 2);
    if (sub === 'delete') return deleteNode(target, name, values.force ?? false);
    if (sub === 'rotate') {
      // The pair goes to stdout as the API's JSON, for `nexus agent rotate` on the node's host to read.
      const node = await resolveNode(target, name);
      const creds = await apiRequest<unknown>(target, 'POST', `/api/v1/nodes/${encodeURIComponent(node.id)}/rotate`);
      process.stdout.write(JSON.stringify(creds) + '\n');
      process.stderr.write(`Node "${node.name}" has new credentials; the old ones no longer work and its agent was disconnected.\n` +
        'Give the JSON above to the agent on its host on stdin (never as a flag), then start the agent again:\n' +
        '  nexus agent rotate < FILE        (in one go next time: nexus node rotate NODE | ssh HOST nexus agent rotate)\n');
      return 0;
    }
    type Issued = { id: string; name: string; registration_token: string; expires_at: string };
    if (sub === 'token') {
      const node = await resolveNode(target, name);
      const issued = await apiRequest<Issued>(target, 'POST', `/api/v1/nodes/${encodeURIComponent(node.id)}/registration-token`, {});
      if (values.json) return printJson(issued), 0;
      process.stdout.write(`New registration token for node "${node.name}" (id ${node.id}). On its host run, before ${issued.expires_at}:\n\n` +
        `  nexus agent enroll --url ${hubUrl(target.url)} --token ${issued.registration_token} --force\n  nexus agent start\n\n` +
        'The token works once and is not shown again. Enrolling gives the node new credentials under the same id\n' +
        '(its services stay bound); an agent still connected with the old ones is disconnected then.\n');
      return 0;
    }
    const created = await apiRequest<Issued>(target, 'POST', '/api/v1/nodes', { name });
    if (values.json) return printJson(created), 0;
    process.stdout.write(`Node "${name}" registered (id ${created.id}). On the private host run, before ${created.expires_at}:\n\n` +
      `  nexus agent enroll --url ${hubUrl(target.url)} --token ${created.registration_token}\n  nexus agent start\n\n` +
      'The token works once and is not shown again.\n');
    return 0;
  });
}

const quoted = (names: string[]) => names.map((n) => `"${n}"`).join(', ');

/**
 * Deletes a node. One that is the only node of a service, or a provider's node, only with --force
 * (like `nexus restore --force`): those stay routed through nodes and answer 503 until given another.
 */
async function deleteNode(target: ApiTarget, ref: string, force: boolean): Promise<number> {
  const node = await resolveNode(target, ref);
  const used = (await apiRequest<{ used_by?: NodeUsage }>(target, 'GET', `/api/v1/nodes/${encodeURIComponent(node.id)}`)).used_by;
  const only = used?.services.filter((s) => s.last_node).map((s) => s.slug) ?? [];
  const providers = used?.providers.map((p) => p.name) ?? [];
  const affected = [
    ...(only.length ? [`service${only.length > 1 ? 's' : ''} ${quoted(only)} (no other node)`] : []),
    ...(providers.length ? [`provider${providers.length > 1 ? 's' : ''} ${quoted(providers)}`] : []),
  ].join(' and ');
  if (affected && !force) {
    throw new CliError(`node "${node.name}" is used by ${affected}: bind them to another node first (nexus service nodes SLUG --node NODE, nexus provider update NAME --node NODE), or run again with --force: they then answer 503 until given a node (never called directly)`);
  }
  await apiRequest(target, 'DELETE', `/api/v1/nodes/${encodeURIComponent(node.id)}${force ? '?force=true' : ''}`);
  process.stdout.write(`Node "${node.name}" deleted (id ${node.id}); its agent was disconnected.${affected ? ` Now without a node: ${affected}.` : ''}\n`);
  return 0;
}
