import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pkceChallenge, checkIssuerUrl } from './oidc/oidc-client.ts';
import { safeReturnTo } from './oidc/oidc-routes.ts';
import { normalizePublicUrl } from './settings-routes.ts';
import { isApiPath } from './spa.ts';
import { checkCertificate, readableAltNames } from './tls.ts';

describe('isApiPath', () => {
  it('claims every API prefix, also percent-encoded, and nothing else', () => {
    for (const p of ['/v1/models', '/v1', '/v1beta/models/x:generateContent', '/api/v1/x', '/api/paas/v4/chat', '/openai/deployments/a', '/scim/v2/Users',
      '/ws', '/oauth/token', '/.well-known/openid-configuration', '/healthz', '/ready', '/metrics', '/%761/models', '/V1/models', '/%E0%A4%A',
      // an OpenAI SDK whose base URL lacks /v1
      '/models', '/chat/completions', '/completions', '/embeddings', '/responses']) {
      expect(isApiPath(p), p).toBe(true);
    }
    for (const p of ['/', '/setup', '/login?return_to=/v1', '/cli-auth', '/cli/add-credential', '/v1x', '/apis', '/provisioning', '/users', '/modelsx', '/providers']) {
      expect(isApiPath(p), p).toBe(false);
    }
  });
});

describe('settings input', () => {
  it('keeps only an http(s) origin', () => {
    expect(normalizePublicUrl('https://Nexus.Example.com/')).toBe('https://nexus.example.com');
    expect(normalizePublicUrl('http://10.0.0.5:8080')).toBe('http://10.0.0.5:8080');
    for (const bad of ['nexus.example.com', 'ftp://x', 'javascript:alert(1)', 'https://a@b', 'https://x/path', 'https://x/?q=1']) {
      expect(() => normalizePublicUrl(bad), bad).toThrow();
    }
  });

  it('checks that the key belongs to the certificate and that it has not expired', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nexus-tls-'));
    const make = (name: string, days: string) => {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, `${name}.key`),
        '-out', join(dir, `${name}.crt`), '-days', days, '-subj', `/CN=${name}`], { stdio: 'ignore' });
      return { cert: readFileSync(join(dir, `${name}.crt`), 'utf8'), key: readFileSync(join(dir, `${name}.key`), 'utf8') };
    };
    const a = make('a.test', '10');
    const b = make('b.test', '10');
    expect(checkCertificate(a.cert, a.key).subject).toBe('CN=a.test');
    expect(() => checkCertificate(a.cert, b.key)).toThrow(/does not belong/);
    expect(() => checkCertificate(a.cert, a.key, new Date(Date.now() + 30 * 86_400_000))).toThrow(/expired/);
    expect(() => checkCertificate('hello', a.key)).toThrow(/PEM certificate/);
    expect(() => checkCertificate(a.cert, 'nope')).toThrow(/PEM private key/);
    // IPv6 names as people write them (RFC 5952), from a real certificate; the rest untouched.
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'v6.key'),
      '-out', join(dir, 'v6.crt'), '-days', '10', '-subj', '/CN=v6.test', '-addext', 'subjectAltName=IP:192.0.2.2,DNS:vm,IP:fd00::2,DNS:localhost,IP:::1'], { stdio: 'ignore' });
    expect(checkCertificate(readFileSync(join(dir, 'v6.crt'), 'utf8'), readFileSync(join(dir, 'v6.key'), 'utf8')).subject_alt_names)
      .toBe('IP Address:192.0.2.2, DNS:vm, IP Address:fd00::2, DNS:localhost, IP Address:::1');
    expect(readableAltNames('IP Address:FE80:0:0:0:0:0:0:1, DNS:"a,b", IP Address:not:an:ip:zz')).toBe('IP Address:fe80::1, DNS:"a,b", IP Address:not:an:ip:zz');
    expect(readableAltNames(undefined)).toBeNull();
  });
});

describe('oidc helpers', () => {
  it('computes the RFC 7636 appendix B challenge', () => {
    expect(pkceChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
  });
  it('keeps return_to on this site', () => {
    expect(safeReturnTo('/users?x=1')).toBe('/users?x=1');
    for (const bad of ['//evil.test', '/\\evil.test', 'https://evil.test', 42, undefined]) expect(safeReturnTo(bad)).toBe('/');
  });
  it('accepts https issuers and loopback http only', () => {
    expect(checkIssuerUrl('https://idp.example.com').host).toBe('idp.example.com');
    expect(checkIssuerUrl('http://127.0.0.1:4000').port).toBe('4000');
    expect(() => checkIssuerUrl('http://idp.example.com')).toThrow(/https/);
  });
});
