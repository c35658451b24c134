// The self-signed TLS certificate first boot installs until an administrator puts a real one in place.
// The key pair comes from node:crypto (native, fast); node-forge builds and signs the X.509 certificate.
import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';

export interface SelfSigned {
  certPem: string;
  keyPem: string;
  /** SHA-256 of the DER certificate, colon-separated hex (what browsers show). */
  fingerprint: string;
}

/** Marks the certificates first boot makes, so a re-run replaces only those. */
export const GENERATED_ORG = 'Nexus appliance (self-signed)';

export const CERT_VALIDITY_DAYS = 825; // the longest lifetime browsers accept for a server certificate

export function fingerprintOf(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}

/** Self-signed server certificate whose SANs are `names` (host names and IP addresses). */
export function createSelfSignedCertificate(names: string[], now = new Date()): SelfSigned {
  if (names.length === 0) throw new Error('a certificate needs at least one name');
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  // RFC 5280 §4.1.2.2: positive, at most 20 octets; clear the top bit so it is never read as negative.
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f;
  cert.serialNumber = serial.toString('hex');
  cert.validity.notBefore = new Date(now.getTime() - 5 * 60_000); // tolerate small clock skew
  cert.validity.notAfter = new Date(now.getTime() + CERT_VALIDITY_DAYS * 86_400_000);
  const subject = [
    { name: 'commonName', value: names[0]!.slice(0, 64) },
    { name: 'organizationName', value: GENERATED_ORG },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: names.map((n) => (isIP(n) ? { type: 7, ip: n } : { type: 2, value: n })),
    },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  const certPem = forge.pki.certificateToPem(cert);
  return { certPem, keyPem, fingerprint: fingerprintOf(certPem) };
}

/** True when the certificate signed itself (ours, or any other self-signed one). */
export function isSelfSigned(certPem: string): boolean {
  const x = new X509Certificate(certPem);
  // Not checkIssued(): OpenSSL wants keyCertSign on the issuer, which a leaf like ours does not have.
  return x.issuer === x.subject && x.verify(x.publicKey);
}

/** True for a certificate first boot made (self-signed, with our organisation name). */
export function isOurs(certPem: string): boolean {
  const x = new X509Certificate(certPem);
  return isSelfSigned(certPem) && x.subject.split('\n').includes(`O=${GENERATED_ORG}`);
}

/** True when `keyPem` (PKCS#1, PKCS#8 or SEC1 PEM) is the private key of `certPem`. */
export function keyMatchesCertificate(certPem: string, keyPem: string): boolean {
  try {
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}
