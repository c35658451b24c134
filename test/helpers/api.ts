// A small client for the control-plane API over real HTTP (undici fetch), used by e2e tests.
import type { Appliance } from './appliance.ts';

export interface Admin {
  username: string;
  password: string;
  cookie: string;
  /** A personal token (nx_pat_…) of the admin. */
  token: string;
}

export async function json(res: Response): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`expected JSON, got ${res.status}: ${text.slice(0, 300)}`);
  }
}

export function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

/** Completes first-start setup, signs in and mints a personal token. */
export async function setupAdmin(app: Appliance, username = 'admin', password = 'correct-horse-battery'): Promise<Admin> {
  if (!app.setupToken) throw new Error('appliance has no setup token (already set up?)');
  const setup = await post(`${app.url}/api/v1/setup`, { setup_token: app.setupToken, username, password });
  if (setup.status !== 201) throw new Error(`setup failed: ${setup.status} ${await setup.text()}`);
  return login(app, username, password);
}

export async function login(app: Appliance, username: string, password: string): Promise<Admin> {
  const res = await post(`${app.url}/api/v1/auth/login`, { username, password });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const tok = await post(`${app.url}/api/v1/tokens`, { name: 'test' }, { cookie });
  const { token } = await json(tok);
  return { username, password, cookie, token };
}

export function authed(token: string, init: RequestInit = {}): RequestInit {
  return { ...init, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) } };
}
