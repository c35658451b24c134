import { describe, expect, it } from 'vitest';
import { NginxSiteError, renderNginxSite, type NginxSiteOptions } from './nginx-site.ts';

const base: NginxSiteOptions = {
  addresses: ['*', '[::]'],
  httpsPort: 443,
  httpPort: 80,
  serverNames: ['203.0.113.10', 'nexus.example.com'],
  certPath: '/etc/nexus/tls/nexus.crt',
  keyPath: '/etc/nexus/tls/nexus.key',
  upstream: '127.0.0.1:8080',
  hsts: false,
};

describe('renderNginxSite', () => {
  it('fills every placeholder for the appliance', () => {
    const site = renderNginxSite(base);
    expect(site).not.toMatch(/\{\{[a-z_]+\}\}/);
    expect(site).toContain('    listen *:443 ssl http2;\n    listen [::]:443 ssl http2;');
    expect(site).toContain('    listen *:80;\n    listen [::]:80;');
    expect(site).toContain('return 301 https://$host$request_uri;');
    expect(site).toContain('server_name 203.0.113.10 nexus.example.com _;');
    expect(site).toContain('server 127.0.0.1:8080;');
    expect(site).toContain(`client_max_body_size ${10 * 1024 * 1024};`);
    expect(site).toContain('client_max_body_size 4g;');
    expect(site).toMatch(new RegExp(`location ~ \\^/\\(v1\\|[^{]*\\{[^}]*client_max_body_size ${64 * 1024 * 1024};`));
    expect(renderNginxSite({ ...base, gatewayBodyLimitBytes: 1234 })).toMatch(/location ~ \^\/\(v1\|[^{]*\{[^}]*client_max_body_size 1234;/);
    expect(site).not.toContain('Strict-Transport-Security');
  });

  it('adds HSTS only when asked, and the port to redirects off 443', () => {
    const site = renderNginxSite({ ...base, hsts: true, httpsPort: 8443, upstream: '[::1]:9000', maxUpload: '512m' });
    expect(site).toContain('add_header Strict-Transport-Security "max-age=63072000" always;');
    expect(site).toContain('return 301 https://$host:8443$request_uri;');
    expect(site).toContain('server [::1]:9000;');
    expect(site).toContain('client_max_body_size 512m;');
  });

  it('keeps the gateway regex ahead of /api/ and the admin paths refused', () => {
    const site = renderNginxSite(base);
    expect(site).toContain('location ~ ^/(v1|v1beta|openai/deployments|openai/v1|api/paas)(/|$) {');
    expect(site).not.toMatch(/location \^~ \/api\/ /); // ^~ on /api/ would beat the regex
    expect(site).toMatch(/location \^~ \/api\/hub\/ \{\s+default_type application\/json;\s+return 404/);
    expect(site).toMatch(/location \^~ \/metrics \{\s+default_type application\/json;\s+return 404/);
  });

  it('refuses values that could escape their directive', () => {
    const bad: Partial<NginxSiteOptions>[] = [
      { serverNames: ['evil.com; include /etc/passwd'] },
      { serverNames: ['a b'] },
      { serverNames: ['x'.repeat(300)] },
      { certPath: '/etc/x.crt; ssl_verify off' },
      { keyPath: 'relative.key' },
      { keyPath: '/etc/{x}.key' },
      { upstream: 'example.com:80' },
      { upstream: '127.0.0.1:99999' },
      { upstream: '127.0.0.1' },
      { httpsPort: 0 },
      { httpPort: 70000 },
      { addresses: [] },
      { addresses: ['0.0.0.0; x'] },
      { maxUpload: '1g; x' },
      { bodyLimitBytes: -1 },
      { gatewayBodyLimitBytes: 0 },
      { gatewayBodyLimitBytes: 1.5 },
      { extra: 'location /x { return 200 "{{upstream}}"; }' },
    ];
    for (const b of bad) expect(() => renderNginxSite({ ...base, ...b }), JSON.stringify(b)).toThrow(NginxSiteError);
  });

  it('refuses a template that asks for a value nobody provides', () => {
    expect(() => renderNginxSite(base, 'server { listen {{nope}}; }')).toThrow(/unknown value \{\{nope\}\}/);
  });
});
