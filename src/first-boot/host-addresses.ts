// How the appliance is reached: on EC2 the instance metadata service (IMDSv2) knows the public IP and
// name; elsewhere the local interfaces and host name are the best we have.
import { isIP } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { isValidHostname } from './nginx-site.ts';

export const DEFAULT_METADATA_URL = 'http://169.254.169.254';

export interface HostAddresses {
  /** Where the names came from. */
  source: 'imds' | 'local';
  publicIp: string | null;
  publicHostname: string | null;
  /** Every name and address the certificate should cover, the preferred one first. */
  names: string[];
}

export interface DiscoverOptions {
  /** IMDS base URL; null skips the metadata service. */
  metadataUrl: string | null;
  /** Bound on each metadata request (the service answers in milliseconds when present). */
  timeoutMs?: number;
}

// Values come from a network service: read at most this much and accept only an IP or a host name.
const MAX_VALUE_BYTES = 1024;

async function readCapped(res: Response): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_VALUE_BYTES) {
      await reader.cancel();
      throw new Error('metadata value too large');
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8').trim();
}

/**
 * IMDSv2 (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html):
 * PUT /latest/api/token for a session token, then GET each item with it. Never falls back to IMDSv1.
 * Returns null when the service is absent, refuses the token, or times out.
 */
export async function readImds(baseUrl: string, timeoutMs = 1000): Promise<{ publicIp: string | null; publicHostname: string | null; localIp: string | null; localHostname: string | null } | null> {
  const base = baseUrl.replace(/\/+$/, '');
  let token: string;
  try {
    const res = await fetch(`${base}/latest/api/token`, {
      method: 'PUT',
      headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' },
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    });
    if (res.status !== 200) {
      await res.body?.cancel();
      return null;
    }
    token = await readCapped(res);
  } catch {
    return null;
  }
  if (!/^[A-Za-z0-9._~+/=-]{1,512}$/.test(token)) return null;

  const get = async (item: string): Promise<string | null> => {
    try {
      const res = await fetch(`${base}/latest/meta-data/${item}`, {
        headers: { 'x-aws-ec2-metadata-token': token },
        signal: AbortSignal.timeout(timeoutMs),
        redirect: 'error',
      });
      if (res.status !== 200) {
        await res.body?.cancel();
        return null; // 404: e.g. no public IPv4 on this instance
      }
      return await readCapped(res);
    } catch {
      return null;
    }
  };
  const [publicIp, publicHostname, localIp, localHostname] = await Promise.all([
    get('public-ipv4'),
    get('public-hostname'),
    get('local-ipv4'),
    get('local-hostname'),
  ]);
  return {
    publicIp: publicIp && isIP(publicIp) ? publicIp : null,
    publicHostname: publicHostname && isValidHostname(publicHostname) ? publicHostname : null,
    localIp: localIp && isIP(localIp) ? localIp : null,
    localHostname: localHostname && isValidHostname(localHostname) ? localHostname : null,
  };
}

/** Non-internal interface addresses, IPv4 first; link-local IPv6 is skipped (needs a zone id). */
export function localAddresses(): string[] {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.internal) continue;
      if (a.family === 'IPv4') v4.push(a.address);
      else if (!a.address.toLowerCase().startsWith('fe80:')) v6.push(a.address);
    }
  }
  return [...v4, ...v6];
}

export async function discoverHostAddresses(opts: DiscoverOptions): Promise<HostAddresses> {
  const imds = opts.metadataUrl ? await readImds(opts.metadataUrl, opts.timeoutMs) : null;
  const host = hostname();
  const local = localAddresses();
  const loopback = ['localhost', '127.0.0.1', '::1'];
  const named = (...xs: (string | null | undefined)[]) => xs.filter((x): x is string => !!x);
  const hostName = isValidHostname(host) ? host : null;
  if (imds && (imds.publicIp || imds.publicHostname || imds.localIp)) {
    const names = named(imds.publicIp, imds.publicHostname, imds.localIp, imds.localHostname, hostName, ...loopback);
    return { source: 'imds', publicIp: imds.publicIp, publicHostname: imds.publicHostname, names: [...new Set(names)] };
  }
  const names = named(local[0], hostName, ...local.slice(1), ...loopback);
  return { source: 'local', publicIp: null, publicHostname: null, names: [...new Set(names)] };
}
