import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { immediateTransactions, type Db } from './db.ts';
import { createWriter, type Writer } from './write-thread.ts';

const open: { db: Db; writer: Writer }[] = [];

function setup(extra: { waitMs?: number } = {}): { db: Db; writer: Writer; errors: [string, unknown][]; thread: () => Worker } {
  const path = join(mkdtempSync(join(tmpdir(), 'nexus-wt-')), 'test.db');
  const db = new Database(path, { timeout: 5000 });
  db.pragma('journal_mode = WAL');
  immediateTransactions(db); // as openDatabase does
  db.exec(`CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, batch INTEGER NOT NULL, n INTEGER NOT NULL);
    CREATE TABLE c (k TEXT PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO c VALUES ('x', 0);`);
  const errors: [string, unknown][] = [];
  let worker: Worker | undefined;
  const writer = createWriter(db, { onError: (label, err) => errors.push([label, err]), thread: true, onThread: (w) => (worker = w), ...extra });
  open.push({ db, writer });
  return { db, writer, errors, thread: () => worker! };
}

const rows = (batch: number, count: number) => {
  const values: unknown[] = [];
  for (let n = 0; n < count; n++) values.push(batch, n);
  return { insert: 't', columns: ['batch', 'n'], values };
};

afterEach(() => {
  for (const { db, writer } of open.splice(0)) {
    writer.close();
    db.close();
  }
});

describe('write thread', () => {
  it('commits batches in order on its own connection; sync makes them visible to this one', () => {
    const { db, writer, errors } = setup();
    expect(writer.threaded).toBe(true);
    for (let b = 0; b < 50; b++) writer.submit('t', [rows(b, 40), { sql: "UPDATE c SET n = n + ? WHERE k = 'x'", params: [[1]] }]);
    writer.sync();
    const got = db.prepare('SELECT batch, n FROM t ORDER BY id').all() as { batch: number; n: number }[];
    expect(got).toHaveLength(2000);
    got.forEach((r, i) => expect(r).toEqual({ batch: Math.floor(i / 40), n: i % 40 }));
    expect(db.prepare("SELECT n FROM c WHERE k = 'x'").pluck().get()).toBe(50);
    expect(errors).toEqual([]);
  });

  it('reports a failing batch by its label, drops only that batch, and goes on', async () => {
    const { db, writer, errors } = setup();
    writer.submit('first', [rows(1, 3)]);
    writer.submit('broken', [rows(2, 2), { insert: 't', columns: ['batch', 'n'], values: [3, null] }]);
    writer.submit('third', [rows(4, 1)]);
    writer.sync();
    expect(db.prepare('SELECT batch FROM t ORDER BY id').pluck().all()).toEqual([1, 1, 1, 4]);
    // The report arrives as a message; give the event loop a bounded number of turns.
    for (let i = 0; i < 200 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(errors).toHaveLength(1);
    expect(errors[0]![0]).toBe('broken');
    expect(String(errors[0]![1])).toMatch(/NOT NULL/);
    expect(writer.threaded).toBe(true);
  });

  it('interleaves with writes on the main connection without losing either', () => {
    const { db, writer, errors } = setup();
    const bump = db.prepare("UPDATE c SET n = n + 1 WHERE k = 'x'");
    for (let b = 0; b < 200; b++) {
      writer.submit('t', [rows(b, 5)]);
      bump.run(); // may wait for the thread's write lock (busy timeout)
    }
    writer.sync();
    expect(db.prepare('SELECT COUNT(*) FROM t').pluck().get()).toBe(1000);
    expect(db.prepare("SELECT n FROM c WHERE k = 'x'").pluck().get()).toBe(200);
    expect(errors).toEqual([]);
  });

  it('commits what is queued on close, then commits later batches on the caller connection', () => {
    const { db, writer } = setup();
    for (let b = 0; b < 30; b++) writer.submit('t', [rows(b, 10)]);
    writer.close();
    expect(writer.threaded).toBe(false);
    expect(db.prepare('SELECT COUNT(*) FROM t').pluck().get()).toBe(300);
    writer.submit('late', [rows(99, 1)]);
    expect(db.prepare('SELECT COUNT(*) FROM t WHERE batch = 99').pluck().get()).toBe(1);
  });

  it('when the thread dies, commits every batch it had not committed exactly once on this connection', async () => {
    const { db, writer, errors, thread } = setup();
    for (let b = 0; b < 20; b++) writer.submit('t', [rows(b, 50)]);
    // Stopped wherever it is: some batches committed, maybe one mid-transaction, the rest unread.
    const exited = new Promise((r) => thread().once('exit', r));
    void thread().terminate();
    await exited;
    for (let b = 20; b < 40; b++) writer.submit('t', [rows(b, 50)]);
    writer.sync();
    expect(writer.threaded).toBe(false);
    const perBatch = db.prepare('SELECT batch, COUNT(*) AS n FROM t GROUP BY batch ORDER BY batch').all() as { batch: number; n: number }[];
    expect(perBatch).toEqual(Array.from({ length: 40 }, (_, b) => ({ batch: b, n: 50 })));
    expect(db.prepare('SELECT batch FROM t ORDER BY id').pluck().all()).toEqual(Array.from({ length: 2000 }, (_, i) => Math.floor(i / 50)));
    expect(errors.map(([label]) => label)).toContain('write thread');
  });

  it('lets main-connection transactions that read, then write, run beside the thread without SQLITE_BUSY', () => {
    const { db, writer, errors } = setup();
    const count = db.prepare('SELECT COUNT(*) FROM t WHERE batch = -1').pluck();
    const insert = db.prepare('INSERT INTO t (batch, n) VALUES (-1, ?)');
    // The shape of a store's create: look, then write, in one transaction.
    const create = db.transaction(() => insert.run((count.get() as number) + 1));
    const failures: string[] = [];
    for (let i = 0; i < 2000; i++) {
      if (i % 5 === 0) writer.submit('t', [rows(i, 20)]);
      try {
        create();
      } catch (err) {
        failures.push((err as { code?: string }).code ?? String(err));
      }
    }
    writer.sync();
    expect(failures).toEqual([]);
    expect(db.prepare('SELECT COUNT(*) FROM t WHERE batch = -1').pluck().get()).toBe(2000);
    expect(db.prepare('SELECT COUNT(*) FROM t WHERE batch >= 0').pluck().get()).toBe(400 * 20);
    expect(errors).toEqual([]);
  });

  it('writes each batch once when a sync gives up while the thread is still committing', () => {
    // A wait this short gives up in the middle of the backlog: the rest is committed here while the
    // thread may be inside a COMMIT of its own; the claim lets only one of them write a batch. The
    // race is narrow, so a few rounds (without the claim, 4 of 30 such rounds wrote a batch twice).
    for (let round = 0; round < 4; round++) {
      const { db, writer } = setup({ waitMs: 20 });
      for (let b = 0; b < 150; b++) writer.submit('t', [rows(b, 300)]);
      writer.sync();
      expect(writer.threaded).toBe(false);
      const perBatch = db.prepare('SELECT batch, COUNT(*) AS n FROM t GROUP BY batch ORDER BY batch').all();
      expect(perBatch).toEqual(Array.from({ length: 150 }, (_, b) => ({ batch: b, n: 300 })));
    }
  });

  it('keeps at most 128 batches in flight: a thread that falls behind slows the submitter down', () => {
    const { db, writer } = setup();
    let most = 0;
    for (let b = 0; b < 600; b++) {
      writer.submit('t', [rows(b, 200)]);
      most = Math.max(most, writer.queued);
    }
    expect(most).toBeLessThanOrEqual(128);
    writer.sync();
    expect(db.prepare('SELECT COUNT(*) FROM t').pluck().get()).toBe(600 * 200);
  });

  it('lets go of committed batches at the next hand-over (they hold their rows)', async () => {
    const { db, writer } = setup();
    for (let b = 0; b < 50; b++) writer.submit('t', [rows(b, 100)]);
    const count = db.prepare('SELECT COUNT(*) FROM t').pluck();
    for (let i = 0; i < 500 && count.get() !== 5000; i++) await new Promise((r) => setTimeout(r, 10));
    expect(count.get()).toBe(5000);
    writer.submit('t', [rows(50, 1)]);
    expect(writer.queued).toBeLessThanOrEqual(2);
  });

  it('refuses to wait for the thread inside a transaction of this connection', () => {
    const { db, writer } = setup();
    writer.submit('t', [rows(1, 1)]);
    expect(() => db.transaction(() => writer.sync())()).toThrow(/inside a transaction/);
    writer.sync();
    expect(writer.threaded).toBe(true);
  });

  it('commits on the caller connection for an in-memory database', () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, batch INTEGER NOT NULL, n INTEGER NOT NULL)');
    const writer = createWriter(db, { onError: () => {}, thread: true });
    expect(writer.threaded).toBe(false);
    writer.submit('t', [rows(1, 3)]);
    expect(db.prepare('SELECT COUNT(*) FROM t').pluck().get()).toBe(3);
    db.close();
  });
});
