// How a stored credential is put on an outgoing request. One function serves both places that inject:
// the appliance for direct services and the agent for services routed through it.
import type { Headers } from './frames.ts';

export type AuthMethod = 'bearer' | 'bot_bearer' | 'header' | 'query' | 'path' | 'basic' | 'body' | 'none';
export const AUTH_METHODS: readonly AuthMethod[] = ['bearer', 'bot_bearer', 'header', 'query', 'path', 'basic', 'body', 'none'];

/** The agent's `--secret-format` values and the auth method each one means. */
export const SECRET_FORMATS = { bearer: 'bearer', raw: 'header', basic: 'basic', query: 'query' } as const satisfies Record<string, AuthMethod>;
export type SecretFormat = keyof typeof SECRET_FORMATS;

export interface Injection {
  method: AuthMethod;
  /** Header name, query parameter, path prefix or JSON field, by method. */
  keyName: string | null;
  secret: string;
}

export function defaultKeyName(method: AuthMethod): string | null {
  switch (method) {
    case 'bearer':
    case 'bot_bearer':
    case 'basic':
      return 'authorization';
    case 'query':
      return 'key';
    case 'path':
      return '';
    default:
      return null;
  }
}

/**
 * Applies the credential to `url` and `headers` in place. `body` is returned for the caller to merge
 * into a JSON body (the only method that needs the body). Header names are compared lowercase, and an
 * injected header replaces whatever the caller sent under that name.
 */
export function inject(inj: Injection, url: URL, headers: Headers): { bodyField: { name: string; value: string } | null } {
  const key = inj.keyName ?? defaultKeyName(inj.method);
  const setHeader = (name: string, value: string) => {
    const lower = name.toLowerCase();
    for (const k of Object.keys(headers)) if (k.toLowerCase() === lower) delete headers[k];
    headers[lower] = value;
  };
  switch (inj.method) {
    case 'bearer':
      setHeader(key || 'authorization', `Bearer ${inj.secret}`);
      break;
    case 'bot_bearer':
      setHeader(key || 'authorization', `Bot ${inj.secret}`);
      break;
    case 'basic': {
      const pair = inj.secret.includes(':') ? inj.secret : `${inj.secret}:`;
      setHeader(key || 'authorization', `Basic ${Buffer.from(pair, 'utf8').toString('base64')}`);
      break;
    }
    case 'header':
      if (!key) throw new Error('header credentials need a header name');
      setHeader(key, inj.secret);
      break;
    case 'query':
      url.searchParams.set(key || 'key', inj.secret);
      break;
    case 'path':
      // e.g. Telegram: https://api.telegram.org + "bot" + token → /bot<token>/<method>
      url.pathname = `/${encodeURIComponent((key ?? '') + inj.secret)}${url.pathname === '/' ? '' : url.pathname}`;
      break;
    case 'body':
      if (!key) throw new Error('body credentials need a field name');
      return { bodyField: { name: key, value: inj.secret } };
    case 'none':
      break;
  }
  return { bodyField: null };
}

/** Hop-by-hop headers (RFC 9110 §7.6.1), plus Host and Expect, which each hop sets for itself. */
const HOP = new Set(['connection', 'expect', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'http2-settings']);

/** Copies end-to-end headers only; also drops any header the Connection header names. */
export function endToEnd(input: Record<string, string | string[] | undefined>, drop: readonly string[] = []): Headers {
  // Runs on every relayed request and response, on both sides: the fixed set is copied only when a
  // request names more headers to drop.
  let named: Set<string> = HOP;
  const conn = input.connection;
  if (drop.length || conn !== undefined) {
    named = new Set<string>(HOP);
    for (const d of drop) named.add(d.toLowerCase());
    for (const c of (Array.isArray(conn) ? conn.join(',') : (conn ?? '')).split(',')) if (c.trim()) named.add(c.trim().toLowerCase());
  }
  const out: Headers = {};
  for (const k of Object.keys(input)) {
    const v = input[k];
    if (v === undefined) continue;
    const name = k.toLowerCase();
    if (!named.has(name)) out[name] = v;
  }
  return out;
}

/**
 * Joins a service's base URL with the caller's path and query; null when dot segments would climb
 * out of the base path (the caller may only reach what the service exposes).
 */
export function joinTarget(base: string, rest: string, search: string): URL | null {
  const u = new URL(base);
  const basePath = u.pathname.endsWith('/') ? u.pathname.slice(0, -1) : u.pathname;
  u.pathname = `${basePath}/${rest.replace(/^\/+/, '')}`;
  if (u.pathname !== basePath && !u.pathname.startsWith(`${basePath}/`)) return null;
  // The caller's query goes through byte for byte (re-encoding it could change its meaning).
  const q = search.replace(/^\?/, '');
  if (q) u.search = u.search ? `${u.search}&${q}` : `?${q}`;
  return u;
}
