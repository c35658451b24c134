// /settings — public URL, session lifetime, the TLS certificate nginx serves, single sign-on, and a
// backup download.
import { get, put } from '../api.ts';
import type { Page } from '../app.ts';
import { errorBox, field, fmtTime, h, onSubmit, replace } from '../dom.ts';

interface Settings {
  public_url: string | null;
  detected_public_url: string;
  session_ttl_seconds: number;
}

interface CertInfo {
  subject: string;
  issuer: string;
  valid_from: string;
  valid_to: string;
  fingerprint_sha256: string;
  subject_alt_names: string | null;
  self_signed: boolean;
  pem: string;
}

export interface Tls {
  certificate: CertInfo | null;
  cert_path: string;
  key_path: string;
}

interface Oidc {
  enabled: boolean;
  issuer: string;
  client_id: string;
  client_secret_set: boolean;
  scopes: string;
  display_name: string;
  jit: boolean;
  sso_only: boolean;
  break_glass_username: string;
  redirect_uri: string;
}

function certView(c: CertInfo | null): HTMLElement {
  if (!c) return h('p', { class: 'empty' }, 'No certificate uploaded; nginx uses the certificate the appliance image generated.');
  return h('dl', { class: 'facts' },
    h('dt', null, 'Subject'), h('dd', null, c.subject),
    h('dt', null, 'Names'), h('dd', null, c.subject_alt_names ?? '—'),
    h('dt', null, 'Issuer'), h('dd', null, c.issuer),
    h('dt', null, 'Valid until'), h('dd', null, fmtTime(c.valid_to)),
    h('dt', null, 'SHA-256'), h('dd', null, h('code', null, c.fingerprint_sha256)));
}

/** Certificate in use plus an upload form; used by the settings page and the setup wizard. */
export async function tlsForm(onSaved: () => Promise<void> | void): Promise<HTMLElement> {
  const tls = await get<Tls>('/api/v1/settings/tls');
  const current = h('div', null, certView(tls.certificate));
  const err = errorBox();
  const cert = h('textarea', { name: 'certificate', rows: 5, spellcheck: 'false', placeholder: '-----BEGIN CERTIFICATE-----' });
  const key = h('textarea', { name: 'private_key', rows: 5, spellcheck: 'false', placeholder: '-----BEGIN PRIVATE KEY-----' });
  const fromFile = (target: HTMLTextAreaElement) => h('input', {
    type: 'file', accept: '.pem,.crt,.key,text/plain', 'aria-label': `Load ${target.name === 'certificate' ? 'certificate' : 'private key'} from a file`,
    onchange: async (ev: Event) => {
      const f = (ev.target as HTMLInputElement).files?.[0];
      if (f) target.value = await f.text();
    },
  });
  const form = h('form', { novalidate: true },
    field('Certificate chain (PEM)', cert), h('div', { class: 'file' }, fromFile(cert)),
    field('Private key (PEM)', key, 'Stored in the data directory with mode 0600; never shown again.'), h('div', { class: 'file' }, fromFile(key)),
    err.el, h('button', { type: 'submit' }, 'Upload certificate'));
  onSubmit(form, err, async () => {
    if (!cert.value.includes('BEGIN CERTIFICATE')) throw new Error('Paste a PEM certificate (-----BEGIN CERTIFICATE-----).');
    if (!key.value.includes('PRIVATE KEY')) throw new Error('Paste the PEM private key that belongs to the certificate.');
    const saved = await put<Tls>('/api/v1/settings/tls', { certificate: cert.value, private_key: key.value });
    replace(current, certView(saved.certificate), h('p', { class: 'ok', role: 'status' }, 'Saved. nginx picks the new certificate up on its next reload (within a minute on the appliance).'));
    form.reset();
    await onSaved();
  });
  return h('div', { class: 'tls' }, h('h2', null, 'TLS certificate'), current,
    h('p', { class: 'hint' }, `Files: ${tls.cert_path} and ${tls.key_path}.`), form);
}

async function generalForm(): Promise<HTMLElement> {
  const s = await get<Settings>('/api/v1/settings');
  const err = errorBox();
  const status = h('p', { role: 'status', class: 'ok' });
  const url = h('input', { name: 'public_url', type: 'url', value: s.public_url ?? s.detected_public_url });
  const ttl = h('input', { name: 'session_hours', type: 'number', min: 0.25, max: 720, step: 0.25, value: s.session_ttl_seconds / 3600 });
  const form = h('form', { novalidate: true }, field('Public URL', url), field('Session lifetime (hours)', ttl, 'Applies to sign-ins from now on.'),
    err.el, status, h('button', { type: 'submit' }, 'Save'));
  onSubmit(form, err, async () => {
    status.textContent = '';
    const hours = Number(ttl.value);
    if (!Number.isFinite(hours) || hours < 0.25 || hours > 720) throw new Error('Session lifetime must be between 0.25 and 720 hours.');
    await put('/api/v1/settings', { public_url: url.value.trim(), session_ttl_seconds: Math.round(hours * 3600) });
    status.textContent = 'Saved.';
  });
  return h('div', null, h('h2', null, 'General'), form);
}

async function oidcForm(): Promise<HTMLElement> {
  const o = await get<Oidc>('/api/v1/settings/oidc');
  const err = errorBox();
  const status = h('p', { role: 'status', class: 'ok' });
  const enabled = h('input', { type: 'checkbox', name: 'enabled', checked: o.enabled });
  const issuer = h('input', { name: 'issuer', type: 'url', value: o.issuer, placeholder: 'https://example.okta.com' });
  const clientId = h('input', { name: 'client_id', value: o.client_id });
  const secret = h('input', { name: 'client_secret', type: 'password', autocomplete: 'off', placeholder: o.client_secret_set ? 'unchanged' : '' });
  const scopes = h('input', { name: 'scopes', value: o.scopes });
  const display = h('input', { name: 'display_name', value: o.display_name, placeholder: 'Okta' });
  const jit = h('input', { type: 'checkbox', name: 'jit', checked: o.jit });
  const ssoOnly = h('input', { type: 'checkbox', name: 'sso_only', checked: o.sso_only });
  const breakGlass = h('input', { name: 'break_glass_username', value: o.break_glass_username });
  const check = (label: string, input: HTMLInputElement, hint: string) =>
    h('div', { class: 'field check' }, h('label', null, input, ' ', label), h('p', { class: 'hint' }, hint));
  const form = h('form', { novalidate: true },
    check('Enable single sign-on', enabled, 'Adds a "Sign in with…" button to the sign-in page.'),
    field('Issuer URL', issuer), field('Client ID', clientId), field('Client secret', secret, 'Stored encrypted.'),
    field('Scopes', scopes), field('Button label', display),
    check('Create users on first sign-in', jit, 'Otherwise only users that already exist (e.g. provisioned by SCIM) can sign in.'),
    check('SSO only', ssoOnly, 'Turns off password sign-in for everyone except the break-glass administrator below.'),
    field('Break-glass administrator', breakGlass, 'A local admin who can still sign in with a password.'),
    h('p', { class: 'hint' }, 'Register this redirect URI with your identity provider: ', h('code', null, o.redirect_uri)),
    err.el, status, h('button', { type: 'submit' }, 'Save single sign-on'));
  onSubmit(form, err, async () => {
    status.textContent = '';
    await put('/api/v1/settings/oidc', {
      enabled: enabled.checked, issuer: issuer.value.trim(), client_id: clientId.value.trim(),
      ...(secret.value ? { client_secret: secret.value } : {}),
      scopes: scopes.value.trim(), display_name: display.value.trim(), jit: jit.checked, sso_only: ssoOnly.checked,
      break_glass_username: breakGlass.value.trim(),
    });
    secret.value = '';
    status.textContent = 'Saved.';
  });
  return h('div', null, h('h2', null, 'Single sign-on (OIDC)'), form);
}

/** A download of the database (never with keys: those leave the host only through `nexus backup` there). */
function backupSection(): HTMLElement {
  return h('div', { class: 'backup' }, h('h2', null, 'Backup'),
    h('p', null, 'A consistent copy of the database, taken while the appliance keeps serving. Its stored secrets stay sealed by the master key, which this download does not include: keep ',
      h('code', null, 'master.key'), ' from the data dir somewhere safe, or run ', h('code', null, 'nexus backup'), ' on the host for a backup with the keys sealed by a passphrase.'),
    h('a', { class: 'button', href: '/api/v1/backup', download: '' }, 'Download a backup'));
}

export const settingsPage: Page = {
  title: 'Settings',
  adminOnly: true,
  async render(main) {
    const [general, tls, oidc] = await Promise.all([generalForm(), tlsForm(() => undefined), oidcForm()]);
    replace(main, h('h1', null, 'Settings'), general, tls, oidc, backupSection());
  },
};
