// An administrator's certificate, uploaded in the console, goes into service the way the appliance
// does it: first boot lays out a root and renders the site, `nexus serve` and nginx run from it, the
// upload lands in DIR/tls, nexus-tls-reload.service's command re-renders the site and nginx reloads —
// after which nginx serves the uploaded certificate, with HSTS.
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { Agent, fetch } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { LAYOUT } from '../../src/first-boot/first-boot.ts';
import { MAIN, run, startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { freePorts, nginxBinary, nginxPrefix, startNginx, type RunningNginx } from '../helpers/nginx.ts';

const HAVE_NGINX = nginxBinary() !== null;
const nexus = (args: string[]) => run(process.execPath, [MAIN, ...args]);

function servedFingerprint(port: number, servername: string): Promise<string> {
  return new Promise((res, rej) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
      res(s.getPeerX509Certificate()!.fingerprint256);
      s.end();
    });
    s.once('error', rej);
  });
}

describe.skipIf(!HAVE_NGINX)('TLS certificate upload on the appliance', () => {
  let app: Appliance | undefined;
  let nginx: RunningNginx | undefined;
  afterAll(async () => {
    await nginx?.stop();
    await app?.stop();
  });

  it('serves the uploaded certificate with HSTS after the reload unit runs', async () => {
    const root = tempDir('nexus-root-');
    const [httpsPort, httpPort, appPort, adminPort] = (await freePorts(4)) as [number, number, number, number];
    const fbArgs = ['first-boot', '--root', root, '--no-metadata', '--bind', '127.0.0.1', '--https-port', String(httpsPort), '--http-port', String(httpPort), '--listen', `127.0.0.1:${appPort}`, '--admin-listen', `127.0.0.1:${adminPort}`];
    const first = await nexus(fbArgs);
    expect(first.code, first.stderr).toBe(0);
    const token = readFileSync(join(root, LAYOUT.dataDir, 'setup-token'), 'utf8').trim();

    app = await startAppliance({ dataDir: join(root, LAYOUT.dataDir), args: ['--config', join(root, LAYOUT.configFile), '--listen', `127.0.0.1:${appPort}`, '--admin-listen', `127.0.0.1:${adminPort}`] });
    nginx = await startNginx(nginxPrefix(join(root, LAYOUT.nginxSite)), httpsPort);
    const generated = new X509Certificate(readFileSync(join(root, LAYOUT.cert)));
    expect(await servedFingerprint(httpsPort, 'localhost')).toBe(generated.fingerprint256);

    // The generated certificate is trusted only by pinning it.
    const pinned = new Agent({ connect: { ca: readFileSync(join(root, LAYOUT.cert), 'utf8'), servername: 'localhost' } });
    const base = `https://127.0.0.1:${httpsPort}`;
    const post = (path: string, body: unknown, headers: Record<string, string> = {}, method = 'POST') =>
      fetch(`${base}${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body), dispatcher: pinned });
    expect((await post('/api/v1/setup', { setup_token: token, username: 'admin', password: 'correct-horse-battery' })).status).toBe(201);
    const login = await post('/api/v1/auth/login', { username: 'admin', password: 'correct-horse-battery' });
    const cookie = login.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const noHsts = await fetch(`${base}/healthz`, { dispatcher: pinned });
    expect(noHsts.headers.get('strict-transport-security')).toBeNull();

    // A certificate from a CA, for the appliance's name.
    const dir = tempDir('nexus-ca-');
    const sh = async (cmd: string) => {
      const r = await run('sh', ['-c', cmd], { cwd: dir });
      if (r.code !== 0) throw new Error(`${cmd}\n${r.stderr}`);
    };
    await sh('openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=Upload Test CA" 2>/dev/null');
    await sh('openssl req -newkey rsa:2048 -nodes -keyout site.key -out site.csr -subj "/CN=nexus.example.test" 2>/dev/null');
    writeFileSync(join(dir, 'ext'), 'subjectAltName=DNS:nexus.example.test\n');
    await sh('openssl x509 -req -in site.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out site.crt -days 2 -extfile ext 2>/dev/null');
    const certificate = readFileSync(join(dir, 'site.crt'), 'utf8');
    const upload = await post('/api/v1/settings/tls', { certificate, private_key: readFileSync(join(dir, 'site.key'), 'utf8') }, { cookie }, 'PUT');
    expect(upload.status, await upload.clone().text()).toBe(200);
    // Issued by a CA: clients trust it through that CA, so nobody is told to pass it as --ca.
    expect(((await upload.clone().json()) as { certificate: unknown }).certificate).toMatchObject({ self_signed: false, pem: expect.stringContaining('BEGIN CERTIFICATE') });

    // What nexus-tls-reload.service runs: the site again for the certificate in place, then a reload.
    const again = await nexus(['first-boot', '--root', root, '--site-only']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('CN=nexus.example.test (HSTS on)');
    // A later forced first boot keeps the uploaded certificate.
    const forced = await nexus([...fbArgs, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toContain('Certificate:  installed');
    expect(readFileSync(join(root, LAYOUT.nginxSite), 'utf8')).toContain('Strict-Transport-Security');
    nginx.proc.kill('SIGHUP');
    // Old workers finish gracefully after a reload, so for a moment a new connection may still meet
    // the old certificate: retry (bounded) until a client that trusts only the CA gets through.
    const trusted = new Agent({ connect: { ca: readFileSync(join(dir, 'ca.crt'), 'utf8'), servername: 'nexus.example.test' } });
    const deadline = Date.now() + 15_000;
    let res;
    for (;;) {
      try {
        res = await fetch(`${base}/healthz`, { dispatcher: trusted });
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`nginx did not serve the uploaded certificate: ${(err as Error).message}\n${nginx.errors()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    // Only the uploaded certificate chains to that CA, so getting through proves nginx serves it.
    expect(res.status).toBe(200);
    expect(res.headers.get('strict-transport-security')).toBe('max-age=63072000');
    await Promise.all([pinned.close(), trusted.close()]);
  }, 90_000);
});
