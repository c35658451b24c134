import { chmodSync, existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireDataDirLock, DataDirError, dataDirExposure, openDatabase } from './db.ts';
import { loadMigrations } from './migrations/index.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Files this process has open that SQLite made for temporary data (unnamed files in a temp directory). */
const tempFilesOpen = () =>
  readdirSync('/proc/self/fd').map((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return '';
    }
  }).filter((l) => /^\/(var\/|usr\/)?tmp\/#\d+ \(deleted\)$/.test(l) || l.includes('etilqs_'));

describe('openDatabase', () => {
  it('applies only what is missing, and refuses a schema with migrations it does not know', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nexus-db-'));
    dirs.push(dir);
    const file = join(dir, 'nexus.db');
    const all = loadMigrations();
    const older = all.filter((m) => m.version < 201);
    // An older Nexus, then this one: the newer migrations are applied on top.
    openDatabase(file, { migrations: older }).close();
    const db = openDatabase(file, { migrations: all });
    expect((db.prepare('SELECT COUNT(*) AS n FROM schema_migrations').get() as { n: number }).n).toBe(all.length);
    db.close();
    // Then the older one again: the database has migrations it does not know.
    const err = (() => {
      try {
        openDatabase(file, { migrations: older });
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(DataDirError);
    expect((err as Error).message).toContain(`schema ${all.filter((m) => m.version >= 201).map((m) => m.version).join(', ')} unknown`);
  });

  it('keeps statement journals in memory: rewriting many pages inside a transaction opens no temp file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nexus-db-'));
    dirs.push(dir);
    const db = openDatabase(join(dir, 'nexus.db'));
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT NOT NULL, v TEXT NOT NULL); CREATE INDEX t_k ON t (k)');
    const insert = db.prepare('INSERT INTO t (k, v) VALUES (?, ?)');
    let during: string[] = [];
    db.transaction(() => {
      for (let i = 0; i < 2000; i++) insert.run(`key-${(i * 7919) % 2000}`, 'x'.repeat(200));
      // A statement that may fail half-way (NOT NULL) and rewrites pages this transaction already
      // changed needs a statement journal holding those pages' earlier images: ~100 pages here,
      // far over the 64 KiB SQLite keeps in memory before spilling to a file in a temp directory.
      db.prepare("UPDATE t SET v = v || 'y'").run();
      during = tempFilesOpen();
    })();
    expect(during).toEqual([]);
    expect(db.prepare("SELECT COUNT(*) AS n FROM t WHERE v LIKE '%y'").get()).toEqual({ n: 2000 });
    db.close();
  });
});

describe('data dir permissions', () => {
  const fresh = () => {
    const dir = mkdtempSync(join(tmpdir(), 'nexus-db-'));
    dirs.push(dir);
    return dir;
  };
  const mode = (p: string) => statSync(p).mode & 0o777;

  it('creates the database, its WAL and shared-memory files for the owner only, whatever the umask', () => {
    const dir = fresh();
    const old = process.umask(0o022);
    try {
      const db = openDatabase(join(dir, 'nexus.db'));
      db.exec('CREATE TABLE t (x)');
      expect([mode(join(dir, 'nexus.db')), mode(join(dir, 'nexus.db-wal')), mode(join(dir, 'nexus.db-shm'))]).toEqual([0o600, 0o600, 0o600]);
      db.close();
    } finally {
      process.umask(old);
    }
  });

  it('narrows a database an earlier start left readable by others to 0600', () => {
    const dir = fresh();
    openDatabase(join(dir, 'nexus.db')).close();
    chmodSync(join(dir, 'nexus.db'), 0o644);
    const db = openDatabase(join(dir, 'nexus.db'));
    expect(mode(join(dir, 'nexus.db'))).toBe(0o600);
    db.close();
  });

  it('says when the data dir is open to its group or everyone, without changing it', () => {
    const dir = fresh();
    chmodSync(dir, 0o700);
    expect(dataDirExposure(dir)).toBeNull();
    chmodSync(dir, 0o750);
    expect(dataDirExposure(dir)).toBe(`data dir ${dir} is accessible to its group (mode 0750); restrict it with: chmod 700 ${dir}`);
    chmodSync(dir, 0o755);
    expect(dataDirExposure(dir)).toBe(`data dir ${dir} is accessible to all users (mode 0755); restrict it with: chmod 700 ${dir}`);
    expect(mode(dir)).toBe(0o755);
  });

  it('removes its pid file when the lock is released, and leaves another process\'s', () => {
    const dir = fresh();
    const release = acquireDataDirLock(dir);
    expect(existsSync(join(dir, 'nexus.pid'))).toBe(true);
    release();
    expect(existsSync(join(dir, 'nexus.pid'))).toBe(false);
    const again = acquireDataDirLock(dir);
    writeFileSync(join(dir, 'nexus.pid'), '999999\n');
    again();
    expect(existsSync(join(dir, 'nexus.pid'))).toBe(true);
  });
});
