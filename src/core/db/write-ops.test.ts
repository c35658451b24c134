import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createOpsApplier, packed, type WriteOp } from './write-ops.ts';

describe('createOpsApplier', () => {
  it('inserts every row in order, whole groups and the rest, with nulls and numbers intact', () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, n REAL, note TEXT)');
    const apply = createOpsApplier(db);
    let next = 0;
    for (const size of [0, 1, 31, 32, 33, 70]) {
      const values: unknown[] = [];
      for (let k = 0; k < size; k++, next++) values.push(`r${next}`, next + 0.5, next % 3 ? `x'"${next}` : null);
      apply([{ insert: 't', columns: ['name', 'n', 'note'], values }]);
    }
    const got = db.prepare('SELECT id, name, n, note FROM t ORDER BY id').all() as { id: number; name: string; n: number; note: string | null }[];
    expect(got).toHaveLength(next);
    got.forEach((r, i) => {
      expect(r).toEqual({ id: i + 1, name: `r${i}`, n: i + 0.5, note: i % 3 ? `x'"${i}` : null });
    });
    db.close();
  });

  it('commits a batch whole or not at all, statements included', () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL); CREATE TABLE c (k TEXT PRIMARY KEY, n INTEGER NOT NULL)');
    db.exec("INSERT INTO c VALUES ('a', 0)");
    const apply = createOpsApplier(db);
    apply([{ insert: 't', columns: ['v'], values: ['one', 'two'] }, { sql: 'UPDATE c SET n = n + ? WHERE k = ?', params: [[2, 'a'], [3, 'a']] }]);
    expect(() => apply([{ insert: 't', columns: ['v'], values: ['three'] }, { insert: 't', columns: ['v'], values: [null] }])).toThrow(/NOT NULL/);
    expect(() => apply([{ insert: 't', columns: ['v'], values: ['a', 'b', 'c'].slice(0, 2).concat(['x']) }, { insert: 't', columns: ['id', 'v'], values: [1] }])).toThrow(/do not make rows/);
    expect(db.prepare('SELECT v FROM t ORDER BY id').pluck().all()).toEqual(['one', 'two']);
    expect(db.prepare("SELECT n FROM c WHERE k = 'a'").pluck().get()).toBe(5);
    db.close();
  });
  it('packs rows as JSON text only when JSON gives back the same values, and inserts them the same', () => {
    const values = ['a', 1, 0.1 + 0.2, null, 'x\'"\\\u0000\ud800é', -1e300, 2 ** 53 + 2, 0];
    const op = packed({ insert: 't', columns: ['v'], values });
    expect(op).toEqual({ insert: 't', columns: ['v'], json: JSON.stringify(values) });
    for (const odd of [Number.NaN, Infinity, -0, true, undefined, 10n, Buffer.from('x')]) {
      const keep: WriteOp = { insert: 't', columns: ['v'], values: ['a', odd] };
      expect(packed(keep)).toBe(keep);
    }
    const statement: WriteOp = { sql: 'SELECT ?', params: [[1]] };
    expect(packed(statement)).toBe(statement);
    const read = (ops: WriteOp[]) => {
      const db = new Database(':memory:');
      db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, v)');
      createOpsApplier(db)(ops);
      const rows = db.prepare('SELECT v, typeof(v) AS type FROM t ORDER BY id').all();
      db.close();
      return rows;
    };
    expect(read([op])).toEqual(read([{ insert: 't', columns: ['v'], values }]));
  });
});
