// `nexus provider add|list|update|remove` and `nexus model add|list|update|remove`: the AI gateway's
// providers and public models from a script or a terminal (admin). A provider's API key is read from
// --api-key-env VAR or typed at a prompt that does not echo (piped stdin works for scripts), never
// from a flag: flags end up in shell history and `ps`.
import { parseArgs } from 'node:util';
import { readEnv } from '../../core/config/config.ts';
// The appliance's own lists (type-only imports there: nothing of the gateway loads with the CLI).
import { PROVIDER_TYPES, ROUTING_STRATEGIES as ROUTING } from '../../surfaces/gateway/catalog/catalog-store.ts';
import { apiRequest, listItems, type ApiTarget } from '../api-client.ts';
import { CliError, resolveTarget } from '../cli-credentials.ts';
import { durationFlag, numberFlag, orNone, subcommandOf } from '../flags.ts';
import { printJson, printTable, withCliErrors } from '../output.ts';
import { promptSecret } from '../prompt.ts';
import { resolveNode } from './node.ts';


export const PROVIDER_USAGE = `Usage:
  nexus provider add NAME --type TYPE [--base-url URL] [--api-version V] [--node NODE]
                          [--api-key-env VAR | --no-api-key] [--json]
  nexus provider list [--json]
  nexus provider update NAME|ID [--name NAME] [--base-url URL] [--api-version V|none] [--node NODE|none]
                                [--api-key-env VAR | --api-key-prompt | --no-api-key] [--json]
  nexus provider remove NAME|ID

  TYPE             openai, azure, gemini, glm, anthropic or openai-compatible (vLLM, Ollama, LM Studio…)
  --api-key-env    read the provider's key from this environment variable; without it (and without
                   --no-api-key) add asks for it at a prompt that does not echo, or reads stdin
  --api-key-prompt (update) ask for a new key the same way; --no-api-key removes the stored key
  --node           the provider's traffic goes through the agent on that node (its name or id; its key stays there)
  --url URL        the appliance (default: the one nexus login stored)
`;

export const MODEL_USAGE = `Usage:
  nexus model add NAME --deploy PROVIDER:UPSTREAM[:PRIORITY[:WEIGHT]]... [--input-price USD] [--output-price USD]
                       [--cached-price USD] [--audio-price USD] [--tts-price USD] [--cache-ttl DURATION]
                       [--routing STRATEGY] [--json]
  nexus model list [--json]
  nexus model update NAME|ID [--deploy …]... [--input-price USD] [--output-price USD] [--cached-price USD|none]
                             [--audio-price USD|none] [--tts-price USD|none] [--cache-ttl DURATION|none]
                             [--routing STRATEGY] [--json]
  nexus model remove NAME|ID

  --deploy         a provider (name or id) and the model name it knows; repeat for failover and load
                   sharing: lower PRIORITY first (default: the order given), WEIGHT within a priority
                   (default 1). On update the list given replaces the model's deployments.
                   The model name may hold ':' (local:llama3:8b); trailing all-digit parts are read as
                   PRIORITY and WEIGHT, so a name whose last tag is all digits (qwen:7) needs both:
                   local:qwen:7:0:1.
  --*-price        USD per million tokens (cached: cached input tokens; none prices them as input)
  --audio-price    USD per minute of input audio, for transcriptions and translations (whisper-1: 0.006)
  --tts-price      USD per million characters of speech input (tts-1: 15, tts-1-hd: 30)
  --cache-ttl      answer identical calls (streamed or not) from memory for this long: 90s, 10m, 1h, 7d
  --routing        within a priority: weighted (default), least_busy or latency
  --url URL        the appliance (default: the one nexus login stored)
`;

interface ProviderRow {
  id: string;
  name: string;
  type: string;
  base_url: string;
  api_version: string | null;
  node_id: string | null;
  has_api_key: boolean;
}

interface ModelRow {
  id: string;
  name: string;
  input_price_per_mtok: number;
  output_price_per_mtok: number;
  cached_input_price_per_mtok: number | null;
  audio_input_price_per_minute: number | null;
  tts_price_per_mchar: number | null;
  cache_ttl_seconds: number | null;
  routing_strategy: string;
  deployments: { provider_id: string; upstream_model: string; priority: number; weight: number }[];
}

function oneOf(v: string | undefined, flag: string, allowed: readonly string[]): string | undefined {
  if (v !== undefined && !allowed.includes(v)) throw new CliError(`${flag} must be one of ${allowed.join(', ')}`, 2);
  return v;
}

/** The key from --api-key-env, or a hidden prompt; refuses an empty one. */
async function apiKey(envVar: string | undefined, name: string): Promise<string> {
  if (envVar !== undefined) {
    const v = readEnv(envVar);
    if (!v) throw new CliError(`environment variable ${envVar} is empty or not set`, 2);
    return v;
  }
  const v = await promptSecret(`API key for provider ${name} (input hidden): `);
  if (!v) throw new CliError('no API key given (use --no-api-key for a provider that needs none)', 2);
  return v;
}

async function providers(target: ApiTarget): Promise<ProviderRow[]> {
  return listItems<ProviderRow>(await apiRequest<unknown>(target, 'GET', '/api/v1/providers'));
}

async function providerId(target: ApiTarget, nameOrId: string, known?: ProviderRow[]): Promise<string> {
  const all = known ?? (await providers(target));
  const p = all.find((x) => x.name === nameOrId) ?? all.find((x) => x.id === nameOrId);
  if (!p) throw new CliError(`no provider named "${nameOrId}" (nexus provider list)`, 1);
  return p.id;
}

/**
 * `PROVIDER:UPSTREAM[:PRIORITY[:WEIGHT]]`, where UPSTREAM may itself hold ':' (Ollama's `llama3:8b`).
 * The provider is what comes before the first ':'; up to two trailing all-digit parts are the priority
 * and the weight (one: the priority), so an upstream name whose last tag is all digits is written
 * with both (`local:qwen:7:0:1`). Priority defaults to `order`, weight to 1.
 */
export function parseDeploy(spec: string, order: number): { provider: string; upstream_model: string; priority: number; weight: number } {
  const [provider, ...rest] = spec.split(':');
  const numbers: string[] = [];
  while (numbers.length < 2 && rest.length > 1 && /^\d+$/.test(rest.at(-1)!)) numbers.unshift(rest.pop()!);
  const upstream = rest.join(':');
  if (!provider || !upstream || rest.some((part) => part === '')) throw new CliError(`--deploy "${spec}": expected PROVIDER:UPSTREAM[:PRIORITY[:WEIGHT]]`, 2);
  const [priority, weight] = numbers;
  return {
    provider,
    upstream_model: upstream,
    priority: priority === undefined ? order : numberFlag(priority, `--deploy "${spec}" priority`, { integer: true, zero: true })!,
    weight: weight === undefined ? 1 : numberFlag(weight, `--deploy "${spec}" weight`, { integer: true, zero: true })!,
  };
}

/** `--deploy` specs → the API's deployment list (providers by name or id). */
async function deployments(target: ApiTarget, specs: string[]): Promise<unknown[]> {
  const parsed = specs.map((spec, i) => parseDeploy(spec, i));
  const all = await providers(target);
  return Promise.all(parsed.map(async ({ provider, ...d }) => ({ provider_id: await providerId(target, provider, all), ...d })));
}

export async function providerCommand(argv: string[]): Promise<number> {
  const sub = subcommandOf(argv, ['add', 'list', 'update', 'remove'], PROVIDER_USAGE);
  if (typeof sub === 'number') return sub;
  const { values, positionals } = parseArgs({
    args: argv.slice(1),
    allowPositionals: true,
    strict: true,
    options: {
      url: { type: 'string' }, json: { type: 'boolean' }, type: { type: 'string' }, name: { type: 'string' },
      'base-url': { type: 'string' }, 'api-version': { type: 'string' }, node: { type: 'string' },
      'api-key-env': { type: 'string' }, 'api-key-prompt': { type: 'boolean' }, 'no-api-key': { type: 'boolean' },
    },
  });
  return withCliErrors(`provider ${sub}`, async () => {
    if (values['no-api-key'] && (values['api-key-env'] !== undefined || values['api-key-prompt'])) throw new CliError('--no-api-key cannot go with --api-key-env or --api-key-prompt', 2);
    if (sub === 'add') {
      const name = positionals[0];
      if (!name || positionals.length > 1) throw new CliError('usage: nexus provider add NAME --type TYPE [options]', 2);
      if (!values.type) throw new CliError(`--type is required: ${PROVIDER_TYPES.join(', ')}`, 2);
      oneOf(values.type, '--type', PROVIDER_TYPES);
      const target = resolveTarget(values.url);
      const body: Record<string, unknown> = { name, type: values.type };
      if (values['base-url'] !== undefined) body.base_url = values['base-url'];
      if (values['api-version'] !== undefined) body.api_version = values['api-version'];
      if (values.node !== undefined) body.node_id = (await resolveNode(target, values.node)).id;
      if (!values['no-api-key']) body.api_key = await apiKey(values['api-key-env'], name);
      const created = await apiRequest<ProviderRow>(target, 'POST', '/api/v1/providers', body);
      if (values.json) return printJson(created), 0;
      process.stdout.write(`Provider "${created.name}" added (id ${created.id}, ${created.type}, ${created.base_url}${created.has_api_key ? ', key stored encrypted' : ', no key'}).\n`);
      return 0;
    }
    const target = resolveTarget(values.url);
    if (sub === 'list') {
      const all = await providers(target);
      if (values.json) return printJson({ items: all }), 0;
      printTable(['ID', 'NAME', 'TYPE', 'BASE URL', 'KEY', 'VIA'], all.map((p) => [p.id, p.name, p.type, p.base_url, p.has_api_key ? 'stored' : 'none', p.node_id ? `node ${p.node_id}` : 'direct']),
        'No providers yet: nexus provider add NAME --type TYPE');
      return 0;
    }
    const ref = positionals[0];
    if (!ref || positionals.length > 1) throw new CliError(`usage: nexus provider ${sub} NAME|ID${sub === 'update' ? ' [options]' : ''}`, 2);
    if (sub === 'update') {
      const body: Record<string, unknown> = {};
      if (values.name !== undefined) body.name = values.name;
      if (values['base-url'] !== undefined) body.base_url = values['base-url'];
      const version = orNone(values['api-version'], (s) => s);
      if (version !== undefined) body.api_version = version;
      const node = orNone(values.node, (s) => s);
      if (node !== undefined) body.node_id = node === null ? null : (await resolveNode(target, node)).id;
      if (values.type !== undefined) throw new CliError('a provider\'s type cannot change (its deployments\' model names depend on it): add a new provider', 2);
      const id = await providerId(target, ref);
      if (values['no-api-key']) body.api_key = null;
      else if (values['api-key-env'] !== undefined || values['api-key-prompt']) body.api_key = await apiKey(values['api-key-env'], ref);
      if (!Object.keys(body).length) throw new CliError('nothing to change: name at least one of --name, --base-url, --api-version, --node, --api-key-env, --api-key-prompt, --no-api-key', 2);
      const updated = await apiRequest<ProviderRow>(target, 'PATCH', `/api/v1/providers/${encodeURIComponent(id)}`, body);
      if (values.json) return printJson(updated), 0;
      process.stdout.write(`Provider "${updated.name}" updated: ${Object.keys(body).map((k) => (k === 'api_key' ? (body.api_key === null ? 'key removed' : 'new key') : k)).join(', ')}.\n`);
      return 0;
    }
    const id = await providerId(target, ref);
    await apiRequest(target, 'DELETE', `/api/v1/providers/${encodeURIComponent(id)}`);
    if (values.json) return printJson({ id, deleted: true }), 0;
    process.stdout.write(`Provider ${ref} removed.\n`);
    return 0;
  });
}

export async function modelCommand(argv: string[]): Promise<number> {
  const sub = subcommandOf(argv, ['add', 'list', 'update', 'remove'], MODEL_USAGE);
  if (typeof sub === 'number') return sub;
  const { values, positionals } = parseArgs({
    args: argv.slice(1),
    allowPositionals: true,
    strict: true,
    options: {
      url: { type: 'string' }, json: { type: 'boolean' }, deploy: { type: 'string', multiple: true },
      'input-price': { type: 'string' }, 'output-price': { type: 'string' }, 'cached-price': { type: 'string' },
      'audio-price': { type: 'string' }, 'tts-price': { type: 'string' },
      'cache-ttl': { type: 'string' }, routing: { type: 'string' },
    },
  });
  return withCliErrors(`model ${sub}`, async () => {
    // Every flag is checked before the appliance is asked anything.
    const body: Record<string, unknown> = {};
    const set = (k: string, v: unknown) => {
      if (v !== undefined) body[k] = v;
    };
    set('input_price_per_mtok', numberFlag(values['input-price'], '--input-price', { zero: true }));
    set('output_price_per_mtok', numberFlag(values['output-price'], '--output-price', { zero: true }));
    set('cached_input_price_per_mtok', orNone(values['cached-price'], (s) => numberFlag(s, '--cached-price', { zero: true })));
    set('audio_input_price_per_minute', orNone(values['audio-price'], (s) => numberFlag(s, '--audio-price', { zero: true })));
    set('tts_price_per_mchar', orNone(values['tts-price'], (s) => numberFlag(s, '--tts-price', { zero: true })));
    set('cache_ttl_seconds', orNone(values['cache-ttl'], (s) => {
      const n = durationFlag(s, '--cache-ttl');
      if (n < 1 || n > 30 * 86_400) throw new CliError('--cache-ttl must be between 1s and 30d', 2);
      return n;
    }));
    set('routing_strategy', oneOf(values.routing, '--routing', ROUTING));
    const specs = values.deploy ?? [];
    if (sub === 'add') {
      const name = positionals[0];
      if (!name || positionals.length > 1) throw new CliError('usage: nexus model add NAME --deploy PROVIDER:UPSTREAM [options]', 2);
      if (!specs.length) throw new CliError('--deploy is required: PROVIDER:UPSTREAM[:PRIORITY[:WEIGHT]]', 2);
      if (Object.values(body).includes(null)) throw new CliError('none is for update only', 2);
      const target = resolveTarget(values.url);
      const created = await apiRequest<ModelRow>(target, 'POST', '/api/v1/models', { name, deployments: await deployments(target, specs), ...body });
      if (values.json) return printJson(created), 0;
      process.stdout.write(`Model "${created.name}" added with ${created.deployments.length} deployment${created.deployments.length === 1 ? '' : 's'}.\n`);
      return 0;
    }
    const target = resolveTarget(values.url);
    if (sub === 'list') {
      const data = await apiRequest<unknown>(target, 'GET', '/api/v1/models');
      if (values.json) return printJson(data), 0;
      const names = new Map((await providers(target)).map((p) => [p.id, p.name]));
      const price = (v: number | null) => (v == null ? '-' : `$${v}`);
      printTable(['NAME', 'DEPLOYMENTS', 'IN/OUT/CACHED PER M', 'AUDIO/MIN', 'TTS/M CHARS', 'ROUTING', 'CACHE'], listItems<ModelRow>(data).map((m) => [
        m.name,
        m.deployments.map((d) => `${names.get(d.provider_id) ?? d.provider_id}:${d.upstream_model}:${d.priority}:${d.weight}`).join(' '),
        `${price(m.input_price_per_mtok)}/${price(m.output_price_per_mtok)}/${price(m.cached_input_price_per_mtok)}`,
        price(m.audio_input_price_per_minute),
        price(m.tts_price_per_mchar),
        m.routing_strategy,
        m.cache_ttl_seconds ? `${m.cache_ttl_seconds}s` : '-',
      ]), 'No models yet: nexus model add NAME --deploy PROVIDER:UPSTREAM');
      return 0;
    }
    const ref = positionals[0];
    if (!ref || positionals.length > 1) throw new CliError(`usage: nexus model ${sub} NAME|ID${sub === 'update' ? ' [options]' : ''}`, 2);
    if (sub === 'update') {
      if (specs.length) body.deployments = await deployments(target, specs);
      if (!Object.keys(body).length) throw new CliError('nothing to change: name at least one of --deploy, --input-price, --output-price, --cached-price, --audio-price, --tts-price, --cache-ttl, --routing', 2);
      const updated = await apiRequest<ModelRow>(target, 'PATCH', `/api/v1/models/${encodeURIComponent(ref)}`, body);
      if (values.json) return printJson(updated), 0;
      process.stdout.write(`Model "${updated.name}" updated: ${Object.keys(body).join(', ')}.\n`);
      return 0;
    }
    await apiRequest(target, 'DELETE', `/api/v1/models/${encodeURIComponent(ref)}`);
    if (values.json) return printJson({ model: ref, deleted: true }), 0;
    process.stdout.write(`Model ${ref} removed.\n`);
    return 0;
  });
}
