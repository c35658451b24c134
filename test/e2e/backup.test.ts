// `nexus backup` and `nexus restore` with real appliances, real SQLite files and the openai SDK: a
// backup taken while calls are being served restores into a new data dir where the admin signs in,
// the virtual key works and the provider key (sealed by the master key) still reaches the upstream;
// a backup without keys needs the right master key; wrong passphrases, damaged, cut, tampered and
// foreign files, a newer schema and a running appliance are refused with nothing changed.
import { chownSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authed, json, login, setupAdmin, type Admin } from '../helpers/api.ts';
import { nexus, startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { createKey, createProvider, simpleModel } from '../helpers/gateway.ts';
import { startLlmUpstream, type LlmUpstream } from '../helpers/llm-upstream.ts';
import { until } from '../helpers/until.ts';

const PASS = 'correct horse battery staple';
const env = { PASS };
let up: LlmUpstream;
let source: Appliance;
let admin: Admin;
let vk: { id: string; key: string };
let dir: string;
let sealed: string;
let bare: string;
let usageAtStart: number;
let usageAtEnd: number;

const requests = async (app: Appliance, token: string) =>
  (await json(await fetch(`${app.url}/api/v1/usage?group_by=key`, authed(token)))).items.reduce((a: number, r: { requests: number }) => a + r.requests, 0) as number;
const chat = (app: Appliance, key = vk.key) =>
  new OpenAI({ apiKey: key, baseURL: `${app.url}/v1`, maxRetries: 0 }).chat.completions.create({ model: 'team-gpt', messages: [{ role: 'user', content: 'hi' }] });
/** Every file and folder of a data dir, with sizes: what "nothing changed" is checked against. */
const listing = (d: string) => (existsSync(d) ? readdirSync(d, { recursive: true }).map(String).sort().map((f) => `${f}:${statSync(join(d, f)).isFile() ? statSync(join(d, f)).size : 'dir'}`) : []);

beforeAll(async () => {
  dir = tempDir('nexus-backup-');
  [source, up] = await Promise.all([startAppliance(), startLlmUpstream()]);
  admin = await setupAdmin(source);
  const provider = await createProvider(source, admin, { name: 'up', type: 'openai', api_key: 'sk-provider-only-sealed', base_url: `${up.url}/v1` });
  await simpleModel(source, admin, provider.id, 'team-gpt', 'up-model', { input_price_per_mtok: 1, output_price_per_mtok: 1 });
  vk = await createKey(source, admin.token);
  await chat(source);
  usageAtStart = await requests(source, admin.token);

  // Both backups are taken while calls keep arriving: VACUUM INTO copies one consistent snapshot.
  sealed = join(dir, 'sealed.nxbackup');
  bare = join(dir, 'bare.nxbackup');
  let stop = false;
  const load = (async () => {
    let n = 0;
    while (!stop && n < 2000) {
      await Promise.all([chat(source), chat(source), chat(source), chat(source)]);
      n++;
    }
  })();
  const [a, b] = [
    await nexus(['backup', '--data-dir', source.dataDir, '--out', sealed, '--passphrase-env', 'PASS'], { env }),
    await nexus(['backup', '--data-dir', source.dataDir, '--out', bare, '--no-keys']),
  ];
  stop = true;
  await load;
  expect(a.code, a.stderr).toBe(0);
  expect(a.stdout).toContain('sealed with your passphrase');
  expect(b.code, b.stderr).toBe(0);
  expect(b.stdout).toMatch(/holds no keys: restoring it needs this appliance's master.key \(key check [0-9a-f]{32}\)/);
  usageAtEnd = await requests(source, admin.token);
  expect(usageAtEnd).toBeGreaterThan(usageAtStart);
  await source.stop();
}, 120_000);

afterAll(async () => {
  await source?.stop();
  await up?.close();
});

describe('nexus backup and nexus restore', () => {
  it('writes files that hold no secret in the clear, and verifies them', async () => {
    expect(statSync(sealed).mode & 0o777).toBe(0o600);
    for (const f of [sealed, bare]) {
      const raw = readFileSync(f);
      expect(raw.subarray(0, 15).toString()).toBe('NEXUS-BACKUP 1\n');
      expect(raw.includes('sk-provider-only-sealed')).toBe(false);
      expect(raw.includes(readFileSync(join(source.dataDir, 'master.key')))).toBe(false);
    }
    const v = await nexus(['backup', 'verify', sealed, '--passphrase-env', 'PASS'], { env });
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/a good backup made .* by nexus .*: database .* \(schema \d+, 1 user\(s\)\), master.key/);
    const w = await nexus(['backup', 'verify', bare]);
    expect(w.code, w.stderr).toBe(0);
    expect(w.stdout).toContain('no keys');
    // Nothing is left beside the backups.
    expect(readdirSync(dir).sort()).toEqual(['bare.nxbackup', 'sealed.nxbackup']);
  });

  it('restores a sealed backup into a new data dir: sign-in, virtual key and provider key all work', async () => {
    const target = join(dir, 'restored');
    const r = await nexus(['restore', sealed, '--data-dir', target, '--passphrase-env', 'PASS'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('(1 user(s))');
    expect(readFileSync(join(target, 'master.key'))).toEqual(readFileSync(join(source.dataDir, 'master.key')));
    const app = await startAppliance({ dataDir: target });
    try {
      const again = await login(app, admin.username, admin.password);
      const n = await requests(app, again.token);
      expect(n).toBeGreaterThanOrEqual(usageAtStart);
      expect(n).toBeLessThanOrEqual(usageAtEnd);
      const seen = up.requests.length;
      const res = await chat(app);
      expect(res.choices[0]!.message.content).toBe('echo: hi');
      expect(up.requests.length).toBe(seen + 1);
      expect(up.requests.at(-1)!.headers.authorization).toBe('Bearer sk-provider-only-sealed');
    } finally {
      await app.stop();
    }
  }, 60_000);

  it('replaces a fresh appliance without --force and one with users only with it, keeping what it replaced', async () => {
    const fresh = await startAppliance();
    await fresh.stop();
    expect(existsSync(join(fresh.dataDir, 'setup-token'))).toBe(true);
    const r = await nexus(['restore', bare, '--data-dir', fresh.dataDir, '--master-key', join(source.dataDir, 'master.key')]);
    expect(r.code, r.stderr).toBe(0);
    const moved = /What it replaced is in (\S+)\/\./.exec(r.stdout)![1]!;
    expect(readdirSync(moved).sort()).toEqual(['master.key', 'nexus.db', 'setup-token']);
    expect(existsSync(join(fresh.dataDir, 'setup-token'))).toBe(false);

    const before = listing(fresh.dataDir);
    const refused = await nexus(['restore', sealed, '--data-dir', fresh.dataDir, '--passphrase-env', 'PASS'], { env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/already holds an appliance with 1 user\(s\); restoring replaces it: add --force/);
    expect(listing(fresh.dataDir)).toEqual(before);
    const forced = await nexus(['restore', sealed, '--data-dir', fresh.dataDir, '--passphrase-env', 'PASS', '--force'], { env });
    expect(forced.code, forced.stderr).toBe(0);
    expect(readdirSync(fresh.dataDir).filter((f) => f.startsWith('before-restore-'))).toHaveLength(2);

    const app = await startAppliance({ dataDir: fresh.dataDir });
    try {
      expect((await chat(app)).choices[0]!.message.content).toBe('echo: hi');
    } finally {
      await app.stop();
    }
  }, 90_000);

  it('needs the right master key for a backup without keys, and changes nothing without it', async () => {
    const target = join(dir, 'keyless');
    const none = await nexus(['restore', bare, '--data-dir', target]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/made without keys: it needs the master key of the appliance it came from \(key check [0-9a-f]{32}\)/);
    const wrongKey = join(dir, 'other.key');
    writeFileSync(wrongKey, randomBytes(32));
    const wrong = await nexus(['restore', bare, '--data-dir', target, '--master-key', wrongKey]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/is not the master key this backup needs .*nothing was changed/);
    expect(existsSync(join(target, 'nexus.db'))).toBe(false);
    expect(existsSync(join(target, 'master.key'))).toBe(false);
    const ok = await nexus(['restore', bare, '--data-dir', target, '--master-key', join(source.dataDir, 'master.key')]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(readFileSync(join(target, 'master.key'))).toEqual(readFileSync(join(source.dataDir, 'master.key')));
  });

  it('refuses a wrong passphrase, damaged, cut, tampered and foreign files before touching the data dir', async () => {
    const target = join(dir, 'untouched');
    const copy = (name: string, change: (path: string) => void) => {
      const p = join(dir, name);
      writeFileSync(p, readFileSync(sealed));
      change(p);
      return p;
    };
    const flip = (at: (size: number) => number) => (p: string) => {
      const fd = openSync(p, 'r+');
      const pos = at(statSync(p).size);
      const b = Buffer.alloc(1);
      b[0] = readFileSync(p)[pos]! ^ 0xff;
      writeSync(fd, b, 0, 1, pos);
      closeSync(fd);
    };
    const cases: [string, string, RegExp][] = [
      ['wrong passphrase', sealed, /wrong passphrase for this backup/],
      ['a flipped byte in the body', copy('flipped', flip((n) => Math.floor(n * 0.6))), /is damaged or incomplete/],
      ['a flipped byte in the tag', copy('tag', flip((n) => n - 3)), /is damaged or incomplete/],
      ['cut short', copy('cut', (p) => truncateSync(p, statSync(p).size - 100)), /is damaged or incomplete/],
      ['a tampered header', copy('header', (p) => writeFileSync(p, readFileSync(p).toString('latin1').replace(/"created_at":"\d{4}/, '"created_at":"1999'), 'latin1')), /is damaged or incomplete/],
      ['not a backup', copy('foreign', (p) => writeFileSync(p, randomBytes(4096))), /is not a Nexus backup/],
      ['a header that is not JSON', copy('nojson', (p) => writeFileSync(p, 'NEXUS-BACKUP 1\n{oops\n')), /its header is not JSON/],
      ['a header asking for a huge scrypt', copy('scrypt', (p) => writeFileSync(p, readFileSync(p).toString('latin1').replace('"N":131072', '"N":1073741824'), 'latin1')), /seal parameters out of range/],
      ['a later format', copy('format', (p) => writeFileSync(p, readFileSync(p).toString('latin1').replace('"format":1', '"format":9'), 'latin1')), /has backup format 9, which this Nexus does not read/],
    ];
    for (const [what, file, message] of cases) {
      const pass = what === 'wrong passphrase' ? { PASS: 'not the right passphrase' } : env;
      const r = await nexus(['restore', file, '--data-dir', target, '--passphrase-env', 'PASS'], { env: pass });
      expect([what, r.code]).toEqual([what, 1]);
      expect(r.stderr, what).toMatch(message);
      expect(listing(target).filter((f) => !/^nexus\.(lock|pid)/.test(f)), what).toEqual([]);
    }
    // The unsealed backup is checked by its checksums too.
    const damagedBare = join(dir, 'bare-flipped');
    writeFileSync(damagedBare, readFileSync(bare));
    flip((n) => Math.floor(n * 0.7))(damagedBare);
    const r = await nexus(['backup', 'verify', damagedBare]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/damaged/);
  }, 120_000);

  it('lets an administrator download a backup without keys through the API while calls are served, one at a time', async () => {
    const app = await startAppliance({ dataDir: source.dataDir });
    try {
      const again = await login(app, admin.username, admin.password);
      const member = (await json(await fetch(`${app.url}/api/v1/users`, authed(again.token, { method: 'POST', body: JSON.stringify({ username: 'mia', password: 'mia-password-12', role: 'member' }) })))) as { id: string };
      expect(member.id).toBeTruthy();
      const mia = await login(app, 'mia', 'mia-password-12');
      expect((await fetch(`${app.url}/api/v1/backup`)).status).toBe(401);
      const refused = await fetch(`${app.url}/api/v1/backup`, authed(mia.token));
      expect(refused.status).toBe(403);

      let stop = false;
      const load = (async () => {
        for (let n = 0; !stop && n < 2000; n++) await Promise.all([chat(app), chat(app)]);
      })();
      const answers = await Promise.all([1, 2, 3].map(() => fetch(`${app.url}/api/v1/backup`, authed(again.token))));
      stop = true;
      await load;
      const ok = answers.filter((r) => r.status === 200);
      expect(ok).toHaveLength(1);
      for (const r of answers.filter((x) => x.status !== 200)) {
        expect(r.status).toBe(409);
        expect((await json(r)).error.message).toBe('a backup is already being made; try again when it is done');
      }
      expect(ok[0]!.headers.get('content-disposition')).toMatch(/^attachment; filename="nexus-backup-\d{8}T\d{6}Z\.nxbackup"$/);
      const file = join(dir, 'downloaded.nxbackup');
      writeFileSync(file, Buffer.from(await ok[0]!.arrayBuffer()));
      expect(readFileSync(file).includes(readFileSync(join(source.dataDir, 'master.key')))).toBe(false);
      // No snapshot is left in the data dir (it is removed once the last byte is handed over), and the
      // download is audited.
      await until('the snapshot to be removed', async () => !readdirSync(source.dataDir).some((f) => f.startsWith('.backup-')), 5000, 20);
      const audit = await json(await fetch(`${app.url}/api/v1/audit?action=backup.download`, authed(again.token)));
      expect(audit.items.map((e: { action: string; actor_name: string }) => [e.action, e.actor_name])).toEqual([['backup.download', admin.username]]);

      const target = join(dir, 'from-api');
      const r = await nexus(['restore', file, '--data-dir', target, '--master-key', join(source.dataDir, 'master.key')]);
      expect(r.code, r.stderr).toBe(0);
      await app.stop();
      const restored = await startAppliance({ dataDir: target });
      try {
        expect((await chat(restored)).choices[0]!.message.content).toBe('echo: hi');
      } finally {
        await restored.stop();
      }
    } finally {
      await app.stop();
    }
  }, 90_000);

  it('ends a download the caller leaves half-way, and takes the next one', async () => {
    const app = await startAppliance();
    const boss = await setupAdmin(app);
    await app.stop();
    // 24 MB that zstd cannot shrink: more than the sockets between the two processes hold.
    const db = new Database(join(app.dataDir, 'nexus.db'));
    db.exec('CREATE TABLE filler (b BLOB)');
    const insert = db.prepare('INSERT INTO filler VALUES (?)');
    for (let i = 0; i < 24; i++) insert.run(randomBytes(1 << 20));
    db.close();
    const again = await startAppliance({ dataDir: app.dataDir });
    try {
      const token = (await login(again, boss.username, boss.password)).token;
      const abort = new AbortController();
      const res = await fetch(`${again.url}/api/v1/backup`, authed(token, { signal: abort.signal }));
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      expect((await reader.read()).done).toBe(false);
      abort.abort();
      await until('the half-sent snapshot to be removed', async () => !readdirSync(app.dataDir).some((f) => f.startsWith('.backup-')), 10_000, 50);
      const next = await fetch(`${again.url}/api/v1/backup`, authed(token));
      expect(next.status).toBe(200);
      expect((await next.arrayBuffer()).byteLength).toBeGreaterThan(24e6);
    } finally {
      await again.stop();
    }
  }, 90_000);

  // chown needs root; the image restores as root into /var/lib/nexus, which the nexus user owns.
  it.skipIf(process.getuid?.() !== 0)('gives every file it writes to the data dir\'s owner when run as root', async () => {
    const target = join(dir, 'owned');
    mkdirSync(target, { mode: 0o700 });
    const [uid, gid] = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('nobody:'))!.split(':').slice(2, 4).map(Number) as [number, number];
    chownSync(target, uid, gid);
    const r = await nexus(['restore', sealed, '--data-dir', target, '--passphrase-env', 'PASS'], { env });
    expect(r.code, r.stderr).toBe(0);
    const files = readdirSync(target, { recursive: true }).map(String);
    expect(files.sort()).toEqual(['master.key', 'nexus.db', 'nexus.lock']); // the pid file goes with the lock
    for (const f of files) expect([f, statSync(join(target, f)).uid, statSync(join(target, f)).gid]).toEqual([f, uid, gid]);
  });

  it('writes into a directory and keeps its newest N, also from a stopped appliance', async () => {
    const into = join(dir, 'nightly');
    mkdirSync(into);
    writeFileSync(join(into, 'notes.txt'), 'not a backup');
    const names: string[] = [];
    for (let i = 0; i < 3; i++) {
      if (i) await new Promise((r) => setTimeout(r, 1100)); // names carry the second
      const r = await nexus(['backup', '--data-dir', source.dataDir, '--out', into, '--keep', '2', '--no-keys']);
      expect(r.code, r.stderr).toBe(0);
      names.push(/Backup written to \S+\/(nexus-backup-\d{8}T\d{6}Z\.nxbackup)/.exec(r.stdout)![1]!);
    }
    expect(readdirSync(into).sort()).toEqual([...names.slice(1), 'notes.txt'].sort());
    const bad = await nexus(['backup', '--data-dir', source.dataDir, '--out', join(into, 'x.nxbackup'), '--keep', '2', '--no-keys']);
    expect([bad.code, bad.stderr.trim()]).toEqual([2, 'nexus backup: --keep needs --out DIR (a directory of backups)']);
  }, 60_000);

  it('refuses a backup from a newer schema, a running appliance, short passphrases and a missing database', async () => {
    // A data dir whose database has a migration this Nexus does not know.
    const newer = join(dir, 'newer-src');
    const fresh = await startAppliance({ dataDir: newer });
    await setupAdmin(fresh);
    await fresh.stop();
    const db = new Database(join(newer, 'nexus.db'));
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, ?, ?)').run('999-later.sql', new Date().toISOString());
    db.close();
    const file = join(dir, 'newer.nxbackup');
    expect((await nexus(['backup', '--data-dir', newer, '--out', file, '--no-keys'])).code).toBe(0);
    const r = await nexus(['restore', file, '--data-dir', join(dir, 'newer-dst'), '--master-key', join(newer, 'master.key')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/was made by a newer Nexus .*schema 999 unknown here/);
    expect(existsSync(join(dir, 'newer-dst', 'nexus.db'))).toBe(false);

    const running = await startAppliance();
    try {
      const before = listing(running.dataDir);
      const busy = await nexus(['restore', sealed, '--data-dir', running.dataDir, '--passphrase-env', 'PASS', '--force'], { env });
      expect(busy.code).toBe(1);
      expect(busy.stderr).toMatch(/another nexus process \(pid \d+\) is already using data dir .*: stop it before restoring/);
      expect(listing(running.dataDir)).toEqual(before);
    } finally {
      await running.stop();
    }

    const short = await nexus(['backup', '--data-dir', newer, '--out', join(dir, 'short'), '--passphrase-env', 'P'], { env: { P: 'too short' } });
    expect(short.code).toBe(1);
    expect(short.stderr).toMatch(/at least 12 characters/);
    const empty = await nexus(['backup', '--data-dir', join(dir, 'nothing-here'), '--no-keys', '--out', join(dir, 'x')]);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/holds no database \(nexus.db\): nothing to back up/);
    const both = await nexus(['backup', '--data-dir', newer, '--no-keys', '--passphrase-env', 'PASS'], { env });
    expect(both.code).toBe(2);
    expect(existsSync(join(dir, 'short'))).toBe(false);
  }, 120_000);
});
