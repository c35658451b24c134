// How a stored credential is put on an outgoing request. One function serves both places that inject:
// the appliance for direct services and the agent for services routed through it.
import type { Headers } from './frames.ts';

export type AuthMethod = 'bearer' | 'bot_bearer' | 'header' | 'query' | 'path' | 'basic' | 'body' | 'none';
export const AUTH_METHODS: readonly AuthMethod[] = ['bearer', 'bot_bearer', 'header', 'query', 'path', 'basic', 'body', 'none'];

/**
 * The agent's `--secret-format` values and the auth method each one means: every method but `none`
 * (a service that takes no credential needs none stored).
 */
export const SECRET_FORMATS = {
  bearer: 'bearer',
  bot: 'bot_bearer',
  raw: 'header',
  basic: 'basic',
  query: 'query',
  path: 'path',
  body: 'body',
} as const satisfies Record<string, Exclude<AuthMethod, 'none'>>;
export type SecretFormat = keyof typeof SECRET_FORMATS;

/** The auth method a stored format means; null for a name this version does not know. */
export function formatMethod(format: string): AuthMethod | null {
  return Object.hasOwn(SECRET_FORMATS, format) ? SECRET_FORMATS[format as SecretFormat] : null;
}

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

/**
 * The largest request body the agent reads to add a `body` credential: the appliance's default
 * `bodyLimitBytes` (config.ts). The appliance uses its configured limit for its own direct services;
 * an agent cannot know that setting.
 */
export const AGENT_BODY_LIMIT = 10 * 1024 * 1024;

/** Why a request body could not take a `body` credential, with the caller's error code and message. */
export const BODY_FIELD_FAILURES = {
  body_too_large: { code: 'payload_too_large', message: 'request body is larger than the configured limit' },
  body_not_json: { code: 'invalid_json', message: 'this service takes its credential in a JSON body; the request body is not JSON' },
  body_not_object: { code: 'validation_failed', message: 'this service needs a JSON object body' },
} as const;
export type BodyFieldFailure = keyof typeof BODY_FIELD_FAILURES;

export class BodyFieldError extends Error {
  readonly reason: BodyFieldFailure;
  constructor(reason: BodyFieldFailure) {
    super(BODY_FIELD_FAILURES[reason].message);
    this.reason = reason;
  }
}

/**
 * The `body` method, for the appliance and the agent alike: reads the request body (at most `limit`
 * bytes; none is `{}`), sets the field in its JSON object and returns the new body, with
 * `content-type` and `content-length` set in `headers` to match. Throws BodyFieldError.
 */
export async function withBodyField(body: AsyncIterable<Uint8Array> | null, field: { name: string; value: string }, limit: number, headers: Headers): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  let n = 0;
  if (body) {
    for await (const c of body) {
      n += c.byteLength;
      if (n > limit) throw new BodyFieldError('body_too_large');
      parts.push(c);
    }
  }
  const text = Buffer.concat(parts).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text.length ? text : '{}');
  } catch {
    throw new BodyFieldError('body_not_json');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new BodyFieldError('body_not_object');
  // Defined, not assigned: a field named `__proto__` is a field like any other.
  Object.defineProperty(json, field.name, { value: field.value, enumerable: true, writable: true, configurable: true });
  const out = Buffer.from(JSON.stringify(json));
  headers['content-type'] = 'application/json';
  headers['content-length'] = String(out.length);
  return out;
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
