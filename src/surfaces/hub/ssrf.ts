// SSRF guard for direct services: the appliance dials their endpoint itself, so an endpoint must not
// point at cloud metadata, link-local or private addresses, or at the appliance's own listeners,
// unless the operator allows private targets (config.proxy.allowPrivateTargets). Checked before the
// request and again at connect time on the address actually dialled, so DNS rebinding gains nothing.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { AppError } from '../../core/errors/errors.ts';

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

function blocked(reason: string): AppError {
  return new AppError('forbidden', `service endpoint refused: ${reason}`);
}

/** Resolves the URL's host and refuses it when any address is off limits. */
export async function checkUrl(url: URL, opts: GuardOptions): Promise<void> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const addrs: string[] = isIP(host)
    ? [host]
    : await new Promise<string[]>((resolve, reject) =>
      dnsLookup(host, { all: true }, (err, list) => (err ? reject(new AppError('bad_gateway', `cannot resolve ${host}`)) : resolve(list.map((a) => a.address)))),
    );
  for (const a of addrs) {
    const why = refusal(a, port, opts);
    if (why) throw blocked(why);
  }
}

type LookupCb = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A `lookup` for the dialer that re-checks the address actually connected to. */
export function guardedLookup(opts: GuardOptions) {
  return (hostname: string, options: object, cb: LookupCb) => {
    dnsLookup(hostname, { ...options, all: true }, (err, list) => {
      if (err) return cb(err, []);
      for (const a of list) {
        const why = refusal(a.address, null, opts);
        if (why) return cb(Object.assign(new Error(why), { code: 'ESSRF' }), []);
      }
      if ((options as { all?: boolean }).all) return cb(null, list);
      cb(null, list[0]!.address, list[0]!.family);
    });
  };
}
