// `nexus first-boot`: everything an appliance needs once, on its first start, that must never be baked
// into an image: the master key, the one-time setup token, a TLS certificate for the names the host is
// reached by, the nginx site and the appliance config. Idempotent: a marker file records completion and
// a second run does nothing unless forced (e.g. after the public IP changed).
import { chmodSync, chownSync, closeSync, constants, existsSync, fchmodSync, fchownSync, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { parseHostPort } from '../core/config/config.ts';
import { loadOrCreateMasterKey } from '../core/crypto/master-key.ts';
import { acquireDataDirLock, closeDatabase, DataDirError, openDatabase, prepareDataDir } from '../core/db/db.ts';
import { loadNativeBinding } from '../core/native/sea-addons.ts';
import { createSetupTokens } from '../core/identity/setup.ts';
import { createUsersStore } from '../core/identity/users-store.ts';
import { createSettingsStore } from '../core/settings/settings-store.ts';
import { createSelfSignedCertificate, fingerprintOf, isOurs, isSelfSigned, keyMatchesCertificate } from './certificate.ts';
import { discoverHostAddresses, type HostAddresses } from './host-addresses.ts';
import { renderNginxSite, type NginxSiteOptions } from './nginx-site.ts';

/** Where first boot writes, relative to the root (`/` on the appliance). nexus.service and install.sh agree. */
export const LAYOUT = {
  dataDir: 'var/lib/nexus',
  cacheDir: 'var/cache/nexus',
  configDir: 'etc/nexus',
  configFile: 'etc/nexus/nexus.yaml',
  // How the site was rendered (ports, names, addresses, upstream), so --site-only can render it again.
  siteOptions: 'etc/nexus/nginx-site.json',
  // The files the console's TLS upload writes (PUT /api/v1/settings/tls stores DIR/tls/{cert,key}.pem);
  // nexus-tls.path reloads nginx when they change.
  tlsDir: 'var/lib/nexus/tls',
  cert: 'var/lib/nexus/tls/cert.pem',
  key: 'var/lib/nexus/tls/key.pem',
  nginxSite: 'etc/nginx/conf.d/nexus.conf',
  marker: 'var/lib/nexus/first-boot.done',
} as const;

export type Paths = { root: string } & { [K in keyof typeof LAYOUT]: string };

export function pathsUnder(root: string): Paths {
  const r = resolve(root);
  const out = { root: r } as Paths;
  for (const [k, v] of Object.entries(LAYOUT)) (out as Record<string, string>)[k] = join(r, v);
  return out;
}

export interface FirstBootOptions {
  root: string;
  force: boolean;
  /** IMDS base URL, or null to use local addresses only. */
  metadataUrl: string | null;
  metadataTimeoutMs?: number;
  /** System user that runs `nexus serve` and must own the data and cache dirs; null leaves ownership as is. */
  owner: string | null;
  httpsPort: number;
  httpPort: number;
  /** Public listener of `nexus serve`, which nginx proxies to. */
  listen: string;
  adminListen: string;
  /** Addresses nginx listens on; default every IPv4 address, and IPv6 when the kernel has it. */
  nginxAddresses?: string[] | null;
  /** An administrator's certificate and key (PEM) to install instead of the self-signed one. */
  certFile?: string | null;
  keyFile?: string | null;
}

/** 'generated': made by first boot; 'installed': an administrator's, browsers trust it; 'self-signed': an administrator's own self-signed one. */
export type CertificateKind = 'generated' | 'self-signed' | 'installed';

export interface FirstBootResult {
  status: 'done' | 'skipped';
  paths: Paths;
  publicUrl?: string;
  setupUrl?: string;
  /** The one-time setup token; null when an admin exists (setup complete) or the server holds the data dir. */
  setupToken?: string | null;
  setupNote?: string;
  addresses?: HostAddresses;
  certificate?: { kind: CertificateKind; fingerprint: string };
}

export class FirstBootError extends Error {
  override name = 'FirstBootError';
}

type Owner = { uid: number; gid: number } | null;

/**
 * Temp file + rename. The temp file is created exclusively (O_EXCL does not follow a symlink planted
 * at its name) and given its mode and owner through the descriptor, so a re-run as root inside a
 * directory another user can write never writes through a link.
 */
function writeAtomic(path: string, data: string | Buffer, mode: number, owner: Owner = null): void {
  const tmp = `${path}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fchmodSync(fd, mode); // the umask may have narrowed it
    if (owner) fchownSync(fd, owner.uid, owner.gid);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/**
 * Reads a certificate or key file another user may control: never through a symlink (O_NOFOLLOW), only
 * a regular file, at most 1 MiB (a link to /dev/zero must not exhaust memory).
 */
function readPemFile(path: string): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > 1024 * 1024) throw new FirstBootError(`${path} is not a PEM file`);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

const myUid = () => process.getuid?.() ?? -1;

/** True when `path` exists and belongs to another user (a re-run as root over nexus's own files). */
function foreign(path: string): boolean {
  try {
    return lstatSync(path).uid !== myUid();
  } catch {
    return false;
  }
}

/** Creates a directory (parents 0755); an existing one must be a real directory, and keeps its mode unless it is ours. */
function ensureDir(path: string, mode: number): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 }); // /var, /var/lib, /etc stay world-readable
  mkdirSync(path, { recursive: true, mode });
  const st = lstatSync(path);
  if (!st.isDirectory()) throw new FirstBootError(`${path} exists but is not a directory`);
  if (st.uid === myUid()) chmodSync(path, mode);
}

/** uid/gid of a local system user, from /etc/passwd (the nexus user is always local). */
export function lookupUser(name: string, passwdFile = '/etc/passwd'): { uid: number; gid: number } {
  let text: string;
  try {
    text = readFileSync(passwdFile, 'utf8');
  } catch (err) {
    throw new FirstBootError(`cannot read ${passwdFile} to find user "${name}": ${(err as Error).message}`);
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  throw new FirstBootError(`user "${name}" does not exist; create it (appliance/install.sh does) or omit --owner`);
}

function chownTree(path: string, uid: number, gid: number): void {
  const st = lstatSync(path);
  if (st.isFile() && st.nlink > 1) return; // a hard link could point anywhere on the file system
  chownSync(path, uid, gid);
  if (!st.isDirectory()) return;
  for (const entry of readdirSync(path)) {
    const p = join(path, entry);
    if (lstatSync(p).isSymbolicLink()) continue; // never follow a link out of the tree
    chownTree(p, uid, gid);
  }
}

function hostForUrl(name: string): string {
  return isIP(name) === 6 ? `[${name}]` : name;
}

/**
 * The setup token lives in the real database (its hash in settings), so the `nexus serve` that starts
 * next accepts the same token. When a server already holds the data dir (a forced re-run on a live
 * appliance) the server owns the token; we leave it alone.
 */
function prepareSecrets(paths: Paths, dataDirIsForeign: boolean): { token: string | null; note?: string } {
  if (dataDirIsForeign) {
    // Root must not write into a directory another user controls (links planted there would redirect
    // the writes); `nexus serve` makes its own master key and setup token when they are missing.
    return { token: null, note: `${paths.dataDir} belongs to the nexus user; nexus serve keeps its master key and setup token (${join(paths.dataDir, 'setup-token')})` };
  }
  prepareDataDir(paths.dataDir);
  loadOrCreateMasterKey(paths.dataDir);
  const nativeBinding = loadNativeBinding(paths.cacheDir);
  let release: () => void;
  try {
    release = acquireDataDirLock(paths.dataDir, nativeBinding);
  } catch (err) {
    if (err instanceof DataDirError && /already using/.test(err.message)) {
      return { token: null, note: `nexus is running and holds ${paths.dataDir}; its setup token (if any) is in ${join(paths.dataDir, 'setup-token')}` };
    }
    throw err;
  }
  try {
    const db = openDatabase(join(paths.dataDir, 'nexus.db'), { nativeBinding });
    try {
      const hasAdmin = createUsersStore(db).countAdmins() > 0;
      const token = createSetupTokens(paths.dataDir, createSettingsStore(db)).ensure(hasAdmin);
      return token ? { token } : { token: null, note: 'setup is already complete (an administrator exists)' };
    } finally {
      closeDatabase(db);
    }
  } finally {
    release();
  }
}

interface GivenCertificate {
  certPem: string;
  keyPem: string;
  fingerprint: string;
}

/** Reads and checks --cert/--key before anything is written. */
function readGivenCertificate(opts: FirstBootOptions): GivenCertificate | null {
  if (!opts.certFile && !opts.keyFile) return null;
  if (!opts.certFile || !opts.keyFile) throw new FirstBootError('--cert and --key go together');
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch (err) {
      throw new FirstBootError(`cannot read ${f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const certPem = read(opts.certFile);
  const keyPem = read(opts.keyFile);
  let fingerprint: string;
  try {
    fingerprint = fingerprintOf(certPem);
  } catch {
    throw new FirstBootError(`${opts.certFile} is not a PEM certificate`);
  }
  if (!keyMatchesCertificate(certPem, keyPem)) throw new FirstBootError(`${opts.keyFile} is not the private key of ${opts.certFile}`);
  return { certPem, keyPem, fingerprint };
}

function installCertificate(paths: Paths, given: GivenCertificate | null, names: string[], owner: Owner): { kind: CertificateKind; fingerprint: string } {
  if (given) {
    writeAtomic(paths.key, given.keyPem, 0o600, owner);
    writeAtomic(paths.cert, given.certPem, 0o600, owner);
    return { kind: isSelfSigned(given.certPem) ? 'self-signed' : 'installed', fingerprint: given.fingerprint };
  }
  // A certificate an administrator installed (console upload, --cert) survives every re-run; only the
  // one first boot made is re-made, for the current names.
  if (existsSync(paths.cert) && existsSync(paths.key)) {
    try {
      const certPem = readPemFile(paths.cert);
      if (!isOurs(certPem) && keyMatchesCertificate(certPem, readPemFile(paths.key))) {
        return { kind: isSelfSigned(certPem) ? 'self-signed' : 'installed', fingerprint: fingerprintOf(certPem) };
      }
    } catch {
      /* unreadable or not a certificate: replace it */
    }
  }
  const made = createSelfSignedCertificate(names);
  writeAtomic(paths.key, made.keyPem, 0o600, owner);
  writeAtomic(paths.cert, made.certPem, 0o600, owner);
  return { kind: 'generated', fingerprint: made.fingerprint };
}

export async function runFirstBoot(opts: FirstBootOptions): Promise<FirstBootResult> {
  const paths = pathsUnder(opts.root);
  if (existsSync(paths.marker) && !opts.force) return { status: 'skipped', paths };
  const listen = parseHostPort(opts.listen, '--listen');
  parseHostPort(opts.adminListen, '--admin-listen');
  const owner = opts.owner ? lookupUser(opts.owner) : null;
  const given = readGivenCertificate(opts);

  const dataDirIsForeign = foreign(paths.dataDir);
  const cacheDirIsForeign = foreign(paths.cacheDir);
  ensureDir(paths.dataDir, 0o700);
  ensureDir(paths.cacheDir, 0o700);
  ensureDir(paths.configDir, 0o755);
  ensureDir(paths.tlsDir, 0o700);
  mkdirSync(dirname(paths.nginxSite), { recursive: true, mode: 0o755 });

  const secrets = prepareSecrets(paths, dataDirIsForeign);
  const addresses = await discoverHostAddresses({ metadataUrl: opts.metadataUrl, timeoutMs: opts.metadataTimeoutMs });
  const certificate = installCertificate(paths, given, addresses.names, owner);

  const primary = addresses.names[0]!;
  const publicUrl = `https://${hostForUrl(primary)}${opts.httpsPort === 443 ? '' : `:${opts.httpsPort}`}`;
  const siteOptions: SiteOptions = {
    addresses: opts.nginxAddresses ?? (existsSync('/proc/net/if_inet6') ? ['*', '[::]'] : ['*']),
    httpsPort: opts.httpsPort,
    httpPort: opts.httpPort,
    serverNames: addresses.names,
    upstream: `${isIP(listen.host) === 6 ? `[${listen.host}]` : listen.host}:${listen.port}`,
  };
  writeAtomic(paths.siteOptions, JSON.stringify(siteOptions, null, 2) + '\n', 0o644);
  writeAtomic(paths.nginxSite, renderSite(paths, siteOptions, certificate.kind === 'installed'), 0o644);
  writeAtomic(
    paths.configFile,
    `# Written by \`nexus first-boot\`; re-run it with --force to regenerate. Read by nexus.service.\n` +
      toYaml({ publicUrl, listen: opts.listen, adminListen: opts.adminListen }),
    0o644,
  );

  // Hand over only what this run created; never walk a tree another user controls as root.
  if (owner && !dataDirIsForeign) chownTree(paths.dataDir, owner.uid, owner.gid);
  if (owner && !cacheDirIsForeign) chownTree(paths.cacheDir, owner.uid, owner.gid);
  // Last: a crash before this line means the next boot runs everything again. No secrets in here.
  writeAtomic(
    paths.marker,
    JSON.stringify({ completed_at: new Date().toISOString(), public_url: publicUrl, names: addresses.names, source: addresses.source, certificate }, null, 2) + '\n',
    0o644,
    owner,
  );

  return {
    status: 'done',
    paths,
    publicUrl,
    setupUrl: `${publicUrl}/setup`,
    setupToken: secrets.token,
    ...(secrets.note ? { setupNote: secrets.note } : {}),
    addresses,
    certificate,
  };
}

/** What the site is rendered from, besides the certificate (stored in /etc/nexus/nginx-site.json). */
export type SiteOptions = Pick<NginxSiteOptions, 'addresses' | 'httpsPort' | 'httpPort' | 'serverNames' | 'upstream'>;

function renderSite(paths: Paths, o: SiteOptions, hsts: boolean): string {
  return renderNginxSite({ ...o, certPath: paths.cert, keyPath: paths.key, hsts });
}

export interface SiteOnlyResult {
  paths: Paths;
  hsts: boolean;
  subject: string | null;
}

/**
 * Renders the nginx site again for the certificate now in place (after the console stored an upload),
 * touching nothing but the site file: it runs as root on a trigger the app can cause, so it only reads
 * the data dir. HSTS goes on when the certificate is valid for its key and not self-signed; a broken
 * pair renders without it and `nginx -t` (run next by the unit) refuses to load it.
 */
export function renderSiteOnly(root: string): SiteOnlyResult {
  const paths = pathsUnder(root);
  let options: SiteOptions;
  try {
    options = JSON.parse(readFileSync(paths.siteOptions, 'utf8')) as SiteOptions;
  } catch {
    throw new FirstBootError(`${paths.siteOptions} is missing or unreadable: run nexus first-boot first`);
  }
  let hsts = false;
  let subject: string | null = null;
  try {
    const certPem = readPemFile(paths.cert);
    subject = new X509Certificate(certPem).subject.replace(/\n/g, ', ');
    hsts = !isSelfSigned(certPem) && keyMatchesCertificate(certPem, readPemFile(paths.key));
  } catch {
    /* no usable certificate: no HSTS */
  }
  writeAtomic(paths.nginxSite, renderSite(paths, options, hsts), 0o644);
  return { paths, hsts, subject };
}

function readSubject(certPath: string): string {
  try {
    return new X509Certificate(readPemFile(certPath)).subject.replace(/\n/g, ', ');
  } catch {
    return certPath;
  }
}

/** The lines printed to stdout and the serial console (the EC2 system log shows them). */
export function summaryLines(r: FirstBootResult): string[] {
  if (r.status === 'skipped') {
    return [`nexus first-boot: already done (${r.paths.marker} exists); run with --force to do it again`];
  }
  const lines = [
    '',
    '  ============================ Nexus first boot ============================',
    `  Setup URL:    ${r.setupUrl}`,
  ];
  if (r.setupToken) lines.push(`  Setup token:  ${r.setupToken}`);
  else lines.push(`  Setup token:  none (${r.setupNote})`);
  const cert = r.certificate!;
  lines.push(
    cert.kind === 'generated'
      ? `  Certificate:  self-signed, made now for ${r.addresses!.names.join(', ')}`
      : `  Certificate:  ${cert.kind === 'installed' ? 'installed' : 'installed (self-signed)'}: ${readSubject(r.paths.cert)}`,
    `                SHA-256 ${cert.fingerprint}`,
    `  Names from:   ${r.addresses!.source === 'imds' ? 'EC2 instance metadata (IMDSv2)' : 'local interfaces'}`,
    '  ==========================================================================',
    '',
  );
  return lines;
}
