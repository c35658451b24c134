// Renders nginx/nexus.conf.template, the appliance's one nginx site. First boot renders it for the
// real host (443/80 on every address); tests render it for loopback test ports with a test certificate.
import { isIP } from 'node:net';
import { readAsset } from '../core/assets/assets.ts';
import { DEFAULTS } from '../core/config/config.ts';

export const TEMPLATE_ASSET = 'nginx/nexus.conf.template';

export interface NginxSiteOptions {
  /** Addresses nginx listens on: "*" and "[::]" on the appliance, "127.0.0.1" in tests. */
  addresses: string[];
  httpsPort: number;
  httpPort: number;
  /** Names the site answers to; the first is the canonical one. "_" (any name) is always added. */
  serverNames: string[];
  certPath: string;
  keyPath: string;
  /** The public listener of `nexus serve` (HOST:PORT). */
  upstream: string;
  /** Strict-Transport-Security; only once a certificate browsers trust is installed (RFC 6797 §7.2). */
  hsts: boolean;
  /** Largest request body through the service proxy (nginx size syntax, e.g. "4g"; "0" = no limit). */
  maxUpload?: string;
  /** The app's body limit in bytes (config bodyLimitBytes); nginx refuses larger bodies elsewhere. */
  bodyLimitBytes?: number;
  /** The gateway's body limit in bytes (config gateway.bodyLimitBytes), for its locations. */
  gatewayBodyLimitBytes?: number;
  /** Extra directives inside the TLS server block (tests add test-only locations). */
  extra?: string;
}

export class NginxSiteError extends Error {
  override name = 'NginxSiteError';
}

const HOSTNAME = /^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
// nginx config is not quoted here, so anything that could end a directive or open a block is refused.
const SAFE_PATH = /^\/[A-Za-z0-9._/@+-]+$/;
const SIZE = /^\d{1,12}[kKmMgG]?$/;

// The headers every proxied request carries; said once here, placed by the template wherever a
// location must set its own (nginx drops inherited proxy_set_header lines when a location sets any).
const FORWARDED = [
  'proxy_set_header Host $host;',
  'proxy_set_header X-Real-IP $remote_addr;',
  'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
  'proxy_set_header X-Forwarded-Proto $scheme;',
  'proxy_set_header X-Forwarded-Host $host;',
  'proxy_set_header X-Request-Id $nexus_request_id;',
];
const indent = (lines: string[], n: number) => lines.map((l) => ' '.repeat(n) + l).join('\n');

export function isValidHostname(name: string): boolean {
  return HOSTNAME.test(name);
}

function port(p: number, what: string): number {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new NginxSiteError(`${what}: ${p} is not a TCP port`);
  return p;
}

function listenLines(addresses: string[], p: number, suffix: string): string {
  if (addresses.length === 0) throw new NginxSiteError('at least one listen address is needed');
  return addresses
    .map((a) => {
      const bare = a.replace(/^\[(.*)\]$/, '$1');
      if (a !== '*' && isIP(bare) === 0) throw new NginxSiteError(`listen address "${a}" is not an IP address or "*"`);
      const host = isIP(bare) === 6 ? `[${bare}]` : bare;
      return `    listen ${host}:${p}${suffix};`;
    })
    .join('\n');
}

function upstreamOf(value: string): string {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+|localhost)):(\d{1,5})$/.exec(value);
  if (!m) throw new NginxSiteError(`upstream "${value}" must be IP:PORT`);
  const host = m[1] ?? m[2]!;
  port(Number(m[3]), 'upstream port');
  return m[1] ? `[${host}]:${m[3]}` : `${host}:${m[3]}`;
}

/** Renders the template; throws NginxSiteError on any value that could not be placed safely. */
export function renderNginxSite(opts: NginxSiteOptions, template: string = loadTemplate()): string {
  const httpsPort = port(opts.httpsPort, 'HTTPS port');
  const httpPort = port(opts.httpPort, 'HTTP port');
  for (const p of [opts.certPath, opts.keyPath]) {
    if (!SAFE_PATH.test(p)) throw new NginxSiteError(`path "${p}" must be absolute and contain no spaces, quotes or ;{}`);
  }
  const names = [...new Set(opts.serverNames)];
  for (const n of names) {
    if (isIP(n) === 0 && !isValidHostname(n)) throw new NginxSiteError(`server name "${n}" is not a host name or IP address`);
  }
  const maxUpload = opts.maxUpload ?? '4g';
  if (!SIZE.test(maxUpload)) throw new NginxSiteError(`upload limit "${maxUpload}" is not an nginx size (e.g. 4g, 512m)`);
  const bodyLimit = opts.bodyLimitBytes ?? DEFAULTS.bodyLimitBytes;
  const gatewayBodyLimit = opts.gatewayBodyLimitBytes ?? DEFAULTS.gateway.bodyLimitBytes;
  for (const n of [bodyLimit, gatewayBodyLimit]) {
    if (!Number.isSafeInteger(n) || n < 1) throw new NginxSiteError(`body limit ${n} is not a positive byte count`);
  }
  if (opts.extra && /\{\{/.test(opts.extra)) throw new NginxSiteError('extra directives may not contain template markers');

  const values: Record<string, string> = {
    upstream: upstreamOf(opts.upstream),
    listen_http: listenLines(opts.addresses, httpPort, ''),
    listen_https: listenLines(opts.addresses, httpsPort, ' ssl http2'),
    https_port_suffix: httpsPort === 443 ? '' : `:${httpsPort}`,
    server_name: [...names.map((n) => (isIP(n) === 6 ? `[${n}]` : n)), '_'].join(' '),
    cert_path: opts.certPath,
    key_path: opts.keyPath,
    hsts: opts.hsts ? '    add_header Strict-Transport-Security "max-age=63072000" always;' : '',
    max_upload: maxUpload,
    body_limit: String(bodyLimit),
    gateway_body_limit: String(gatewayBodyLimit),
    extra: opts.extra ?? '',
    forwarded_headers: indent(FORWARDED, 4),
    upgrade_headers: indent(['proxy_set_header Upgrade $http_upgrade;', 'proxy_set_header Connection $nexus_connection;', ...FORWARDED], 8),
  };
  const out = template.replace(/\{\{([a-z_]+)\}\}/g, (whole, key: string) => {
    const v = values[key];
    if (v === undefined) throw new NginxSiteError(`template uses unknown value ${whole}`);
    return v;
  });
  return out;
}

export function loadTemplate(): string {
  const buf = readAsset(TEMPLATE_ASSET);
  if (!buf) throw new NginxSiteError(`${TEMPLATE_ASSET} is missing from this build`);
  return buf.toString('utf8');
}
