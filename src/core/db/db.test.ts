import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from './db.ts';

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
