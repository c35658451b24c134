// /providers — upstream model providers (keys stored encrypted, never shown) and the models that
// route to them; both editable in place (a provider's address and key, a model's prices).
import { del, get, items, patch, post, whenServed } from '../api.ts';
import type { Page } from '../app.ts';
import { errorBox, field, h, onSubmit, replace, table, uid } from '../dom.ts';
import { unavailable } from './common.ts';
import { FIELD_LABELS, MODEL_NAME_PREDICATE, modelFields, plainError, PROVIDER_TYPES, providerFields, type ProviderType } from './provider-form.ts';

interface Provider {
  id: string;
  name: string;
  type: string;
  base_url: string;
  api_version?: string | null;
  has_api_key?: boolean;
  node_id?: string | null;
}

interface Model {
  id: string;
  name: string;
  deployments?: { provider_id: string; upstream_model: string; weight?: number; priority?: number }[];
  input_price_per_mtok?: number;
  output_price_per_mtok?: number;
  cached_input_price_per_mtok?: number | null;
  audio_input_price_per_minute?: number | null;
  tts_price_per_mchar?: number | null;
  cache_ttl_seconds?: number | null;
  routing_strategy?: 'weighted' | 'least_busy' | 'latency';
}

/** An inline edit form: a heading that names it, fields, errors shown in it, save and cancel. */
function editForm(title: string, fields: HTMLElement[], close: () => void, save: () => Promise<void>): HTMLFormElement {
  const heading = uid('edit');
  const err = errorBox();
  const form = h('form', { class: 'inline', novalidate: true, 'aria-labelledby': heading }, h('h3', { id: heading }, title), fields, err.el,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save changes'), h('button', { type: 'button', class: 'secondary', onclick: close }, 'Cancel')));
  onSubmit(form, err, save);
  return form;
}

export const providersPage: Page = {
  title: 'Providers & models',
  adminOnly: true,
  async render(main) {
    const first = await whenServed<unknown>('providers', '/api/v1/providers');
    if (first === null) return unavailable(main, 'Providers & models', 'Model providers');
    const err = errorBox();
    const providerList = h('div');
    const modelList = h('div');
    const providerSelect = h('select', { name: 'provider_id' });
    const editor = h('div');
    const closeEditor = () => replace(editor);
    let providers: Provider[] = [];
    let models: Model[] = [];
    const editProvider = (p: Provider) => {
      const eName = h('input', { name: 'edit_name', required: true, value: p.name });
      const eBase = h('input', { name: 'edit_base_url', type: 'url', required: true, value: p.base_url });
      const eKey = h('input', { name: 'edit_api_key', type: 'password', autocomplete: 'off' });
      const eVersion = h('input', { name: 'edit_api_version', value: p.api_version ?? '' });
      // The API version only for the types that take one (azure needs it; gemini and anthropic may).
      const version = PROVIDER_TYPES[p.type as ProviderType]?.apiVersion ?? (p.api_version ? 'optional' : null);
      const form = editForm(`Edit ${p.name}`, [field('Name', eName), field('Base URL', eBase),
        field('New API key', eKey, p.has_api_key ? 'Empty keeps the stored key.' : 'No key is stored.'),
        ...(version ? [field(version === 'optional' ? 'API version (optional)' : 'API version', eVersion, PROVIDER_TYPES[p.type as ProviderType]?.versionHint || undefined)] : [])], closeEditor, async () => {
        if (version === 'required' && !eVersion.value.trim()) throw new Error('Enter the API version, e.g. 2024-10-21 (or v1).');
        await patch(`/api/v1/providers/${p.id}`, { name: eName.value.trim(), base_url: eBase.value.trim(),
          ...(eKey.value ? { api_key: eKey.value } : {}), ...(version ? { api_version: eVersion.value.trim() || null } : {}) }).catch((e: unknown) => {
          throw plainError(e);
        });
        closeEditor();
        await load();
      });
      replace(editor, form);
      eName.focus();
    };
    const editModel = (m: Model) => {
      const price = (name: string, v: number | null | undefined) => h('input', { name, type: 'number', min: 0, step: 'any', value: v ?? '' });
      const eIn = price('edit_input_price', m.input_price_per_mtok);
      const eOut = price('edit_output_price', m.output_price_per_mtok);
      const eCached = price('edit_cached_price', m.cached_input_price_per_mtok);
      const eAudio = price('edit_audio_price', m.audio_input_price_per_minute);
      const eTts = price('edit_tts_price', m.tts_price_per_mchar);
      const eTtl = h('input', { name: 'edit_cache_ttl', type: 'number', min: 1, max: 2592000, step: 1, value: m.cache_ttl_seconds ?? '' });
      const eRouting = h('select', { name: 'edit_routing' }, [['weighted', 'Weighted (random by weight)'], ['least_busy', 'Least busy (fewest calls in flight)'], ['latency', 'Lowest latency (fastest to answer)']]
        .map(([v, label]) => h('option', { value: v, selected: (m.routing_strategy ?? 'weighted') === v }, label)));
      // Deployments: lowest priority first, weighted within a priority; saving replaces the list.
      const rows = (m.deployments ?? []).map((d) => ({ provider_id: d.provider_id, upstream_model: d.upstream_model, priority: String(d.priority ?? 0), weight: String(d.weight ?? 1) }));
      const depHeading = uid('deployments');
      const deps = h('div', { class: 'routing', role: 'group', 'aria-labelledby': depHeading });
      const drawDeps = (focusLast = false) => {
        const cell = (r: (typeof rows)[number], key: 'upstream_model' | 'priority' | 'weight', label: string, attrs: Record<string, string | number>) =>
          h('input', { ...attrs, value: r[key], 'aria-label': label, oninput: (e: Event) => { r[key] = (e.target as HTMLInputElement).value; } });
        const body = rows.map((r, i) => {
          const n = i + 1;
          const provider = h('select', { 'aria-label': `Provider of deployment ${n}`, onchange: (e: Event) => { r.provider_id = (e.target as HTMLSelectElement).value; } },
            providers.map((p) => h('option', { value: p.id, selected: p.id === r.provider_id }, p.name)));
          if (focusLast && i === rows.length - 1) queueMicrotask(() => provider.focus());
          return h('tr', null, h('td', null, provider),
            h('td', null, cell(r, 'upstream_model', `Upstream model of deployment ${n}`, { required: 'true' })),
            h('td', null, cell(r, 'priority', `Priority of deployment ${n}`, { type: 'number', min: 0, step: 1, class: 'narrow' })),
            h('td', null, cell(r, 'weight', `Weight of deployment ${n}`, { type: 'number', min: 0, step: 1, class: 'narrow' })),
            h('td', null, h('button', { type: 'button', class: 'secondary small', 'aria-label': `Remove deployment ${n}`, onclick: () => { rows.splice(i, 1); drawDeps(); } }, 'Remove')));
        });
        replace(deps, h('h4', { id: depHeading }, 'Deployments'),
          rows.length ? h('table', { class: 'routing-table' }, h('thead', null, h('tr', null, ['Provider', 'Upstream model', 'Priority', 'Weight', ''].map((x) => h('th', { scope: 'col' }, x)))), h('tbody', null, body))
            : h('p', { class: 'hint' }, 'A model needs at least one deployment.'),
          h('button', { type: 'button', class: 'secondary small', disabled: !providers.length, onclick: () => {
            rows.push({ provider_id: providers[0]!.id, upstream_model: m.name, priority: String(rows.length), weight: '1' });
            drawDeps(true);
          } }, 'Add deployment'));
      };
      drawDeps();
      const form = editForm(`Edit ${m.name}`, [field('Input $ / M tokens', eIn), field('Output $ / M tokens', eOut),
        field('Cached input $ / M tokens', eCached, 'Empty prices cached input like other input.'),
        field('Audio input $ / minute', eAudio, 'Transcriptions and translations by the length of the audio (whisper-1: 0.006). Empty: not priced by length.'),
        field('Speech $ / M characters', eTts, 'Speech by the characters of its input (tts-1: 15, tts-1-hd: 30). Empty: not priced by characters.'),
        field('Routing within a priority', eRouting),
        field('Cache answers for (seconds)', eTtl, 'Identical non-streamed calls are answered from memory for this long, without a provider and free. Empty: never.'), deps], closeEditor, async () => {
        if (!rows.length) throw new Error('A model needs at least one deployment.');
        await patch(`/api/v1/models/${m.id}`, { input_price_per_mtok: Number(eIn.value || 0), output_price_per_mtok: Number(eOut.value || 0),
          cached_input_price_per_mtok: eCached.value.trim() ? Number(eCached.value) : null,
          audio_input_price_per_minute: eAudio.value.trim() ? Number(eAudio.value) : null,
          tts_price_per_mchar: eTts.value.trim() ? Number(eTts.value) : null,
          cache_ttl_seconds: eTtl.value.trim() ? Number(eTtl.value) : null,
          routing_strategy: (eRouting as HTMLSelectElement).value,
          deployments: rows.map((r) => ({ provider_id: r.provider_id, upstream_model: r.upstream_model.trim(), priority: Number(r.priority || 0), weight: Number(r.weight || 1) })) });
        closeEditor();
        await load();
      });
      replace(editor, form);
      eIn.focus();
    };
    const load = async () => {
      providers = items<Provider>(await get('/api/v1/providers'));
      models = items<Model>(await whenServed('models', '/api/v1/models'));
      const nameOf = (id: string) => providers.find((p) => p.id === id)?.name ?? id;
      replace(providerList, table(['Name', 'Type', 'Base URL', 'Via', ''], providers.map((p) => [
        p.name, p.type, h('code', null, p.base_url), p.node_id ? `node ${p.node_id}` : 'direct',
        [h('button', { type: 'button', class: 'secondary small', 'aria-label': `Edit ${p.name}`, onclick: () => editProvider(p) }, 'Edit'), ' ',
          h('button', { type: 'button', class: 'danger small', 'aria-label': `Delete ${p.name}`, onclick: () => act(() => del(`/api/v1/providers/${p.id}`)) }, 'Delete')],
      ]), 'No providers yet. Add one below.'));
      const perM = (v: number | null | undefined) => (v == null ? '—' : `$${v}`);
      replace(modelList, table(['Model', 'Deployments', 'Input / output / cached per M', 'Cache', ''], models.map((m) => [
        h('code', null, m.name), ((m.deployments ?? []).map((d) => `${nameOf(d.provider_id)} → ${d.upstream_model}`).join(', ') || '—') + (m.routing_strategy && m.routing_strategy !== 'weighted' ? ` (${m.routing_strategy.replace('_', ' ')})` : ''),
        `${perM(m.input_price_per_mtok)} / ${perM(m.output_price_per_mtok)} / ${perM(m.cached_input_price_per_mtok)}`
          + (m.audio_input_price_per_minute != null ? `; audio $${m.audio_input_price_per_minute} / min` : '')
          + (m.tts_price_per_mchar != null ? `; speech $${m.tts_price_per_mchar} / M chars` : ''),
        m.cache_ttl_seconds ? `${m.cache_ttl_seconds} s` : '—',
        [h('button', { type: 'button', class: 'secondary small', 'aria-label': `Edit ${m.name}`, onclick: () => editModel(m) }, 'Edit'), ' ',
          h('button', { type: 'button', class: 'danger small', 'aria-label': `Delete ${m.name}`, onclick: () => act(() => del(`/api/v1/models/${m.id}`)) }, 'Delete')],
      ]), 'No models yet.'));
      const chosen = providerSelect.value;
      replace(providerSelect, providers.map((p) => h('option', { value: p.id, selected: p.id === chosen }, p.name)));
      model.describe();
    };
    const act = async (fn: () => Promise<unknown>) => {
      err.clear();
      try {
        await fn();
        await load();
      } catch (e) {
        err.show((e as Error).message);
      }
    };

    const pErr = errorBox();
    const name = h('input', { name: 'name', required: true, maxlength: 100 });
    const provider = providerFields({ keyLabel: 'API key' });
    const pForm = h('form', { class: 'inline', novalidate: true }, field('Name', name), ...provider.fields, pErr.el, h('button', { type: 'submit' }, 'Add provider'));
    onSubmit(pForm, pErr, async () => {
      if (!name.value.trim()) throw new Error('Give the provider a name.');
      await post('/api/v1/providers', { name: name.value.trim(), ...provider.body() }).catch((e: unknown) => {
        throw plainError(e);
      });
      pForm.reset();
      provider.reset();
      await load();
    });

    const mErr = errorBox();
    // The Add model form's example: what the chosen provider already serves.
    const model = modelFields({
      typeOf: () => providers.find((p) => p.id === providerSelect.value)?.type ?? '',
      configured: () => models.flatMap((m) => (m.deployments ?? []).filter((d) => d.provider_id === providerSelect.value).map((d) => d.upstream_model)),
      watch: [providerSelect],
    });
    const inPrice = h('input', { name: 'input_price', type: 'number', min: 0, step: 'any' });
    const outPrice = h('input', { name: 'output_price', type: 'number', min: 0, step: 'any' });
    const mForm = h('form', { class: 'inline', novalidate: true }, field('Provider', providerSelect), ...model.fields,
      field('Input $ / M tokens', inPrice), field('Output $ / M tokens', outPrice), mErr.el, h('button', { type: 'submit' }, 'Add model'));
    onSubmit(mForm, mErr, async () => {
      if (!providerSelect.value) throw new Error('Add a provider first.');
      const { upstream, name: publicName } = model.values();
      await post('/api/v1/models', {
        name: publicName, deployments: [{ provider_id: providerSelect.value, upstream_model: upstream }],
        ...(inPrice.value ? { input_price_per_mtok: Number(inPrice.value) } : {}), ...(outPrice.value ? { output_price_per_mtok: Number(outPrice.value) } : {}),
      }).catch((e: unknown) => {
        throw plainError(e, { ...FIELD_LABELS, name: 'Public model name', input_price_per_mtok: 'Input $ / M tokens', output_price_per_mtok: 'Output $ / M tokens' },
          { name: MODEL_NAME_PREDICATE });
      });
      mForm.reset();
      model.reset();
      await load();
    });
    await load();
    replace(main, h('h1', null, 'Providers & models'), err.el, h('h2', null, 'Providers'), providerList, pForm, h('h2', null, 'Models'), modelList, mForm, editor);
  },
};
