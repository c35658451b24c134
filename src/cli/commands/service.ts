// `nexus service add|list|nodes|update`. `add` puts the secret into the browser, never the terminal (seed:
// cli-browser-credential-entry): it opens /cli/add-credential pre-filled from the flags and waits
// for the page's callback. --via-node needs no credential (the node holds it), --credential-env
// reads it from the environment, and --no-browser prompts for it without echo. `update` changes a
// service's endpoint, label or auth method and `nodes` shows or replaces its node binding (both
// PATCH /api/v1/keys/{id}); a credential they need comes from --credential-env or a hidden prompt.
import { parseArgs } from 'node:util';
import { readEnv } from '../../core/config/config.ts';
import { agentCredentialLine, AUTH_METHODS } from '../../core/services/auth-methods.ts';
import { literalAddressClass } from '../../core/services/endpoint-addresses.ts';
import { apiRequest, listItems } from '../api-client.ts';
import { openBrowser, startCallback } from '../browser-flow.ts';
import { CliError, resolveTarget } from '../cli-credentials.ts';
import { printJson, printTable, withCliErrors } from '../output.ts';
import { promptLine, promptSecret } from '../prompt.ts';

export const SERVICE_USAGE = `Usage:
  nexus service add [SLUG] [options]   add a catalog service (SLUG) or, with --custom, any endpoint
  nexus service list [--json]
  nexus service update SLUG|ID [--endpoint-url URL] [--label TEXT] [--auth-method METHOD]
                       [--auth-key-name NAME] [--credential-env VAR] [--json]
                                       change a service's endpoint, label or auth (the slug and
                                       proxy URL stay); an empty --label or --auth-key-name clears it
  nexus service nodes SLUG [--json]    show which nodes serve SLUG
  nexus service nodes SLUG --node NODE[:PRIORITY[:WEIGHT]]... [--json]
                                       bind SLUG to exactly these nodes (NODE: id or name;
                                       priority 0-1000, lower first, default 0; weight 1-1000, default 1)
  nexus service nodes SLUG --direct [--credential-env VAR] [--json]
                                       unbind every node; the appliance sends the credential itself

Options for add (update takes those its usage line names):
  --custom                 custom endpoint (no catalog entry)
  --via-node NODE          route through a node (id or name); the credential stays on that node
  --endpoint-url URL       override the endpoint URL
  --slug SLUG              the service's slug, as in its proxy URL and in the node's
                           \`nexus agent credentials add --service SLUG\` (default: the catalog
                           SLUG, else derived from --label or the endpoint's host name)
  --label LABEL            a label for the service
  --auth-method METHOD     ${Object.keys(AUTH_METHODS).join(' | ')}
  --auth-key-name NAME     header, query or body key (e.g. Authorization, X-API-Key)
  --credential-env VAR     read the credential from environment variable VAR (no browser)
  --no-browser             prompt in the terminal (input hidden) instead of the browser
  --url URL                the appliance (default: the one nexus login stored)
  --json                   print the result as JSON

update asks for the credential (input hidden, or --credential-env VAR) when a direct service needs
it: moved to another scheme, host or port, or given an auth method while it holds none; with
--credential-env it replaces the stored one. A service routed through nodes keeps its credential on
the node: after a new endpoint, store it there again under that URL (the command is printed).
`;

interface Created {
  id: string;
  slug: string;
  proxy_url: string;
  /** What the appliance says of a direct endpoint it will refuse to call until configured. */
  warnings?: string[];
}

interface CatalogEntry {
  slug: string;
  endpoint_url?: string;
  base_url?: string;
  auth_method?: string;
  auth_key_name?: string;
}

export async function serviceCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'add') return serviceAdd(rest);
  if (sub === 'list') return serviceList(rest);
  if (sub === 'nodes') return serviceNodes(rest);
  if (sub === 'update') return serviceUpdate(rest);
  process.stdout.write(SERVICE_USAGE);
  return sub === '--help' || sub === '-h' ? 0 : 2;
}

async function serviceList(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { url: { type: 'string' }, json: { type: 'boolean' } }, strict: true });
  return withCliErrors('service list', async () => {
    const target = resolveTarget(values.url);
    const data = await apiRequest<unknown>(target, 'GET', '/api/v1/keys');
    if (values.json) return printJson(data), 0;
    const rows = listItems<{ slug: string; label?: string; endpoint_url?: string; auth_method?: string; proxy_url?: string; nodes?: unknown[] }>(data);
    printTable(['SLUG', 'LABEL', 'ENDPOINT', 'AUTH', 'ROUTE', 'PROXY'], rows.map((s) => [
      s.slug, s.label, s.endpoint_url, s.auth_method, s.nodes?.length ? `${s.nodes.length} node(s)` : 'direct', s.proxy_url,
    ]), 'No services yet: nexus service add SLUG');
    return 0;
  });
}

/** The service fields `add` and `update` both take, and their common flags. */
const SERVICE_FIELDS = {
  'endpoint-url': { type: 'string' },
  label: { type: 'string' },
  'auth-method': { type: 'string' },
  'auth-key-name': { type: 'string' },
  'credential-env': { type: 'string' },
  url: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function checkAuthMethod(method: string | undefined): void {
  if (method !== undefined && !Object.hasOwn(AUTH_METHODS, method)) throw new CliError(`--auth-method must be one of ${Object.keys(AUTH_METHODS).join(', ')}`, 2);
}

async function serviceAdd(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { ...SERVICE_FIELDS, custom: { type: 'boolean' }, 'via-node': { type: 'string' }, slug: { type: 'string' }, 'no-browser': { type: 'boolean' } },
  });
  if (values.help) {
    process.stdout.write(SERVICE_USAGE);
    return 0;
  }
  return withCliErrors('service add', async () => {
    const slug = positionals[0];
    if (positionals.length > 1) throw new CliError(`unexpected arguments: ${positionals.slice(1).join(' ')}`, 2);
    if (!slug && !values.custom) throw new CliError('name a catalog service (e.g. nexus service add llm-openai) or pass --custom', 2);
    if (slug && values.custom) throw new CliError('a SLUG names a catalog service; with --custom leave it out and use --slug or --label', 2);
    const wanted = values.slug;
    if (wanted !== undefined && !SLUG.test(wanted)) throw new CliError('--slug must be lowercase letters, digits and dashes (1-64, no dash at either end)', 2);
    const method = values['auth-method'];
    checkAuthMethod(method);
    if (values['endpoint-url'] !== undefined) checkEndpoint(values['endpoint-url']);
    // Where the slug comes from, to say so when the result is not what the user asked for.
    const origin: SlugOrigin = wanted ? { requested: wanted } : slug ? { requested: slug } : { derivedFrom: values.label !== undefined ? 'the label' : "the endpoint's host name" };
    const target = resolveTarget(values.url);
    const entry = slug ? await apiRequest<CatalogEntry>(target, 'GET', `/api/v1/catalog/${encodeURIComponent(slug)}`) : null;
    const authMethod = method ?? entry?.auth_method ?? 'bearer';

    // Without a browser: the node holds the secret, the environment has it, the terminal asks, or
    // there is no secret at all (auth method `none`).
    if (values['via-node'] || values['credential-env'] || values['no-browser'] || authMethod === 'none') {
      let endpoint = values['endpoint-url'] ?? entry?.endpoint_url ?? entry?.base_url;
      if (!endpoint && values['no-browser']) endpoint = await promptLine('Endpoint URL: ');
      if (!endpoint) throw new CliError('--endpoint-url is required for a custom service', 2);
      const body: Record<string, unknown> = { endpoint_url: endpoint, auth_method: authMethod };
      if (slug) body.catalog = slug;
      if (wanted) body.slug = wanted;
      if (values.label) body.label = values.label;
      const keyName = values['auth-key-name'] ?? (authMethod === entry?.auth_method ? entry?.auth_key_name : undefined) ?? AUTH_METHODS[authMethod]!.keyName;
      if (keyName) body.auth_key_name = keyName;
      const label = AUTH_METHODS[authMethod]!.label;
      if (values['via-node']) {
        const nodes = listItems<NodeRef>(await apiRequest<unknown>(target, 'GET', '/api/v1/nodes'));
        body.nodes = [{ node_id: nodeIdOf(nodes, values['via-node']), priority: 0 }];
      } else if (label) {
        const envVar = values['credential-env'];
        const secret = envVar ? readEnv(envVar) : await promptSecret(`${label} (input hidden): `);
        if (!secret) throw new CliError(envVar ? `environment variable ${envVar} is empty or not set` : 'no credential entered');
        body.credential = secret;
      }
      const node = values['via-node'] ? { endpoint, authMethod, keyName } : undefined;
      return report(target.url, await apiRequest<Created>(target, 'POST', '/api/v1/keys', body), origin, node, values.json);
    }

    const cb = await startCallback();
    const q = new URLSearchParams({ port: String(cb.port), state: cb.state });
    if (slug) q.set('slug', slug);
    if (wanted) q.set('service_slug', wanted);
    if (values.custom) q.set('custom', '1');
    if (values['endpoint-url']) q.set('endpoint_url', values['endpoint-url']);
    if (values.label) q.set('label', values.label);
    if (method) q.set('auth_method', method);
    if (values['auth-key-name']) q.set('auth_key_name', values['auth-key-name']);
    const page = `${target.url}/cli/add-credential?${q}`;
    process.stderr.write(`Opening your browser to enter the credential. If it does not open, visit:\n\n  ${page}\n\nWaiting for the browser…\n`);
    openBrowser(page);
    const result = await cb.result;
    if (result.get('status') !== 'ok') throw new CliError(`the browser reported "${result.get('status') ?? 'nothing'}"; no service was added`);
    const id = result.get('service_id');
    if (!id) throw new CliError('the browser came back without a service id');
    const warnings = result.getAll('warning');
    return report(target.url, { id, slug: result.get('slug') ?? slug ?? '', proxy_url: result.get('proxy_url') ?? '', ...(warnings.length ? { warnings } : {}) }, wanted || slug ? origin : { derivedFrom: 'the label or the endpoint' }, undefined, values.json);
  });
}

interface ServiceRow {
  id: string;
  slug: string;
  label: string | null;
  endpoint_url: string;
  auth_method: string;
  auth_key_name: string | null;
  routed_via: 'direct' | 'node';
  has_credential: boolean;
  nodes: { node_id: string; priority: number; weight: number }[];
  warnings?: string[];
}

interface NodeRef {
  id: string;
  name: string;
  status: string;
}

/** A node named by id or by its unique name → its id (an unknown one is left for the API to refuse). */
function nodeIdOf(nodes: NodeRef[], node: string): string {
  if (nodes.some((n) => n.id === node)) return node;
  const byName = nodes.filter((n) => n.name === node);
  if (byName.length > 1) throw new CliError(`more than one node is named "${node}"; use its id (nexus node list)`);
  return byName[0]?.id ?? node;
}

/** `NODE[:PRIORITY[:WEIGHT]]` → its parts, or a usage error. */
export function parseBinding(spec: string): { node: string; priority?: number; weight?: number } {
  const m = /^([^:]+)(?::(\d{1,4}))?(?::(\d{1,4}))?$/.exec(spec);
  const priority = m?.[2] === undefined ? undefined : Number(m[2]);
  const weight = m?.[3] === undefined ? undefined : Number(m[3]);
  if (!m || (priority !== undefined && priority > 1000) || (weight !== undefined && (weight < 1 || weight > 1000))) {
    throw new CliError(`--node ${spec}: expected NODE[:PRIORITY[:WEIGHT]] with priority 0-1000 and weight 1-1000`, 2);
  }
  return { node: m[1]!, ...(priority !== undefined ? { priority } : {}), ...(weight !== undefined ? { weight } : {}) };
}

async function serviceNodes(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      node: { type: 'string', multiple: true },
      direct: { type: 'boolean' },
      'credential-env': { type: 'string' },
      url: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  return withCliErrors('service nodes', async () => {
    const [slug, ...extra] = positionals;
    if (!slug || extra.length) throw new CliError('usage: nexus service nodes SLUG [--node NODE[:PRIORITY[:WEIGHT]]... | --direct]', 2);
    if (values.node && values.direct) throw new CliError('--node and --direct exclude each other', 2);
    if (values['credential-env'] && !values.direct) throw new CliError('--credential-env goes with --direct (a node keeps its own credential)', 2);
    const specs = (values.node ?? []).map(parseBinding);
    const target = resolveTarget(values.url);
    const services = listItems<ServiceRow>(await apiRequest<unknown>(target, 'GET', '/api/v1/keys'));
    const svc = services.find((s) => s.slug === slug);
    if (!svc) throw new CliError(`no service "${slug}" (nexus service list shows yours)`);
    const nodes = listItems<NodeRef>(await apiRequest<unknown>(target, 'GET', '/api/v1/nodes'));

    let result = svc;
    if (specs.length || values.direct) {
      const body: { nodes: { node_id: string; priority?: number; weight?: number }[]; credential?: string } = {
        nodes: specs.map(({ node, priority, weight }) => ({ node_id: nodeIdOf(nodes, node), ...(priority !== undefined ? { priority } : {}), ...(weight !== undefined ? { weight } : {}) })),
      };
      if (values.direct && svc.auth_method !== 'none') {
        const envVar = values['credential-env'];
        const label = AUTH_METHODS[svc.auth_method]?.label ?? 'Credential';
        if (envVar || !(svc.routed_via === 'direct' && svc.has_credential)) {
          const secret = envVar ? readEnv(envVar) : await promptSecret(`${label} for the appliance to send (input hidden): `);
          if (!secret) throw new CliError(envVar ? `environment variable ${envVar} is empty or not set` : 'no credential entered');
          body.credential = secret;
        }
      }
      result = await apiRequest<ServiceRow>(target, 'PATCH', `/api/v1/keys/${encodeURIComponent(svc.id)}`, body);
      printWarnings(result);
    }
    if (values.json) return printJson(result), 0;
    const name = (id: string) => nodes.find((n) => n.id === id);
    if (!result.nodes.length) {
      process.stdout.write(`${result.slug} is direct: the appliance calls it${result.has_credential ? ' with the credential it holds' : ''}.\n`);
      return 0;
    }
    printTable(['NODE', 'ID', 'STATUS', 'PRIORITY', 'WEIGHT'], result.nodes.map((n) => [name(n.node_id)?.name, n.node_id, name(n.node_id)?.status, n.priority, n.weight]), '');
    return 0;
  });
}

/** The appliance's warnings on a service it stored (an endpoint its proxy refuses until configured), on stderr. */
function printWarnings(stored: { warnings?: string[] }): void {
  for (const w of stored.warnings ?? []) process.stderr.write(`warning: ${w}\n`);
}

const UPDATE_USAGE = 'usage: nexus service update SLUG|ID [--endpoint-url URL] [--label TEXT] [--auth-method METHOD] [--auth-key-name NAME] [--credential-env VAR]';

/** An http(s) URL without user:password@ (the credential is asked for separately, never in a URL). */
function checkEndpoint(value: string): void {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new CliError('--endpoint-url must be an http(s) URL', 2);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new CliError('--endpoint-url must be an http(s) URL', 2);
  if (u.username || u.password) throw new CliError('--endpoint-url must not carry user:password@; the credential is asked for separately', 2);
}

/**
 * `nexus service update SLUG|ID`: one PATCH with the fields given. The slug never changes (it is the
 * proxy URL and the name a node's credential is stored under). A direct service whose stored
 * credential cannot follow the change (another origin, or a first auth method) is asked for one;
 * a service routed through nodes gets the line that stores its credential under the new URL.
 */
async function serviceUpdate(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: SERVICE_FIELDS,
  });
  if (values.help) {
    process.stdout.write(SERVICE_USAGE);
    return 0;
  }
  return withCliErrors('service update', async () => {
    const [ref, ...extra] = positionals;
    if (!ref || extra.length) throw new CliError(UPDATE_USAGE, 2);
    const endpoint = values['endpoint-url'];
    if (endpoint !== undefined) checkEndpoint(endpoint);
    const method = values['auth-method'];
    checkAuthMethod(method);
    const envVar = values['credential-env'];
    if (endpoint === undefined && values.label === undefined && method === undefined && values['auth-key-name'] === undefined && envVar === undefined) {
      throw new CliError('nothing to change: give --endpoint-url, --label, --auth-method, --auth-key-name or --credential-env', 2);
    }
    const target = resolveTarget(values.url);
    const services = listItems<ServiceRow>(await apiRequest<unknown>(target, 'GET', '/api/v1/keys'));
    const svc = services.find((s) => s.slug === ref) ?? services.find((s) => s.id === ref);
    if (!svc) throw new CliError(`no service "${ref}" (nexus service list shows yours)`);

    // The appliance dials a direct service's endpoint itself and refuses a metadata address (400);
    // said here before a credential is asked for a write that cannot succeed.
    if (endpoint !== undefined && svc.routed_via !== 'node' && literalAddressClass(new URL(endpoint)) === 'metadata') {
      throw new CliError(`${endpoint} is a cloud metadata address, which the appliance never proxies to`, 2);
    }

    const body: Record<string, unknown> = {};
    if (endpoint !== undefined) body.endpoint_url = endpoint;
    if (values.label !== undefined) body.label = values.label.trim() || null;
    if (method !== undefined) body.auth_method = method;
    if (values['auth-key-name'] !== undefined) body.auth_key_name = values['auth-key-name'].trim() || null;
    const newMethod = method ?? svc.auth_method;
    if (svc.routed_via === 'node') {
      if (envVar) throw new CliError(`${svc.slug} is routed through nodes and its credential stays on the node; store it there with nexus agent credentials add`, 2);
    } else if (newMethod !== 'none') {
      const moved = endpoint !== undefined && new URL(endpoint).origin !== new URL(svc.endpoint_url).origin;
      if (envVar || !svc.has_credential || moved) {
        if (!envVar) {
          process.stderr.write(moved && svc.has_credential
            ? `The stored credential does not follow ${svc.slug} to ${new URL(endpoint!).origin}; enter the one to send there.\n`
            : `${svc.slug} holds no credential for auth method ${newMethod}; enter the one the appliance should send.\n`);
        }
        const label = AUTH_METHODS[newMethod]?.label ?? 'Credential';
        const secret = envVar ? readEnv(envVar) : await promptSecret(`${label} (input hidden): `);
        if (!secret) throw new CliError(envVar ? `environment variable ${envVar} is empty or not set` : 'no credential entered');
        body.credential = secret;
      }
    }
    const result = await apiRequest<ServiceRow>(target, 'PATCH', `/api/v1/keys/${encodeURIComponent(svc.id)}`, body);
    printWarnings(result);

    // An agent injects a credential only under the URL it was stored with (and refuses requests
    // elsewhere): a node-routed service whose endpoint or auth changed needs it stored again.
    const agentLine = agentCredentialLine(result.slug, result.endpoint_url, result.auth_method, result.auth_key_name);
    const agentSide = result.routed_via === 'node' && agentLine !== null
      && (result.endpoint_url !== svc.endpoint_url || result.auth_method !== svc.auth_method || result.auth_key_name !== svc.auth_key_name);
    const reminder = agentSide ? [
      `${result.slug} is routed through nodes: an agent holding its credential refuses requests outside the URL it was stored with.`,
      `On the host of each of its nodes (nexus service nodes ${result.slug} lists them), store it again for the new endpoint:`,
      `  ${agentLine}`,
    ] : [];
    if (values.json) {
      printJson(result);
      if (reminder.length) process.stderr.write(reminder.join('\n') + '\n');
      return 0;
    }
    const lines = [`Service "${result.slug}" updated (id ${result.id})`];
    if (body.endpoint_url !== undefined) lines.push(`Endpoint: ${result.endpoint_url}`);
    if (body.label !== undefined) lines.push(`Label: ${result.label ?? '(none)'}`);
    if (body.auth_method !== undefined || body.auth_key_name !== undefined) lines.push(`Auth: ${result.auth_method}${result.auth_key_name ? ` (${result.auth_key_name})` : ''}`);
    if (body.credential !== undefined) lines.push('Credential: replaced (stored encrypted)');
    if (reminder.length) lines.push('', ...reminder);
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  });
}

/** The slug the API takes (services.ts): lowercase letters, digits and dashes, 1-64. */
const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;

type SlugOrigin = { requested: string } | { derivedFrom: string };

/**
 * Prints the new service. Its slug is what the proxy URL and a node's credential
 * (`nexus agent credentials add --service SLUG`) must name, so a slug the user did not choose as
 * given — derived from the label or host, or suffixed because it was taken — gets a line of its own.
 */
function report(base: string, created: Created, how: SlugOrigin, node: { endpoint: string; authMethod: string; keyName?: string | null } | undefined, json?: boolean): number {
  printWarnings(created);
  if (json) return printJson(created), 0;
  const proxy = created.proxy_url.startsWith('/') ? `${base}${created.proxy_url}` : created.proxy_url;
  const lines = [`Service "${created.slug}" added (id ${created.id})`];
  if ('derivedFrom' in how) {
    lines.push(`Slug: ${created.slug}  (derived from ${how.derivedFrom}; choose one with --slug)`);
  } else if (how.requested !== created.slug) {
    lines.push(`Slug: ${created.slug}  ("${how.requested}" was taken)`);
  }
  lines.push(`Proxy: ${proxy}`);
  const agentLine = node && agentCredentialLine(created.slug, node.endpoint, node.authMethod, node.keyName);
  if (agentLine) lines.push('', 'On the node\'s host, store the credential under this slug:', `  ${agentLine}`);
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
