// `npm run build` produces one executable that carries everything: it runs with no node_modules and
// no repository beside it, completes setup and sign-in, and stops cleanly on SIGTERM.
import { copyFileSync, existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, startAppliance, tempDir, REPO, type Appliance } from '../helpers/appliance.ts';
import { authed, json, setupAdmin } from '../helpers/api.ts';
import { createKey, createProvider, simpleModel } from '../helpers/gateway.ts';
import { startLlmUpstream } from '../helpers/llm-upstream.ts';

let exe: string;
let app: Appliance | undefined;
const scratch: string[] = [];

beforeAll(async () => {
  const out = tempDir('nexus-build-');
  scratch.push(out);
  const res = await run(process.execPath, [join(REPO, 'scripts/build.ts'), '--out', out], { timeoutMs: 240_000 });
  expect(res.code, res.stderr).toBe(0);
  // Run it from a directory that has nothing else in it.
  const lonely = tempDir('nexus-lonely-');
  scratch.push(lonely);
  exe = join(lonely, 'nexus');
  copyFileSync(join(out, 'nexus'), exe);
}, 300_000);

afterAll(async () => {
  await app?.stop();
  // Each build is ~130 MB; do not leave them behind in the temp dir.
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

describe('dist/nexus', () => {
  it('is one executable file that prints its version', async () => {
    expect(statSync(exe).mode & 0o111).toBeTruthy();
    const v = await run(exe, ['version', '--verbose'], { cwd: '/', env: { XDG_CACHE_HOME: tempDir('nexus-cache-') } });
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/^nexus \d+\.\d+\.\d+/);
    expect(v.stdout).toContain('node 24.');
    // The WebSocket masking addon rides inside the executable too.
    expect(v.stdout).toContain('websocket masking: native');
  });

  it('serves setup and sign-in from a fresh data dir, with the native module unpacked to the cache dir', async () => {
    const cache = tempDir('nexus-cache-');
    app = await startAppliance({ bin: exe, env: { CACHE_DIRECTORY: cache } });
    const admin = await setupAdmin(app);
    const me = await json(await fetch(`${app.url}/api/v1/me`, authed(admin.token)));
    expect(me.user.username).toBe('admin');
    const unpacked = (await import('node:fs')).readdirSync(cache).filter((f) => f.endsWith('.node'));
    expect(unpacked.map((f) => f.replace(/-[0-9a-f]{16}\.node$/, '')).sort()).toEqual(['better_sqlite3', 'bufferutil']);
    expect(statSync(cache).mode & 0o777).toBe(0o700);

    // Gateway calls: their usage rows and audit entries are committed by the write thread, whose
    // code and native module also come out of the executable.
    const up = await startLlmUpstream();
    try {
      const provider = await createProvider(app, admin, { name: 'mock', type: 'openai-compatible', base_url: `${up.url}/v1`, api_key: 'sk-up' });
      await simpleModel(app, admin, provider.id, 'm1');
      const vk = await createKey(app, admin.token);
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${app.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${vk.key}` }, body: JSON.stringify({ model: 'm1', messages: [{ role: 'user', content: 'hi' }] }) });
        expect(res.status, await res.clone().text()).toBe(200);
        await res.arrayBuffer();
      }
      const usage = await json(await fetch(`${app.url}/api/v1/usage?group_by=model`, authed(admin.token)));
      expect(usage.items[0]).toMatchObject({ model: 'm1', requests: 3 });
      const audit = await json(await fetch(`${app.url}/api/v1/audit?action=gateway.chat`, authed(admin.token)));
      expect(audit.items.length).toBe(3);
    } finally {
      await up.close();
    }
    expect(app.output()).not.toContain('write failed');
    expect(app.output()).not.toContain('write thread');

    // A backup's database copy runs on a thread whose code is an asset of the executable too; the
    // executable's own `nexus backup verify` reads it back.
    const backup = await fetch(`${app.url}/api/v1/backup`, authed(admin.token));
    expect(backup.status, await backup.clone().text().catch(() => '')).toBe(200);
    const file = join(tempDir('nexus-backup-'), 'b.nxbackup');
    writeFileSync(file, Buffer.from(await backup.arrayBuffer()));
    const verified = await run(exe, ['backup', 'verify', file], { env: { CACHE_DIRECTORY: cache } });
    expect(verified.stdout, verified.stderr).toMatch(/a good backup .*\(schema \d+, 1 user\(s\)\), no keys/);

    const code = await app.stop('SIGTERM');
    expect(code).toBe(0);
    expect(app.output()).toContain('"stopped"');
    // The WAL was checkpointed on shutdown.
    const wal = join(app.dataDir, 'nexus.db-wal');
    expect(!existsSync(wal) || statSync(wal).size === 0).toBe(true);
    app = undefined;
  });
});
