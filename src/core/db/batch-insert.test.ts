import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { batchInsert } from './batch-insert.ts';

describe('batchInsert', () => {
  it('inserts every row in order, whole groups and the rest, with nulls and numbers intact', () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, n REAL, note TEXT)');
    const ins = batchInsert<{ name: string; n: number; note: string | null }>(db, 't', ['name', 'n', 'note'], (r, out) => {
      out.push(r.name, r.n, r.note);
    });
    let next = 0;
    for (const size of [0, 1, 31, 32, 33, 70]) {
      const rows: { name: string; n: number; note: string | null }[] = [];
      for (let k = 0; k < size; k++, next++) rows.push({ name: `r${next}`, n: next + 0.5, note: next % 3 ? `x'"${next}` : null });
      db.transaction(() => ins.run(rows))();
    }
    const got = db.prepare('SELECT id, name, n, note FROM t ORDER BY id').all() as { id: number; name: string; n: number; note: string | null }[];
    expect(got).toHaveLength(next);
    got.forEach((r, i) => {
      expect(r).toEqual({ id: i + 1, name: `r${i}`, n: i + 0.5, note: i % 3 ? `x'"${i}` : null });
    });
    db.close();
  });
});
