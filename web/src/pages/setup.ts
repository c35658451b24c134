// /setup — the first-boot wizard. Useless without the one-time setup token (read from the data
// dir or the serial console), and closed for good once an admin exists: the only way back in is
// the wizard's own session, which carries on from where it was (sessionStorage) after a reload.
import { ApiError, del, get, patch, post, put, whenServed } from '../api.ts';
import type { App, Page } from '../app.ts';
import { errorBox, field, h, onSubmit, replace, secretBox, snippet, type Child } from '../dom.ts';
import { MODEL_PLACEHOLDER, snippets } from '../snippets.ts';
import { FIELD_LABELS, MODEL_NAME_PREDICATE, modelFields, plainError, providerFields } from './provider-form.ts';
import { tlsForm } from './settings.ts';

const STEPS = ['Administrator', 'Public URL', 'TLS certificate', 'First provider', 'Done'];
const KEY = 'nexus.setup.step';

interface Settings {
  public_url: string | null;
  detected_public_url: string;
}

function steps(current: number): HTMLElement {
  return h('ol', { class: 'steps', 'aria-label': 'Setup steps' },
    STEPS.map((s, i) => h('li', { 'aria-current': i === current ? 'step' : null, class: i < current ? 'done' : null }, s)));
}

function card(current: number, ...body: Child[]): HTMLElement {
  return h('section', { class: 'card wizard' }, h('h1', null, 'Set up Nexus'), steps(current), ...body);
}

export const setupPage: Page = {
  title: 'Setup',
  bare: true,
  public: true,
  async render(main, app) {
    const { setup_required } = await get<{ setup_required: boolean }>('/api/v1/setup/status');
    const saved = Number(sessionStorage.getItem(KEY) ?? '0');
    if (setup_required) {
      sessionStorage.removeItem(KEY);
      return adminStep(main, app);
    }
    const me = await app.refreshMe();
    if (saved > 0 && me?.user.role === 'admin') return showStep(main, app, saved);
    replace(main, h('section', { class: 'card' },
      h('h1', null, 'Setup is complete'),
      h('p', null, 'This appliance already has an administrator, so the setup page is closed.'),
      h('p', null, h('a', { href: '/login', 'data-nav': true, class: 'button' }, 'Sign in'))));
  },
};

function showStep(main: HTMLElement, app: App, step: number): Promise<void> | void {
  sessionStorage.setItem(KEY, String(step));
  if (step === 1) return publicUrlStep(main, app);
  if (step === 2) return tlsStep(main, app);
  if (step === 3) return providerStep(main, app);
  return doneStep(main, app, null);
}

function adminStep(main: HTMLElement, app: App): void {
  const err = errorBox();
  const token = h('input', { name: 'setup_token', type: 'password', required: true, autocomplete: 'off', spellcheck: 'false' });
  const username = h('input', { name: 'username', required: true, autocomplete: 'username', value: 'admin', maxlength: 128 });
  const email = h('input', { name: 'email', type: 'email', autocomplete: 'email' });
  const password = h('input', { name: 'password', type: 'password', required: true, minlength: 10, autocomplete: 'new-password' });
  const confirm = h('input', { name: 'confirm', type: 'password', required: true, autocomplete: 'new-password' });
  const form = h('form', { novalidate: true },
    field('Setup token', token, 'Printed when the appliance first started; also in the file setup-token in its data directory.'),
    field('Admin username', username),
    field('Email (optional)', email),
    field('Password', password, 'At least 10 characters.'),
    field('Confirm password', confirm),
    err.el,
    h('button', { type: 'submit' }, 'Create administrator'));
  onSubmit(form, err, async () => {
    if (!token.value.trim()) throw new Error('Enter the setup token.');
    if (!username.value.trim()) throw new Error('Choose a username.');
    if (password.value.length < 10) throw new Error('The password must be at least 10 characters.');
    if (password.value !== confirm.value) throw new Error('The passwords do not match.');
    try {
      await post('/api/v1/setup', {
        setup_token: token.value.trim(),
        username: username.value.trim(),
        password: password.value,
        ...(email.value.trim() ? { email: email.value.trim() } : {}),
      });
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) throw new Error('That setup token is not valid. Copy it again from the appliance.');
      throw e;
    }
    await post('/api/v1/auth/login', { username: username.value.trim(), password: password.value });
    await app.refreshMe();
    await showStep(main, app, 1);
  });
  replace(main, card(0, h('p', null, 'Create the first administrator. You need the one-time setup token.'), form));
}

async function publicUrlStep(main: HTMLElement, app: App): Promise<void> {
  const settings = await get<Settings>('/api/v1/settings');
  const err = errorBox();
  const url = h('input', { name: 'public_url', type: 'url', required: true, value: settings.public_url ?? settings.detected_public_url ?? location.origin });
  const form = h('form', { novalidate: true },
    field('Public URL', url, 'The address people and SDKs use to reach this appliance, e.g. https://nexus.example.com.'),
    err.el,
    h('button', { type: 'submit' }, 'Save and continue'));
  onSubmit(form, err, async () => {
    await put('/api/v1/settings', { public_url: url.value.trim() });
    await showStep(main, app, 2);
  });
  replace(main, card(1, h('p', null, 'Confirm the URL this appliance is reached at. Links, snippets and the SSO callback use it.'), form));
}

async function tlsStep(main: HTMLElement, app: App): Promise<void> {
  const body = await tlsForm(() => undefined);
  const skip = h('button', { type: 'button', class: 'secondary', onclick: () => showStep(main, app, 3) }, 'Continue');
  replace(main, card(2, body, h('div', { class: 'actions' }, skip)));
}

async function providerStep(main: HTMLElement, app: App): Promise<void> {
  const providers = await whenServed<unknown>('providers', '/api/v1/providers');
  const skip = h('button', { type: 'button', class: 'secondary', onclick: () => showStep(main, app, 4) }, 'Skip for now');
  if (providers === null) {
    replace(main, card(3,
      h('p', null, 'This appliance does not serve the AI gateway yet, so there is no provider to add. You can add providers later under Providers & models.'),
      h('div', { class: 'actions' }, skip)));
    return;
  }
  const err = errorBox();
  const name = h('input', { name: 'provider_name', required: true, value: 'openai', maxlength: 100 });
  const provider = providerFields({ keyLabel: 'Provider API key' });
  const model = modelFields({ typeOf: () => provider.type.value, watch: [provider.type] });
  // The provider's name follows its type until the user names it.
  let named = false;
  name.addEventListener('input', () => (named = true));
  provider.type.addEventListener('change', () => {
    if (!named) name.value = provider.type.value;
  });
  const form = h('form', { novalidate: true },
    field('Provider name', name), ...provider.fields, ...model.fields,
    err.el, h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Add provider and create a virtual key'), skip));
  // What an earlier attempt created, so that a retry after an error changes it instead of colliding with it.
  let made: { providerId: string; type: string; model: string | null } | null = null;
  onSubmit(form, err, async () => {
    if (!name.value.trim()) throw new Error('Give the provider a name.');
    const body = { name: name.value.trim(), ...provider.body() };
    const { upstream, name: publicName } = model.values();
    try {
      if (made && made.type !== body.type) {
        if (made.model) await del(`/api/v1/models/${encodeURIComponent(made.model)}`);
        await del(`/api/v1/providers/${made.providerId}`);
        made = null;
      }
      if (made) {
        const { type: _type, ...change } = body;
        await patch(`/api/v1/providers/${made.providerId}`, { ...change, api_key: change.api_key ?? null, api_version: change.api_version ?? null });
      } else {
        made = { providerId: (await post<{ id: string }>('/api/v1/providers', body)).id, type: body.type, model: null };
      }
    } catch (e) {
      throw plainError(e, { ...FIELD_LABELS, name: 'Provider name' });
    }
    const deployments = [{ provider_id: made.providerId, upstream_model: upstream }];
    try {
      if (made.model === publicName) {
        await patch(`/api/v1/models/${encodeURIComponent(publicName)}`, { deployments });
      } else {
        if (made.model) await del(`/api/v1/models/${encodeURIComponent(made.model)}`);
        made.model = null;
        await post('/api/v1/models', { name: publicName, deployments });
      }
      made.model = publicName;
    } catch (e) {
      throw plainError(e, { ...FIELD_LABELS, name: 'Public model name' }, { name: MODEL_NAME_PREDICATE });
    }
    const vk = await post<{ id: string; key: string }>('/api/v1/virtual-keys', { name: 'first key', models: [publicName] }).catch((e: unknown) => {
      throw plainError(e);
    });
    sessionStorage.setItem(KEY, '4');
    await doneStep(main, app, { key: vk.key, model: publicName });
  });
  replace(main, card(3, h('p', null, 'Optionally connect a first model provider and mint a virtual key for it.'), form));
}

async function doneStep(main: HTMLElement, app: App, first: { key: string; model: string } | null): Promise<void> {
  const settings = await get<Settings>('/api/v1/settings');
  const base = settings.public_url ?? settings.detected_public_url ?? location.origin;
  const finish = h('button', {
    type: 'button',
    onclick: () => {
      sessionStorage.removeItem(KEY);
      app.navigate('/');
    },
  }, 'Open the console');
  replace(main, card(4,
    h('p', null, 'Nexus is ready. Try it from a shell:'),
    first ? secretBox('Your first virtual key', first.key) : null,
    snippet('curl', snippets(base, first?.key ?? '<your virtual key>', first?.model ?? MODEL_PLACEHOLDER).curlModels),
    h('div', { class: 'actions' }, finish)));
}
