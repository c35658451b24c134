// SSRF guard for direct services: the appliance dials their endpoint itself, so an endpoint must not
// point at cloud metadata, link-local or private addresses, or at the appliance's own listeners,
// unless the operator allows private targets (config.proxy.allowPrivateTargets). Checked before the
// request and again at connect time on the address actually dialled, so DNS rebinding gains nothing.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { buildConnector } from 'undici';
import { AppError } from '../../core/errors/errors.ts';
import { refusal, type GuardOptions } from '../../core/services/endpoint-addresses.ts';

export { refusal, type GuardOptions };

function blocked(reason: string): AppError {
  return new AppError('forbidden', `service endpoint refused: ${reason}`);
}

/** The port a URL dials (its scheme's default when it names none). */
export function portOf(url: URL): number {
  return Number(url.port || (url.protocol === 'https:' || url.protocol === 'wss:' ? 443 : 80));
}

/** Resolves the URL's host and refuses it when any address is off limits. */
export async function checkUrl(url: URL, opts: GuardOptions): Promise<void> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = portOf(url);
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

/**
 * A `lookup` for the dialer that re-checks the address actually connected to, on the port dialled
 * (so a name that turns into the appliance's own loopback listener between the check and the
 * connect is refused too).
 */
export function guardedLookup(opts: GuardOptions, port: number) {
  return (hostname: string, options: object, cb: LookupCb) => {
    dnsLookup(hostname, { ...options, all: true }, (err, list) => {
      if (err) return cb(err, []);
      for (const a of list) {
        const why = refusal(a.address, port, opts);
        if (why) return cb(Object.assign(new Error(why), { code: 'ESSRF' }), []);
      }
      if ((options as { all?: boolean }).all) return cb(null, list);
      cb(null, list[0]!.address, list[0]!.family);
    });
  };
}

type Connector = ReturnType<typeof buildConnector>;

/**
 * undici's `connect` for the direct services' pool: a connector per port (the lookup hook does not
 * see the port), each dialling through guardedLookup.
 */
export function guardedConnector(opts: GuardOptions): Connector {
  const byPort = new Map<number, Connector>();
  return (options, callback) => {
    const port = Number(options.port) || (options.protocol === 'https:' ? 443 : 80);
    let connector = byPort.get(port);
    if (!connector) {
      connector = buildConnector({ lookup: guardedLookup(opts, port) } as buildConnector.BuildOptions);
      byPort.set(port, connector);
    }
    return connector(options, callback);
  };
}
