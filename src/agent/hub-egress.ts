// How the agent reaches the hub: with the trust anchor it was enrolled with (tls.ts) and, on a host
// whose only way out is an HTTP proxy (most corporate networks), through that proxy — enrollment,
// the WebSocket and the long-poll fallback alike — by a CONNECT tunnel: the one method such proxies
// allow for anything but plain web pages, and the one that leaves TLS between the agent and the
// appliance. Configured the way curl and most tools are:
// HTTPS_PROXY for wss/https, HTTP_PROXY for ws/http, NO_PROXY for exceptions; credentials in the
// proxy URL (http://user:password@proxy:3128) go as Proxy-Authorization: Basic.
import { Agent as HttpAgent, request as httpRequest, type ClientRequestArgs } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { Agent as UndiciAgent, ProxyAgent, fetch as undiciFetch, type Dispatcher } from 'undici';
import { proxyEnv } from '../core/config/config.ts';
import { AgentError } from './home.ts';

/** Whether NO_PROXY exempts `host:port`: `*`, a host, a domain (`example.com`, `.example.com`), each with an optional port. */
export function exempt(host: string, port: string, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    // [v6]:port, a bare v6 address (more than one colon, no port), or name:port.
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry) ?? (entry.indexOf(':') !== entry.lastIndexOf(':') ? [entry, entry] : /^([^:]*)(?::(\d+))?$/.exec(entry));
    if (!m) continue;
    const name = m[1]!.replace(/^\*?\./, '');
    if (m[2] && m[2] !== port) continue;
    if (h === name || h.endsWith(`.${name}`)) return true;
  }
  return false;
}

/** The proxy to reach `target` through, from the environment, or null. */
export function proxyFor(target: URL): URL | null {
  const env = proxyEnv();
  const secure = target.protocol === 'https:' || target.protocol === 'wss:';
  const raw = secure ? env.httpsProxy : env.httpProxy;
  if (!raw) return null;
  const port = target.port || (secure ? '443' : '80');
  if (exempt(target.hostname, port, env.noProxy)) return null;
  let proxy: URL;
  try {
    proxy = new URL(raw.includes('://') ? raw : `http://${raw}`);
  } catch {
    throw new AgentError(`${secure ? 'HTTPS_PROXY' : 'HTTP_PROXY'} "${raw}" is not a URL (expected http://HOST:PORT)`);
  }
  if (proxy.protocol !== 'http:') throw new AgentError(`${secure ? 'HTTPS_PROXY' : 'HTTP_PROXY'}: only http:// proxies are supported, got ${proxy.protocol}//`);
  return proxy;
}

export function proxyAuthorization(proxy: URL): string | undefined {
  if (!proxy.username && !proxy.password) return undefined;
  return `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}`;
}

type Created = (err: Error | null, socket?: Duplex) => void;

/** The proxy could not be reached or would not tunnel: said as such in the agent's reconnect lines. */
export class ProxyError extends Error {
  override name = 'ProxyError';
}

/** Opens a CONNECT tunnel to `host:port` through `proxy`; TLS on top when `tls` is given. */
function tunnel(proxy: URL, host: string, port: number, tls: ConnectionOptions | null, done: Created): void {
  const auth = proxyAuthorization(proxy);
  const target = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const req = httpRequest({
    host: proxy.hostname.replace(/^\[|\]$/g, ''),
    port: Number(proxy.port || 80),
    method: 'CONNECT',
    path: target,
    headers: { host: target, ...(auth ? { 'proxy-authorization': auth } : {}) },
    timeout: 10_000,
  });
  req.once('connect', (res, socket) => {
    if (res.statusCode !== 200) {
      socket.destroy();
      return done(new ProxyError(`the proxy ${proxy.host} refused to tunnel to ${target}: HTTP ${res.statusCode}${res.statusCode === 407 ? ' (proxy credentials missing or wrong: http://USER:PASSWORD@HOST:PORT)' : ''}`));
    }
    if (!tls) return done(null, socket);
    const secure = tlsConnect({ ...tls, socket, servername: tls.servername ?? host });
    secure.once('secureConnect', () => done(null, secure));
    secure.once('error', (err) => done(err));
  });
  req.once('timeout', () => req.destroy(new ProxyError(`the proxy ${proxy.host} did not answer within 10 s`)));
  req.once('error', (err) => done(err instanceof ProxyError ? err : new ProxyError(`cannot reach the proxy ${proxy.host}: ${err.message}`)));
  req.end();
}

/** An http(s) Agent whose connections are CONNECT tunnels through `proxy` (for the ws client). */
export function tunnelAgent(proxy: URL, secure: boolean): HttpAgent {
  const base = secure ? HttpsAgent : HttpAgent;
  class Tunnelled extends base {
    override createConnection(options: ClientRequestArgs & ConnectionOptions, created: Created): undefined {
      const host = String(options.host ?? options.hostname ?? 'localhost');
      const port = Number(options.port ?? (secure ? 443 : 80));
      tunnel(proxy, host, port, secure ? options : null, created);
      return undefined;
    }
  }
  return new Tunnelled({ keepAlive: false });
}

// One connection pool per trust anchor and proxy, kept for the process: a long-poll session is made
// anew on every reconnect and would otherwise leave a pool behind each time.
const pools = new Map<string, Dispatcher>();

function dispatcherFor(ca: string | undefined, proxy: URL | null): Dispatcher {
  const key = `${proxy?.href ?? ''}\n${ca ?? ''}`;
  let d = pools.get(key);
  if (!d) {
    const token = proxy && proxyAuthorization(proxy);
    d = proxy
      ? new ProxyAgent({ uri: proxy.origin, ...(token ? { token } : {}), ...(ca ? { requestTls: { ca } } : {}) })
      : new UndiciAgent({ connect: { ca } });
    pools.set(key, d);
  }
  return d;
}

/** fetch towards the hub: through the proxy the environment names for it, trusting `ca` when one was given at enrollment. */
export function hubFetch(ca: string | undefined): typeof fetch {
  return ((url: string | URL, init?: RequestInit) => {
    const proxy = proxyFor(new URL(String(url)));
    if (!proxy && !ca) return fetch(url, init);
    return undiciFetch(url, { ...(init as object), dispatcher: dispatcherFor(ca, proxy) });
  }) as unknown as typeof fetch;
}

/** The Agent the hub's WebSocket goes through: a tunnel when a proxy applies, else Node's default. */
export function hubSocketAgent(hubUrl: string): HttpAgent | undefined {
  const target = new URL(hubUrl);
  const proxy = proxyFor(target);
  return proxy ? tunnelAgent(proxy, target.protocol === 'wss:') : undefined;
}
