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

/** The eight 16-bit words of an IPv6 address, or null for anything else. */
function ipv6Words(ip: string): number[] | null {
  if (isIP(ip) !== 6) return null;
  let s = ip.toLowerCase().split('%')[0]!;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    s = `${s.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const gap = s.indexOf('::');
  const head = (gap < 0 ? s : s.slice(0, gap)).split(':').filter(Boolean);
  const tail = gap < 0 ? [] : s.slice(gap + 2).split(':').filter(Boolean);
  const words = gap < 0 ? head : [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  return words.length === 8 ? words.map((w) => parseInt(w, 16)) : null;
}

/**
 * The IPv4 address an IPv6 address stands for, where it reaches that IPv4 host: IPv4-mapped
 * (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d, RFC 4291, deprecated) and NAT64 (64:ff9b::/96, RFC
 * 6052; 64:ff9b:1::/48, RFC 8215), so `[64:ff9b::a9fe:a9fe]` is judged as 169.254.169.254.
 */
function unmapped(ip: string): string {
  const w = ipv6Words(ip);
  if (!w) return ip;
  const zero = (from: number, to: number) => w.slice(from, to).every((x) => x === 0);
  const carries = (zero(0, 5) && (w[5] === 0xffff || (w[5] === 0 && (w[6] !== 0 || w[7]! > 1))))
    || (w[0] === 0x64 && w[1] === 0xff9b && (zero(2, 6) || w[2] === 1));
  return carries ? `${w[6]! >> 8}.${w[6]! & 255}.${w[7]! >> 8}.${w[7]! & 255}` : ip;
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
 * which only the appliance can resolve). `localhost` and `*.localhost` are loopback by definition
 * (RFC 6761 §6.3), so they are `private` too: Ollama's `http://localhost:11434` is refused as
 * 127.0.0.1 is.
 */
export function literalAddressClass(endpoint: URL): 'metadata' | 'private' | null {
  if (/(^|\.)localhost\.?$/i.test(endpoint.hostname)) return 'private';
  const host = endpoint.hostname.replace(/^\[|\]$/g, '');
  if (!isIP(host)) return null;
  if (refusal(host, null, { allowPrivate: true, ownListeners: () => [] })) return 'metadata';
  return refusal(host, null, { allowPrivate: false, ownListeners: () => [] }) ? 'private' : null;
}
