// The image pieces: the Packer template validates with Debian's packer, the systemd units pass
// `systemd-analyze verify` and agree with first boot's layout, and install.sh lays a host out
// (into a temporary root) so that the installed executable's first boot works there.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LAYOUT } from '../../src/first-boot/first-boot.ts';
import { MAIN, REPO, nexus, run, startAppliance, tempDir } from '../helpers/appliance.ts';
import { setupAdmin } from '../helpers/api.ts';
import { nginxBinary, nginxConfigTest, nginxPrefix } from '../helpers/nginx.ts';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const HAVE_PACKER = has('packer');
const HAVE_SYSTEMD_ANALYZE = has('systemd-analyze');
if (!HAVE_PACKER) console.warn('appliance-image: packer checks SKIPPED — packer is not installed (apt-get install packer; .ci/run installs it)');
if (!HAVE_SYSTEMD_ANALYZE) console.warn('appliance-image: unit verification SKIPPED — systemd-analyze is not installed');

const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);

/** A stand-in executable for the image: runs this checkout's nexus (dist/nexus when built). */
function fakeBinary(dir: string): string {
  const path = join(dir, 'nexus');
  const dist = join(REPO, 'dist/nexus');
  writeFileSync(path, existsSync(dist) ? `#!/bin/sh\nexec ${dist} "$@"\n` : `#!/bin/sh\nexec ${process.execPath} ${MAIN} "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

function unit(name: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of readFileSync(join(REPO, 'appliance', name), 'utf8').split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

describe.skipIf(!HAVE_PACKER)('packer template', () => {
  const validate = (vars: string[]) =>
    run('packer', ['validate', ...vars, 'packer/'], { env: { CHECKPOINT_DISABLE: '1', PACKER_LOG: '' }, timeoutMs: 120_000 });

  it('passes packer validate (both builders, offline)', async () => {
    const bin = fakeBinary(tempDir('nexus-packer-'));
    const r = await validate(['-var', `nexus_binary=${bin}`]);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    const hcl = readFileSync(join(REPO, 'packer/nexus.pkr.hcl'), 'utf8');
    expect(hcl).toMatch(/source "amazon-ebs" "debian"/);
    expect(hcl).toMatch(/source "qemu" "debian"/);
    expect(hcl).toMatch(/sources = \["source\.amazon-ebs\.debian", "source\.qemu\.debian"\]/);
    // The last provisioner forgets cloud-init state so every instance boots as new.
    const provisioners = [...hcl.matchAll(/provisioner "shell" \{[\s\S]*?\n {2}\}/g)].map((m) => m[0]);
    expect(provisioners.at(-1)).toContain('cloud-init clean --logs');
  });

  it('fails validation when the executable to ship is missing', async () => {
    const r = await validate(['-var', `nexus_binary=${join(tempDir('nexus-packer-'), 'absent')}`]);
    expect(r.code).not.toBe(0);
    expect(`${r.stdout}${r.stderr}`).toMatch(/absent/);
  });
});

describe('systemd units', () => {
  it('run nexus unprivileged and hardened, after a one-shot first boot that shares its layout', () => {
    const svc = unit('nexus.service');
    const fb = unit('nexus-first-boot.service');
    expect(svc.get('User')).toEqual(['nexus']);
    for (const [k, v] of [['ProtectSystem', 'strict'], ['StateDirectory', 'nexus'], ['CacheDirectory', 'nexus'], ['NoNewPrivileges', 'yes'], ['Restart', 'on-failure'], ['PrivateTmp', 'yes'], ['ProtectHome', 'yes']]) {
      expect(svc.get(k!), k).toEqual([v]);
    }
    expect(svc.get('CapabilityBoundingSet')).toEqual(['']);
    expect(svc.get('ExecStart')![0]).toBe(`/usr/local/bin/nexus serve --data-dir /${LAYOUT.dataDir} --config /${LAYOUT.configFile}`);
    expect(svc.get('After')![0]).toContain('nexus-first-boot.service');

    expect(fb.get('Type')).toEqual(['oneshot']);
    expect(fb.get('Before')![0]!.split(/\s+/)).toEqual(expect.arrayContaining(['nexus.service', 'nginx.service']));
    expect(fb.get('ConditionPathExists')).toEqual([`!/${LAYOUT.marker}`]);
    expect(fb.get('ExecStart')![0]).toBe('/usr/local/bin/nexus first-boot --owner nexus');
    expect(fb.get('StandardOutput')).toEqual(['journal+console']);

    // A certificate uploaded in the console lands where first boot keeps it; the path unit reloads nginx.
    const watch = unit('nexus-tls.path');
    const reload = unit('nexus-tls-reload.service');
    expect(watch.get('PathChanged')).toEqual([`/${LAYOUT.cert}`]);
    expect(watch.get('Unit')).toEqual(['nexus-tls-reload.service']);
    expect(reload.get('ExecStart')).toEqual(['/usr/local/bin/nexus first-boot --site-only']);
    expect(reload.get('ExecStartPost')).toEqual(['/usr/sbin/nginx -t -q', '/bin/systemctl reload nginx.service']);
  });

  it('back up nightly, as nexus, only once an administrator has written the passphrase file', async () => {
    const svc = unit('nexus-backup.service');
    const timer = unit('nexus-backup.timer');
    expect(svc.get('Type')).toEqual(['oneshot']);
    expect(svc.get('User')).toEqual(['nexus']);
    expect(svc.get('ConditionPathExists')).toEqual(['/etc/nexus/backup-passphrase', `/${LAYOUT.dataDir}/nexus.db`]);
    // The root-only passphrase file reaches the unprivileged process as a credential, not by path.
    expect(svc.get('LoadCredential')).toEqual(['passphrase:/etc/nexus/backup-passphrase']);
    for (const [k, v] of [['ProtectSystem', 'strict'], ['StateDirectory', 'nexus'], ['CacheDirectory', 'nexus'], ['ReadWritePaths', '/var/backups/nexus'], ['PrivateNetwork', 'yes'], ['UMask', '0077']]) {
      expect(svc.get(k!), k).toEqual([v]);
    }
    expect(timer.get('Persistent')).toEqual(['true']);
    expect(timer.get('OnCalendar')).toHaveLength(1);
    expect(timer.get('WantedBy')).toEqual(['timers.target']);

    // The unit's own command line, run against a live appliance with only the paths moved, makes a
    // sealed backup that verifies with the passphrase; a second run keeps both (--keep 14).
    const app = await startAppliance();
    try {
      await setupAdmin(app);
      const out = tempDir('nexus-backups-');
      const creds = tempDir('nexus-creds-');
      writeFileSync(join(creds, 'passphrase'), 'a nightly passphrase of some length\n', { mode: 0o600 });
      const line = svc.get('ExecStart')![0]!
        .replace(`/${LAYOUT.dataDir}`, app.dataDir)
        .replace('/var/backups/nexus', out)
        .replace('${CREDENTIALS_DIRECTORY}', creds)
        .split(' ');
      expect(line.slice(0, 2)).toEqual(['/usr/local/bin/nexus', 'backup']);
      for (let i = 0; i < 2; i++) {
        const r = await nexus(line.slice(1));
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toContain('sealed with your passphrase');
      }
      const files = readdirSync(out).filter((f) => f.endsWith('.nxbackup'));
      expect(files).toHaveLength(2);
      const v = await nexus(['backup', 'verify', join(out, files[0]!), '--passphrase-file', join(creds, 'passphrase')]);
      expect(v.code, v.stderr).toBe(0);
      const wrong = join(creds, 'wrong');
      writeFileSync(wrong, 'not the nightly passphrase\n');
      expect((await nexus(['backup', 'verify', join(out, files[0]!), '--passphrase-file', wrong])).code).not.toBe(0);
    } finally {
      await app.stop();
    }
  }, 120_000);

  it.skipIf(!HAVE_SYSTEMD_ANALYZE)('pass systemd-analyze verify without a warning', () => {
    const dir = tempDir('nexus-units-');
    const files = ['nexus.service', 'nexus-first-boot.service', 'nexus-tls.path', 'nexus-tls-reload.service', 'nexus-backup.service', 'nexus-backup.timer'].map((name) => {
      // verify insists the executable exists; point it at one that does.
      const text = readFileSync(join(REPO, 'appliance', name), 'utf8').replaceAll('/usr/local/bin/nexus', '/bin/true');
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    });
    const r = spawnSync('systemd-analyze', ['verify', ...files], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
  });
});

describe('install.sh', () => {
  const script = join(REPO, 'appliance/install.sh');

  it('lays the appliance into a root, keeps data on upgrade, removes per-instance state for images', async () => {
    const root = tempDir('nexus-install-');
    const bin = fakeBinary(tempDir('nexus-bin-'));
    mkdirSync(join(root, 'etc/nginx/sites-enabled'), { recursive: true });
    writeFileSync(join(root, 'etc/nginx/sites-enabled/default'), 'server { listen 80 default_server; }\n');
    mkdirSync(join(root, LAYOUT.dataDir), { recursive: true });
    writeFileSync(join(root, LAYOUT.dataDir, 'master.key'), 'k'.repeat(32));

    const first = await run('bash', [script, '--root', root, '--binary', bin]);
    expect(first.code, first.stderr).toBe(0);
    expect(mode(join(root, 'usr/local/bin/nexus'))).toBe('755');
    expect(mode(join(root, 'etc/systemd/system/nexus.service'))).toBe('644');
    expect(readFileSync(join(root, 'etc/systemd/system/nexus-first-boot.service'), 'utf8')).toBe(readFileSync(join(REPO, 'appliance/nexus-first-boot.service'), 'utf8'));
    expect(existsSync(join(root, 'usr/local/share/nexus/nginx/nexus.conf.template'))).toBe(true);
    expect(existsSync(join(root, 'etc/systemd/system/nexus-tls.path'))).toBe(true);
    expect(existsSync(join(root, 'etc/systemd/system/nexus-tls-reload.service'))).toBe(true);
    expect(readFileSync(join(root, 'etc/systemd/system/nexus-backup.timer'), 'utf8')).toBe(readFileSync(join(REPO, 'appliance/nexus-backup.timer'), 'utf8'));
    expect(existsSync(join(root, 'etc/systemd/system/nexus-backup.service'))).toBe(true);
    expect(existsSync(join(root, 'usr/local/share/doc/nexus/backup.md'))).toBe(true);
    expect(mode(join(root, 'var/backups/nexus'))).toBe('700');
    expect(existsSync(join(root, 'etc/nginx/sites-enabled/default'))).toBe(false);
    expect(existsSync(join(root, LAYOUT.dataDir, 'master.key'))).toBe(true); // an upgrade keeps data

    const again = await run('bash', [script, '--root', root, '--binary', bin, '--image']);
    expect(again.code, again.stderr).toBe(0);
    expect(existsSync(join(root, LAYOUT.dataDir))).toBe(false); // an image carries no secrets

    // The installed executable's first boot works in that root, and nginx accepts what it rendered.
    const fb = await run(join(root, 'usr/local/bin/nexus'), ['first-boot', '--root', root, '--no-metadata']);
    expect(fb.code, fb.stderr).toBe(0);
    expect(fb.stdout).toMatch(/Setup token: {2}nx_setup_/);
    if (nginxBinary()) {
      const t = nginxConfigTest(nginxPrefix(join(root, LAYOUT.nginxSite)));
      expect(t.code, t.output).toBe(0);
    }

    // An upgrade of that booted host renders its site again from the new executable's template,
    // with the names first boot chose; the data stays.
    const site = join(root, LAYOUT.nginxSite);
    const rendered = readFileSync(site, 'utf8');
    writeFileSync(site, '# a site rendered by an older version\n');
    const upgrade = await run('bash', [script, '--root', root, '--binary', bin]);
    expect(upgrade.code, upgrade.stderr).toBe(0);
    expect(upgrade.stdout).toMatch(/nexus first-boot: rendered /);
    expect(readFileSync(site, 'utf8')).toBe(rendered);
    expect(existsSync(join(root, LAYOUT.dataDir, 'master.key'))).toBe(true);
  });

  it('refuses to run without an executable or with unknown options', async () => {
    const root = tempDir('nexus-install-');
    const missing = await run('bash', [script, '--root', root, '--binary', join(root, 'nope')]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/no nexus executable/);
    const bad = await run('bash', [script, '--root', root, '--frobnicate']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/unknown option --frobnicate/);
    expect(existsSync(join(root, 'usr'))).toBe(false);
  });
});
