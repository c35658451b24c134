// The one place that reads process.env. Precedence: defaults < config file < NEXUS_* env < flags.
// Everything else receives the frozen Config this module returns.
import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { homedir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';

export interface HostPort {
  host: string;
  port: number;
}

/** Tracing (core/telemetry, docs/observability.md). Export is off while `otlpEndpoint` is null. */
export interface TelemetryConfig {
  /** The URL spans are POSTed to (OTLP/HTTP JSON), ending in /v1/traces; null: no export. */
  otlpEndpoint: string | null;
  /** Extra headers for the collector (an API key), parsed from OTEL_EXPORTER_OTLP_HEADERS' format. */
  otlpHeaders: Record<string, string>;
  serviceName: string;
  /** OTEL_RESOURCE_ATTRIBUTES, parsed. */
  resourceAttributes: Record<string, string>;
  /** One of tracing.ts SAMPLERS; `sampleRatio` is the traceidratio samplers' argument. */
  sampler: string;
  sampleRatio: number;
  /** Send `traceparent` on the gateway's upstream calls and the proxy's relayed requests. */
  propagate: boolean;
  scheduleDelayMs: number;
  maxQueueSize: number;
  maxExportBatchSize: number;
  exportTimeoutMs: number;
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
    /** No try on another node starts later than this after a proxied request's first (docs/hub.md). */
    retryTimeoutSeconds: number;
    /** A service's retries in flight stay within max(retryBudgetMinConcurrent, this % of its proxied
     *  requests in flight through nodes), as Envoy's `retry_budget` does per cluster. */
    retryBudgetPercent: number;
    retryBudgetMinConcurrent: number;
    /** Request bodies up to this size are kept while they stream to a node, for a retry on another. */
    retryBodyMaxBytes: number;
    /** Bytes every kept request body together may hold. */
    retryBodyTotalBytes: number;
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
  telemetry: TelemetryConfig;
}

/** The file's `telemetry` section: headers and resource attributes as OTEL_* strings ("k=v,k2=v2"). */
const TELEMETRY_FILE_DEFAULTS = {
  otlpEndpoint: null as string | null,
  otlpHeaders: null as string | null,
  serviceName: 'nexus',
  resourceAttributes: null as string | null,
  sampler: 'parentbased_always_on',
  sampleRatio: 1,
  propagate: true,
  scheduleDelayMs: 5000,
  maxQueueSize: 2048,
  maxExportBatchSize: 512,
  exportTimeoutMs: 10_000,
};

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
    retryTimeoutSeconds: 10,
    retryBudgetPercent: 20,
    retryBudgetMinConcurrent: 3,
    retryBodyMaxBytes: 1024 * 1024,
    retryBodyTotalBytes: 64 * 1024 * 1024,
  },
  gateway: { bodyLimitBytes: 64 * 1024 * 1024, maxStreamSeconds: 300, cooldownSeconds: 30, reserveOutputTokens: 1024, connectTimeoutSeconds: 10, firstByteTimeoutSeconds: 300, cacheMaxBytes: 64 * 1024 * 1024 },
  proxy: { maxStreamSeconds: 300, allowPrivateTargets: false },
  database: { writeThread: true },
  cacheDir: null,
  telemetry: { ...TELEMETRY_FILE_DEFAULTS, otlpEndpoint: null, otlpHeaders: {}, resourceAttributes: {} },
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

/** OTEL_TRACES_SAMPLER's names (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/). */
export const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'];

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * `key1=value1,key2=value2` with percent-encoded values (the W3C Baggage format the OTEL_* headers
 * and resource variables use). The message never repeats a value: headers carry API keys.
 */
function keyValues(text: string, what: string, names?: RegExp): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',')) {
    if (!part.trim()) continue;
    const eq = part.indexOf('=');
    const key = eq < 0 ? '' : part.slice(0, eq).trim();
    if (!key || (names && !names.test(key))) throw new ConfigError(`${what}: expected key=value pairs separated by commas`);
    let value: string;
    try {
      value = decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      throw new ConfigError(`${what}: the value of "${key}" is not valid percent-encoding`);
    }
    if (/[\r\n\0]/.test(value)) throw new ConfigError(`${what}: the value of "${key}" has a control character`);
    out[names ? key.toLowerCase() : key] = value;
  }
  return out;
}

/** A collector URL: http(s) only; `base` (OTEL_EXPORTER_OTLP_ENDPOINT's rule) gets /v1/traces added. */
function collectorUrl(value: string, what: string, base: boolean): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new ConfigError(`${what}: "${value}" is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(`${what}: expected an http:// or https:// URL`);
  if (u.username || u.password) throw new ConfigError(`${what}: put credentials in the OTLP headers, not in the URL`);
  if (base && !u.pathname.endsWith('/v1/traces')) u.pathname = `${u.pathname.replace(/\/+$/, '')}/v1/traces`;
  return u.toString();
}

function positiveInt(value: string | number, what: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${what}: expected a positive whole number, got "${value}"`);
  return n;
}

/** The file's `telemetry` section under the standard OTEL_* variables, under NEXUS_* ones. */
function telemetryConfig(file: typeof TELEMETRY_FILE_DEFAULTS, e: (name: string) => string | undefined): TelemetryConfig {
  let v: string | undefined;
  // telemetry.otlpEndpoint and NEXUS_OTLP_ENDPOINT take a collector's base URL (/v1/traces is added) or the full one.
  let endpoint = file.otlpEndpoint ? collectorUrl(file.otlpEndpoint, 'telemetry.otlpEndpoint', true) : null;
  if ((v = e('OTEL_EXPORTER_OTLP_ENDPOINT'))) endpoint = collectorUrl(v, 'OTEL_EXPORTER_OTLP_ENDPOINT', true);
  if ((v = e('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'))) endpoint = collectorUrl(v, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', false);
  if ((v = e('NEXUS_OTLP_ENDPOINT'))) endpoint = collectorUrl(v, 'NEXUS_OTLP_ENDPOINT', true);
  if (e('OTEL_SDK_DISABLED')?.toLowerCase() === 'true' || e('OTEL_TRACES_EXPORTER')?.toLowerCase() === 'none') endpoint = null;
  const protocol = e('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? e('OTEL_EXPORTER_OTLP_PROTOCOL');
  // Collectors' OTLP/HTTP receivers take JSON and protobuf alike on the same path; gRPC is another port and transport.
  if (endpoint && protocol && protocol !== 'http/json' && protocol !== 'http/protobuf') {
    throw new ConfigError(`OTEL_EXPORTER_OTLP_PROTOCOL "${protocol}": Nexus exports OTLP over HTTP (http/json); point it at the collector's HTTP port (4318)`);
  }
  const headers = {
    ...(file.otlpHeaders ? keyValues(file.otlpHeaders, 'telemetry.otlpHeaders', HEADER_NAME) : {}),
    ...((v = e('OTEL_EXPORTER_OTLP_HEADERS')) ? keyValues(v, 'OTEL_EXPORTER_OTLP_HEADERS', HEADER_NAME) : {}),
    ...((v = e('OTEL_EXPORTER_OTLP_TRACES_HEADERS')) ? keyValues(v, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS', HEADER_NAME) : {}),
  };
  const resource = {
    ...(file.resourceAttributes ? keyValues(file.resourceAttributes, 'telemetry.resourceAttributes') : {}),
    ...((v = e('OTEL_RESOURCE_ATTRIBUTES')) ? keyValues(v, 'OTEL_RESOURCE_ATTRIBUTES') : {}),
  };
  const serviceName = e('OTEL_SERVICE_NAME') ?? resource['service.name'] ?? file.serviceName;
  const sampler = (e('OTEL_TRACES_SAMPLER') ?? file.sampler).toLowerCase();
  if (!SAMPLERS.includes(sampler)) throw new ConfigError(`sampler "${sampler}": expected one of ${SAMPLERS.join(', ')}`);
  let ratio = file.sampleRatio;
  if ((v = e('OTEL_TRACES_SAMPLER_ARG')) && sampler.endsWith('traceidratio')) ratio = Number(v);
  if (!(ratio >= 0 && ratio <= 1)) throw new ConfigError(`sampling ratio "${v ?? ratio}": expected a number from 0 to 1`);
  const propagate = (v = e('NEXUS_TRACE_PROPAGATE')) ? bool(v, 'NEXUS_TRACE_PROPAGATE') : file.propagate;
  const maxQueueSize = positiveInt(e('OTEL_BSP_MAX_QUEUE_SIZE') ?? file.maxQueueSize, 'telemetry.maxQueueSize (OTEL_BSP_MAX_QUEUE_SIZE)');
  const maxExportBatchSize = Math.min(maxQueueSize, positiveInt(e('OTEL_BSP_MAX_EXPORT_BATCH_SIZE') ?? file.maxExportBatchSize, 'telemetry.maxExportBatchSize (OTEL_BSP_MAX_EXPORT_BATCH_SIZE)'));
  return {
    otlpEndpoint: endpoint,
    otlpHeaders: headers,
    serviceName,
    resourceAttributes: resource,
    sampler,
    sampleRatio: ratio,
    propagate,
    scheduleDelayMs: positiveInt(e('OTEL_BSP_SCHEDULE_DELAY') ?? file.scheduleDelayMs, 'telemetry.scheduleDelayMs (OTEL_BSP_SCHEDULE_DELAY)'),
    maxQueueSize,
    maxExportBatchSize,
    exportTimeoutMs: positiveInt(e('OTEL_EXPORTER_OTLP_TRACES_TIMEOUT') ?? e('OTEL_EXPORTER_OTLP_TIMEOUT') ?? file.exportTimeoutMs, 'telemetry.exportTimeoutMs (OTEL_EXPORTER_OTLP_TIMEOUT)'),
  };
}

/** The kept-body bounds (docs/hub.md, "Retries on another node"): whole bytes, the one within the other, within this machine. */
function checkRetryBodies(hub: Config['hub']): void {
  for (const key of ['retryBodyMaxBytes', 'retryBodyTotalBytes'] as const) {
    if (!Number.isSafeInteger(hub[key])) throw new ConfigError(`hub.${key}: expected a whole number of bytes, got ${hub[key]}`);
  }
  if (hub.retryBodyMaxBytes > hub.retryBodyTotalBytes) {
    throw new ConfigError(`hub.retryBodyMaxBytes (${hub.retryBodyMaxBytes}) is larger than hub.retryBodyTotalBytes (${hub.retryBodyTotalBytes}): no body that large could be kept`);
  }
  if (hub.retryBodyTotalBytes > totalmem()) {
    throw new ConfigError(`hub.retryBodyTotalBytes (${hub.retryBodyTotalBytes}) is more than this machine's memory (${totalmem()} bytes)`);
  }
}

/**
 * The agent's tracing: the same OTEL_* and NEXUS_OTLP_ENDPOINT variables as the appliance reads (the
 * agent has no config file), reported as service `nexus-agent` unless OTEL_SERVICE_NAME says otherwise.
 */
export function agentTelemetryConfig(env: NodeJS.ProcessEnv = process.env): TelemetryConfig {
  const e = (name: string) => {
    const v = env[name];
    return v === undefined || v === '' ? undefined : v;
  };
  return telemetryConfig({ ...TELEMETRY_FILE_DEFAULTS, serviceName: 'nexus-agent' }, e);
}

export function loadConfig({ env = process.env, flags = {} }: LoadOptions = {}): Config {
  const cfg = structuredClone(DEFAULTS) as Config;
  const telemetryFile = structuredClone(TELEMETRY_FILE_DEFAULTS);

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
      const { telemetry, ...rest } = parsed;
      if (telemetry !== undefined) {
        if (!isPlainObject(telemetry)) throw new ConfigError('config file: "telemetry" must be a mapping');
        mergeFile(telemetryFile as Record<string, unknown>, telemetry, 'telemetry');
      }
      mergeFile(cfg as unknown as Record<string, unknown>, rest, '');
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
  if ((v = e('NEXUS_HUB_RETRY_TIMEOUT_SECONDS'))) cfg.hub.retryTimeoutSeconds = num(v, 'NEXUS_HUB_RETRY_TIMEOUT_SECONDS');
  if ((v = e('NEXUS_HUB_RETRY_BUDGET_PERCENT'))) cfg.hub.retryBudgetPercent = num(v, 'NEXUS_HUB_RETRY_BUDGET_PERCENT');
  if ((v = e('NEXUS_HUB_RETRY_BUDGET_MIN_CONCURRENT')))
    cfg.hub.retryBudgetMinConcurrent = num(v, 'NEXUS_HUB_RETRY_BUDGET_MIN_CONCURRENT');
  if ((v = e('NEXUS_HUB_RETRY_BODY_MAX_BYTES'))) cfg.hub.retryBodyMaxBytes = num(v, 'NEXUS_HUB_RETRY_BODY_MAX_BYTES');
  if ((v = e('NEXUS_HUB_RETRY_BODY_TOTAL_BYTES'))) cfg.hub.retryBodyTotalBytes = num(v, 'NEXUS_HUB_RETRY_BODY_TOTAL_BYTES');
  if ((v = e('NEXUS_GATEWAY_BODY_LIMIT_BYTES'))) cfg.gateway.bodyLimitBytes = num(v, 'NEXUS_GATEWAY_BODY_LIMIT_BYTES');
  if ((v = e('NEXUS_GATEWAY_MAX_STREAM_SECONDS')))
    cfg.gateway.maxStreamSeconds = num(v, 'NEXUS_GATEWAY_MAX_STREAM_SECONDS');
  if ((v = e('NEXUS_GATEWAY_CACHE_MAX_BYTES'))) cfg.gateway.cacheMaxBytes = num(v, 'NEXUS_GATEWAY_CACHE_MAX_BYTES');
  if ((v = e('NEXUS_PROXY_MAX_STREAM_SECONDS'))) cfg.proxy.maxStreamSeconds = num(v, 'NEXUS_PROXY_MAX_STREAM_SECONDS');
  if ((v = e('NEXUS_PROXY_ALLOW_PRIVATE_TARGETS')))
    cfg.proxy.allowPrivateTargets = bool(v, 'NEXUS_PROXY_ALLOW_PRIVATE_TARGETS');
  if ((v = e('CACHE_DIRECTORY'))) cfg.cacheDir = v.split(':')[0] ?? null; // systemd CacheDirectory=
  cfg.telemetry = telemetryConfig(telemetryFile, e);

  if (typeof flags['data-dir'] === 'string') cfg.dataDir = flags['data-dir'];
  if (typeof flags.listen === 'string') cfg.listen = parseHostPort(flags.listen, '--listen');
  if (typeof flags['admin-listen'] === 'string') cfg.adminListen = parseHostPort(flags['admin-listen'], '--admin-listen');
  if (typeof flags['public-url'] === 'string') cfg.publicUrl = flags['public-url'];
  if (typeof flags['log-level'] === 'string') cfg.logLevel = flags['log-level'];

  if (cfg.hub.retryBudgetPercent > 100) throw new ConfigError(`hub.retryBudgetPercent: expected 0 to 100, got ${cfg.hub.retryBudgetPercent}`);
  if (!Number.isInteger(cfg.hub.retryBudgetMinConcurrent)) throw new ConfigError(`hub.retryBudgetMinConcurrent: expected a whole number, got ${cfg.hub.retryBudgetMinConcurrent}`);
  checkRetryBodies(cfg.hub);
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

/**
 * NEXUS_* variables read outside loadConfig: the config file's path, the agent's home, the CLI's
 * appliance, token and browser. (loadConfig's own are found by asking it, in unknownNexusEnv.)
 */
const OTHER_ROLES_ENV = ['NEXUS_CONFIG', 'NEXUS_AGENT_HOME', 'NEXUS_URL', 'NEXUS_TOKEN', 'NEXUS_BROWSER'];

/** Levenshtein distance, for "did you mean" (names are short: a full table is cheap). */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/**
 * The NEXUS_* variables set in `env` that no part of Nexus reads, each with the closest known name when
 * one is near (a typo: NEXUS_LISTN → NEXUS_LISTEN). A config file's unknown setting stops the start,
 * but these only warn: the environment may be shared with another version or with the agent.
 */
export function unknownNexusEnv(env: Env = process.env): { name: string; closest: string | null }[] {
  const known = new Set(OTHER_ROLES_ENV);
  // Every variable loadConfig reads, taken from loadConfig itself: it asks for each of them once.
  const asked: Env = new Proxy({}, {
    get: (_t, name) => {
      if (typeof name === 'string') known.add(name);
      return undefined;
    },
  });
  loadConfig({ env: asked });
  const names = [...known].filter((n) => n.startsWith('NEXUS_'));
  return Object.keys(env).filter((n) => n.startsWith('NEXUS_') && !known.has(n)).sort().map((name) => {
    let closest: string | null = null;
    let best = Math.max(2, Math.floor(name.length / 5)) + 1;
    for (const k of names) {
      const d = editDistance(name, k);
      if (d < best) [closest, best] = [k, d];
    }
    return { name, closest };
  });
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
