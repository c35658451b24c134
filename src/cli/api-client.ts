// The operator CLI's calls to the control-plane API: Bearer personal token, JSON both ways,
// `{error:{code,message}}` turned into a one-line CliError.
import { CliError } from './cli-credentials.ts';

const TIMEOUT_MS = 30_000;

export interface ApiTarget {
  url: string;
  token?: string;
}

export async function apiRequest<T>(target: ApiTarget, method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${target.url}${path}`, {
      method,
      headers: {
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(target.token ? { authorization: `Bearer ${target.token}` } : {}),
      },
      body: body === undefined ? null : JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
      redirect: 'error',
    });
  } catch (err) {
    throw new CliError(`cannot reach ${target.url}: ${(err as Error).message}`);
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let data: unknown;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    throw new CliError(`${method} ${path}: unexpected answer (${res.status}) from ${target.url}; is this a Nexus appliance?`);
  }
  if (!res.ok) {
    const e = (data as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    const message = typeof e?.message === 'string' ? e.message : `HTTP ${res.status}`;
    if (res.status === 404 && message === 'no such route') throw new CliError(`this appliance does not serve ${method} ${path.split('?')[0]} (yet)`);
    if (res.status === 401) throw new CliError(message.includes('nexus login') ? message : `${message} (run nexus login)`);
    throw new CliError(message);
  }
  return data as T;
}

/** Items of a list answer ({items} or a bare array). */
export function listItems<T>(data: unknown): T[] {
  if (Array.isArray(data)) return data as T[];
  const d = data as { items?: unknown; data?: unknown } | null;
  if (Array.isArray(d?.items)) return d.items as T[];
  if (Array.isArray(d?.data)) return d.data as T[];
  // Anything else came from something that is not a Nexus appliance: saying "none yet" would mislead.
  throw new CliError('unexpected answer (not a list); is the URL a Nexus appliance?');
}
