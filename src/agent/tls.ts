// Trusting the appliance's certificate. A fresh appliance serves the self-signed certificate its
// first boot made; an agent reaches it only when that certificate is its trust anchor. It is given
// once at enrollment (`nexus agent enroll --ca FILE`) and kept with the node's identity, so the
// daemon needs no environment. Without one, the system's roots apply (NODE_EXTRA_CA_CERTS too, as
// for any Node program).
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AgentError } from './home.ts';

/** Where first boot keeps the appliance's certificate (first-boot.ts). */
export const APPLIANCE_CERT = '/var/lib/nexus/tls/cert.pem';

const PEM_CERT = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** The PEM certificates in `path`, each checked to parse; a usage error (exit 2) otherwise. */
export function readCaFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new AgentError(`--ca ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`, 2);
  }
  const certs = text.match(PEM_CERT) ?? [];
  if (!certs.length) throw new AgentError(`--ca ${path}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)`, 2);
  for (const pem of certs) {
    try {
      new X509Certificate(pem);
    } catch {
      throw new AgentError(`--ca ${path}: a certificate in it does not parse`, 2);
    }
  }
  return `${certs.join('\n')}\n`;
}

// What Node reports when the peer's chain does not end at a trusted root, or names another host.
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

/** A sentence saying what to do when `err` (or its cause) is a certificate the agent does not trust. */
export function untrustedHint(err: unknown): string | null {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    const code = typeof e.code === 'string' ? e.code : '';
    if (UNTRUSTED.has(code)) {
      return `the appliance's TLS certificate is not trusted here (${code}); enroll with --ca FILE holding its certificate (on the appliance: ${APPLIANCE_CERT}), or give the appliance a certificate from a public CA`;
    }
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `the appliance's TLS certificate does not name this address (${(e as Error).message})`;
  }
  return null;
}
