// The console's one way to reach the API: same-origin fetch with the session cookie, control-plane
// errors ({error:{code,message}}) turned into ApiError with the server's message.
export class ApiError extends Error {
  status: number;
  code: string;
  /** The request field at fault, when the server names one (`details.param`). */
  param: string | undefined;
  constructor(status: number, code: string, message: string, param?: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.param = param;
  }
  /** True when the route itself does not exist (a backend that has not landed yet). */
  get missingRoute(): boolean {
    return this.status === 404 && this.message === 'no such route';
  }
}

export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? null : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'network', 'cannot reach the appliance; check your connection');
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(res.status, 'bad_response', `unexpected response (${res.status})`);
  }
  if (!res.ok) {
    const e = (data as { error?: { code?: unknown; message?: unknown; param?: unknown } } | null)?.error;
    throw new ApiError(res.status, String(e?.code ?? res.status), typeof e?.message === 'string' ? e.message : `request failed (${res.status})`,
      typeof e?.param === 'string' ? e.param : undefined);
  }
  return data as T;
}

export const get = <T>(path: string) => api<T>('GET', path);
export const post = <T>(path: string, body: unknown) => api<T>('POST', path, body);
export const put = <T>(path: string, body: unknown) => api<T>('PUT', path, body);
export const patch = <T>(path: string, body: unknown) => api<T>('PATCH', path, body);
export const del = (path: string) => api<void>('DELETE', path);

/** GET that answers null when the backend route does not exist yet. */
export async function optional<T>(path: string): Promise<T | null> {
  try {
    return await get<T>(path);
  } catch (e) {
    if (e instanceof ApiError && e.missingRoute) return null;
    throw e;
  }
}

export interface User {
  id: string;
  username: string;
  email: string | null;
  display_name: string | null;
  role: 'admin' | 'member';
  active: boolean;
  source: 'local' | 'scim' | 'oidc';
  created_at: string;
  /** AI gateway budget across all the user's virtual keys. */
  max_budget_usd?: number | null;
  budget_period?: 'day' | 'week' | 'month' | null;
}

/** A group as the console lists it for choosing (a key's group). */
export interface GroupRef {
  id: string;
  display_name: string;
}

export interface Me {
  user: User;
  auth: string;
  /** The signed-in user's groups: what their virtual keys may be charged to. */
  groups?: GroupRef[];
  /** The appliance's public URL (configured, or as this request reached it). */
  public_url?: string;
}

/** Items of a list response, whichever shape the backend chose ({items} or a bare array). */
export function items<T>(data: unknown): T[] {
  if (Array.isArray(data)) return data as T[];
  const d = data as { items?: unknown; data?: unknown } | null;
  if (Array.isArray(d?.items)) return d.items as T[];
  if (Array.isArray(d?.data)) return d.data as T[];
  return [];
}

export type Capability = 'providers' | 'models' | 'virtual_keys' | 'usage' | 'nodes' | 'services' | 'services_list' | 'catalog' | 'scim_tokens' | 'groups' | 'gateway';
let caps: Promise<Record<Capability, boolean>> | null = null;

/** Which backend APIs this appliance serves (asked once per page load). */
export function capabilities(): Promise<Record<Capability, boolean>> {
  caps ??= get<Record<Capability, boolean>>('/api/v1/console/capabilities').catch((e) => {
    caps = null;
    throw e;
  });
  return caps;
}

/** GET when the capability is served, else null — never a request that 404s. */
export async function whenServed<T>(cap: Capability, path: string): Promise<T | null> {
  return (await capabilities())[cap] ? get<T>(path) : null;
}
