// The certificate nginx serves on 443. Uploaded PEMs are checked (parseable, key matches the
// leaf certificate, not expired) and written to DIR/tls/{cert,key}.pem, the files the appliance's
// nginx configuration names; nginx is reloaded by the appliance when they change.
import { X509Certificate, createPrivateKey, createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppError } from '../../core/errors/errors.ts';

export interface CertInfo {
  subject: string;
  issuer: string;
  valid_from: string;
  valid_to: string;
  fingerprint_sha256: string;
  subject_alt_names: string | null;
  /** Signed by its own key (first boot's certificate, or one made with openssl req -x509): clients
   *  must be given it to trust it, as `nexus agent enroll --ca` is. */
  self_signed: boolean;
  /** The certificate itself (PEM): public, every TLS handshake sends it. */
  pem: string;
}

export const MAX_PEM_BYTES = 64 * 1024;

export function tlsPaths(dataDir: string) {
  const dir = join(dataDir, 'tls');
  return { dir, cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
}

/**
 * The certificate's names as a person writes them: Node spells IPv6 SANs in full upper case
 * (`IP Address:FD00:0:0:0:0:0:0:2`); RFC 5952 form is `fd00::2`. Anything else stays as Node gives it.
 */
export function readableAltNames(altNames: string | undefined): string | null {
  if (!altNames) return null;
  return altNames.replace(/IP Address:([0-9A-Fa-f:]+:[0-9A-Fa-f:]*)(?=,|$)/g, (whole, ip: string) => {
    try {
      return `IP Address:${new URL(`http://[${ip}]/`).hostname.slice(1, -1)}`;
    } catch {
      return whole;
    }
  });
}

function info(cert: X509Certificate): CertInfo {
  return {
    subject: cert.subject.replaceAll('\n', ', '),
    issuer: cert.issuer.replaceAll('\n', ', '),
    valid_from: new Date(cert.validFrom).toISOString(),
    valid_to: new Date(cert.validTo).toISOString(),
    fingerprint_sha256: createHash('sha256').update(cert.raw).digest('hex').match(/../g)!.join(':').toUpperCase(),
    subject_alt_names: readableAltNames(cert.subjectAltName),
    self_signed: cert.subject === cert.issuer && cert.verify(cert.publicKey),
    pem: cert.toString(),
  };
}

export function readCertificate(dataDir: string): CertInfo | null {
  try {
    return info(new X509Certificate(readFileSync(tlsPaths(dataDir).cert)));
  } catch {
    return null;
  }
}

/** Validates a PEM chain and key; returns the leaf's details. Throws validation_failed with a reason. */
export function checkCertificate(certPem: string, keyPem: string, now = new Date()): CertInfo {
  const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(certPem);
  if (!first) throw new AppError('validation_failed', 'certificate is not a PEM certificate (-----BEGIN CERTIFICATE-----)', { details: { param: 'certificate' } });
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(first[0]);
  } catch {
    throw new AppError('validation_failed', 'certificate could not be parsed', { details: { param: 'certificate' } });
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(keyPem)) throw new AppError('validation_failed', 'private_key is not a PEM private key', { details: { param: 'private_key' } });
  if (/ENCRYPTED/.test(keyPem)) throw new AppError('validation_failed', 'private_key is encrypted; upload it without a passphrase', { details: { param: 'private_key' } });
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new AppError('validation_failed', 'private_key could not be parsed', { details: { param: 'private_key' } });
  }
  if (!leaf.checkPrivateKey(key)) throw new AppError('validation_failed', 'private_key does not belong to the certificate', { details: { param: 'private_key' } });
  if (new Date(leaf.validTo) <= now) throw new AppError('validation_failed', `certificate expired on ${new Date(leaf.validTo).toISOString()}`, { details: { param: 'certificate' } });
  return info(leaf);
}

/** Writes both files atomically (temp file + rename) with mode 0600. */
export function storeCertificate(dataDir: string, certPem: string, keyPem: string): void {
  const p = tlsPaths(dataDir);
  mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  for (const [path, body] of [[p.key, keyPem], [p.cert, certPem]] as const) {
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, body.trim() + '\n', { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  }
}
