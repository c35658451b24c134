// The one place that reads process.env. Precedence: defaults < config file < NEXUS_* env < flags.
// Everything else receives the frozen Config this module returns.
import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';

export interface HostPort {
  host: string;
  port: number;
}

export interface Config {
  dataDir: string;
  listen: HostPort;
  adminListen: HostPort;
  /** Public base URL users reach the appliance at (https://nexus.example.com); derived when absent. */
  publicUrl: string | null;
  logLevel: string;
  bodyLimitBytes: number;
  /** Addresses whose X-Forwarded-* headers are trusted (nginx on the same host). */
  trustProxy: string[];
  shutdownGraceMs: number;
  session: { ttlSeconds: number };
  loginRateLimit: { maxFailures: number; windowSeconds: number };
  hub: {
    registrationTtlSeconds: number;
    heartbeatSeconds: number;
    offlineAfterSeconds: number;
    authTimeoutSeconds: number;
    reauthSeconds: number;
  };
  gateway: {
    /** Largest request body of the gateway's APIs (images and audio travel inline); the rest of the
     *  appliance keeps `bodyLimitBytes`. */
    bodyLimitBytes: number;
    maxStreamSeconds: number;
    /** How long a deployment that failed (connect error, 429, 5xx) is tried last. */
    cooldownSeconds: number;
    /** Output tokens reserved against budget/tpm when a request names no max_tokens. */
    reserveOutputTokens: number;
    connectTimeoutSeconds: number;
    /** Longest wait for an upstream's response headers (first byte of a stream). */
    firstByteTimeoutSeconds: number;
    /** Memory for the response cache of models with a `cache_ttl_seconds` (0: no cache). */
    cacheMaxBytes: number;
  };
  proxy: { maxStreamSeconds: number; allowPrivateTargets: boolean };
  /** Per-request audit entries and gateway usage commit on a second thread (core/db/write-thread.ts). */
  database: { writeThread: boolean };
  /** Directory where the single executable unpacks its native module; null → XDG cache. */
  cacheDir: string | null;
}

export const DEFAULTS: Config = {
  dataDir: './.data',
  listen: { host: '127.0.0.1', port: 8080 },
  adminListen: { host: '127.0.0.1', port: 9090 },
  publicUrl: null,
  logLevel: 'info',
  bodyLimitBytes: 10 * 1024 * 1024,
  trustProxy: ['127.0.0.1', '::1'],
  shutdownGraceMs: 10_000,
  session: { ttlSeconds: 12 * 3600 },
  loginRateLimit: { maxFailures: 10, windowSeconds: 900 },
  hub: {
    registrationTtlSeconds: 3600,
    heartbeatSeconds: 30,
    offlineAfterSeconds: 90,
    authTimeoutSeconds: 10,
    reauthSeconds: 600,
  },
  gateway: { bodyLimitBytes: 64 * 1024 * 1024, maxStreamSeconds: 300, cooldownSeconds: 30, reserveOutputTokens: 1024, connectTimeoutSeconds: 10, firstByteTimeoutSeconds: 300, cacheMaxBytes: 64 * 1024 * 1024 },
  proxy: { maxStreamSeconds: 300, allowPrivateTargets: false },
  database: { writeThread: true },
  cacheDir: null,
};

/** pino's levels; anything else made the logger throw with a stack trace at start. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;
type Flags = Record<string, string | boolean | undefined>;

export function parseHostPort(value: string, what: string): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  if (!m) throw new ConfigError(`${what}: expected HOST:PORT, got "${value}"`);
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(`${what}: port ${port} is out of range`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * Whether a listen host is reachable only from this machine: 127.0.0.0/8, ::1 (also written as an
 * IPv4-mapped address) or `localhost`. Any other name is not, since it may resolve elsewhere.
 */
export function isLoopbackHost(host: string): boolean {
  if (/^localhost\.?$/i.test(host)) return true;
  const family = isIP(host);
  return family !== 0 && LOOPBACK.check(host, family === 6 ? 'ipv6' : 'ipv4');
}

function num(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new ConfigError(`${what}: expected a non-negative number, got "${value}"`);
  return n;
}

function bool(value: string, what: string): boolean {
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new ConfigError(`${what}: expected true or false, got "${value}"`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep-merge a config file's object onto the defaults, refusing keys the config does not know. */
function mergeFile(base: Record<string, unknown>, over: Record<string, unknown>, path: string): void {
  for (const [key, value] of Object.entries(over)) {
    const where = path ? `${path}.${key}` : key;
    if (!(key in base)) throw new ConfigError(`config file: unknown setting "${where}"`);
    const current = base[key];
    if (isPlainObject(current) && isPlainObject(value)) {
      mergeFile(current, value, where);
    } else if ((key === 'listen' || key === 'adminListen') && typeof value === 'string') {
      base[key] = parseHostPort(value, where);
    } else if (isPlainObject(current)) {
      // `adminListen: [1, 2]` used to replace the address, and the listener bound a random port.
      throw new ConfigError(`config file: "${where}" must be ${key === 'listen' || key === 'adminListen' ? 'HOST:PORT' : 'a mapping'}`);
    } else if (Array.isArray(current)) {
      // A bare `trustProxy: 10.0.0.1` would otherwise be spread into characters.
      if (!Array.isArray(value) || !value.every((x) => typeof x === 'string')) throw new ConfigError(`config file: "${where}" must be a list of strings`);
      base[key] = value;
    } else {
      // Null-valued defaults (publicUrl, cacheDir) take a string; a setting left empty is an error.
      const want = current === null ? 'string' : typeof current;
      if (value === null ? current !== null : typeof value !== want) throw new ConfigError(`config file: "${where}" must be a ${want}`);
      if (typeof value === 'number' && !(Number.isFinite(value) && value >= 0)) throw new ConfigError(`config file: "${where}" must be a non-negative number`);
      base[key] = value;
    }
  }
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

export interface LoadOptions {
  env?: Env;
  flags?: Flags;
}

export function loadConfig({ env = process.env, flags = {} }: LoadOptions = {}): Config {
  const cfg = structuredClone(DEFAULTS) as Config;

  const file = (flags.config as string | undefined) ?? env.NEXUS_CONFIG;
  if (file) {
    let parsed: unknown;
    try {
      parsed = parseYaml(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`config file ${file}: ${(err as Error).message}`);
    }
    if (parsed != null) {
      if (!isPlainObject(parsed)) throw new ConfigError(`config file ${file}: expected a mapping at the top level`);
      mergeFile(cfg as unknown as Record<string, unknown>, parsed, '');
    }
  }

  const e = (name: string) => {
    const v = env[name];
    return v === undefined || v === '' ? undefined : v;
  };
  let v: string | undefined;
  if ((v = e('NEXUS_DATA_DIR'))) cfg.dataDir = v;
  if ((v = e('NEXUS_LISTEN'))) cfg.listen = parseHostPort(v, 'NEXUS_LISTEN');
  if ((v = e('NEXUS_ADMIN_LISTEN'))) cfg.adminListen = parseHostPort(v, 'NEXUS_ADMIN_LISTEN');
  if ((v = e('NEXUS_PUBLIC_URL'))) cfg.publicUrl = v;
  if ((v = e('NEXUS_LOG_LEVEL'))) cfg.logLevel = v;
  if ((v = e('NEXUS_BODY_LIMIT_BYTES'))) cfg.bodyLimitBytes = num(v, 'NEXUS_BODY_LIMIT_BYTES');
  if ((v = e('NEXUS_TRUST_PROXY'))) cfg.trustProxy = v.split(',').map((s) => s.trim()).filter(Boolean);
  if ((v = e('NEXUS_DB_WRITE_THREAD'))) cfg.database.writeThread = bool(v, 'NEXUS_DB_WRITE_THREAD');
  if ((v = e('NEXUS_SHUTDOWN_GRACE_MS'))) cfg.shutdownGraceMs = num(v, 'NEXUS_SHUTDOWN_GRACE_MS');
  if ((v = e('NEXUS_SESSION_TTL_SECONDS'))) cfg.session.ttlSeconds = num(v, 'NEXUS_SESSION_TTL_SECONDS');
  if ((v = e('NEXUS_LOGIN_MAX_FAILURES'))) cfg.loginRateLimit.maxFailures = num(v, 'NEXUS_LOGIN_MAX_FAILURES');
  if ((v = e('NEXUS_NODE_REGISTRATION_TTL_SECONDS')))
    cfg.hub.registrationTtlSeconds = num(v, 'NEXUS_NODE_REGISTRATION_TTL_SECONDS');
  if ((v = e('NEXUS_HUB_HEARTBEAT_SECONDS'))) cfg.hub.heartbeatSeconds = num(v, 'NEXUS_HUB_HEARTBEAT_SECONDS');
  if ((v = e('NEXUS_HUB_OFFLINE_AFTER_SECONDS')))
    cfg.hub.offlineAfterSeconds = num(v, 'NEXUS_HUB_OFFLINE_AFTER_SECONDS');
  if ((v = e('NEXUS_HUB_REAUTH_SECONDS'))) cfg.hub.reauthSeconds = num(v, 'NEXUS_HUB_REAUTH_SECONDS');
  if ((v = e('NEXUS_GATEWAY_BODY_LIMIT_BYTES'))) cfg.gateway.bodyLimitBytes = num(v, 'NEXUS_GATEWAY_BODY_LIMIT_BYTES');
  if ((v = e('NEXUS_GATEWAY_MAX_STREAM_SECONDS')))
    cfg.gateway.maxStreamSeconds = num(v, 'NEXUS_GATEWAY_MAX_STREAM_SECONDS');
  if ((v = e('NEXUS_GATEWAY_CACHE_MAX_BYTES'))) cfg.gateway.cacheMaxBytes = num(v, 'NEXUS_GATEWAY_CACHE_MAX_BYTES');
  if ((v = e('NEXUS_PROXY_MAX_STREAM_SECONDS'))) cfg.proxy.maxStreamSeconds = num(v, 'NEXUS_PROXY_MAX_STREAM_SECONDS');
  if ((v = e('NEXUS_PROXY_ALLOW_PRIVATE_TARGETS')))
    cfg.proxy.allowPrivateTargets = bool(v, 'NEXUS_PROXY_ALLOW_PRIVATE_TARGETS');
  if ((v = e('CACHE_DIRECTORY'))) cfg.cacheDir = v.split(':')[0] ?? null; // systemd CacheDirectory=

  if (typeof flags['data-dir'] === 'string') cfg.dataDir = flags['data-dir'];
  if (typeof flags.listen === 'string') cfg.listen = parseHostPort(flags.listen, '--listen');
  if (typeof flags['admin-listen'] === 'string') cfg.adminListen = parseHostPort(flags['admin-listen'], '--admin-listen');
  if (typeof flags['public-url'] === 'string') cfg.publicUrl = flags['public-url'];
  if (typeof flags['log-level'] === 'string') cfg.logLevel = flags['log-level'];

  if (!LOG_LEVELS.includes(cfg.logLevel)) throw new ConfigError(`log level "${cfg.logLevel}": expected one of ${LOG_LEVELS.join(', ')}`);
  cfg.dataDir = resolve(cfg.dataDir);
  if (cfg.publicUrl) {
    try {
      const u = new URL(cfg.publicUrl);
      cfg.publicUrl = u.origin;
    } catch {
      throw new ConfigError(`public URL "${cfg.publicUrl}" is not a URL`);
    }
  }
  return deepFreeze(cfg);
}

/** Environment values other roles (agent, CLI) need; still read only here. */
export function agentHomeFromEnv(env: Env = process.env): string | undefined {
  return env.NEXUS_AGENT_HOME || undefined;
}

/** The conventional egress proxy variables (curl's): either case, the lower-case one first. */
export function proxyEnv(env: Env = process.env): { httpsProxy?: string; httpProxy?: string; noProxy?: string } {
  const pick = (name: string) => env[name.toLowerCase()] || env[name.toUpperCase()] || undefined;
  const out: { httpsProxy?: string; httpProxy?: string; noProxy?: string } = {};
  const httpsProxy = pick('https_proxy');
  const httpProxy = pick('http_proxy');
  const noProxy = pick('no_proxy');
  if (httpsProxy) out.httpsProxy = httpsProxy;
  if (httpProxy) out.httpProxy = httpProxy;
  if (noProxy) out.noProxy = noProxy;
  return out;
}

export function cliEnv(env: Env = process.env): { url?: string; token?: string; configHome?: string; home?: string; browser?: string } {
  return {
    url: env.NEXUS_URL || undefined,
    token: env.NEXUS_TOKEN || undefined,
    configHome: env.XDG_CONFIG_HOME || undefined,
    home: env.HOME || undefined,
    // The command that opens a URL for `nexus login` / `service add` (NEXUS_BROWSER, else the
    // conventional BROWSER); "none" only prints the URL.
    browser: env.NEXUS_BROWSER || env.BROWSER || undefined,
  };
}

/** Where native modules of the single executable are unpacked: systemd's CacheDirectory=, else XDG. */
export function cacheDirFromEnv(env: Env = process.env): string {
  const systemd = env.CACHE_DIRECTORY?.split(':')[0];
  if (systemd) return systemd;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'nexus');
}

export function readEnv(name: string, env: Env = process.env): string | undefined {
  return env[name];
}
