import { X509Certificate, createPrivateKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createSelfSignedCertificate, isSelfSigned, keyMatchesCertificate } from './certificate.ts';

describe('self-signed certificate', () => {
  const made = createSelfSignedCertificate(['203.0.113.10', 'ec2-203-0-113-10.compute-1.amazonaws.com', '2001:db8::1', 'localhost']);
  const x = new X509Certificate(made.certPem);

  it('covers every name as a SAN of the right kind, for a server', () => {
    expect(x.subjectAltName!.split(', ')).toEqual([
      'IP Address:203.0.113.10',
      'DNS:ec2-203-0-113-10.compute-1.amazonaws.com',
      'IP Address:2001:DB8:0:0:0:0:0:1',
      'DNS:localhost',
    ]);
    expect(x.checkIP('203.0.113.10')).toBe('203.0.113.10');
    expect(x.checkHost('ec2-203-0-113-10.compute-1.amazonaws.com')).toBeTruthy();
    expect(x.ca).toBe(false);
    expect(x.keyUsage).toContain('1.3.6.1.5.5.7.3.1'); // serverAuth
    expect(x.fingerprint256).toBe(made.fingerprint);
    expect(new Date(x.validTo).getTime()).toBeGreaterThan(Date.now() + 800 * 86_400_000);
    expect(x.checkPrivateKey(createPrivateKey(made.keyPem))).toBe(true);
  });

  it('is recognised as self-signed; a key from another pair does not match', () => {
    expect(isSelfSigned(made.certPem)).toBe(true);
    const other = createSelfSignedCertificate(['localhost']);
    expect(keyMatchesCertificate(made.certPem, made.keyPem)).toBe(true);
    expect(keyMatchesCertificate(made.certPem, other.keyPem)).toBe(false);
    expect(keyMatchesCertificate(made.certPem, 'not a key')).toBe(false);
    expect(x.serialNumber).not.toBe(new X509Certificate(other.certPem).serialNumber);
  });
});
