// `nexus first-boot` against a temporary root, with a fake EC2 instance metadata service (IMDSv2) on
// loopback: files and modes, certificate SANs, the rendered nginx site passing `nginx -t`, the printed
// setup line, a `nexus serve` that accepts the same token, idempotency and --force.
import { X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { existsSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAIN, REPO, run, startAppliance, tempDir } from '../helpers/appliance.ts';
import { post } from '../helpers/api.ts';
import { nginxBinary, nginxConfigTest, nginxPrefix } from '../helpers/nginx.ts';

const HAVE_NGINX = nginxBinary() !== null;

// dist/nexus when the single executable has been built (what the image ships), else the source entry.
const DIST = join(REPO, 'dist/nexus');
const BIN = existsSync(DIST) ? DIST : undefined;
const nexus = (args: string[]) => (BIN ? run(BIN, args) : run(process.execPath, [MAIN, ...args]));

interface FakeImds {
  server: Server;
  url: string;
  values: Record<string, string>;
  calls: { method: string; path: string; token: string | undefined; ttl: string | undefined }[];
}

/** Speaks IMDSv2 only: a GET without the session token from PUT /latest/api/token is refused (401). */
function startFakeImds(values: Record<string, string>): Promise<FakeImds> {
  const token = `tok-${Math.random().toString(36).slice(2)}`;
  const imds: FakeImds = { server: undefined as unknown as Server, url: '', values, calls: [] };
  imds.server = createServer((req, res) => {
    const call = {
      method: req.method!,
      path: req.url!,
      token: req.headers['x-aws-ec2-metadata-token'] as string | undefined,
      ttl: req.headers['x-aws-ec2-metadata-token-ttl-seconds'] as string | undefined,
    };
    imds.calls.push(call);
    if (req.method === 'PUT' && req.url === '/latest/api/token') {
      if (!call.ttl) return res.writeHead(400).end();
      return res.writeHead(200, { 'content-type': 'text/plain' }).end(token);
    }
    if (req.method !== 'GET') return res.writeHead(405).end();
    if (call.token !== token) return res.writeHead(401).end();
    const item = req.url!.replace('/latest/meta-data/', '');
    const v = imds.values[item];
    if (v === undefined) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/plain' }).end(v);
  });
  return new Promise((res) => imds.server.listen(0, '127.0.0.1', () => {
    imds.url = `http://127.0.0.1:${(imds.server.address() as { port: number }).port}`;
    res(imds);
  }));
}

const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);

function sans(certPem: string): string[] {
  return (new X509Certificate(certPem).subjectAltName ?? '').split(', ');
}

describe('nexus first-boot', () => {
  let imds: FakeImds;
  let root: string;
  const p = (rel: string) => join(root, rel);

  beforeAll(async () => {
    imds = await startFakeImds({
      'public-ipv4': '203.0.113.10',
      'public-hostname': 'ec2-203-0-113-10.compute-1.amazonaws.com',
      'local-ipv4': '10.0.0.5',
      'local-hostname': 'ip-10-0-0-5.ec2.internal',
    });
    root = tempDir('nexus-root-');
  });
  afterAll(async () => {
    imds?.server.closeAllConnections();
    await new Promise((r) => imds?.server.close(r));
  });

  it('prepares a fresh root: secrets 0600, certificate for the EC2 names, nginx site that passes nginx -t', async () => {
    const consoleFile = join(root, '..', `${root.split('/').pop()}-console.log`);
    const r = await nexus(['first-boot', '--root', root, '--metadata-url', imds.url, '--console', consoleFile]);
    expect(r.code, r.stderr).toBe(0);

    // IMDSv2: the token came first, every read carried it, nothing asked IMDSv1-style.
    expect(imds.calls[0]).toMatchObject({ method: 'PUT', path: '/latest/api/token' });
    expect(Number(imds.calls[0]!.ttl)).toBeGreaterThan(0);
    const gets = imds.calls.filter((c) => c.method === 'GET');
    expect(gets.length).toBeGreaterThanOrEqual(2);
    expect(gets.every((c) => c.token?.startsWith('tok-'))).toBe(true);

    const token = readFileSync(p('var/lib/nexus/setup-token'), 'utf8').trim();
    expect(token).toMatch(/^nx_setup_[A-Za-z0-9_-]{43}$/);
    expect(r.stdout).toContain('Setup URL:    https://203.0.113.10/setup');
    expect(r.stdout).toContain(`Setup token:  ${token}`);
    expect(readFileSync(consoleFile, 'utf8')).toContain(`Setup token:  ${token}`);
    expect(r.stderr).not.toContain(token);

    expect(mode(p('var/lib/nexus'))).toBe('700');
    expect(mode(p('var/lib'))).toBe('755');
    expect(mode(p('var/lib/nexus/master.key'))).toBe('600');
    expect(readFileSync(p('var/lib/nexus/master.key')).length).toBe(32);
    expect(mode(p('var/lib/nexus/setup-token'))).toBe('600');
    expect(mode(p('var/lib/nexus/tls/key.pem'))).toBe('600');
    expect(mode(p('var/lib/nexus/tls/cert.pem'))).toBe('600');
    expect(mode(p('var/lib/nexus/tls'))).toBe('700');
    expect(mode(p('etc/nginx/conf.d/nexus.conf'))).toBe('644');
    expect(mode(p('var/cache/nexus'))).toBe('700');

    const certPem = readFileSync(p('var/lib/nexus/tls/cert.pem'), 'utf8');
    const x = new X509Certificate(certPem);
    expect(sans(certPem)).toEqual(expect.arrayContaining([
      'IP Address:203.0.113.10',
      'DNS:ec2-203-0-113-10.compute-1.amazonaws.com',
      'IP Address:10.0.0.5',
      'DNS:ip-10-0-0-5.ec2.internal',
      'DNS:localhost',
      'IP Address:127.0.0.1',
    ]));
    expect(x.subject).toContain('CN=203.0.113.10');
    expect(x.checkPrivateKey((await import('node:crypto')).createPrivateKey(readFileSync(p('var/lib/nexus/tls/key.pem'))))).toBe(true);
    expect(r.stdout).toContain(x.fingerprint256);

    const site = readFileSync(p('etc/nginx/conf.d/nexus.conf'), 'utf8');
    expect(site).toContain(`ssl_certificate     ${p('var/lib/nexus/tls/cert.pem')};`);
    expect(site).toContain('server 127.0.0.1:8080;');
    expect(site).toMatch(/listen \*:443 ssl http2;/);
    expect(site).toMatch(/listen \*:80;/);
    expect(site).not.toContain('Strict-Transport-Security'); // self-signed: no HSTS
    expect(site).not.toContain('{{');

    const yaml = readFileSync(p('etc/nexus/nexus.yaml'), 'utf8');
    expect(yaml).toContain('publicUrl: https://203.0.113.10');
    expect(yaml).not.toContain('nx_setup_');
    const marker = readFileSync(p('var/lib/nexus/first-boot.done'), 'utf8');
    expect(marker).not.toContain('nx_');
  });

  it.skipIf(!HAVE_NGINX)('renders a site that nginx -t accepts', () => {
    const t = nginxConfigTest(nginxPrefix(p('etc/nginx/conf.d/nexus.conf')));
    expect(t.code, t.output).toBe(0);
    expect(t.output).toContain('syntax is ok');
  });

  it('does nothing on a second run', async () => {
    const before = ['var/lib/nexus/setup-token', 'var/lib/nexus/master.key', 'var/lib/nexus/tls/cert.pem', 'etc/nginx/conf.d/nexus.conf'].map((f) => readFileSync(p(f)));
    const calls = imds.calls.length;
    const r = await nexus(['first-boot', '--root', root, '--metadata-url', imds.url]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('already done');
    expect(r.stdout).not.toContain('nx_setup_');
    expect(imds.calls.length).toBe(calls);
    const after = ['var/lib/nexus/setup-token', 'var/lib/nexus/master.key', 'var/lib/nexus/tls/cert.pem', 'etc/nginx/conf.d/nexus.conf'].map((f) => readFileSync(p(f)));
    expect(after).toEqual(before);
  });

  it('hands the same setup token to nexus serve, which reads the written config', async () => {
    const token = readFileSync(p('var/lib/nexus/setup-token'), 'utf8').trim();
    const app = await startAppliance({ ...(BIN ? { bin: BIN } : {}), dataDir: p('var/lib/nexus'), args: ['--config', p('etc/nexus/nexus.yaml')], env: { XDG_CACHE_HOME: p('var/cache') } });
    try {
      expect(app.setupToken).toBe(token);
      expect(app.output()).toContain('https://203.0.113.10/setup');
      const masterKey = readFileSync(p('var/lib/nexus/master.key'));

      // --force while the server runs (e.g. the IP changed): new certificate for the new names; the
      // running server keeps the data dir and its token.
      imds.values['public-ipv4'] = '203.0.113.77';
      const forced = await nexus(['first-boot', '--root', root, '--metadata-url', imds.url, '--force']);
      expect(forced.code, forced.stderr).toBe(0);
      expect(forced.stdout).toContain('Setup URL:    https://203.0.113.77/setup');
      expect(forced.stdout).toContain('nexus is running');
      expect(sans(readFileSync(p('var/lib/nexus/tls/cert.pem'), 'utf8'))).toContain('IP Address:203.0.113.77');
      expect(readFileSync(p('var/lib/nexus/master.key'))).toEqual(masterKey);

      const setup = await post(`${app.url}/api/v1/setup`, { setup_token: token, username: 'admin', password: 'correct-horse-battery' });
      expect(setup.status).toBe(201);
    } finally {
      await app.stop();
    }
    // After setup, a forced run has no token to show and says why.
    const again = await nexus(['first-boot', '--root', root, '--metadata-url', imds.url, '--force']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('setup is already complete');
    expect(again.stdout).not.toContain('nx_setup_');
  });

  it('installs an administrator certificate with HSTS, and keeps it on later forced runs', async () => {
    const dir = tempDir('nexus-ca-');
    const sh = async (cmd: string) => {
      const r = await run('sh', ['-c', cmd], { cwd: dir });
      if (r.code !== 0) throw new Error(`${cmd}\n${r.stderr}`);
    };
    await sh('openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=Test CA" 2>/dev/null');
    await sh('openssl req -newkey rsa:2048 -nodes -keyout site.key -out site.csr -subj "/CN=nexus.example.test" 2>/dev/null');
    writeFileSync(join(dir, 'ext'), 'subjectAltName=DNS:nexus.example.test\n');
    await sh('openssl x509 -req -in site.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out site.crt -days 2 -extfile ext 2>/dev/null');

    const mismatched = await nexus(['first-boot', '--root', root, '--no-metadata', '--force', '--cert', join(dir, 'site.crt'), '--key', join(dir, 'ca.key')]);
    expect(mismatched.code).toBe(1);
    expect(mismatched.stderr).toContain('is not the private key of');

    const r = await nexus(['first-boot', '--root', root, '--metadata-url', imds.url, '--force', '--cert', join(dir, 'site.crt'), '--key', join(dir, 'site.key')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Certificate:  installed');
    expect(readFileSync(p('var/lib/nexus/tls/cert.pem'), 'utf8')).toBe(readFileSync(join(dir, 'site.crt'), 'utf8'));
    expect(mode(p('var/lib/nexus/tls/key.pem'))).toBe('600');
    expect(readFileSync(p('etc/nginx/conf.d/nexus.conf'), 'utf8')).toContain('Strict-Transport-Security "max-age=63072000" always');

    const kept = await nexus(['first-boot', '--root', root, '--metadata-url', imds.url, '--force']);
    expect(kept.code).toBe(0);
    expect(readFileSync(p('var/lib/nexus/tls/cert.pem'), 'utf8')).toBe(readFileSync(join(dir, 'site.crt'), 'utf8'));
    expect(readFileSync(p('etc/nginx/conf.d/nexus.conf'), 'utf8')).toContain('Strict-Transport-Security');
    if (HAVE_NGINX) {
      const t = nginxConfigTest(nginxPrefix(p('etc/nginx/conf.d/nexus.conf')));
      expect(t.code, t.output).toBe(0);
    }
  });

  it('falls back to local addresses when there is no metadata service', async () => {
    const fresh = tempDir('nexus-root-');
    const closed = await new Promise<number>((res) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => res(port));
      });
    });
    const r = await nexus(['first-boot', '--root', fresh, '--metadata-url', `http://127.0.0.1:${closed}`, '--https-port', '8443']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Names from:   local interfaces');
    expect(r.stdout).toMatch(/Setup URL: {4}https:\/\/\S+:8443\/setup/);
    expect(sans(readFileSync(join(fresh, 'var/lib/nexus/tls/cert.pem'), 'utf8'))).toEqual(expect.arrayContaining(['DNS:localhost', 'IP Address:127.0.0.1']));
  });

  // chown needs root; the appliance's unit runs first boot as root with --owner nexus.
  it.skipIf(process.getuid?.() !== 0)('gives the data and cache dirs to --owner, and nothing else', async () => {
    const fresh = tempDir('nexus-root-');
    const r = await nexus(['first-boot', '--root', fresh, '--no-metadata', '--owner', 'nobody']);
    expect(r.code, r.stderr).toBe(0);
    const nobody = Number(readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('nobody:'))!.split(':')[2]);
    for (const f of ['var/lib/nexus', 'var/lib/nexus/master.key', 'var/lib/nexus/setup-token', 'var/lib/nexus/nexus.db', 'var/lib/nexus/tls/key.pem', 'var/lib/nexus/first-boot.done', 'var/cache/nexus']) {
      expect(statSync(join(fresh, f)).uid, f).toBe(nobody);
    }
    for (const f of ['etc/nexus/nexus.yaml', 'etc/nginx/conf.d/nexus.conf', 'var/lib']) expect(statSync(join(fresh, f)).uid, f).toBe(0);

    // The nexus user now controls the data dir. Links it plants there must not make a later run as
    // root write (or read endlessly) through them.
    const victim = join(tempDir('nexus-victim-'), 'precious');
    writeFileSync(victim, 'do not touch\n');
    const dataDir = join(fresh, 'var/lib/nexus');
    for (const name of ['.write-test', 'tls/cert.pem']) {
      rmSync(join(dataDir, name), { force: true });
      symlinkSync(victim, join(dataDir, name));
    }
    const forced = await nexus(['first-boot', '--root', fresh, '--no-metadata', '--owner', 'nobody', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toContain('belongs to the nexus user');
    expect(readFileSync(victim, 'utf8')).toBe('do not touch\n');
    expect(statSync(join(dataDir, 'tls/cert.pem')).uid).toBe(nobody);
    expect(statSync(victim).uid).toBe(0);

    // --site-only reads the certificate without following a link (here: to an endless device).
    rmSync(join(dataDir, 'tls/cert.pem'));
    symlinkSync('/dev/zero', join(dataDir, 'tls/cert.pem'));
    const site = await nexus(['first-boot', '--root', fresh, '--site-only']);
    expect(site.code, site.stderr).toBe(0);
    expect(site.stdout).toContain('no usable certificate (HSTS off)');
  });

  it('refuses bad arguments clearly and writes nothing', async () => {
    const fresh = tempDir('nexus-root-');
    const cases: [string[], RegExp][] = [
      [['--metadata-url', 'ftp://x'], /must be an http:\/\/ URL/],
      [['--metadata-url', 'not a url'], /not a URL/],
      [['--https-port', '99999'], /not a TCP port/],
      [['--listen', 'nowhere'], /expected HOST:PORT/],
      [['--owner', 'no-such-user-here'], /does not exist/],
      [['--cert', '/etc/hostname'], /go together/],
      [['--bogus'], /Unknown option/],
    ];
    for (const [args, message] of cases) {
      const r = await nexus(['first-boot', '--root', fresh, '--no-metadata', ...args]);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr).toMatch(message);
    }
    const marker = join(fresh, 'var/lib/nexus/first-boot.done');
    expect(() => statSync(marker)).toThrow();
  });
});
