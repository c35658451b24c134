// What the wizard's "First provider" step and the Providers page share: the provider fields, which
// follow the chosen type (docs/gateway.md, POST /api/v1/providers), the upstream model and the public
// name derived from it, and the API's errors in plain words next to the form.
import { ApiError } from '../api.ts';
import { field, h } from '../dom.ts';

export type ProviderType = 'openai' | 'azure' | 'gemini' | 'glm' | 'anthropic' | 'openai-compatible';

interface TypeSpec {
  label: string;
  /** The API's default base URL for the type (src/surfaces/gateway/catalog); none: the user's own. */
  baseUrl: string | null;
  placeholder: string;
  /** A keyless server (Ollama, vLLM) is reached without a key; the public providers need one. */
  keyRequired: boolean;
  /** Azure needs a version; Gemini's (path, default v1beta) and Anthropic's (header) are optional. */
  apiVersion: 'required' | 'optional' | null;
  versionHint: string;
  /** What the upstream model field says for this type beyond the general hint ('' when nothing). */
  modelNote: string;
}

export const PROVIDER_TYPES: Record<ProviderType, TypeSpec> = {
  openai: { label: 'OpenAI', baseUrl: 'https://api.openai.com/v1', placeholder: 'https://api.openai.com/v1', keyRequired: true, apiVersion: null, versionHint: '', modelNote: '' },
  azure: { label: 'Azure OpenAI', baseUrl: null, placeholder: 'https://YOUR-RESOURCE.openai.azure.com', keyRequired: true, apiVersion: 'required',
    versionHint: 'A dated version such as 2024-10-21 (deployment paths), or v1.', modelNote: 'For Azure OpenAI, the name of your deployment.' },
  gemini: { label: 'Google Gemini', baseUrl: 'https://generativelanguage.googleapis.com', placeholder: 'https://generativelanguage.googleapis.com', keyRequired: true,
    apiVersion: 'optional', versionHint: 'Optional; the path version, v1beta when empty.', modelNote: '' },
  glm: { label: 'Zhipu GLM', baseUrl: 'https://open.bigmodel.cn/api/paas/v4', placeholder: 'https://open.bigmodel.cn/api/paas/v4', keyRequired: true, apiVersion: null, versionHint: '', modelNote: '' },
  anthropic: { label: 'Anthropic', baseUrl: 'https://api.anthropic.com', placeholder: 'https://api.anthropic.com', keyRequired: true, apiVersion: 'optional',
    versionHint: 'Optional; the anthropic-version header, 2023-06-01 when empty.', modelNote: '' },
  'openai-compatible': { label: 'OpenAI-compatible (Ollama, vLLM, …)', baseUrl: null, placeholder: 'http://localhost:11434/v1', keyRequired: false, apiVersion: null, versionHint: '',
    modelNote: 'As the server lists it (Ollama: llama3:8b).' },
};

const TYPES = Object.keys(PROVIDER_TYPES) as ProviderType[];
const isType = (t: string): t is ProviderType => t in PROVIDER_TYPES;

/** The API's rule for public model names (admin-routes.ts MODEL_NAME), checked before sending. */
export const MODEL_NAME_RULE = 'Letters, digits and . _ / @ + - only, starting with a letter or digit.';
/** The same rule as the end of a sentence that names the field (for the API's pattern error). */
export const MODEL_NAME_PREDICATE = 'may hold only letters, digits and . _ / @ + -, starting with a letter or digit';
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._/@+-]*$/;

/** A valid public name for an upstream model: `llama3:8b` → `llama3-8b`; empty when none can be made. */
export function publicModelName(upstream: string): string {
  return upstream.trim().replace(/[^A-Za-z0-9._/@+-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').replace(/-+$/, '').slice(0, 200);
}

/** Why a public model name would be refused, or null. */
export function modelNameProblem(name: string): string | null {
  if (!name) return 'Enter the public model name.';
  if (name.length > 200 || !MODEL_NAME.test(name)) return `The public model name "${name}" is not allowed: ${MODEL_NAME_RULE}`;
  return null;
}

/** A field wrapper that can be shown and hidden with the type; the label says whether it is optional. */
function toggled(label: string, input: HTMLInputElement, hint: string) {
  const wrap = field(label, input, hint || ' ');
  return {
    wrap,
    set(shown: boolean, labelText: string, hintText: string) {
      wrap.hidden = !shown;
      wrap.querySelector('label')!.textContent = labelText;
      wrap.querySelector('.hint')!.textContent = hintText;
    },
  };
}

export interface ProviderFields {
  type: HTMLSelectElement;
  baseUrl: HTMLInputElement;
  apiKey: HTMLInputElement;
  apiVersion: HTMLInputElement;
  /** The fields in form order. */
  fields: HTMLElement[];
  /** The POST /api/v1/providers body (without name), or an Error in plain words for what is missing. */
  body(): { type: ProviderType; base_url?: string; api_key?: string; api_version?: string };
  /** Back to the first type's defaults (after a form reset). */
  reset(): void;
}

/**
 * Type, base URL, key and API version. Changing the type puts its default base URL in the box unless
 * the user typed one of their own; the API version shows only for types that take one; the key is
 * optional only where the type allows none.
 */
export function providerFields(opts: { keyLabel: string; initial?: ProviderType }): ProviderFields {
  const type = h('select', { name: 'type' }, TYPES.map((t) => h('option', { value: t, selected: t === opts.initial }, PROVIDER_TYPES[t].label)));
  const baseUrl = h('input', { name: 'base_url', type: 'url', spellcheck: 'false' });
  const apiKey = h('input', { name: 'api_key', type: 'password', autocomplete: 'off' });
  const apiVersion = h('input', { name: 'api_version', spellcheck: 'false', maxlength: 50 });
  const urlField = toggled('Base URL', baseUrl, '');
  const keyField = toggled(opts.keyLabel, apiKey, '');
  const versionField = toggled('API version', apiVersion, '');
  const spec = () => PROVIDER_TYPES[isType(type.value) ? type.value : 'openai'];
  // A URL is the user's own unless it is empty or one of the defaults this form put there.
  const defaults = new Set(TYPES.map((t) => PROVIDER_TYPES[t].baseUrl).filter(Boolean));
  const follow = () => {
    const s = spec();
    if (!baseUrl.value.trim() || defaults.has(baseUrl.value.trim())) baseUrl.value = s.baseUrl ?? '';
    baseUrl.placeholder = s.placeholder;
    baseUrl.required = !s.baseUrl;
    urlField.set(true, 'Base URL', s.baseUrl ? `Where ${s.label} is reached; the default is its public API.`
      : type.value === 'azure' ? 'Your Azure OpenAI resource, e.g. https://YOUR-RESOURCE.openai.azure.com.'
        : 'The server\'s OpenAI-compatible root, ending in /v1 (Ollama: http://localhost:11434/v1, vLLM: http://HOST:8000/v1).');
    apiKey.required = s.keyRequired;
    keyField.set(true, s.keyRequired ? opts.keyLabel : `${opts.keyLabel} (optional)`,
      s.keyRequired ? 'Stored encrypted; never shown again.' : 'Leave empty for a server that takes no key (Ollama, vLLM). Stored encrypted; never shown again.');
    apiVersion.required = s.apiVersion === 'required';
    apiVersion.placeholder = type.value === 'azure' ? '2024-10-21' : type.value === 'anthropic' ? '2023-06-01' : type.value === 'gemini' ? 'v1beta' : '';
    versionField.set(s.apiVersion !== null, s.apiVersion === 'optional' ? 'API version (optional)' : 'API version', s.versionHint);
  };
  type.addEventListener('change', follow);
  follow();
  clearsInvalid(baseUrl, apiKey, apiVersion);
  return {
    type, baseUrl, apiKey, apiVersion,
    fields: [field('Type', type), urlField.wrap, keyField.wrap, versionField.wrap],
    body() {
      const s = spec();
      const url = baseUrl.value.trim();
      const version = s.apiVersion ? apiVersion.value.trim() : '';
      if (!url && !s.baseUrl) throw fieldError(baseUrl, `Enter the base URL of your ${s.label} server, e.g. ${s.placeholder}.`);
      if (s.keyRequired && !apiKey.value) throw fieldError(apiKey, `Enter the API key ${s.label} gave you; ${s.label} refuses calls without one.`);
      if (s.apiVersion === 'required' && !version) throw fieldError(apiVersion, `Enter the ${s.label} API version, e.g. 2024-10-21 (or v1).`);
      return {
        type: type.value as ProviderType,
        ...(url ? { base_url: url } : {}),
        ...(apiKey.value ? { api_key: apiKey.value } : {}),
        ...(version ? { api_version: version } : {}),
      };
    },
    reset() {
      type.value = opts.initial ?? 'openai';
      baseUrl.value = '';
      follow();
    },
  };
}

function clearsInvalid(...inputs: HTMLInputElement[]): void {
  for (const i of inputs) i.addEventListener('input', () => i.removeAttribute('aria-invalid'));
}

/** An error that names its field: the field is marked invalid and focused when it is shown. */
function fieldError(input: HTMLElement, message: string): Error {
  input.setAttribute('aria-invalid', 'true');
  input.focus();
  return new Error(message);
}

export interface ModelFields {
  upstream: HTMLInputElement;
  publicName: HTMLInputElement;
  fields: HTMLElement[];
  /** The upstream model and a valid public name, or an Error in plain words. */
  values(): { upstream: string; name: string };
  reset(): void;
}

/** What the upstream model box shows while empty when no model of the provider is configured yet. */
export const UPSTREAM_PLACEHOLDER = "the provider's model name";

export interface ModelFieldsOptions {
  /** The provider type the model is for (the wizard's type select, the chosen provider's type). */
  typeOf: () => string;
  /** Upstream models already configured on that provider: named as the example when there are any. */
  configured?: () => readonly string[];
  /** Selects whose change changes the above. */
  watch?: HTMLSelectElement[];
}

/**
 * The upstream model (any name the provider knows, `llama3:8b` included) and the public name callers
 * use, which follows the upstream one in a valid form until the user edits it. Nothing is filled in:
 * a model name the admin did not choose would be stored as one. The example is a model the admin
 * already configured on the provider, else none.
 */
export function modelFields(opts: ModelFieldsOptions): ModelFields & { describe(): void } {
  const upstream = h('input', { name: 'upstream_model', required: true, spellcheck: 'false', maxlength: 200 });
  const publicName = h('input', { name: 'public_name', required: true, spellcheck: 'false', maxlength: 200 });
  let edited = false;
  upstream.addEventListener('input', () => {
    if (!edited) publicName.value = publicModelName(upstream.value);
  });
  publicName.addEventListener('input', () => {
    edited = publicName.value.trim() !== '';
  });
  const known = () => [...new Set(opts.configured?.() ?? [])];
  const example = () => {
    const names = known().slice(0, 2);
    return names.length ? `, e.g. ${names.join(' or ')}` : '';
  };
  const upstreamField = field('Upstream model', upstream, ' ');
  const describe = () => {
    const type = opts.typeOf();
    upstream.placeholder = known()[0] ?? UPSTREAM_PLACEHOLDER;
    const note = isType(type) ? PROVIDER_TYPES[type].modelNote : '';
    upstreamField.querySelector('.hint')!.textContent = `The model's name at the provider, sent upstream unchanged${example()}.${note ? ` ${note}` : ''}`;
  };
  for (const w of opts.watch ?? []) w.addEventListener('change', describe);
  clearsInvalid(upstream, publicName);
  describe();
  return {
    upstream, publicName, describe,
    fields: [upstreamField, field('Public model name', publicName, `The name callers use. ${MODEL_NAME_RULE} Filled in from the upstream model (llama3:8b becomes llama3-8b).`)],
    values() {
      const up = upstream.value.trim();
      if (!up) throw fieldError(upstream, `Enter the upstream model: its name at the provider${example()}.`);
      const name = publicName.value.trim();
      const problem = modelNameProblem(name);
      if (problem) throw fieldError(publicName, problem);
      return { upstream: up, name };
    },
    reset() {
      edited = false;
    },
  };
}

/** The API field names of the provider and model forms, as their labels say them. */
export const FIELD_LABELS: Record<string, string> = {
  name: 'Name', type: 'Type', base_url: 'Base URL', api_key: 'API key', api_version: 'API version', node_id: 'Node',
  upstream_model: 'Upstream model', 'deployments.0.upstream_model': 'Upstream model', models: 'Models',
};

const RULES: Record<string, string> = {
  api_version: 'may hold only letters, digits, ".", "_" and "-"',
  name: 'may not hold control characters',
};

/**
 * An API error in plain words: `body.api_version must match pattern "…"` becomes
 * `API version may hold only letters, digits, …`. Anything else keeps its message, capitalised.
 */
export function plainError(e: unknown, labels: Record<string, string> = FIELD_LABELS, rules: Record<string, string> = RULES): Error {
  if (!(e instanceof ApiError)) return e instanceof Error ? e : new Error(String(e));
  let msg = e.message;
  const param = e.param ?? /^(?:body\.)?([a-z_][\w.]*) /.exec(msg)?.[1];
  const label = param ? labels[param] : undefined;
  if (param && label) {
    msg = msg.replace(new RegExp(`^(body\\.)?${param.replace(/\./g, '\\.')}\\s*`), '');
    const rest = msg
      .replace(/^must NOT have fewer than 1 characters?$/, 'cannot be empty')
      .replace(/^must NOT have fewer than (\d+) characters$/, 'must be at least $1 characters')
      .replace(/^must NOT have more than (\d+) characters$/, 'must be at most $1 characters')
      .replace(/^must match pattern .*$/, rules[param] ?? 'holds characters that are not allowed')
      .replace(/^must be equal to one of the allowed values:/, 'must be one of:');
    msg = `${label} ${rest}`;
  } else if (e.status === 0) {
    msg = 'Cannot reach the appliance; check your connection and try again';
  }
  msg = msg.charAt(0).toUpperCase() + msg.slice(1);
  return new ApiError(e.status, e.code, /[.!?]$/.test(msg) ? msg : `${msg}.`);
}
