// Faults a real deployment meets: a second process on the same data dir, a read-only or corrupt data
// dir, kill -9 in the middle of writes, SIGTERM with a request in flight, expired sessions.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nexus, startAppliance, tempDir, type Appliance } from '../helpers/appliance.ts';
import { authed, json, login, post, setupAdmin } from '../helpers/api.ts';

const running: Appliance[] = [];
async function start(opts: Parameters<typeof startAppliance>[0] = {}) {
  const app = await startAppliance(opts);
  running.push(app);
  return app;
}
afterAll(async () => {
  await Promise.all(running.map((a) => a.stop('SIGKILL')));
});

const serveArgs = (dir: string) => ['serve', '--data-dir', dir, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'];

describe('data dir', () => {
  it('refuses a second nexus serve on the same data dir, naming the running pid', async () => {
    const app = await start();
    const second = await nexus(serveArgs(app.dataDir), { timeoutMs: 30_000 });
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`another nexus process (pid ${app.proc.pid})`);
    // The first one is unharmed.
    expect((await fetch(`${app.url}/ready`)).status).toBe(200);
  });

  it('creates a missing data dir with mode 0700', async () => {
    const dir = join(tempDir(), 'nested', 'data');
    const app = await start({ dataDir: dir });
    expect((await fetch(`${app.url}/ready`)).status).toBe(200);
    const { statSync } = await import('node:fs');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'master.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'setup-token')).mode & 0o777).toBe(0o600);
  });

  it('explains a data dir that is a file, or a database that is not one', async () => {
    const file = join(tempDir(), 'not-a-dir');
    writeFileSync(file, 'x');
    const r1 = await nexus(serveArgs(file));
    expect(r1.code).toBe(1);
    expect(r1.stderr).toContain('is not a directory');

    const dir = tempDir();
    writeFileSync(join(dir, 'nexus.db'), Buffer.alloc(8192, 0x5a));
    const r2 = await nexus(serveArgs(dir));
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/nexus\.db is not a valid Nexus database/);
  });

  it('refuses a data dir a newer Nexus has used, and leaves it as it was', async () => {
    const app = await start();
    await setupAdmin(app);
    expect(await app.stop()).toBe(0);
    const file = join(app.dataDir, 'nexus.db');
    const Database = (await import('better-sqlite3')).default;
    const edit = new Database(file);
    edit.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'from-a-later-version', '2027-01-01T00:00:00Z')").run();
    const before = edit.prepare('SELECT version FROM schema_migrations ORDER BY version').all();
    edit.close();

    const r = await nexus(serveArgs(app.dataDir));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/last used by a newer Nexus \(schema 999 unknown to [0-9.]+\)/);

    const check = new Database(file, { readonly: true });
    expect(check.prepare('SELECT version FROM schema_migrations ORDER BY version').all()).toEqual(before);
    check.close();
  });

  it('explains a read-only data dir and leaves its contents untouched', async () => {
    const src = tempDir();
    const first = await start({ dataDir: src });
    await setupAdmin(first);
    expect(await first.stop()).toBe(0);
    const ro = tempDir();
    execFileSync('mount', ['--bind', '-o', 'ro', src, ro]);
    try {
      const r = await nexus(serveArgs(ro));
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/not writable/);
    } finally {
      execFileSync('umount', [ro]);
    }
    // Still a good data dir once writable again.
    const again = await start({ dataDir: src });
    expect(again.setupToken).toBeNull();
    await login(again, 'admin', 'correct-horse-battery');
  });
});

describe('crash safety', () => {
  it('finds every committed row after kill -9 in the middle of writes', async () => {
    const app = await start();
    const admin = await setupAdmin(app);
    const committed: string[] = [];
    const inflight: Promise<void>[] = [];
    let stop = false;
    // Four writers create tokens as fast as they can; the process is killed under them.
    for (let w = 0; w < 4; w++) {
      inflight.push((async () => {
        for (let i = 0; !stop && i < 2000; i++) {
          try {
            const res = await post(`${app.url}/api/v1/tokens`, { name: `w${w}-${i}` }, { authorization: `Bearer ${admin.token}` });
            if (res.status === 201) committed.push((await json(res)).id);
          } catch {
            return; // connection died with the process
          }
        }
      })());
    }
    const until = Date.now() + 20_000;
    while (committed.length < 50 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    app.proc.kill('SIGKILL');
    stop = true;
    await Promise.all(inflight);
    expect(committed.length).toBeGreaterThanOrEqual(50);

    const again = await start({ dataDir: app.dataDir });
    const s = await login(again, 'admin', 'correct-horse-battery');
    const list = await json(await fetch(`${again.url}/api/v1/tokens`, authed(s.token)));
    const ids = new Set(list.items.map((t: { id: string }) => t.id));
    for (const id of committed) expect(ids.has(id)).toBe(true);
    // The audit log kept one token.create per committed token.
    const audit = await json(await fetch(`${again.url}/api/v1/audit?action=token.create&limit=1000`, authed(s.token)));
    expect(audit.items.length).toBeGreaterThanOrEqual(committed.length);
  });

  it('finishes a request in flight on SIGTERM, then exits 0', async () => {
    const app = await start();
    const body = JSON.stringify({ setup_token: app.setupToken, username: 'admin', password: 'correct-horse-battery' });
    const { port } = new URL(app.url);
    const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/api/v1/setup', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, text }));
      });
      req.on('error', reject);
      req.write(body.slice(0, 10));
      // The request is in flight (headers sent, body half sent) when SIGTERM arrives.
      setTimeout(() => {
        app.proc.kill('SIGTERM');
        setTimeout(() => req.end(body.slice(10)), 500);
      }, 1000);
    });
    const res = await answer;
    expect(res.status).toBe(201);
    const code = await new Promise<number | null>((r) => (app.proc.exitCode !== null ? r(app.proc.exitCode) : app.proc.once('exit', r)));
    expect(code).toBe(0);
    // New connections are refused once shutdown began; the admin it created is there on restart.
    const again = await start({ dataDir: app.dataDir });
    expect(again.setupToken).toBeNull();
  });
});

describe('sessions', () => {
  it('expires sessions after their lifetime', async () => {
    const app = await start({ env: { NEXUS_SESSION_TTL_SECONDS: '1' } });
    const admin = await setupAdmin(app);
    expect((await fetch(`${app.url}/api/v1/me`, { headers: { cookie: admin.cookie } })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1500));
    const res = await fetch(`${app.url}/api/v1/me`, { headers: { cookie: admin.cookie } });
    expect(res.status).toBe(401);
    expect((await json(res)).error.code).toBe('unauthorized');
    // A personal token is not a session: it keeps working.
    expect((await fetch(`${app.url}/api/v1/me`, authed(admin.token))).status).toBe(200);
  });

  it('never writes secrets to its logs', async () => {
    const dir = tempDir();
    mkdirSync(dir, { recursive: true });
    const app = await start({ dataDir: dir });
    const admin = await setupAdmin(app);
    await fetch(`${app.url}/api/v1/me?key=sk-should-not-appear`, authed(admin.token));
    await fetch(`${app.url}/api/v1/me`, { headers: { cookie: admin.cookie } });
    const out = app.output().split('\n').filter((l) => l.startsWith('{')).join('\n');
    expect(out).not.toContain(admin.token);
    expect(out).not.toContain(admin.password);
    expect(out).not.toContain(admin.cookie.split('=')[1]);
    expect(out).not.toContain('sk-should-not-appear');
    expect(out).not.toContain(app.setupToken!);
  });
});
