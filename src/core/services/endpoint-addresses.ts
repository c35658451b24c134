// Which addresses a direct service's endpoint may not reach: cloud metadata (never), the appliance's
// own listeners (never), private, loopback and link-local ones (unless config.proxy.allowPrivateTargets).
// Pure rules on an address, shared by the hub's SSRF guard (src/surfaces/hub/ssrf.ts, which resolves
// names and checks again at connect time) and the CLI, which warns before a write that cannot work.
import { BlockList, isIP } from 'node:net';

const metadata = new BlockList();
metadata.addAddress('169.254.169.254');
metadata.addAddress('169.254.170.2'); // ECS task metadata
metadata.addAddress('fd00:ec2::254', 'ipv6');
metadata.addAddress('100.100.100.200'); // Alibaba Cloud

const nonPublic = new BlockList();
for (const [net, bits] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4]] as const) {
  nonPublic.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) {
  nonPublic.addSubnet(net, bits, 'ipv6');
}

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addSubnet('0.0.0.0', 32, 'ipv4');
loopback.addAddress('::1', 'ipv6');
loopback.addAddress('::', 'ipv6');

function family(ip: string): 'ipv4' | 'ipv6' {
  return isIP(ip) === 6 ? 'ipv6' : 'ipv4';
}

function unmapped(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip;
}

export interface GuardOptions {
  allowPrivate: boolean;
  /** "host:port" of the appliance's own listeners. */
  ownListeners: () => string[];
}

/** Why the address may not be dialled, or null when it may. */
export function refusal(ipIn: string, port: number | null, opts: GuardOptions): string | null {
  const ip = unmapped(ipIn);
  const fam = family(ip);
  if (metadata.check(ip, fam)) return 'cloud metadata addresses are never proxied';
  if (port !== null) {
    for (const l of opts.ownListeners()) {
      const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(l);
      if (!m || Number(m[2]) !== port) continue;
      const host = m[1]!;
      if (host === ip || loopback.check(ip, fam) || host === '0.0.0.0' || host === '::') return "the appliance's own listeners are not proxied";
    }
  }
  if (!opts.allowPrivate && nonPublic.check(ip, fam)) return 'private, loopback and link-local addresses need proxy.allowPrivateTargets';
  return null;
}

/**
 * What the guard makes of an endpoint whose host is an IP literal: `metadata` (never proxied),
 * `private` (proxied only with proxy.allowPrivateTargets), or null (a public address, or a name,
 * which only the appliance can resolve).
 */
export function literalAddressClass(endpoint: URL): 'metadata' | 'private' | null {
  const host = endpoint.hostname.replace(/^\[|\]$/g, '');
  if (!isIP(host)) return null;
  if (refusal(host, null, { allowPrivate: true, ownListeners: () => [] })) return 'metadata';
  return refusal(host, null, { allowPrivate: false, ownListeners: () => [] }) ? 'private' : null;
}
