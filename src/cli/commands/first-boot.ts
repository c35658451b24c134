// `nexus first-boot`: prepares a fresh appliance once (see src/first-boot/first-boot.ts).
import { appendFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from '../../core/config/config.ts';
import { DataDirError } from '../../core/db/db.ts';
import { DEFAULT_METADATA_URL } from '../../first-boot/host-addresses.ts';
import { FirstBootError, renderSiteOnly, runFirstBoot, summaryLines } from '../../first-boot/first-boot.ts';
import { NginxSiteError } from '../../first-boot/nginx-site.ts';

export const FIRST_BOOT_USAGE = `Usage: nexus first-boot [options]

Creates the data dir, master key and one-time setup token, discovers the public address (EC2 IMDSv2,
else local interfaces), makes a self-signed TLS certificate for it, renders the nginx site and
/etc/nexus/nexus.yaml, and prints the setup URL and token. Does nothing once done, unless --force.

  --root DIR              write everything under DIR instead of / (default /)
  --force                 run again (e.g. after the public IP changed); keeps an installed certificate
  --site-only             only render the nginx site again for the certificate in place (after an
                          upload in the console; nexus-tls-reload.service runs this)
  --metadata-url URL      instance metadata service (default ${DEFAULT_METADATA_URL})
  --no-metadata           do not ask a metadata service; use local addresses
  --owner USER            user that runs nexus serve; owns the data and cache dirs (nexus.service: nexus)
  --cert FILE --key FILE  install this certificate and key instead of a self-signed one (enables HSTS)
  --https-port PORT       nginx TLS port (default 443)
  --http-port PORT        nginx redirect port (default 80)
  --listen HOST:PORT      public listener of nexus serve, proxied by nginx (default 127.0.0.1:8080)
  --admin-listen HOST:PORT  loopback admin listener (default 127.0.0.1:9090)
  --bind ADDR[,ADDR]      addresses nginx listens on (default: all IPv4, and IPv6 when present)
  --console PATH          also write the summary to PATH (e.g. /dev/ttyS0)
`;

function portArg(value: string | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d{1,5}$/.test(value) || n < 1 || n > 65535) throw new FirstBootError(`${what}: "${value}" is not a TCP port`);
  return n;
}

export async function firstBootCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      root: { type: 'string' },
      force: { type: 'boolean' },
      'site-only': { type: 'boolean' },
      'metadata-url': { type: 'string' },
      'no-metadata': { type: 'boolean' },
      owner: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      'https-port': { type: 'string' },
      'http-port': { type: 'string' },
      listen: { type: 'string' },
      'admin-listen': { type: 'string' },
      bind: { type: 'string' },
      console: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(FIRST_BOOT_USAGE);
    return 0;
  }
  if (values['site-only']) {
    try {
      const r = renderSiteOnly(values.root ?? '/');
      process.stdout.write(`nexus first-boot: rendered ${r.paths.nginxSite} for ${r.subject ?? 'no usable certificate'} (HSTS ${r.hsts ? 'on' : 'off'})\n`);
      return 0;
    } catch (err) {
      if (err instanceof FirstBootError || err instanceof NginxSiteError) {
        process.stderr.write(`nexus first-boot: ${err.message}\n`);
        return 1;
      }
      throw err;
    }
  }
  let result;
  try {
    let metadataUrl: string | null = values['metadata-url'] ?? DEFAULT_METADATA_URL;
    const u = new URL(metadataUrl); // throws TypeError on garbage
    if (u.protocol !== 'http:') throw new FirstBootError(`--metadata-url: "${metadataUrl}" must be an http:// URL`);
    metadataUrl = values['no-metadata'] ? null : u.origin;
    result = await runFirstBoot({
      root: values.root ?? '/',
      force: !!values.force,
      metadataUrl,
      owner: values.owner ?? null,
      certFile: values.cert ?? null,
      keyFile: values.key ?? null,
      httpsPort: portArg(values['https-port'], 443, '--https-port'),
      httpPort: portArg(values['http-port'], 80, '--http-port'),
      listen: values.listen ?? '127.0.0.1:8080',
      adminListen: values['admin-listen'] ?? '127.0.0.1:9090',
      nginxAddresses: values.bind ? values.bind.split(',').map((a) => a.trim()).filter(Boolean) : null,
    });
  } catch (err) {
    const known = err instanceof FirstBootError || err instanceof DataDirError || err instanceof ConfigError || err instanceof NginxSiteError;
    const e = err as NodeJS.ErrnoException;
    const message = known ? e.message
      : err instanceof TypeError && /Invalid URL/.test(e.message) ? `--metadata-url: not a URL`
      : e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS' ? `permission denied: ${e.message} (run as root, or use --root DIR)`
      : null;
    if (message) {
      process.stderr.write(`nexus first-boot: ${message}\n`);
      return 1;
    }
    throw err;
  }
  const text = summaryLines(result).join('\n') + '\n';
  process.stdout.write(text);
  if (values.console && result.status === 'done') {
    try {
      appendFileSync(values.console, text);
    } catch (err) {
      process.stderr.write(`nexus first-boot: could not write to ${values.console}: ${(err as Error).message}\n`);
    }
  }
  return 0;
}
